"""PyTorch checkpoint import: logits parity with plain torch.nn references, strict errors."""
import sys

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from jaxvision import models
from jaxvision.models import torch_import


def test_missing_torch_gives_install_hint(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
  m = models.build("cnn_small", 10, rngs=nnx.Rngs(0), width_multiplier=0.25)
  with pytest.raises(ImportError, match=r"jaxvision\[torch\]"):
    models.load_torch_checkpoint(m, str(tmp_path / "x.pth"))


# ------------------------------------------------------------------ torch reference models
def _torch():
  return pytest.importorskip("torch")


def _tv_vgg16(nc=10, widths=(64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)):
  nn = _torch().nn
  layers, cin = [], 3
  for i, w in enumerate(widths):
    layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
    if i in (1, 3, 6, 9, 12):
      layers.append(nn.MaxPool2d(2, 2))
    cin = w
  layers.append(nn.AvgPool2d(1))

  class VGG(nn.Module):
    def __init__(self):
      super().__init__()
      self.features = nn.Sequential(*layers)
      self.classifier = nn.Linear(widths[-1], nc)

    def forward(self, x):
      return self.classifier(self.features(x).flatten(1))
  return VGG()


def _clr_resnet_cifar(depth=56, nc=10, inner=None):
  torch = _torch()
  nn, F = torch.nn, torch.nn.functional
  n = (depth - 2) // 6

  class Block(nn.Module):
    def __init__(self, cin, mid, cout, stride):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(mid)
      self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(cout)
      self.stride, self.cin, self.cout = stride, cin, cout

    def forward(self, x):
      y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
      sc = x[:, :, ::2, ::2] if self.stride == 2 else x
      if self.cout != self.cin:
        d = self.cout - self.cin
        sc = F.pad(sc, (0, 0, 0, 0, d // 2, d - d // 2))
      return F.relu(y + sc)

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(16)
      cin, k = 16, 0
      for s, w in enumerate((16, 32, 64)):
        blocks = []
        for b in range(n):
          blocks.append(Block(cin, inner[k] if inner else w, w, 2 if (s and not b) else 1))
          cin, k = w, k + 1
        setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
      self.fc = nn.Linear(64, nc)

    def forward(self, x):
      x = F.relu(self.bn1(self.conv1(x)))
      x = self.layer3(self.layer2(self.layer1(x)))
      return self.fc(x.mean((2, 3)))
  return Net()


def _tv_resnet50(nc=1000, base=64):
  """torchvision resnet50; `base` = the stem width (64), stage inner widths base * (1, 2, 4, 8)."""
  torch = _torch()
  nn = torch.nn

  class Bottleneck(nn.Module):
    def __init__(self, cin, mid, cout, stride):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(mid)
      self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(mid)
      self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(cout)
      self.relu = nn.ReLU(inplace=True)
      self.downsample = None
      if stride != 1 or cin != cout:
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                        nn.BatchNorm2d(cout))

    def forward(self, x):
      y = self.relu(self.bn1(self.conv1(x)))
      y = self.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      return self.relu(y + (self.downsample(x) if self.downsample is not None else x))

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
      self.bn1 = nn.BatchNorm2d(base)
      self.relu = nn.ReLU(inplace=True)
      self.maxpool = nn.MaxPool2d(3, 2, 1)
      cin = base
      for s, (w, nb) in enumerate(zip((base, 2 * base, 4 * base, 8 * base), (3, 4, 6, 3))):
        blocks = []
        for b in range(nb):
          blocks.append(Bottleneck(cin, w, 4 * w, 2 if (s and not b) else 1))
          cin = 4 * w
        setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
      self.avgpool = nn.AdaptiveAvgPool2d(1)
      self.fc = nn.Linear(32 * base, nc)

    def forward(self, x):
      x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
      for s in range(4):
        x = getattr(self, f"layer{s + 1}")(x)
      return self.fc(self.avgpool(x).flatten(1))
  return Net()


def _pytorchcv_resnet20(nc=10):
  """pytorchcv resnet20_cifar10 layout: 1x1 conv + BN projection shortcuts."""
  torch = _torch()
  nn, F = torch.nn, torch.nn.functional

  class ConvBlock(nn.Module):
    def __init__(self, cin, cout, k, stride, act=True):
      super().__init__()
      self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
      self.bn = nn.BatchNorm2d(cout)
      self.act = act

    def forward(self, x):
      y = self.bn(self.conv(x))
      return F.relu(y) if self.act else y

  class Body(nn.Module):
    def __init__(self, cin, cout, stride):
      super().__init__()
      self.conv1 = ConvBlock(cin, cout, 3, stride)
      self.conv2 = ConvBlock(cout, cout, 3, 1, act=False)

    def forward(self, x):
      return self.conv2(self.conv1(x))

  class Unit(nn.Module):
    def __init__(self, cin, cout, stride):
      super().__init__()
      self.body = Body(cin, cout, stride)
      self.resize = cin != cout or stride != 1
      if self.resize:
        self.identity_conv = ConvBlock(cin, cout, 1, stride, act=False)

    def forward(self, x):
      idn = self.identity_conv(x) if self.resize else x
      return F.relu(self.body(x) + idn)

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.features = nn.Sequential()
      self.features.add_module("init_block", ConvBlock(3, 16, 3, 1))
      cin = 16
      for s, w in enumerate((16, 32, 64)):
        stage = nn.Sequential()
        for u in range(3):
          stage.add_module(f"unit{u + 1}", Unit(cin, w, 2 if (s and not u) else 1))
          cin = w
        self.features.add_module(f"stage{s + 1}", stage)
      self.output = nn.Linear(64, nc)

    def forward(self, x):
      return self.output(self.features(x).mean((2, 3)))
  return Net()


def _randomize_bn(net, seed=0):
  torch = _torch()
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        n = m.num_features
        m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
        m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        m.weight.copy_(0.5 + torch.rand(n, generator=g))
        m.bias.copy_(0.1 * torch.randn(n, generator=g))
  return net.eval()


def _compare(net, jmodel, hw, batch=2, naming="auto", atol=1e-4):
  torch = _torch()
  torch.manual_seed(0)
  x = torch.randn(batch, 3, hw, hw)
  with torch.no_grad():
    want = net(x).numpy()
  models.load_torch_checkpoint(jmodel, net.state_dict(), naming=naming)
  got = np.asarray(jmodel(jnp.asarray(x.permute(0, 2, 3, 1).numpy()), train=False))
  scale = max(1.0, float(np.abs(want).max()))
  np.testing.assert_allclose(got, want, rtol=0, atol=atol * scale)
  return want


def test_vgg16_logits_match_torch():
  torch = _torch()
  torch.manual_seed(0)
  # width 1/4 (the same layout and names as torchvision's at width 1)
  widths = models.default_widths("vgg16", width_multiplier=0.25)
  net = _randomize_bn(_tv_vgg16(widths=widths))
  m = models.build("vgg16", 10, rngs=nnx.Rngs(0), widths=widths)
  _compare(net, m, 32)
  assert torch_import.detect_naming(m, net.state_dict()) == "clr_rnf"


def test_resnet56_option_a_logits_match_torch():
  torch = _torch()
  torch.manual_seed(1)
  net = _randomize_bn(_clr_resnet_cifar(56))
  m = models.build("resnet56", 10, rngs=nnx.Rngs(0), shortcut="A")
  _compare(net, m, 32, naming="clr_rnf")


def test_resnet50_logits_match_torch():
  torch = _torch()
  torch.manual_seed(2)
  # width 1/4 at 64x64 (the same layout and names as torchvision's resnet50; layer4 at 2x2)
  net = _randomize_bn(_tv_resnet50(base=16))
  m = models.build("resnet50", 1000, rngs=nnx.Rngs(0), width_multiplier=0.25)
  _compare(net, m, 64, batch=1, naming="torchvision")


def test_pytorchcv_resnet20_option_b_logits_match():
  torch = _torch()
  torch.manual_seed(3)
  net = _randomize_bn(_pytorchcv_resnet20())
  m = models.build("resnet20", 10, rngs=nnx.Rngs(0), shortcut="B")
  _compare(net, m, 32)
  assert torch_import.detect_naming(m, net.state_dict()) == "pytorchcv"


def test_pruned_checkpoint_widths_inferred_and_loaded(tmp_path):
  torch = _torch()
  torch.manual_seed(4)
  inner = [3, 16, 9, 1, 32, 12, 64, 8, 40]
  net = _randomize_bn(_clr_resnet_cifar(20, inner=inner))
  path = tmp_path / "pruned.pth"
  torch.save({"state_dict": net.state_dict()}, path)
  widths = models.widths_from_state_dict("resnet20", str(path))
  assert widths == inner
  m = models.build("resnet20", 10, rngs=nnx.Rngs(0), widths=widths)
  cfg = ml_collections.ConfigDict({"init": {"checkpoint": "", "torch_checkpoint": str(path)}})
  models.maybe_load_pretrained(m, cfg)
  x = torch.randn(2, 3, 32, 32)
  with torch.no_grad():
    want = net(x).numpy()
  got = np.asarray(m(jnp.asarray(x.permute(0, 2, 3, 1).numpy()), train=False))
  np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()))


def test_strict_mode_names_bad_keys():
  torch = _torch()
  sd = _clr_resnet_cifar(20).state_dict()
  sd.pop("layer2.1.bn1.running_var")
  sd["layer9.0.conv1.weight"] = torch.zeros(1)
  sd["fc.weight"] = torch.zeros(11, 64)
  m = models.build("resnet20", 10, rngs=nnx.Rngs(0))
  with pytest.raises(models.CheckpointMismatchError) as e:
    models.load_torch_checkpoint(m, sd, naming="clr_rnf")
  msg = str(e.value)
  assert "missing (1): layer2.1.bn1.running_var" in msg
  assert "unexpected (1): layer9.0.conv1.weight" in msg
  assert "fc.weight: checkpoint (11, 64) vs model (10, 64)" in msg
  # Non-strict: loads what matches (conv1 equals the checkpoint afterwards).
  models.load_torch_checkpoint(m, sd, naming="clr_rnf", strict=False)
  np.testing.assert_array_equal(np.asarray(m.conv1.kernel.get_value()),
                                sd["conv1.weight"].permute(2, 3, 1, 0).numpy())
  with pytest.raises(ValueError, match="naming"):
    models.load_torch_checkpoint(m, sd, naming="pytorchcv-typo")
