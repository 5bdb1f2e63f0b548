"""LFPNet (Liu et al., ACM MM 2021): long-range feature propagating matting network.

Spec: shared/papers/lfpnet.md §2-3 (architecture of the official QLYoo/LFPNet code), batched.

    model = LFPNet(rngs=nnx.Rngs(0), width_multiplier=1 / 8)
    out = model(x, x_ctx, raw)        # x: [B, S, S, 12], x_ctx: [B, 2S, 2S, 12], raw: [B, S, S, 3]
    alpha, fg, bg = out[..., :1], out[..., 1:4], out[..., 4:7]      # all in [0, 1]

`x` / `x_ctx` are the 12-channel encodings of `jaxvision.methods.lfpnet.encoding` (normalised
RGB, trimap one-hot bg/unknown/fg, 6 Gaussian distance maps); `raw` is RGB in [0, 1]. S must be a
multiple of 16 (32 recommended). The context patch has the same centre and twice the side.

Propagating module (context path): bicubic x0.5 (align_corners) -> conv5x5/2 -> GN -> LReLU (`x_`)
-> WS+GN ResNet-50 (output stride 8) -> gate (SEB, broadcast learned tensor) -> pyramid pooling
(rppm) -> ASPP -> decoder to e3 (2S/8) and e5 (2S/4). CSPP = the pooling over the whole context
grid followed by the centre crop rows/cols [h/4, h/4 + h/2) of e5 -> c4 (S/4) and e3 -> c8 (S/8).
Matting module (inner path): stem -> fuse c4 -> layer1, layer2 -> fuse c8 -> layer3, layer4
(dilated) -> PPM (bins 1,2,3,6,1,2) -> GRes decoder -> 7-channel head -> FBA fusion.
`share_backbone=True` (default, as the released checkpoint) runs the same layer1-4 parameters in
both paths; False gives each path its own copy. In both cases every 3x3 conv of layer3 / layer4
has dilation 2 / 4 (the official shared model's behaviour, first blocks included).
[RECON] `context_head`: a context-alpha head on e5 (spec §2.3.8), used only for training
(`return_context=True`); the released checkpoint has no weights for it.

Widths format: 16 ints, in order (defaults x width_multiplier):
  [ctx_stem 16, res_base 64, rppm 512, aspp 256, ctx_dec 256, ctx_e3 128, ctx_e5 64, mat_stem 32,
   mat_pre 64, ppm 256, u4 512, u3 256, u2 128, u1 64, head1 32, head2 16]
ResNet stages use res_base x (1, 2, 4, 8) bottleneck widths with expansion 4. GroupNorm group
counts follow the code (32 / 16 / 8) reduced to the largest divisor of the channel count.
`blocks` (default (3, 4, 6, 3)) sets the bottleneck count per ResNet stage (tests use fewer).
`num_classes` is ignored (the output always has 7 channels: alpha, F, B).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models import common

WIDTH_NAMES = ("ctx_stem", "res_base", "rppm", "aspp", "ctx_dec", "ctx_e3", "ctx_e5", "mat_stem",
               "mat_pre", "ppm", "u4", "u3", "u2", "u1", "head1", "head2")
DEFAULT_WIDTHS = (16, 64, 512, 256, 256, 128, 64, 32, 64, 256, 512, 256, 128, 64, 32, 16)
RESNET50_BLOCKS = (3, 4, 6, 3)
LRELU = 0.01


def gn_groups(channels: int, groups: int) -> int:
  """The code's group count `groups`, reduced to the largest divisor of `channels` <= it."""
  g = min(groups, channels)
  while channels % g:
    g -= 1
  return g


def stats_dtype(dtype) -> jnp.dtype:
  """GroupNorm / fusion precision: float32, or float64 when computing in float64 (tests)."""
  return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def _act(x: jax.Array, act: str) -> jax.Array:
  if act == "relu":
    return jax.nn.relu(x)
  if act == "lrelu":
    return jax.nn.leaky_relu(x, LRELU)
  return x


