"""DRN-D / DRNSeg: parity with a torch reference under fyu/drn names, the fixed x8 up layer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import models
from jaxvision.models import drn  # noqa: F401  (registers drn_d_105 / drn_seg)
from jaxvision.models import torch_import

torch = pytest.importorskip("torch")
nn = torch.nn

CH = (4, 6, 4, 4, 6, 6, 8, 8)      # layer5 changes width (projection), layer6 does not
LAYERS = (1, 1, 2, 1, 2, 1, 1, 1)  # repeated blocks at stride 1 and at dilation 2


# ------------------------------------------------ torch reference (fyu/drn module names)
class TBottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride=1, downsample=None, dilation=1):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                           bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.downsample = downsample

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = torch.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TBasicBlock(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride=1, downsample=None, dilation=1):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 3, stride, padding=dilation, dilation=dilation,
                           bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x):
    y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TDRN(nn.Module):
  def __init__(self, layers, channels, num_classes, pool_size, block=TBottleneck):
    super().__init__()
    self.block = block
    self.cin = channels[0]
    self.layer0 = nn.Sequential(nn.Conv2d(3, channels[0], 7, 1, 3, bias=False),
                                nn.BatchNorm2d(channels[0]), nn.ReLU())
    self.layer1 = self._convs(channels[0], layers[0])
    self.layer2 = self._convs(channels[1], layers[1], stride=2)
    self.layer3 = self._blocks(channels[2], layers[2], stride=2)
    self.layer4 = self._blocks(channels[3], layers[3], stride=2)
    self.layer5 = self._blocks(channels[4], layers[4], dilation=2)
    self.layer6 = self._blocks(channels[5], layers[5], dilation=4)
    self.layer7 = self._convs(channels[6], layers[6], dilation=2)
    self.layer8 = self._convs(channels[7], layers[7])
    self.out_dim = channels[7]
    self.avgpool = nn.AvgPool2d(pool_size)
    self.fc = nn.Conv2d(self.out_dim, num_classes, 1, bias=True)

  def _convs(self, c, n, stride=1, dilation=1):
    mods = []
    for i in range(n):
      mods += [nn.Conv2d(self.cin, c, 3, stride if i == 0 else 1, padding=dilation,
                         dilation=dilation, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
      self.cin = c
    return nn.Sequential(*mods)

  def _blocks(self, planes, n, stride=1, dilation=1):
    ds, e = None, self.block.expansion
    if stride != 1 or self.cin != planes * e:
      ds = nn.Sequential(nn.Conv2d(self.cin, planes * e, 1, stride, bias=False),
                         nn.BatchNorm2d(planes * e))
    mods = [self.block(self.cin, planes, stride, ds, dilation)]
    self.cin = planes * e
    mods += [self.block(self.cin, planes, dilation=dilation) for _ in range(1, n)]
    return nn.Sequential(*mods)

  def forward(self, x):
    for i in range(9):
      x = getattr(self, f"layer{i}")(x)
    return self.fc(self.avgpool(x)).flatten(1)


class TDRNSeg(nn.Module):
  def __init__(self, trunk, classes):
    super().__init__()
    self.base = nn.Sequential(*list(trunk.children())[:-2])
    self.seg = nn.Conv2d(trunk.out_dim, classes, 1, bias=True)
    self.up = nn.ConvTranspose2d(classes, classes, 16, stride=8, padding=4, groups=classes,
                                 bias=False)

  def forward(self, x):
    s = self.seg(self.base(x))
    return torch.log_softmax(self.up(s), dim=1), s


def _randomize(m, seed):
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for mod in m.modules():
      if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
        mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.4)
        if mod.bias is not None:
          mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
      elif isinstance(mod, nn.BatchNorm2d):
        n = mod.num_features
        mod.weight.copy_(1 + 0.2 * torch.randn(n, generator=g))
        mod.bias.copy_(0.1 * torch.randn(n, generator=g))
        mod.running_mean.copy_(0.1 * torch.randn(n, generator=g))
        mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
  return m.eval()


def _nchw(a):
  return np.transpose(np.asarray(a), (0, 3, 1, 2))


@pytest.fixture(scope="module")
def x_np():
  return np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)


def test_drn_classifier_matches_torch(x_np):
  tm = _randomize(TDRN(LAYERS, CH, 5, pool_size=4), 1)
  with torch.no_grad():
    ref = tm(torch.from_numpy(_nchw(x_np))).numpy()
  full = nnx.eval_shape(lambda: models.build("drn_d_105", 5, rngs=nnx.Rngs(0), widths=list(CH)))
  assert [len(lv) for _, lv in full.levels()] == [1, 1, 1, 3, 4, 23, 3, 1, 1]  # DRN-D-105
  m = drn.DRN(5, rngs=nnx.Rngs(0), widths=CH, layers=LAYERS, pool_size=4)
  models.load_torch_checkpoint(m, tm.state_dict())  # strict: every key used, none missing
  got = np.asarray(jax.jit(lambda x: m(x))(x_np))
  assert got.shape == (2, 5)
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_drn_basic_blocks_match_torch(x_np):
  """DRN-D-22-style basic blocks (`block='basic'`), layer6/7 present, widths change at 5."""
  ch, layers = (4, 4, 4, 6, 8, 8, 6, 6), (1, 1, 1, 2, 1, 2, 1, 1)
  tm = _randomize(TDRN(layers, ch, 3, pool_size=4, block=TBasicBlock), 3)
  with torch.no_grad():
    ref = tm(torch.from_numpy(_nchw(x_np))).numpy()
  m = drn.DRN(3, rngs=nnx.Rngs(0), widths=ch, layers=layers, block="basic", pool_size=4)
  models.load_torch_checkpoint(m, tm.state_dict())
  got = np.asarray(jax.jit(lambda x: m(x))(x_np))
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.fixture(scope="module")
def seg_pair():
  tm = _randomize(TDRNSeg(TDRN(LAYERS, CH, 7, pool_size=4), 3), 2)  # random (asymmetric) up
  m = models.build("drn_seg", 3, rngs=nnx.Rngs(0), widths=list(CH), layers=LAYERS)
  return tm, m


def test_drn_seg_torch_names_and_parity(seg_pair, x_np, tmp_path):
  tm, m = seg_pair
  sd = tm.state_dict()
  assert "base.5.1.conv2.weight" in sd and "up.weight" in sd  # the official layout
  torch.save({k: v for k, v in sd.items()}, tmp_path / "drn_seg.pth")
  models.load_torch_checkpoint(m, str(tmp_path / "drn_seg.pth"))
  np.testing.assert_array_equal(np.asarray(m.up.kernel.get_value())[..., 0, 1],
                                sd["up.weight"][1, 0].numpy())
  with torch.no_grad():
    ref_lsm, ref_seg = (t.numpy() for t in tm(torch.from_numpy(_nchw(x_np))))
  seg, up = jax.jit(lambda x: (m.seg_logits(x), m(x)))(x_np)
  assert seg.shape == (2, 4, 4, 3) and up.shape == (2, 32, 32, 3)
  np.testing.assert_allclose(_nchw(seg), ref_seg, rtol=1e-4, atol=1e-4 * np.abs(ref_seg).max())
  lsm = _nchw(jax.nn.log_softmax(up, axis=-1))
  np.testing.assert_allclose(lsm, ref_lsm, rtol=1e-4, atol=1e-4 * np.abs(ref_lsm).max())


def test_torch_naming_and_fixed_up_kernel(seg_pair):
  _, m = seg_pair
  rule = m.torch_naming_rules()["drn_seg"]
  assert rule("base/layer0/0/conv") == "base.0.0" and rule("base/layer0/0/bn") == "base.0.1"
  assert rule("base/layer7/0/bn") == "base.7.1"
  assert rule("base/layer3/0/downsample_conv") == "base.3.0.downsample.0"
  assert rule("base/layer6/0/conv2") == "base.6.0.conv2"
  assert rule("seg") == "seg" and rule("up") == "up"
  # the up kernel is a FixedKernel: not a trainable Param
  params = {"/".join(map(str, k)) for k, _ in nnx.to_flat_state(nnx.state(m, nnx.Param))}
  assert "seg/kernel" in params and not any(p.startswith("up/") for p in params)
  with pytest.raises(torch_import.CheckpointMismatchError, match="up.weight"):
    fresh = models.build("drn_seg", 3, rngs=nnx.Rngs(0), widths=list(CH), layers=LAYERS)
    sd = {k: v for k, v in seg_pair[0].state_dict().items() if k != "up.weight"}
    models.load_torch_checkpoint(fresh, sd)


def test_up_layer_is_bilinear_x8_by_hand():
  k = drn.bilinear_up_kernel(16)
  t = np.array([(16 - abs(2 * i - 15)) / 16 for i in range(16)])  # 1/16, 3/16, ..., 15/16, ...
  np.testing.assert_allclose(k, np.outer(t, t), atol=1e-7)
  up = drn.BilinearUp(1, 8, rngs=nnx.Rngs(0))
  ones = up(jnp.ones((1, 3, 3, 1)))[0, :, :, 0]
  assert ones.shape == (24, 24)
  edge = np.array([9, 11, 13, 15]) / 16  # outer 4 rows/cols see one input (zero padding)
  prof = np.concatenate([edge, np.ones(16), edge[::-1]])
  np.testing.assert_allclose(np.asarray(ones), np.outer(prof, prof), atol=1e-6)
  # interior = bilinear interpolation (half-pixel centres) of an arbitrary map
  x = jax.random.normal(jax.random.key(0), (1, 4, 5, 2))
  y = drn.BilinearUp(2, 8, rngs=nnx.Rngs(0))(x)
  ref = jax.image.resize(x, (1, 32, 40, 2), "bilinear")
  np.testing.assert_allclose(np.asarray(y)[:, 4:-4, 4:-4], np.asarray(ref)[:, 4:-4, 4:-4],
                             atol=1e-5)
  # by hand, on rows that are constant: output column 4 + j lies (j + .5) / 8 past input 0
  v = jnp.broadcast_to(jnp.array([2.0, -6.0, 1.0])[None, None, :, None], (1, 3, 3, 1))
  row = np.asarray(up(v))[0, 12, :, 0]
  for j in range(8):
    np.testing.assert_allclose(row[4 + j], 2.0 * (1 - (j + .5) / 8) - 6.0 * (j + .5) / 8,
                               atol=1e-5)


def test_bad_inputs():
  with pytest.raises(ValueError, match="8 level channels"):
    drn.DRNSeg(3, rngs=nnx.Rngs(0), widths=[4] * 7)
  with pytest.raises(ValueError, match="block must be"):
    drn.DRN(3, rngs=nnx.Rngs(0), block="wide")
  m = drn.DRNSeg(3, rngs=nnx.Rngs(0), width_multiplier=0.125, layers=(1,) * 8)
  with pytest.raises(ValueError, match="multiples of 8"):
    m(jnp.zeros((1, 20, 24, 3)))
  assert m.widths == models.default_widths("drn_seg", width_multiplier=0.125) == [2, 4, 8, 16,
                                                                                 32, 64, 64, 64]
