"""Official LaConvNet RES checkpoint import (laconv.md §3.3, `laconvnet_seg`).

The official RES `Net` (models/laconvnet_seg/net.py) is the REC net's lang_encoder,
visual_encoder and multi_scale_manner (PAFPN) plus detection_neck (PAFPN_OnePath: a second
top-down path) and head (REShead: sconv = [aspp_decoder(128, 128, 1), UpsamplingBilinear2d(x8)]).
The trunk mirror is reused from tests/laconvnet_torch_mirror.py; the seg modules below keep the official
names and forward. A random-init tiny copy is saved as `train.py` does, imported into
`laconvnet_vl` (head='res') and both nets are run on the same input.
"""
import jax
import numpy as np
import pytest
from flax import nnx

from jaxvision.methods.laconv.model import LaConvVL
from jaxvision.models import laconvnet as L
from jaxvision.models.torch_import import CheckpointMismatchError, load_torch_checkpoint

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

import laconvnet_torch_mirror as R  # noqa: E402  (the REC torch mirror: trunk, PAFPN, language)


# ----------------------------------------------------------------------------- torch mirror
def darknet_conv(cin, cout, k, dilation=1):
  """layers/conv_layer.py darknet_conv: Conv (no bias) -> batch_norm -> LeakyReLU(0.1)."""
  s = nn.Sequential()
  s.add_module("conv", nn.Conv2d(cin, cout, k, 1, (dilation * (k - 1) + 1) // 2,
                                 dilation=dilation, bias=False))
  s.add_module("batch_norm", nn.BatchNorm2d(cout))
  s.add_module("leaky", nn.LeakyReLU(0.1))
  return s


class AsppDecoder(nn.Module):
  def __init__(self, planes, hidden, out):
    super().__init__()
    self.conv0 = darknet_conv(planes, hidden, 1)
    self.conv1 = darknet_conv(planes, hidden, 3, 6)
    self.conv2 = darknet_conv(planes, hidden, 3, 12)
    self.conv3 = darknet_conv(planes, hidden, 3, 18)
    self.conv4 = darknet_conv(planes, hidden, 1)
    self.pool = nn.AdaptiveAvgPool2d(1)
    self.out_proj = nn.Conv2d(hidden * 5, out, 1)

  def forward(self, x):
    _, _, h, w = x.shape
    b4 = self.conv4(self.pool(x)).repeat(1, 1, h, w)
    return self.out_proj(torch.cat([self.conv0(x), self.conv1(x), self.conv2(x), self.conv3(x),
                                    b4], 1))


class REShead(nn.Module):
  def __init__(self, c):
    super().__init__()
    # nn.UpsamplingBilinear2d(scale_factor=8) == Upsample(bilinear, align_corners=True).
    self.sconv = nn.Sequential(AsppDecoder(c, c, 1),
                               nn.Upsample(scale_factor=8, mode="bilinear", align_corners=True))

  def forward(self, x):
    return self.sconv(x)[:, 0]  # logits; the official inference is sigmoid > 0.5


class PAFPNOnePath(nn.Module):
  def __init__(self, ch, n):
    super().__init__()
    self.lateral_conv0 = R.BaseConv(ch[2], ch[1], 1)
    self.C3_p4 = R.CSPLayer(2 * ch[1], ch[1], n)
    self.reduce_conv1 = R.BaseConv(ch[1], ch[0], 1)
    self.C3_p3 = R.CSPLayer(2 * ch[0], ch[0], n)

  def forward(self, feats):
    x2, x1, x0 = feats
    up = lambda a: F.interpolate(a, scale_factor=2, mode="nearest")  # noqa: E731
    f_out0 = self.C3_p4(torch.cat([up(self.lateral_conv0(x0)), x1], 1))
    return self.C3_p3(torch.cat([up(self.reduce_conv1(f_out0)), x2], 1))


class SegNet(nn.Module):
  def __init__(self, vocab, embed, hidden, heads, dims, groups, packs, kernels, neck_n):
    super().__init__()
    self.lang_encoder = R.LSTM_SA(vocab, embed, hidden, heads)
    self.visual_encoder = R.VisualEncoder(hidden, dims, groups, packs, kernels)
    self.multi_scale_manner = R.PAFPN(dims[2:], neck_n)
    self.detection_neck = PAFPNOnePath(dims[2:], neck_n)
    self.head = REShead(dims[2])

  def forward(self, img, ix):
    feat, mask = self.lang_encoder(ix)
    x = self.multi_scale_manner(self.visual_encoder(img, feat, mask)[-3:])
    s8 = self.detection_neck(x)
    return s8, self.head(s8)