# ----------------------------------------------------------------------------- resampling
def _taps_bicubic_ac(n_in: int, n_out: int):
  """PyTorch bicubic (a=-0.75), align_corners=True: indices [n_out, 4] and weights [n_out, 4]."""
  a = -0.75
  scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
  src = np.arange(n_out) * scale
  i0 = np.floor(src).astype(np.int64)
  t = src - i0

  def k1(d):  # |d| <= 1
    return ((a + 2) * d - (a + 3)) * d * d + 1

  def k2(d):  # 1 < |d| < 2
    return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

  w = np.stack([k2(t + 1), k1(t), k1(1 - t), k2(2 - t)], axis=1)
  idx = np.clip(i0[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
  return idx, w


def _taps_bilinear(n_in: int, n_out: int):
  """PyTorch bilinear, align_corners=False (no antialias): indices and weights [n_out, 2]."""
  src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
  i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  i1 = np.minimum(i0 + 1, n_in - 1)
  lam = src - i0
  return np.stack([i0, i1], 1), np.stack([1 - lam, lam], 1)


def _apply_taps(x: jax.Array, axis: int, idx: np.ndarray, w: np.ndarray) -> jax.Array:
  g = jnp.take(x, jnp.asarray(idx.reshape(-1)), axis=axis)
  shape = list(x.shape)
  shape[axis:axis + 1] = list(idx.shape)
  g = g.reshape(shape)
  wshape = [1] * len(shape)
  wshape[axis], wshape[axis + 1] = idx.shape
  return jnp.sum(g * jnp.asarray(w, x.dtype).reshape(wshape), axis=axis + 1)


def resize_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """F.interpolate(mode='bilinear', align_corners=False). x: [B, H, W, C] -> [B, h, w, C]."""
  x = _apply_taps(x, 1, *_taps_bilinear(x.shape[1], size[0]))
  return _apply_taps(x, 2, *_taps_bilinear(x.shape[2], size[1]))


def resize_bicubic_ac(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """nn.Upsample(mode='bicubic', align_corners=True). x: [B, H, W, C] -> [B, h, w, C]."""
  x = _apply_taps(x, 1, *_taps_bicubic_ac(x.shape[1], size[0]))
  return _apply_taps(x, 2, *_taps_bicubic_ac(x.shape[2], size[1]))


def _adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
  m = np.zeros((n_out, n_in), np.float64)
  for i in range(n_out):
    lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    m[i, lo:hi] = 1.0 / (hi - lo)
  return m


def adaptive_avg_pool(x: jax.Array, bins: int) -> jax.Array:
  """nn.AdaptiveAvgPool2d(bins). x: [B, H, W, C] -> [B, bins, bins, C]."""
  mh = jnp.asarray(_adaptive_matrix(x.shape[1], bins), x.dtype)
  mw = jnp.asarray(_adaptive_matrix(x.shape[2], bins), x.dtype)
  return jnp.einsum("ih,bhwc,jw->bijc", mh, x, mw)


def centre_crop(x: jax.Array) -> jax.Array:
  """Rows and columns [h/4, h/4 + h/2) (the CSPP hand-off). x: [B, h, w, C] -> [B, h/2, w/2, C]."""
  h, w = x.shape[1], x.shape[2]
  return x[:, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2, :]


# ----------------------------------------------------------------------------- layers
def standardize_weight(w: jax.Array, eps: float = 1e-5) -> jax.Array:
  """(w - mean) / (unbiased std + eps) per output filter. w: [kh, kw, cin, cout] (HWIO)."""
  mean = jnp.mean(w, axis=(0, 1, 2), keepdims=True)
  w = w - mean
  n = w.shape[0] * w.shape[1] * w.shape[2]
  std = jnp.sqrt(jnp.sum(w * w, axis=(0, 1, 2), keepdims=True) / max(n - 1, 1)) + eps
  return w / std


class Conv(nnx.Module):
  """Conv2d (optionally weight-standardised, `ws=True`). x: [B, H, W, cin] -> [B, H', W', cout].

  Params: `kernel` [k, k, cin, cout] (HWIO), `bias` [cout] when `bias=True`.
  """

  def __init__(self, cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1,
               padding: int | None = None, dilation: int = 1, bias: bool = True, ws: bool = True,
               dtype=jnp.float32):
    self.stride, self.dilation, self.ws, self.dtype = stride, dilation, ws, dtype
    self.padding = dilation * (k // 2) if padding is None else padding
    # PyTorch Conv2d default init (kaiming uniform, a=sqrt(5)) -> U(+-1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(cin * k * k)
    self.kernel = nnx.Param(jax.random.uniform(rngs.params(), (k, k, cin, cout), jnp.float32,
                                               -bound, bound))
    self.bias = nnx.Param(jax.random.uniform(rngs.params(), (cout,), jnp.float32, -bound, bound)
                          ) if bias else None

  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.kernel[...].astype(jnp.promote_types(self.dtype, jnp.float32))
    if self.ws:
      w = standardize_weight(w)
    p = self.padding
    y = jax.lax.conv_general_dilated(
        x.astype(self.dtype), w.astype(self.dtype), (self.stride, self.stride), ((p, p), (p, p)),
        rhs_dilation=(self.dilation, self.dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.bias is not None:
      y = y + self.bias[...].astype(self.dtype)
    return y


def group_norm(c: int, groups: int, rngs: nnx.Rngs, dtype=jnp.float32) -> nnx.GroupNorm:
  """nn.GroupNorm(groups, c), eps 1e-5, statistics in float32 (float64 if dtype is float64)."""
  return nnx.GroupNorm(c, num_groups=gn_groups(c, groups), epsilon=1e-5, dtype=stats_dtype(dtype),
                       use_fast_variance=False, rngs=rngs)


class ConvGN(nnx.Module):
  """Conv -> GroupNorm (float32) -> activation ('relu' | 'lrelu' | 'none')."""

  def __init__(self, cin: int, cout: int, k: int, *, rngs: nnx.Rngs, groups: int = 32,
               act: str = "relu", stride: int = 1, dilation: int = 1, bias: bool = True,
               ws: bool = True, dtype=jnp.float32):
    self.act, self.dtype = act, dtype
    self.conv = Conv(cin, cout, k, stride=stride, dilation=dilation, bias=bias, ws=ws,
                     dtype=dtype, rngs=rngs)
    self.gn = group_norm(cout, groups, rngs, dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    return _act(self.gn(self.conv(x).astype(stats_dtype(self.dtype))), self.act).astype(self.dtype)


class PReLU(nnx.Module):
  """nn.PReLU(c): per-channel slope, init 0.25."""

  def __init__(self, c: int):
    self.weight = nnx.Param(jnp.full((c,), 0.25, jnp.float32))

  def __call__(self, x):
    return jnp.where(x >= 0, x, x * self.weight[...].astype(x.dtype))


class Bottleneck(nnx.Module):
  """WS+GN bottleneck (stride / dilation on the 3x3 conv), GN(32) everywhere."""

  def __init__(self, cin: int, planes: int, stride: int, dilation: int, *, rngs, dtype):
    out = planes * 4
    self.conv1 = ConvGN(cin, planes, 1, bias=False, dtype=dtype, rngs=rngs)
    self.conv2 = ConvGN(planes, planes, 3, stride=stride, dilation=dilation, bias=False,
                        dtype=dtype, rngs=rngs)
    self.conv3 = ConvGN(planes, out, 1, bias=False, act="none", dtype=dtype, rngs=rngs)
    self.downsample = (ConvGN(cin, out, 1, stride=stride, bias=False, act="none", dtype=dtype,
                              rngs=rngs) if (stride != 1 or cin != out) else None)

  def __call__(self, x):
    y = self.conv3(self.conv2(self.conv1(x)))
    sc = x if self.downsample is None else self.downsample(x)
    return jax.nn.relu(y + sc)


class ResLayers(nnx.Module):
  """ResNet-50 layer1-4 (WS+GN), output stride 8: layer3 dilation 2, layer4 dilation 4."""

  def __init__(self, base: int, *, rngs, dtype, blocks=RESNET50_BLOCKS):
    cin = base
    for s, (n, stride, dil) in enumerate(zip(blocks, (1, 2, 1, 1), (1, 1, 2, 4))):
      planes = base * 2 ** s
      layer = []
      for b in range(n):
        layer.append(Bottleneck(cin, planes, stride if b == 0 else 1, dil, rngs=rngs, dtype=dtype))
        cin = planes * 4
      setattr(self, f"layer{s + 1}", nnx.List(layer))

  def run(self, name: str, x):
    for blk in getattr(self, name):
      x = blk(x)
    return x


class GBasicBlock(nnx.Module):
  def __init__(self, c, *, rngs, dtype):
    self.conv1 = ConvGN(c, c, 3, act="lrelu", dtype=dtype, rngs=rngs)
    self.conv2 = ConvGN(c, c, 3, act="none", dtype=dtype, rngs=rngs)

  def __call__(self, x):
    return jax.nn.leaky_relu(self.conv2(self.conv1(x)) + x, LRELU)


class GRes(nnx.Module):
  """conv-GN-LReLU = t; two basic blocks; conv-GN; + t; LReLU."""

  def __init__(self, cin, cout, *, rngs, dtype):
    self.in_conv = ConvGN(cin, cout, 3, act="lrelu", dtype=dtype, rngs=rngs)
    self.block1 = GBasicBlock(cout, rngs=rngs, dtype=dtype)
    self.block2 = GBasicBlock(cout, rngs=rngs, dtype=dtype)
    self.out_conv = ConvGN(cout, cout, 3, act="none", dtype=dtype, rngs=rngs)

  def __call__(self, x):
    t = self.in_conv(x)
    return jax.nn.leaky_relu(self.out_conv(self.block2(self.block1(t))) + t, LRELU)


def fba_fusion(alpha, img, fg, bg, lam: float = 0.1):
  """FBA fusion as the official code (sequential: B uses the new, unclamped F).

  alpha: [..., 1], img / fg / bg: [..., 3], all float. Returns (alpha, fg, bg) clamped to [0, 1].
  """
  f = alpha * img + (1 - alpha ** 2) * fg - alpha * (1 - alpha) * bg
  b = (1 - alpha) * img + (2 * alpha - alpha ** 2) * bg - alpha * (1 - alpha) * f
  f, b = jnp.clip(f, 0, 1), jnp.clip(b, 0, 1)
  a = (alpha * lam + jnp.sum((img - b) * (f - b), -1, keepdims=True)) / (
      jnp.sum((f - b) ** 2, -1, keepdims=True) + lam)
  return jnp.clip(a, 0, 1), f, b


def compose_known(alpha: jax.Array, trimap_onehot: jax.Array) -> jax.Array:
  """alpha_out = alpha * [unknown] + [fg]. alpha: [..., 1]; trimap_onehot: [..., 3] (bg, unk,
  fg)."""
  return alpha * trimap_onehot[..., 1:2] + trimap_onehot[..., 2:3]


# ----------------------------------------------------------------------------- the network
class LFPNet(nnx.Module):
  __doc__ = __doc__
  default_input_shape = (1024, 1024, 12)

  def __init__(self, num_classes: int = 7, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, share_backbone: bool = True,
               context_head: bool = True, rppm_bins: Sequence[int] = (1, 2, 3, 6),
               ppm_bins: Sequence[int] = (1, 2, 3, 6, 1, 2),
               aspp_rates: Sequence[int] = (3, 7, 12, 18),
               blocks: Sequence[int] = RESNET50_BLOCKS, dtype=jnp.float32):
    del num_classes  # always 7 output channels (alpha, F, B)
    dtype = common.resolve_dtype(dtype)
    widths = common.check_widths("lfpnet", widths, len(WIDTH_NAMES),
                                 "16 ints: " + ", ".join(WIDTH_NAMES))
    if widths is None:
      widths = LFPNet.default_widths(width_multiplier)
    self.widths = list(widths)
    w = dict(zip(WIDTH_NAMES, widths))
    self.dtype, self.share_backbone = dtype, share_backbone
    self.rppm_bins, self.ppm_bins = tuple(rppm_bins), tuple(ppm_bins)
    kw = dict(rngs=rngs, dtype=dtype)
    base = w["res_base"]
    c3, c4 = base * 16, base * 32  # layer3 / layer4 output channels (1024 / 2048)

    # Propagating module.
    self.ctx_stem_conv = Conv(12, w["ctx_stem"], 5, stride=2, padding=2, ws=False, **kw)
    self.ctx_stem_gn = group_norm(w["ctx_stem"], 8, rngs, dtype)
    self.ctx_conv1 = ConvGN(w["ctx_stem"], base, 7, stride=2, bias=False, **kw)
    if len(blocks) != 4 or min(blocks) < 1:
      raise ValueError(f"blocks must be 4 positive ints (ResNet-50: {RESNET50_BLOCKS}); "
                       f"got {blocks}.")
    self.blocks = tuple(int(b) for b in blocks)
    self.backbone = ResLayers(base, blocks=self.blocks, **kw)
    self.mat_backbone = None if share_backbone else ResLayers(base, blocks=self.blocks, **kw)
    self.seb_gate = nnx.Param(jax.random.normal(rngs.params(), (1, 1, 1, c3), jnp.float32))
    self.seb_w1 = Conv(c4 + c3, c4 + c3, 1, ws=False, **kw)
    self.seb_w2 = Conv(c4 + c3, c4, 1, ws=False, **kw)
    self.rppm_stages = nnx.List([ConvGN(c4, w["rppm"], 1, act="none", **kw) for _ in rppm_bins])
    self.rppm_trans = Conv(c4, w["rppm"], 1, **kw)
    self.rppm_bottleneck = ConvGN(w["rppm"] * (len(rppm_bins) + 1), w["rppm"], 1, **kw)
    cin = c4 + w["rppm"]
    self.aspp = nnx.List([ConvGN(cin, w["aspp"], 1, **kw)] + [
        ConvGN(cin, w["aspp"], 3, dilation=r, **kw) for r in aspp_rates])
    self.aspp_pool = ConvGN(cin, w["aspp"], 1, bias=False, **kw)
    self.ctx_dec1 = ConvGN(w["aspp"] * (len(aspp_rates) + 2), w["aspp"], 3, act="lrelu", **kw)
    self.ctx_skip2 = ConvGN(base * 4, w["ctx_dec"], 3, act="lrelu", **kw)
    self.ctx_dec2 = ConvGN(w["aspp"] + w["ctx_dec"], w["ctx_dec"], 3, act="lrelu", **kw)
    self.ctx_dec3 = ConvGN(w["ctx_dec"] + base, w["ctx_e3"], 3, groups=16, act="lrelu", **kw)
    self.ctx_dec4 = ConvGN(w["ctx_e3"] + w["ctx_stem"], w["ctx_e5"], 3, groups=16, act="lrelu",
                           **kw)
    self.ctx_dec5 = ConvGN(w["ctx_e5"] + w["ctx_stem"], w["ctx_e5"], 3, groups=16, act="lrelu",
                           **kw)
    if context_head:
      self.ctx_head1 = ConvGN(w["ctx_e5"], max(1, w["ctx_e5"] // 2), 3, act="lrelu", **kw)
      self.ctx_head2 = Conv(max(1, w["ctx_e5"] // 2), 1, 1, ws=False, **kw)
    else:
      self.ctx_head1 = self.ctx_head2 = None

    # Matting module.
    self.stem = ConvGN(12, w["mat_stem"], 3, groups=16, **kw)
    self.pre = ConvGN(w["mat_stem"], w["mat_pre"], 3, stride=2, groups=16, **kw)
    self.res1 = ConvGN(w["mat_pre"], w["mat_pre"], 3, **kw)
    self.ds1 = ConvGN(w["mat_pre"], w["mat_pre"], 3, stride=2, **kw)
    self.fuse4 = ConvGN(w["mat_pre"] + w["ctx_e5"], base, 1, **kw)
    self.fuse8 = ConvGN(base * 8 + w["ctx_e3"], base * 8, 1, **kw)
    self.ppm = nnx.List([ConvGN(c4, w["ppm"], 1, act="lrelu", **kw) for _ in ppm_bins])
    self.u4_conv = ConvGN(c4 + w["ppm"] * len(ppm_bins), w["u4"], 3, act="lrelu", **kw)
    self.u4 = GRes(w["u4"], w["u4"], **kw)
    self.u3 = GRes(w["u4"] + base * 8, w["u3"], **kw)
    self.u2 = GRes(w["u3"] + base * 4, w["u2"], **kw)
    self.u1 = ConvGN(w["u2"] + w["mat_pre"], w["u1"], 3, act="lrelu", **kw)
    self.head1 = Conv(w["u1"] + 9, w["head1"], 3, ws=False, **kw)
    self.prelu1 = PReLU(w["head1"])
    self.head2 = Conv(w["head1"], w["head2"], 3, ws=False, **kw)
    self.prelu2 = PReLU(w["head2"])
    self.head3 = Conv(w["head2"], 7, 1, ws=False, **kw)

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(v, width_multiplier) for v in DEFAULT_WIDTHS]

  def _mat_layers(self) -> ResLayers:
    return self.backbone if self.mat_backbone is None else self.mat_backbone

  def context_features(self, x_ctx: jax.Array):
    """Propagating module. x_ctx: [B, 2S, 2S, 12] -> (c4 [B,S/4,S/4,e5], c8 [B,S/8,S/8,e3], e5)."""
    side = x_ctx.shape[1]
    sd = stats_dtype(self.dtype)
    x = resize_bicubic_ac(x_ctx.astype(sd), (side // 2, x_ctx.shape[2] // 2))
    x_ = self.ctx_stem_conv(x)
    x_ = jax.nn.leaky_relu(self.ctx_stem_gn(x_.astype(sd)), LRELU).astype(self.dtype)
    f5 = self.ctx_conv1(x_)
    f = common.max_pool(f5, 3, 2, padding=1)
    f4 = self.backbone.run("layer1", f)
    f = self.backbone.run("layer2", f4)
    f = self.backbone.run("layer3", f)
    f1 = self.backbone.run("layer4", f)
    g = jnp.broadcast_to(self.seb_gate[...].astype(self.dtype), f1.shape[:3] + (f1.shape[-1] // 2,))
    z = f1 * jax.nn.sigmoid(self.seb_w2(jax.nn.relu(self.seb_w1(jnp.concatenate([f1, g], -1)))))
    hw = z.shape[1:3]
    pri = [resize_bilinear(st(adaptive_avg_pool(z, s)), hw)
           for st, s in zip(self.rppm_stages, self.rppm_bins)]
    p = self.rppm_bottleneck(jnp.concatenate(pri + [self.rppm_trans(z)], -1))
    y = jnp.concatenate([z, p], -1)
    pool = self.aspp_pool(jnp.mean(y.astype(sd), axis=(1, 2), keepdims=True))
    br = [b(y) for b in self.aspp] + [jnp.broadcast_to(pool, y.shape[:3] + pool.shape[-1:])]
    e1 = self.ctx_dec1(jnp.concatenate(br, -1))
    up = lambda t: resize_bilinear(t, (2 * t.shape[1], 2 * t.shape[2]))  # noqa: E731
    e2 = self.ctx_dec2(jnp.concatenate([up(e1), self.ctx_skip2(f4)], -1))
    e3 = self.ctx_dec3(jnp.concatenate([up(e2), f5], -1))
    e4 = self.ctx_dec4(jnp.concatenate([up(e3), x_], -1))
    e5 = self.ctx_dec5(jnp.concatenate([e4, x_], -1))
    return centre_crop(e5), centre_crop(e3), e5

  def context_alpha(self, e5: jax.Array) -> jax.Array:
    """[RECON] context alpha head: e5 [B, 2S/4, 2S/4, C] -> [B, 2S, 2S, 1] in [0, 1]."""
    if self.ctx_head1 is None:
      raise ValueError("this LFPNet was built with context_head=False; rebuild with "
                       "context_head=True to predict the context alpha.")
    c = jnp.clip(self.ctx_head2(self.ctx_head1(e5)).astype(stats_dtype(self.dtype)), 0, 1)
    return resize_bilinear(c, (4 * c.shape[1], 4 * c.shape[2]))

  def __call__(self, x: jax.Array, x_ctx: jax.Array, raw: jax.Array, *, train: bool = False,
               return_context: bool = False):
    """x: [B, S, S, 12]; x_ctx: [B, 2S, 2S, 12]; raw: [B, S, S, 3] in [0, 1].

    Returns out [B, S, S, 7] = (alpha, F, B) after FBA fusion, float32 in [0, 1] (float64 when
    the model computes in float64);
    with `return_context`, (out, context alpha [B, 2S, 2S, 1]).
    """
    del train  # no batch statistics or dropout
    b, s, s2 = x.shape[0], x.shape[1], x.shape[2]
    if s % 16 or s2 % 16 or x.shape[-1] != 12:
      raise ValueError(f"x must be [B, S, S, 12] with S a multiple of 16; got {x.shape}.")
    if x_ctx.shape != (b, 2 * s, 2 * s2, 12) or raw.shape != (b, s, s2, 3):
      raise ValueError(f"x_ctx must be [B, 2S, 2S, 12] = {(b, 2 * s, 2 * s2, 12)} and raw "
                       f"[B, S, S, 3]; got {x_ctx.shape} and {raw.shape}.")
    c4, c8, e5 = self.context_features(x_ctx)
    layers = self._mat_layers()
    r1 = self.res1(self.pre(self.stem(x)))
    d1 = self.fuse4(jnp.concatenate([self.ds1(r1), c4.astype(self.dtype)], -1))
    r2 = layers.run("layer1", d1)
    r3 = layers.run("layer2", r2)
    d3 = self.fuse8(jnp.concatenate([r3, c8.astype(self.dtype)], -1))
    r5 = layers.run("layer4", layers.run("layer3", d3))
    hw = r5.shape[1:3]
    y = jnp.concatenate([r5] + [resize_bilinear(p(adaptive_avg_pool(r5, s_)), hw)
                                for p, s_ in zip(self.ppm, self.ppm_bins)], -1)
    u = self.u4(self.u4_conv(y))
    u = self.u3(jnp.concatenate([u, r3], -1))
    up = lambda t: resize_bilinear(t, (2 * t.shape[1], 2 * t.shape[2]))  # noqa: E731
    u = self.u2(jnp.concatenate([up(u), r2], -1))
    u = self.u1(jnp.concatenate([up(u), r1], -1))
    sd = stats_dtype(self.dtype)
    raw32 = raw.astype(sd)
    h = jnp.concatenate([up(u), raw.astype(self.dtype), x[..., 3:6].astype(self.dtype),
                         x[..., 0:3].astype(self.dtype)], -1)
    o = self.head3(self.prelu2(self.head2(self.prelu1(self.head1(h))))).astype(sd)
    o = jnp.clip(o, 0, 1)
    a, f, bg = fba_fusion(o[..., :1], raw32, o[..., 1:4], o[..., 4:7])
    out = jnp.concatenate([a, f, bg], -1)
    if return_context:
      return out, self.context_alpha(e5)
    return out


from jaxvision.models import register_model  # noqa: E402

register_model("lfpnet", LFPNet)
register_model("lfpnet_tiny", LFPNet, width_multiplier=1 / 8)
