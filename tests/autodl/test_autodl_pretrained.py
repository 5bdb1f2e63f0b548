"""Pretrained import from user-supplied torchvision files: resnet18 (image) and mc3_18
(video) state_dicts of torch nets built here with torchvision's module names; the JAX
logits match within 1e-4; wrong architectures are refused naming the option.

The JAX nets are built abstractly (nnx.eval_shape: eager random init of full-width nets
costs seconds on CPU); the strict load then sets every variable, so the forward pass
runs on loaded values only."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from jaxvision import models  # noqa: E402
from jaxvision.autodl.solution import nets, pretrained  # noqa: E402


def _abstract(make):
  return nnx.eval_shape(make)


def _randomize_bn(net, seed):
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
        n = m.num_features
        m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
        m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        m.weight.copy_(0.5 + torch.rand(n, generator=g))
        m.bias.copy_(0.1 * torch.randn(n, generator=g))
  return net.eval()


class _Basic(nn.Module):
  """torchvision BasicBlock (2-D) or VideoResNet BasicBlock (3-D) key layout."""

  def __init__(self, cin, cout, stride, three_d=False, kt=3):
    super().__init__()
    if three_d:
      k, p, s = (kt, 3, 3), (kt // 2, 1, 1), (1, stride, stride)
      self.conv1 = nn.Sequential(nn.Conv3d(cin, cout, k, s, p, bias=False), nn.BatchNorm3d(cout),
                                 nn.ReLU())
      self.conv2 = nn.Sequential(nn.Conv3d(cout, cout, k, 1, p, bias=False), nn.BatchNorm3d(cout))
      self.downsample = (nn.Sequential(nn.Conv3d(cin, cout, 1, s, bias=False),
                                       nn.BatchNorm3d(cout))
                         if stride != 1 or cin != cout else None)
    else:
      self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(cout)
      self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(cout)
      self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else None)
    self.three_d = three_d

  def forward(self, x):
    if self.three_d:
      y = self.conv2(self.conv1(x))
    else:
      y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class _TorchResNet18(nn.Module):
  def __init__(self, nc):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    cin = 64
    for s, w in enumerate((64, 128, 256, 512)):
      self.add_module(f"layer{s + 1}", nn.Sequential(_Basic(cin, w, 2 if s else 1),
                                                     _Basic(w, w, 1)))
      cin = w
    self.fc = nn.Linear(512, nc)

  def forward(self, x):
    x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
    for s in range(4):
      x = getattr(self, f"layer{s + 1}")(x)
    return self.fc(x.mean((2, 3)))


class _TorchMC3(nn.Module):
  def __init__(self, nc):
    super().__init__()
    self.stem = nn.Sequential(nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                              nn.BatchNorm3d(64), nn.ReLU())
    cin = 64
    for s, w in enumerate((64, 128, 256, 512)):
      kt = 3 if s == 0 else 1  # layer1: Conv3DSimple; layers 2-4: Conv3DNoTemporal
      self.add_module(f"layer{s + 1}", nn.Sequential(_Basic(cin, w, 2 if s else 1, True, kt),
                                                     _Basic(w, w, 1, True, kt)))
      cin = w
    self.fc = nn.Linear(512, nc)

  def forward(self, x):
    x = self.stem(x)
    for s in range(4):
      x = getattr(self, f"layer{s + 1}")(x)
    return self.fc(x.mean((2, 3, 4)))


def test_resnet18_logits_match_torch_and_head_rules(tmp_path):
  torch.manual_seed(0)
  net = _randomize_bn(_TorchResNet18(5), 0)
  path = str(tmp_path / "resnet18.pth")
  torch.save(net.state_dict(), path)
  x = torch.randn(2, 3, 32, 32)
  with torch.no_grad():
    want = net(x).numpy()
  m = _abstract(lambda: models.build("resnet18", 5, rngs=nnx.Rngs(0)))
  assert pretrained.load_resnet18(m, path) == "head loaded"
  got = np.asarray(m(jnp.asarray(x.permute(0, 2, 3, 1).numpy()), train=False))
  assert not any(isinstance(v, jax.ShapeDtypeStruct) for v in jax.tree.leaves(nnx.state(m)))
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * max(1.0, np.abs(want).max()))
  # a 1000-class (ImageNet) checkpoint into a 3-class task: trunk loaded, head kept
  big = _randomize_bn(_TorchResNet18(1000), 1).state_dict()
  m3 = _abstract(lambda: models.build("resnet18", 3, rngs=nnx.Rngs(1)))
  m3.fc = nnx.Linear(512, 3, rngs=nnx.Rngs(1))  # the head is the only random part kept
  head = np.asarray(m3.fc.kernel.get_value()).copy()
  assert "head random init" in pretrained.load_resnet18(m3, big)
  np.testing.assert_array_equal(np.asarray(m3.fc.kernel.get_value()), head)
  np.testing.assert_allclose(np.asarray(m3.conv1.kernel.get_value()),
                             big["conv1.weight"].permute(2, 3, 1, 0).numpy())
  small = _abstract(lambda: models.build("resnet18", 3, rngs=nnx.Rngs(0), width_multiplier=0.25))
  with pytest.raises(ValueError, match=r"ResNet-18 of widths \[64, .*set "
                     r"solution.image.width_multiplier=1$"):
    pretrained.load_resnet18(small, big)


def test_mc3_18_logits_match_torch_and_refusal():
  torch.manual_seed(1)
  net = _randomize_bn(_TorchMC3(4), 2)
  x = torch.randn(1, 3, 4, 16, 16)  # [B, C, T, H, W]
  with torch.no_grad():
    want = net(x).numpy()
  m = _abstract(lambda: nets.VideoNet(4, rngs=nnx.Rngs(0), fc_bias=True))
  assert pretrained.load_mc3_18(m, net.state_dict()) == "head loaded"
  got = np.asarray(m(jnp.asarray(x.permute(0, 2, 3, 4, 1).numpy()), train=False))
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * max(1.0, np.abs(want).max()))
  demo_net = _abstract(lambda: nets.VideoNet(4, rngs=nnx.Rngs(0), width_multiplier=0.25,
                                             blocks=(1, 1, 1, 1)))
  with pytest.raises(ValueError, match=r"set solution.video.width_multiplier=1 and "
                     r"solution.video.blocks=\[2,2,2,2\]$"):
    pretrained.load_mc3_18(demo_net, net.state_dict())


def test_options_check_and_weights_statement(tmp_path):
  from jaxvision.autodl import config
  from jaxvision.autodl.solution import meta_learner
  assert meta_learner.weights(meta_learner.options())["resnet18"] == "random init"
  path = tmp_path / "r18.pth"
  torch.save(_TorchResNet18(3).state_dict(), str(path))
  with pytest.raises(ValueError, match="set solution.image.width_multiplier=1$"):
    meta_learner.options({"image": {"pretrained": str(path)}})
  mc3 = tmp_path / "mc3.pth"
  torch.save(_TorchMC3(3).state_dict(), str(mc3))
  with pytest.raises(ValueError, match="video.blocks=\\[2,2,2,2\\]$"):
    meta_learner.options({"video": {"pretrained": str(mc3), "width_multiplier": 1.0}})
  with pytest.raises(ValueError, match="not a torchvision mc3_18-layout state_dict"):
    meta_learner.options({"video": {"pretrained": str(path)}})
  with pytest.raises(ValueError, match="image.pretrained: no such file"):
    meta_learner.options({"image": {"pretrained": str(tmp_path / "nope.pth")}})
  c = config.get_config("smoke")
  c.solution.image.backbones = ["resnet18", "autodl_resnet9"]
  c.solution.image.width_multiplier = 1.0
  c.solution.image.pretrained = str(path)
  w = config.weights(config.check(c))
  assert w["resnet18"] == f"weights file {path}" and w["mc3_18"] == "random init"
  assert w["thin_resnet34"] == "random init"