# ----------------------------------------------------------------------------- fixtures
pytestmark = pytest.mark.usefixtures("fast_compiles")  # compile-bound tiny programs
SIZES = dict(vocab_size=R.VOCAB, embed_dim=R.EMBED, text_dim=R.HIDDEN, lang_heads=R.HEADS,
             neck_depth=R.NECK_N, head="res")


def _torch_net():
  return SegNet(R.VOCAB, R.EMBED, R.HIDDEN, R.HEADS, R.DIMS, R.GROUPS, R.PACKS, R.KERNELS,
                R.NECK_N)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
  torch.manual_seed(0)
  net = _torch_net()
  R.randomize(net, torch.Generator().manual_seed(2))
  net.eval()
  path = R.save_official(net, tmp_path_factory.mktemp("laconv_res") / "seg_best.pth", lr=1e-4)
  # Shapes only (cheap): the strict load must then give every variable a concrete value.
  model = nnx.eval_shape(lambda: LaConvVL(rngs=nnx.Rngs(0), spec=R.tiny_spec(), **SIZES))
  load_torch_checkpoint(model, str(path))  # -> LaConvVL.load_torch_state_dict -> official loader
  return net, model, net.state_dict()


@pytest.fixture(scope="module")
def outputs(pair):
  net, model, _ = pair
  img, ids = R.sample_inputs()
  with torch.no_grad():
    t_s8, t_logits = net(torch.from_numpy(img).permute(0, 3, 1, 2), torch.from_numpy(ids).long())
  g, st = nnx.split(model)

  @jax.jit
  def run(st, img, ids):
    m = nnx.merge(g, st)
    t, mask = m.language(ids)
    p = m.visual.neck(m.visual.trunk(img, t, mask)[2:], False)
    return m.visual.head.td(p, False)[0], m.visual.head(p, False, img.shape[1:3])

  j_s8, j_logits = run(st, img, ids)
  return dict(t_s8=t_s8.permute(0, 2, 3, 1).numpy(), t_logits=t_logits.numpy(),
              j_s8=np.asarray(j_s8), j_logits=np.asarray(j_logits))


# ----------------------------------------------------------------------------- tests
def test_res_official_names_closed_form():
  n = L.official_torch_name
  assert n("head/td/lateral/conv") == "detection_neck.lateral_conv0.conv"
  assert n("visual/head/td/c3_p3/m/1/conv2/bn") == "detection_neck.C3_p3.m.1.conv2.bn"
  assert n("head/td/reduce/bn") == "detection_neck.reduce_conv1.bn"
  assert n("head/aspp/b0/conv") == "head.sconv.0.conv0.conv"
  assert n("head/aspp/bd/0/bn") == "head.sconv.0.conv1.batch_norm"
  assert n("head/aspp/bd/2/conv") == "head.sconv.0.conv3.conv"
  assert n("head/aspp/pool/bn") == "head.sconv.0.conv4.batch_norm"
  assert n("head/cls") == "head.sconv.0.out_proj"
  assert n("neck/td/c3_p3/conv1/conv") == "multi_scale_manner.C3_p3.conv1.conv"  # first path
  for bad in ("head/aspp/bd/3/conv", "head/aspp/b0/act", "head/td/bu_conv2/conv"):
    with pytest.raises(ValueError, match="no counterpart"):
      n(bad)


def test_res_load_sets_every_variable(pair):
  _, model, sd = pair
  leaves = jax.tree.leaves(nnx.state(model))
  assert leaves and all(isinstance(a, jax.Array) for a in leaves)  # none left abstract
  loaded = {k for k, *_ in L.official_torch_tensors(model)}
  assert loaded == {k for k in sd if not k.endswith("num_batches_tracked")
                    and not k.startswith(L.OFFICIAL_UNUSED)}
  np.testing.assert_array_equal(np.asarray(model.visual.head.aspp.bd[1].bn.var.get_value()),
                                sd["head.sconv.0.conv2.batch_norm.running_var"].numpy())
  np.testing.assert_array_equal(np.asarray(model.visual.head.cls.kernel.get_value())[0, 0, :, 0],
                                sd["head.sconv.0.out_proj.weight"].numpy()[0, :, 0, 0])


