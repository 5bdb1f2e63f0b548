"""EfficientNet-B0...B4: parameter counts, compound scaling, drop-connect, and logits parity
with plain-PyTorch mirrors of torchvision's and timm's (tf_) EfficientNet at small width."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import models
from jaxvision.models import efficientnet as eff
from jaxvision.models.torch_import import CheckpointMismatchError

# torchvision.models.efficientnet_b{0..4}(num_classes=1000) parameter counts (torchvision docs).
TV_PARAMS = {"b0": 5_288_548, "b4": 19_341_616}
# torchvision's stage widths / repeats (features[1..7]) for B1..B3.
TV_STAGES = {"b1": ([32, 16, 24, 40, 80, 112, 192, 320, 1280], [2, 3, 3, 4, 4, 5, 2]),
             "b2": ([32, 16, 24, 48, 88, 120, 208, 352, 1408], [2, 3, 3, 4, 4, 5, 2]),
             "b3": ([40, 24, 32, 48, 96, 136, 232, 384, 1536], [2, 3, 3, 5, 5, 6, 2]),
             "b4": ([48, 24, 32, 56, 112, 160, 272, 448, 1792], [2, 4, 4, 6, 6, 8, 2])}


def _nparams(m):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(m, nnx.Param)))


@pytest.mark.parametrize("name", ["efficientnet_b0", "tf_efficientnet_b0", "efficientnet_b4"])
def test_param_count_matches_torchvision(name):
  m = nnx.eval_shape(lambda: models.build(name, 1000, rngs=nnx.Rngs(0)))
  assert _nparams(m) == TV_PARAMS[name[-2:]]  # padding / BN eps change no shape


@pytest.mark.parametrize("v", ["b1", "b2", "b3", "b4"])
def test_compound_scaling(v):
  widths, repeats = TV_STAGES[v]
  assert models.default_widths(f"efficientnet_{v}") == widths
  assert eff.stage_repeats(v) == repeats
  assert models.input_shape(f"efficientnet_{v}") == (eff.VARIANTS[v][2],) * 2 + (3,)
  assert eff.make_divisible(1.1 * 40) == 48 and eff.make_divisible(1.4 * 40) == 56


def test_bad_arguments():
  with pytest.raises(ValueError, match="variant"):
    eff.EfficientNet(10, rngs=nnx.Rngs(0), variant="b9")
  with pytest.raises(ValueError, match="style"):
    eff.EfficientNet(10, rngs=nnx.Rngs(0), style="keras", width_multiplier=0.1)
  with pytest.raises(ValueError, match="9 entries"):
    models.build("efficientnet_b0", 10, rngs=nnx.Rngs(0), widths=[8] * 8)
  with pytest.raises(ValueError, match="drop_connect"):
    models.build("efficientnet_b0", 10, rngs=nnx.Rngs(0), drop_connect=1.0)


def test_drop_connect_schedule_and_train_randomness():
  m = nnx.eval_shape(lambda: models.build("efficientnet_b0", 3, rngs=nnx.Rngs(0),
                                           drop_connect=0.5))
  blocks = [b for st in m.stages for b in st]
  total = len(blocks)
  for i, b in enumerate(blocks):  # rate i / N * 0.5 on residual blocks only
    assert b.drop_path.rate == pytest.approx(0.5 * i / total if b.residual else 0.0)
  assert any(b.residual for b in blocks)
  # One residual block, eager: per-sample drop in train mode, identity-only in eval mode.
  blk = eff.MBConv(8, 8, 1, 3, 1, 0.5, same=False, bn_eps=1e-5, bn_momentum=0.9,
                   rngs=nnx.Rngs(0), dtype=jnp.float32)
  x = jax.random.normal(jax.random.key(0), (64, 4, 4, 8))
  np.testing.assert_array_equal(blk(x, train=False), blk(x, train=False))
  y = blk(x, train=True)
  dropped = np.all(np.asarray(y) == np.asarray(x), axis=(1, 2, 3))  # branch zeroed -> y == x
  assert 10 < dropped.sum() < 54  # about half of 64 samples, whole samples at a time
  assert not np.array_equal(y, blk(x, train=True))  # the rng stream advances


# ------------------------------------------------------------------ PyTorch mirrors
def _torch():
  return pytest.importorskip("torch")


def _div8(v):
  n = max(8, int(v + 4) // 8 * 8)
  return n + 8 if n < 0.9 * v else n


def _config(wc, dc):
  base = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
  return [(e, k, s, _div8(i * wc), _div8(o * wc), int(math.ceil(n * dc)))
          for e, k, s, i, o, n in base]


def _tv_efficientnet(wc, dc, nc):
  """torchvision.models.EfficientNet layout (features / classifier, MBConv.block.*)."""
  nn = _torch().nn

  def cna(cin, cout, k, s=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*(layers + [nn.SiLU()] if act else layers))

  class SE(nn.Module):
    def __init__(self, c, sq):
      super().__init__()
      self.fc1, self.fc2 = nn.Conv2d(c, sq, 1), nn.Conv2d(sq, c, 1)

    def forward(self, x):
      s = x.mean((2, 3), keepdim=True)
      return x * self.fc2(nn.functional.silu(self.fc1(s))).sigmoid()

  class MBConv(nn.Module):
    def __init__(self, e, k, s, cin, cout):
      super().__init__()
      mid, layers = cin * e, []
      if mid != cin:
        layers.append(cna(cin, mid, 1))
      layers += [cna(mid, mid, k, s, groups=mid), SE(mid, max(1, cin // 4)),
                 cna(mid, cout, 1, act=False)]
      self.block = nn.Sequential(*layers)
      self.res = s == 1 and cin == cout

    def forward(self, x):
      y = self.block(x)
      return y + x if self.res else y

  cfg = _config(wc, dc)
  feats = [cna(3, cfg[0][3], 3, 2)]
  for e, k, s, cin, cout, n in cfg:
    feats.append(nn.Sequential(*[MBConv(e, k, s if b == 0 else 1, cin if b == 0 else cout, cout)
                                 for b in range(n)]))
  feats.append(cna(cfg[-1][4], 4 * cfg[-1][4], 1))

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.features = nn.Sequential(*feats)
      self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * cfg[-1][4], nc))

    def forward(self, x):
      return self.classifier(self.features(x).mean((2, 3)))
  return Net()


def _timm_tf_efficientnet(wc, dc, nc):
  """timm tf_efficientnet layout (conv_stem, bn1, blocks.s.b.*, conv_head, bn2, classifier)
  with TF 'same' padding (pad after more than before) and BN eps 1e-3."""
  torch = _torch()
  nn, F = torch.nn, torch.nn.functional

  class Conv2dSame(nn.Conv2d):
    def forward(self, x):
      ih, iw = x.shape[-2:]
      k, s = self.kernel_size[0], self.stride[0]
      ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
      pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
      x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
      return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)

  conv = lambda ci, co, k, s=1, g=1: Conv2dSame(ci, co, k, s, groups=g, bias=False)
  bn = lambda c: nn.BatchNorm2d(c, eps=1e-3)

  class SE(nn.Module):
    def __init__(self, c, sq):
      super().__init__()
      self.conv_reduce, self.conv_expand = nn.Conv2d(c, sq, 1), nn.Conv2d(sq, c, 1)

    def forward(self, x):
      s = x.mean((2, 3), keepdim=True)
      return x * self.conv_expand(F.silu(self.conv_reduce(s))).sigmoid()

  class DS(nn.Module):
    def __init__(self, k, s, cin, cout):
      super().__init__()
      self.conv_dw, self.bn1 = conv(cin, cin, k, s, cin), bn(cin)
      self.se = SE(cin, max(1, cin // 4))
      self.conv_pw, self.bn2 = conv(cin, cout, 1), bn(cout)
      self.res = s == 1 and cin == cout

    def forward(self, x):
      y = self.bn2(self.conv_pw(self.se(F.silu(self.bn1(self.conv_dw(x))))))
      return y + x if self.res else y

  class IR(nn.Module):
    def __init__(self, e, k, s, cin, cout):
      super().__init__()
      mid = cin * e
      self.conv_pw, self.bn1 = conv(cin, mid, 1), bn(mid)
      self.conv_dw, self.bn2 = conv(mid, mid, k, s, mid), bn(mid)
      self.se = SE(mid, max(1, cin // 4))
      self.conv_pwl, self.bn3 = conv(mid, cout, 1), bn(cout)
      self.res = s == 1 and cin == cout

    def forward(self, x):
      y = F.silu(self.bn1(self.conv_pw(x)))
      y = self.bn3(self.conv_pwl(self.se(F.silu(self.bn2(self.conv_dw(y))))))
      return y + x if self.res else y

  cfg = _config(wc, dc)

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv_stem, self.bn1 = conv(3, cfg[0][3], 3, 2), bn(cfg[0][3])
      stages = []
      for e, k, s, cin, cout, n in cfg:
        blocks = []
        for b in range(n):
          ci, st = (cin, s) if b == 0 else (cout, 1)
          blocks.append(DS(k, st, ci, cout) if e == 1 else IR(e, k, st, ci, cout))
        stages.append(nn.Sequential(*blocks))
      self.blocks = nn.Sequential(*stages)
      head = 4 * cfg[-1][4]
      self.conv_head, self.bn2 = conv(cfg[-1][4], head, 1), bn(head)
      self.classifier = nn.Linear(head, nc)

    def forward(self, x):
      x = self.blocks(F.silu(self.bn1(self.conv_stem(x))))
      return self.classifier(F.silu(self.bn2(self.conv_head(x))).mean((2, 3)))
  return Net()


def _randomize(net, seed):
  """Seeded default init, random biases and BN affine, BN statistics set from one train-mode
  pass over random data (so activations keep their scale through the depth), eval mode."""
  torch = _torch()
  torch.manual_seed(seed)
  with torch.no_grad():
    for mod in net.modules():
      if isinstance(mod, torch.nn.BatchNorm2d):
        mod.weight.uniform_(0.5, 1.5)
        mod.bias.uniform_(-0.2, 0.2)
        mod.reset_running_stats()
        mod.momentum = None  # cumulative average: one pass sets the batch statistics
      elif isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)) and mod.bias is not None:
        mod.bias.uniform_(-0.2, 0.2)
    net.train()(torch.randn(8, 3, 64, 64))
  return net.eval()


WC, DC = 0.25, 0.5  # tiny: widths ~1/4, repeats [1, 1, 1, 2, 2, 2, 1]


@pytest.fixture(scope="module")
def x_nchw():
  return np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)


_FORWARDS = {}


def _jax_logits(m, x_nchw):
  """Eval logits, compiled once per model structure (models built alike share the program;
  keyed by the graphdef's repr, as some graphdefs are not hashable)."""
  g, st = nnx.split(m)
  if repr(g) not in _FORWARDS:
    _FORWARDS[repr(g)] = jax.jit(lambda st, x: nnx.merge(g, st)(x, train=False))
  return np.asarray(_FORWARDS[repr(g)](st, jnp.asarray(np.transpose(x_nchw, (0, 2, 3, 1)))))


def _torch_logits(net, x_nchw):
  torch = _torch()
  with torch.no_grad():
    return net(torch.from_numpy(x_nchw)).numpy()


@pytest.fixture(scope="module")
def tf_pair():
  net = _randomize(_timm_tf_efficientnet(WC, DC, 5), 1)
  m = models.build("tf_efficientnet_b0", 5, rngs=nnx.Rngs(0), width_multiplier=WC,
                   depth_multiplier=DC)
  return net, m


def test_import_torchvision_logits_parity(x_nchw):
  # 5 classes as the torch-style model of the timm test below: one compiled forward for both
  net = _randomize(_tv_efficientnet(WC, DC, 5), 0)
  m = models.build("efficientnet_b0", 5, rngs=nnx.Rngs(0), width_multiplier=WC,
                   depth_multiplier=DC)
  assert m.repeats == [1, 1, 1, 2, 2, 2, 1]
  eff.load_torch_checkpoint(m, net.state_dict(), naming="auto")
  np.testing.assert_allclose(_jax_logits(m, x_nchw), _torch_logits(net, x_nchw), atol=1e-4,
                             rtol=1e-4)


def test_import_timm_tf_logits_parity(tf_pair, x_nchw):
  net, m = tf_pair
  eff.load_torch_checkpoint(m, net.state_dict())  # auto-detects timm naming
  want = _torch_logits(net, x_nchw)
  assert np.abs(want[0] - want[1]).max() > 0.05  # the logits depend on the input
  np.testing.assert_allclose(_jax_logits(m, x_nchw), want, atol=1e-4, rtol=1e-4)
  # The same model in torch style (symmetric padding, eps 1e-5) does not match: padding matters.
  m2 = models.build("efficientnet_b0", 5, rngs=nnx.Rngs(0), width_multiplier=WC,
                    depth_multiplier=DC)
  eff.load_torch_checkpoint(m2, net.state_dict())
  assert np.abs(_jax_logits(m2, x_nchw) - want).max() > 1e-2


def _to_lukemelas(sd, repeats):
  """timm tf_ keys -> efficientnet_pytorch keys (flat `_blocks.k` numbering)."""
  top = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1",
         "classifier": "_fc"}
  ds = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "se.conv_reduce": "_se_reduce",
        "se.conv_expand": "_se_expand", "conv_pw": "_project_conv", "bn2": "_bn2"}
  ir = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
        "se.conv_reduce": "_se_reduce", "se.conv_expand": "_se_expand",
        "conv_pwl": "_project_conv", "bn3": "_bn2"}
  out = {}
  for k, v in sd.items():
    mod, leaf = k.rsplit(".", 1)
    if mod.startswith("blocks."):
      _, s, b, layer = mod.split(".", 3)
      s, b = int(s), int(b)
      mod = f"_blocks.{sum(repeats[:s]) + b}.{(ds if s == 0 else ir)[layer]}"
    else:
      mod = top[mod]
    out[f"{mod}.{leaf}"] = v
  return out