def test_res_logits_match_official(outputs):
  o = outputs
  c3 = R.DIMS[2]
  assert o["j_s8"].shape == o["t_s8"].shape == (2, 8, 8, c3)  # PAFPN_OnePath output (s8)
  np.testing.assert_allclose(o["j_s8"], o["t_s8"], atol=1e-4 * np.abs(o["t_s8"]).max(), rtol=0)
  t, j = o["t_logits"], o["j_logits"]
  assert j.shape == t.shape == (2, 64, 64)  # x8 bilinear back to the input size
  scale = np.abs(t).max()
  assert scale > 0.1 and np.abs(t[0] - t[1]).max() > 0.05 * scale  # input-dependent
  np.testing.assert_allclose(j, t, atol=2e-5 * scale, rtol=0)
  # Official inference mask (sigmoid > 0.5) agrees away from the threshold.
  sure = np.abs(t) > 1e-3 * scale
  np.testing.assert_array_equal((j > 0)[sure], (t > 0)[sure])


def test_res_strict_load_names_missing_unexpected_and_shape(pair):
  _, model, sd = pair
  bad = dict(sd)
  bad.pop("head.sconv.0.conv2.batch_norm.running_var")
  bad["detection_neck.bu_conv2.conv.weight"] = torch.zeros(1)  # PAFPN_OnePath has no bottom-up
  bad["head.sconv.0.out_proj.weight"] = torch.zeros(2, 5 * R.DIMS[2], 1, 1)
  before = np.asarray(model.visual.head.cls.kernel.get_value())
  with pytest.raises(CheckpointMismatchError) as e:
    L.load_official_checkpoint(model, bad)
  msg = str(e.value)
  assert "missing (1): head.sconv.0.conv2.batch_norm.running_var" in msg
  assert "unexpected (1): detection_neck.bu_conv2.conv.weight" in msg
  assert (f"head.sconv.0.out_proj.weight: checkpoint (2, {5 * R.DIMS[2]}, 1, 1) vs model "
          f"(1, {5 * R.DIMS[2]}, 1, 1)") in msg
  np.testing.assert_array_equal(np.asarray(model.visual.head.cls.kernel.get_value()), before)
  # A REC (laconvnet_det) file into the RES model: the heads are named on both sides.
  with torch.device("meta"):
    rec = R.Net(R.VOCAB, R.EMBED, R.HIDDEN, R.HEADS, R.DIMS, R.GROUPS, R.PACKS, R.KERNELS,
                R.NECK_N, R.REC_HID).state_dict()
  with pytest.raises(CheckpointMismatchError) as e:
    L.load_official_checkpoint(model, rec)
  msg = str(e.value)
  assert "missing (" in msg and "detection_neck.lateral_conv0.conv.weight" in msg
  assert "head.sconv.0.out_proj.bias" in msg and "unexpected (" in msg
  assert "head.stems.0.conv.weight" in msg and "'res' for laconvnet_seg files" in msg


def test_res_official_s_widths_key_set_matches_and_dilations_checked():
  """The RES net at the official S widths (stage dims 16..512, neck depth 3, ASPP 128; one block
  per stage to keep tracing cheap: the per-block keys are checked at S by the REC file):
  our tensor list == the official seg state_dict keys and shapes (meta tensors, nothing
  allocated); other ASPP rates (same shapes, different net) are refused."""
  dims, groups, packs, kernels = (16, 64, 128, 256, 512), (4, 4, 8, 8, 16), (8, 4, 2, 1, 1), \
      ((7,),) * 5
  with torch.device("meta"):
    net = SegNet(100, 300, 512, 8, dims, groups, packs, kernels, 3)
  want = {k: tuple(v.shape) for k, v in net.state_dict().items()
          if not k.endswith("num_batches_tracked") and not k.startswith("lang_encoder.")}
  assert want["head.sconv.0.conv1.batch_norm.weight"] == (128,)
  assert want["head.sconv.0.out_proj.weight"] == (1, 640, 1, 1)
  assert want["detection_neck.lateral_conv0.conv.weight"] == (256, 512, 1, 1)
  spec = L.TrunkSpec(dims=dims, groups=groups, packings=packs, kernels=kernels)
  model = nnx.eval_shape(lambda: L.LaConvNet(rngs=nnx.Rngs(0), spec=spec, head="res"))
  ours = {}
  for k, _, _, shape in L.official_torch_tensors(model):  # 1x1 convs are Linear layers here
    got = want.get(k)
    ours[k] = got if got is not None and got[:2] == shape and got[2:] == (1, 1) else shape
  assert ours == want
  other = nnx.eval_shape(lambda: L.LaConvNet(rngs=nnx.Rngs(0), variant="tiny", text_dim=8,
                                             head="res", aspp_dilations=(2, 4, 6)))
  with pytest.raises(ValueError, match=r"ASPP dilations \(6, 12, 18\).*\(2, 4, 6\)"):
    L.official_torch_tensors(other)