def test_import_efficientnet_pytorch_names_and_prefix(tf_pair, x_nchw):
  net, _ = tf_pair
  sd = _to_lukemelas(net.state_dict(), eff.stage_repeats("b0", DC))
  wrapped = {f"encoder_q.encoder.{k}": v for k, v in sd.items()}
  wrapped["encoder_q.fc.weight"] = np.zeros((2, 4))  # other parts of a larger checkpoint
  m = models.build("tf_efficientnet_b0", 5, rngs=nnx.Rngs(3), width_multiplier=WC,
                   depth_multiplier=DC)
  eff.load_torch_checkpoint(m, wrapped, naming="efficientnet_pytorch", prefix="encoder_q.encoder.")
  np.testing.assert_allclose(_jax_logits(m, x_nchw), _torch_logits(net, x_nchw), atol=1e-4,
                             rtol=1e-4)


def test_import_strict_errors(tf_pair):
  net, m = tf_pair
  sd = dict(net.state_dict())
  sd.pop("blocks.3.1.conv_pwl.weight")
  sd["extra.weight"] = sd["classifier.bias"]
  with pytest.raises(CheckpointMismatchError, match=r"missing \(1\): blocks.3.1.conv_pwl.weight"):
    eff.load_torch_checkpoint(m, sd, naming="timm")
  with pytest.raises(CheckpointMismatchError, match="unexpected"):
    eff.load_torch_checkpoint(m, sd, naming="timm")
  wrong = models.build("tf_efficientnet_b0", 9, rngs=nnx.Rngs(0), width_multiplier=WC,
                       depth_multiplier=DC)
  with pytest.raises(CheckpointMismatchError, match="classifier.weight: checkpoint"):
    eff.load_torch_checkpoint(wrong, net.state_dict())
  with pytest.raises(ValueError, match="naming 'pytorchcv'"):
    eff.load_torch_checkpoint(m, net.state_dict(), naming="pytorchcv")
  with pytest.raises(CheckpointMismatchError, match="prefix"):
    eff.load_torch_checkpoint(m, net.state_dict(), prefix="encoder.")
