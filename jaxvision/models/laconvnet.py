"""LaConv / LaConvNet: language-conditioned dynamic convolutions (Luo et al., IJCV; laconv.md).

Layers (NHWC, float32 params, `dtype` compute dtype):
  `ConditionGenerator` (spec §2.1): X + sine positions -> pixel packing (t) -> cross-attention
      (visual queries, word keys/values, padded words masked) -> ReLU -> unpack -> BN -> ReLU.
  `LaConv` (§2.2): Linear(D -> G*k*k) per pixel, kernel dropout, then
      `jaxvision.kernels.dynamic_conv` (interleaved groups c mod G; `impl` picks XLA / Pallas).
  `LaConvBlock` (§2.3): X1 = SiLU(X + BN(LaConv(X, Z))); X2 = SiLU(X1 + BN(FFN_4x(X1))).
  `LaConvNet` (§3): stem + 5 stages of LaConv blocks conditioned on the words throughout, a
      YOLOX PAFPN neck and one head: 'rec' (single-level SimOTA box head, §3.3), 'res' (second
      top-down path + ASPP mask head), 'vqa' (MCAN AttFlat head, §3.4, ours) or 'none'.
  `conv_type='static'` is the baseline: the same trunk with static depthwise k x k convs
      (no language in the trunk) and late fusion (sentence vector concatenated to the neck
      inputs) -- it shows what the dynamic, language-generated kernels add.

The language encoder (tokenizer, GloVe, GRU + self-attention) is in
`jaxvision.methods.laconv.language`; this module takes its word features `text: [B, L, Dt]`
and padding mask `text_mask: [B, L]` (True = padded word).

Dropout is functional: pass `rng` (a jax key) with `train=True`; without it dropout is off.

Official PyTorch REC and RES checkpoints (github.com/luogen1996/LaConvNet, `laconvnet_det` /
`laconvnet_seg`): `load_official_checkpoint(model, path)` for `laconvnet_vl` (all keys) or
LaConvNet (visual part), built with head='rec' or head='res' to match the file;
`LaConvNet.torch_naming_rules()` serves `torch_import.load_torch_checkpoint`; token ids must
follow `official_vocab` (the official first-occurrence order).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.kernels.dynamic_conv import api as dynamic_conv_api
from jaxvision.models import common

NEG_INF = -1e9


# ----------------------------------------------------------------------------- helpers


def dropout(x: jax.Array, rate: float, rng, train: bool) -> jax.Array:
  """Inverted dropout; identity unless train and rng is a key and rate > 0."""
  if not train or rng is None or rate <= 0.0:
    return x
  keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def _fold(rng, i: int):
  return None if rng is None else jax.random.fold_in(rng, i)


def sine_position_embedding(h: int, w: int, c: int, temperature: float = 1e4) -> np.ndarray:
  """DETR PositionEmbeddingSine(num_pos_feats=c/2, normalize=False) as [h, w, c] (NHWC).

  Channels [pos_y (c/2), pos_x (c/2)]; within each, even i -> sin, odd i -> cos of
  (index 1..n) / temperature^(2*floor(i/2)/(c/2)).
  """
  if c % 2:
    raise ValueError(f"sine position embedding needs an even channel count, got {c}.")
  npf = c // 2
  i = np.arange(npf)
  dim_t = temperature ** (2 * (i // 2) / npf)

  def enc(n):
    e = np.arange(1, n + 1, dtype=np.float64)[:, None] / dim_t
    return np.where(i % 2 == 0, np.sin(e), np.cos(e))

  py = np.broadcast_to(enc(h)[:, None, :], (h, w, npf))
  px = np.broadcast_to(enc(w)[None, :, :], (h, w, npf))
  return np.concatenate([py, px], axis=-1).astype(np.float32)


def pixel_pack(x: jax.Array, t: int) -> jax.Array:
  """Space-to-depth: [B, H, W, C] -> [B, H/t, W/t, C*t*t].

  out[b, h, w, c*t*t + i*t + j] = x[b, h*t + i, w*t + j, c].
  """
  if t == 1:
    return x
  b, h, w, c = x.shape
  if h % t or w % t:
    raise ValueError(f"pixel packing t={t} needs H, W divisible by t, got {h}x{w}; "
                     "use an input size that is a multiple of 32 * packing.")
  x = x.reshape(b, h // t, t, w // t, t, c).transpose(0, 1, 3, 5, 2, 4)
  return x.reshape(b, h // t, w // t, c * t * t)


def pixel_unpack(x: jax.Array, t: int) -> jax.Array:
  """Inverse of `pixel_pack`: [B, h, w, C*t*t] -> [B, h*t, w*t, C]."""
  if t == 1:
    return x
  b, h, w, ct = x.shape
  c = ct // (t * t)
  x = x.reshape(b, h, w, c, t, t).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, h * t, w * t, c)


def space_to_depth2(x: jax.Array) -> jax.Array:
  """The official `Pool` reshuffle: [B, H, W, C] -> [B, H/2, W/2, 4C], blocks TL, BL, TR, BR."""
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"space-to-depth needs even H and W, got {x.shape[1]}x{x.shape[2]}; "
                     "use an input size that is a multiple of 32.")
  return jnp.concatenate([x[:, ::2, ::2], x[:, 1::2, ::2], x[:, ::2, 1::2], x[:, 1::2, 1::2]],
                         axis=-1)


def multi_head_attention(q, k, v, mask, heads: int, *, drop: float = 0.0, rng=None,
                         train: bool = False) -> jax.Array:
  """Scaled dot-product attention with contiguous head split.

  q: [B, N, D]; k, v: [B, L, D]; mask: [B, L] bool (True = padded key, filled with -1e9)
  or None. Softmax in float32 over L; dropout on the attention map. Returns [B, N, D].
  """
  b, n, d = q.shape
  if d % heads:
    raise ValueError(f"attention width {d} must be divisible by heads={heads}.")
  dk = d // heads
  qh = q.reshape(b, n, heads, dk)
  kh = k.reshape(b, k.shape[1], heads, dk)
  vh = v.reshape(b, v.shape[1], heads, dk)
  s = jnp.einsum("bnhd,blhd->bhnl", qh, kh).astype(jnp.float32) / math.sqrt(dk)
  if mask is not None:
    s = jnp.where(mask[:, None, None, :], NEG_INF, s)
  a = jax.nn.softmax(s, axis=-1)
  a = dropout(a, drop, rng, train).astype(v.dtype)
  return jnp.einsum("bhnl,blhd->bnhd", a, vh).reshape(b, n, d)


def resize_align_corners(x: jax.Array, out_h: int, out_w: int) -> jax.Array:
  """Bilinear resize with align_corners=True (PyTorch). x: [B, H, W, C] -> [B, out_h, out_w, C]."""

  def mat(n_in, n_out):
    if n_in == 1 or n_out == 1:
      m = np.zeros((n_out, n_in), np.float32)
      m[:, 0] = 1.0
      return m
    src = np.arange(n_out) * (n_in - 1) / (n_out - 1)
    lo = np.clip(np.floor(src).astype(int), 0, n_in - 2)
    f = src - lo
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] += 1 - f
    m[np.arange(n_out), lo + 1] += f
    return m

  mh = jnp.asarray(mat(x.shape[1], out_h), x.dtype)
  mw = jnp.asarray(mat(x.shape[2], out_w), x.dtype)
  return jnp.einsum("oh,bhwc,pw->bopc", mh, x, mw)


def upsample_nearest2(x: jax.Array) -> jax.Array:
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


# ----------------------------------------------------------------------------- shared layers


class McanLayerNorm(nnx.Module):
  """MCAN LayerNorm: (x - mean) / (std_unbiased + eps) * w + b over the last axis."""

  def __init__(self, n: int, eps: float = 1e-6):
    self.eps = eps
    self.weight = nnx.Param(jnp.ones((n,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((n,), jnp.float32))

  def __call__(self, x):
    xf = x.astype(jnp.float32)
    mean = xf.mean(-1, keepdims=True)
    std = jnp.sqrt(jnp.sum((xf - mean) ** 2, -1, keepdims=True) / max(1, x.shape[-1] - 1))
    return ((xf - mean) / (std + self.eps) * self.weight + self.bias).astype(x.dtype)


class AttFlat(nnx.Module):
  """MCAN attention pooling: MLP(hidden -> mid -> glimpses) scores, masked softmax over tokens,
  weighted sums concatenated and merged by Linear(glimpses*hidden -> out).

  x: [B, N, hidden]; mask: [B, N] (True = padded) or None -> [B, out].
  """

  def __init__(self, hidden: int, out: int, *, rngs: nnx.Rngs, mid: int | None = None,
               glimpses: int = 1, drop: float = 0.1, dtype=jnp.float32):
    mid = mid or hidden
    self.drop = drop
    self.fc = common.linear(hidden, mid, rngs=rngs, dtype=dtype)
    self.att = common.linear(mid, glimpses, rngs=rngs, dtype=dtype)
    self.merge = common.linear(hidden * glimpses, out, rngs=rngs, dtype=dtype)

  def __call__(self, x, mask=None, *, train: bool = False, rng=None):
    a = self.att(dropout(nnx.relu(self.fc(x)), self.drop, rng, train)).astype(jnp.float32)
    if mask is not None:
      a = jnp.where(mask[..., None], NEG_INF, a)
    a = jax.nn.softmax(a, axis=1).astype(x.dtype)  # [B, N, G]
    pooled = jnp.einsum("bng,bnh->bgh", a, x).reshape(x.shape[0], -1)
    return self.merge(pooled)


def _lin(cin, cout, rngs, dtype, bias=True):
  """1x1 conv as a Linear over channels (PyTorch Conv2d/Linear default init)."""
  return nnx.Linear(cin, cout, use_bias=bias,
                    kernel_init=nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
                    bias_init=common.zeros, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)


class ConvBnAct(nnx.Module):
  """Conv (no bias) -> BN -> activation ('silu' | 'relu' | 'leaky' | 'none')."""

  def __init__(self, cin, cout, k, *, rngs, stride=1, dilation=1, groups=1, act="silu",
               dtype=jnp.float32):
    p = dilation * (k // 2)
    self.conv = nnx.Conv(cin, cout, kernel_size=(k, k), strides=(stride, stride),
                         padding=((p, p), (p, p)), kernel_dilation=(dilation, dilation),
                         feature_group_count=groups, use_bias=False,
                         kernel_init=common.kaiming_fan_in, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)
    self.bn = common.bn(cout, rngs=rngs, dtype=dtype)
    self.act = act

  def __call__(self, x, train: bool):
    y = self.bn(self.conv(x), use_running_average=not train)
    if self.act == "silu":
      return nnx.silu(y)
    if self.act == "relu":
      return nnx.relu(y)
    if self.act == "leaky":
      return nnx.leaky_relu(y, 0.1)
    return y


class Pool(nnx.Module):
  """Official `Pool(in, out, k)`: space-to-depth x2 (TL, BL, TR, BR) -> Conv k x k -> BN -> SiLU."""

  def __init__(self, cin, cout, k, *, rngs, dtype=jnp.float32):
    self.proj = ConvBnAct(4 * cin, cout, k, rngs=rngs, dtype=dtype)

  def __call__(self, x, train: bool):
    return self.proj(space_to_depth2(x), train)


# ----------------------------------------------------------------------------- LaConv


class ConditionGenerator(nnx.Module):
  """Spec §2.1 `ParameterGenerator`: text-conditioned map Z.

  x: [B, H, W, C]; text: [B, L, Dt]; text_mask: [B, L] (True = pad) -> Z: [B, H, W, D].
  `use_pos=False` drops the sine position embedding (translation-equivariance tests).
  """

  def __init__(self, c: int, text_dim: int, d: int, packing: int, heads: int, *,
               rngs: nnx.Rngs, attn_drop: float = 0.1, use_pos: bool = True, dtype=jnp.float32):
    if d % heads:
      raise ValueError(f"cond dim D={d} must be divisible by heads={heads}.")
    self.c, self.d, self.t, self.heads = c, d, packing, heads
    self.attn_drop, self.use_pos = attn_drop, use_pos
    t2 = packing * packing
    self.q = _lin(c * t2, d, rngs, dtype)
    self.k = _lin(text_dim, d, rngs, dtype)
    self.v = _lin(text_dim, d, rngs, dtype)
    self.out = _lin(d, d * t2, rngs, dtype)
    self.bn = common.bn(d, rngs=rngs, dtype=dtype)

  def __call__(self, x, text, text_mask, *, train: bool = False, rng=None):
    b, h, w, c = x.shape
    xq = x
    if self.use_pos:
      xq = x + jnp.asarray(sine_position_embedding(h, w, c), x.dtype)
    xq = pixel_pack(xq, self.t)
    hp, wp = xq.shape[1:3]
    q = self.q(xq.reshape(b, hp * wp, -1))
    o = multi_head_attention(q, self.k(text), self.v(text), text_mask, self.heads,
                             drop=self.attn_drop, rng=rng, train=train)
    o = nnx.relu(self.out(o)).reshape(b, hp, wp, -1)
    z = pixel_unpack(o, self.t)
    return nnx.relu(self.bn(z, use_running_average=not train))


class LaConv(nnx.Module):
  """Spec §2.2: per-pixel G x k x k kernels from Z, aggregated with `dynamic_conv`.

  x: [B, H, W, C]; z: [B, H, W, D] -> [B, H, W, C]. Kernel layout g*k*k + dy*k + dx,
  channel c uses group c mod G (interleaved, as the released code). No softmax, no bias.
  """

  def __init__(self, c: int, d: int, kernel_size: int, groups: int, *, rngs: nnx.Rngs,
               kernel_drop: float = 0.1, impl: str = "auto", dtype=jnp.float32):
    if c % groups:
      raise ValueError(f"LaConv: groups={groups} must divide channels C={c}.")
    self.k, self.g, self.impl, self.kernel_drop = kernel_size, groups, impl, kernel_drop
    self.gen = _lin(d, kernel_size * kernel_size * groups, rngs, dtype)

  def kernels(self, z, *, train: bool = False, rng=None):
    """[B, H, W, G*k*k] generated kernels (after kernel dropout in training)."""
    return dropout(self.gen(z), self.kernel_drop, rng, train)

  def __call__(self, x, z, *, train: bool = False, rng=None):
    w = self.kernels(z, train=train, rng=rng).astype(x.dtype)
    return dynamic_conv_api.dynamic_conv(x, w, kernel_size=self.k, groups=self.g, impl=self.impl)


class LaConvBlock(nnx.Module):
  """Spec §2.3 (stride 1): X1 = SiLU(X + BN(LaConv(X, Z))), X2 = SiLU(X1 + BN(W2 SiLU(BN(W1 X1)))).

  With conv_type='static' the LaConv is a static depthwise k x k conv (no language).
  x: [B, H, W, C] -> [B, H, W, C].
  """

  def __init__(self, c: int, text_dim: int, d: int, kernel_size: int, packing: int,
               groups: int, heads: int, *, rngs: nnx.Rngs, conv_type: str = "laconv",
               impl: str = "auto", attn_drop: float = 0.1, kernel_drop: float = 0.1,
               use_pos: bool = True, dtype=jnp.float32):
    self.conv_type = conv_type
    if conv_type == "laconv":
      self.cond = ConditionGenerator(c, text_dim, d, packing, heads, rngs=rngs,
                                     attn_drop=attn_drop, use_pos=use_pos, dtype=dtype)
      self.laconv = LaConv(c, d, kernel_size, groups, rngs=rngs, kernel_drop=kernel_drop,
                           impl=impl, dtype=dtype)
    else:
      self.static = nnx.Conv(c, c, kernel_size=(kernel_size, kernel_size),
                             padding=((kernel_size // 2,) * 2,) * 2, feature_group_count=c,
                             use_bias=False, kernel_init=common.kaiming_fan_in, dtype=dtype,
                             param_dtype=jnp.float32, rngs=rngs)
    self.bn = common.bn(c, rngs=rngs, dtype=dtype)
    self.fc1 = _lin(c, 4 * c, rngs, dtype, bias=False)
    self.bn1 = common.bn(4 * c, rngs=rngs, dtype=dtype)
    self.fc2 = _lin(4 * c, c, rngs, dtype, bias=False)
    self.bn2 = common.bn(c, rngs=rngs, dtype=dtype)

  def __call__(self, x, text, text_mask, *, train: bool = False, rng=None):
    ura = not train
    if self.conv_type == "laconv":
      z = self.cond(x, text, text_mask, train=train, rng=_fold(rng, 0))
      u = self.laconv(x, z, train=train, rng=_fold(rng, 1))
    else:
      u = self.static(x)
    x1 = nnx.silu(x + self.bn(u, use_running_average=ura))
    y = nnx.silu(self.bn1(self.fc1(x1), use_running_average=ura))
    return nnx.silu(x1 + self.bn2(self.fc2(y), use_running_average=ura))


# ----------------------------------------------------------------------------- trunk specs


@dataclasses.dataclass(frozen=True)
class TrunkSpec:
  """Stage layout: dims, groups G, packing t, cond dims D, kernel sizes per block, heads."""
  dims: tuple[int, ...]
  groups: tuple[int, ...]
  packings: tuple[int, ...]
  kernels: tuple[tuple[int, ...], ...]
  heads: int = 8
  cond_dims: tuple[int, ...] | None = None  # None: D = dim*t/2 if dim < 128 else dim

  def cond(self) -> tuple[int, ...]:
    if self.cond_dims is not None:
      return tuple(self.cond_dims)
    return tuple(d * t // 2 if d < 128 else d for d, t in zip(self.dims, self.packings))


VARIANTS = {
    "S": TrunkSpec(dims=(16, 64, 128, 256, 512), groups=(4, 4, 8, 8, 16),
                   packings=(8, 4, 2, 1, 1),
                   kernels=((3, 5), (7,), (7, 7), (7, 7, 7, 7), (7,))),
    "B": TrunkSpec(dims=(16, 64, 128, 256, 512), groups=(4, 4, 8, 8, 16),
                   packings=(8, 4, 2, 1, 1),
                   kernels=((3, 5, 7), (7, 7, 7), (7, 7, 7, 7), (7,) * 6, (7, 7, 7))),
    # Spec §8 CPU miniature: 64x64 input -> stage maps 32, 16, 8, 4, 2.
    "tiny": TrunkSpec(dims=(8, 16, 16, 32, 32), groups=(2, 2, 4, 4, 4), packings=(4, 2, 2, 1, 1),
                      kernels=((3,), (3,), (5,), (3,), (3,)), heads=4,
                      cond_dims=(16, 16, 16, 32, 32)),
}
HEADS = ("rec", "res", "vqa", "none")
CONV_TYPES = ("laconv", "static")


# ----------------------------------------------------------------------------- neck / heads


class Bottleneck(nnx.Module):
  """YOLOX Bottleneck (expansion 1, no shortcut here): 1x1 -> 3x3, both Conv-BN-SiLU."""

  def __init__(self, c, *, rngs, dtype):
    self.conv1 = ConvBnAct(c, c, 1, rngs=rngs, dtype=dtype)
    self.conv2 = ConvBnAct(c, c, 3, rngs=rngs, dtype=dtype)

  def __call__(self, x, train):
    return self.conv2(self.conv1(x, train), train)


class CSPLayer(nnx.Module):
  """YOLOX CSPLayer (expansion 0.5, n bottlenecks without shortcut)."""

  def __init__(self, cin, cout, n, *, rngs, dtype):
    hid = max(1, cout // 2)
    self.conv1 = ConvBnAct(cin, hid, 1, rngs=rngs, dtype=dtype)
    self.conv2 = ConvBnAct(cin, hid, 1, rngs=rngs, dtype=dtype)
    self.conv3 = ConvBnAct(2 * hid, cout, 1, rngs=rngs, dtype=dtype)
    self.m = nnx.List([Bottleneck(hid, rngs=rngs, dtype=dtype) for _ in range(n)])

  def __call__(self, x, train):
    y = self.conv1(x, train)
    for b in self.m:
      y = b(y, train)
    return self.conv3(jnp.concatenate([y, self.conv2(x, train)], -1), train)


class TopDown(nnx.Module):
  """The top-down half of the YOLOX PAFPN: (c3, c4, c5) maps -> (s8 out, s16 out, s32 lateral)."""

  def __init__(self, chans, n, *, rngs, dtype):
    c3, c4, c5 = chans
    self.lateral = ConvBnAct(c5, c4, 1, rngs=rngs, dtype=dtype)
    self.c3_p4 = CSPLayer(2 * c4, c4, n, rngs=rngs, dtype=dtype)
    self.reduce = ConvBnAct(c4, c3, 1, rngs=rngs, dtype=dtype)
    self.c3_p3 = CSPLayer(2 * c3, c3, n, rngs=rngs, dtype=dtype)

  def __call__(self, feats, train):
    x3, x4, x5 = feats
    f5 = self.lateral(x5, train)
    f4 = self.c3_p4(jnp.concatenate([upsample_nearest2(f5), x4], -1), train)
    f4r = self.reduce(f4, train)
    p3 = self.c3_p3(jnp.concatenate([upsample_nearest2(f4r), x3], -1), train)
    return p3, f4r, f5


class PAFPN(nnx.Module):
  """YOLOX PAFPN (depth 1 -> 3 bottlenecks per CSP): (c3@s8, c4@s16, c5@s32) -> same widths."""

  def __init__(self, chans, *, rngs, n: int = 3, dtype=jnp.float32):
    c3, c4, c5 = chans
    self.td = TopDown(chans, n, rngs=rngs, dtype=dtype)
    self.bu_conv2 = ConvBnAct(c3, c3, 3, stride=2, rngs=rngs, dtype=dtype)
    self.c3_n3 = CSPLayer(2 * c3, c4, n, rngs=rngs, dtype=dtype)
    self.bu_conv1 = ConvBnAct(c4, c4, 3, stride=2, rngs=rngs, dtype=dtype)
    self.c3_n4 = CSPLayer(2 * c4, c5, n, rngs=rngs, dtype=dtype)

  def __call__(self, feats, train):
    p3, f4r, f5 = self.td(feats, train)
    p4 = self.c3_n3(jnp.concatenate([self.bu_conv2(p3, train), f4r], -1), train)
    p5 = self.c3_n4(jnp.concatenate([self.bu_conv1(p4, train), f5], -1), train)
    return p3, p4, p5


class RecHead(nnx.Module):
  """Spec §3.3 single-level anchor-free head (on the s32 map; `rec_level` picks another PAFPN
  level): 1x1 -> 2x 3x3 -> reg(4), obj(1). obj_prior p sets the objectness bias to
  -log((1-p)/p) (YOLOX `initialize_biases`, never called by the official code: None = 0).

  x: [B, h, w, C] -> dict(raw [B, h, w, 5], boxes [B, h*w, 4] (cx, cy, w, h input pixels),
  obj [B, h*w] logits). Decoding: xy = (t_xy + grid) * stride, wh = exp(t_wh) * stride.
  """

  def __init__(self, cin, hidden, stride, *, rngs, obj_prior: float | None = None,
               dtype=jnp.float32):
    self.stride = stride
    self.stem = ConvBnAct(cin, hidden, 1, rngs=rngs, dtype=dtype)
    self.conv1 = ConvBnAct(hidden, hidden, 3, rngs=rngs, dtype=dtype)
    self.conv2 = ConvBnAct(hidden, hidden, 3, rngs=rngs, dtype=dtype)
    self.reg = common.conv(hidden, 4, 1, bias=True, rngs=rngs, dtype=dtype,
                           kernel_init=common.kaiming_fan_in)
    self.obj = common.conv(hidden, 1, 1, bias=True, rngs=rngs, dtype=dtype,
                           kernel_init=common.kaiming_fan_in)
    if obj_prior is not None:  # YOLOX initialize_biases (never called by the official code)
      self.obj.bias.set_value(jnp.full((1,), -math.log((1.0 - obj_prior) / obj_prior),
                                       jnp.float32))

  def __call__(self, x, train):
    y = self.conv2(self.conv1(self.stem(x, train), train), train)
    raw = jnp.concatenate([self.reg(y), self.obj(y)], -1).astype(jnp.float32)
    return {"raw": raw, **decode_rec(raw, self.stride)}


def grid_centers(h: int, w: int, stride: int) -> np.ndarray:
  """Anchor-cell centres (x, y) in input pixels, row-major: [h*w, 2] = ((col, row) + .5) * stride."""
  yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  return ((np.stack([xx, yy], -1).reshape(-1, 2) + 0.5) * stride).astype(np.float32)


def decode_rec(raw: jax.Array, stride: int) -> dict:
  """raw: [B, h, w, 5] (tx, ty, tw, th, obj) -> boxes [B, h*w, 4] cxcywh pixels, obj [B, h*w]."""
  b, h, w, _ = raw.shape
  grid = jnp.asarray(grid_centers(h, w, stride) / stride - 0.5)
  r = raw.reshape(b, h * w, 5)
  xy = (r[..., :2] + grid) * stride
  wh = jnp.exp(jnp.clip(r[..., 2:4], -20.0, 20.0)) * stride
  return {"boxes": jnp.concatenate([xy, wh], -1), "obj": r[..., 4]}


class ASPP(nnx.Module):
  """1x1, three dilated 3x3 and image pooling branches (Conv-BN-LeakyReLU(0.1), `c` each),
  concatenated in that order (official `aspp_decoder` conv0, conv1-3, conv4 on the pooled map).

  x: [B, h, w, cin] -> [B, h, w, c * (2 + len(dilations))]."""

  def __init__(self, cin, c, dilations, *, rngs, dtype=jnp.float32):
    self.b0 = ConvBnAct(cin, c, 1, act="leaky", rngs=rngs, dtype=dtype)
    self.bd = nnx.List([ConvBnAct(cin, c, 3, dilation=d, act="leaky", rngs=rngs, dtype=dtype)
                        for d in dilations])
    self.pool = ConvBnAct(cin, c, 1, act="leaky", rngs=rngs, dtype=dtype)

  def __call__(self, x, train):
    g = self.pool(jnp.mean(x, axis=(1, 2), keepdims=True), train)
    outs = [self.b0(x, train)] + [m(x, train) for m in self.bd]
    outs.append(jnp.broadcast_to(g, outs[0].shape))
    return jnp.concatenate(outs, -1)


class ResHead(nnx.Module):
  """Spec §3.3 RES: PAFPN outputs -> second top-down path -> s8 map -> ASPP -> 1x1 -> 1 logit ->
  bilinear x8 (align_corners). -> logits [B, H, W] at input resolution.

  Official `laconvnet_seg`: td = `detection_neck` (PAFPN_OnePath), aspp + cls =
  `head.sconv.0` (aspp_decoder: conv0..conv4, out_proj with bias), then UpsamplingBilinear2d(8)."""

  def __init__(self, chans, aspp_c, dilations, n, *, rngs, dtype=jnp.float32):
    self.td = TopDown(chans, n, rngs=rngs, dtype=dtype)
    self.aspp = ASPP(chans[0], aspp_c, dilations, rngs=rngs, dtype=dtype)
    self.cls = common.conv(aspp_c * (2 + len(dilations)), 1, 1, bias=True, rngs=rngs,
                           dtype=dtype, kernel_init=common.kaiming_fan_in)

  def __call__(self, feats, train, out_hw):
    p3 = self.td(feats, train)[0]
    logit = self.cls(self.aspp(p3, train)).astype(jnp.float32)
    return resize_align_corners(logit, *out_hw)[..., 0]


class VqaHead(nnx.Module):
  """Spec §3.4 (ours): AttFlat over Linear(visual) tokens + AttFlat over words,
  MCAN LayerNorm(v + s) -> Linear(hidden -> num_answers). -> logits [B, num_answers]."""

  def __init__(self, cvis, text_dim, num_answers, *, rngs, drop=0.1, dtype=jnp.float32):
    self.proj = common.linear(cvis, text_dim, rngs=rngs, dtype=dtype)
    self.vflat = AttFlat(text_dim, text_dim, rngs=rngs, drop=drop, dtype=dtype)
    self.lflat = AttFlat(text_dim, text_dim, rngs=rngs, drop=drop, dtype=dtype)
    self.norm = McanLayerNorm(text_dim)
    self.out = common.linear(text_dim, num_answers, rngs=rngs, dtype=dtype)

  def __call__(self, v, text, text_mask, *, train=False, rng=None):
    b, h, w, c = v.shape
    vt = self.proj(v.reshape(b, h * w, c))
    fv = self.vflat(vt, None, train=train, rng=_fold(rng, 0))
    fs = self.lflat(text, text_mask, train=train, rng=_fold(rng, 1))
    return self.out(self.norm(fv + fs)).astype(jnp.float32)


class LateFusion(nnx.Module):
  """Baseline late fusion: [F, tile(s)] -> Conv1x1-BN-SiLU -> C (s: AttFlat sentence vector)."""

  def __init__(self, c, text_dim, *, rngs, dtype=jnp.float32):
    self.proj = ConvBnAct(c + text_dim, c, 1, rngs=rngs, dtype=dtype)

  def __call__(self, f, s, train):
    s = jnp.broadcast_to(s[:, None, None, :].astype(f.dtype), f.shape[:3] + s.shape[-1:])
    return self.proj(jnp.concatenate([f, s], -1), train)


# ----------------------------------------------------------------------------- the network


class Stage(nnx.Module):
  """Optional stride-2 `Pool` then LaConv blocks."""

  def __init__(self, down: Pool | None, blocks: list[LaConvBlock]):
    self.down = down
    self.blocks = nnx.List(blocks)


class LaConvNet(nnx.Module):
  """LaConvNet-S/B (spec §3) with a REC, RES or VQA head, conditioned on word features.

  Widths format: 5 stage dims (default (16, 64, 128, 256, 512) for S/B; the miniature
  'tiny' uses (8, 16, 16, 32, 32)); cond dims follow D = dim*t/2 if dim < 128 else dim
  unless the variant fixes them; `spec` (a TrunkSpec) replaces the variant's layout (groups,
  packings, kernels per block, heads). REC head level: rec_level 2 (s32, paper) | 1 (s16) | 0 (s8);
  obj_prior: see `RecHead`. VQA head input: stage vqa_level 4 (s32, default) | 3 | 2.

  Call: `model(image, text, text_mask, train=False, rng=None)`:
    image [B, H, W, 3] (H, W multiples of 32 * max packing / 2^stage, e.g. 416 or 64 for tiny);
    text [B, L, text_dim] word features; text_mask [B, L] bool (True = padded word).
  Returns per head:
    'rec': dict(raw [B, h, w, 5], boxes [B, h*w, 4] cxcywh input pixels, obj [B, h*w])
    'res': mask logits [B, H, W];   'vqa': answer logits [B, num_classes];
    'none': list of the 5 stage maps.
  `num_classes` is the answer count for 'vqa' (default 3129) and ignored otherwise.
  Submodules: `stem`, `stages[s].down` (stride-2 Pool), `stages[s].blocks[i]`, `neck`, `head`.
  """
  default_input_shape = (416, 416, 3)

  def __init__(self, num_classes: int = 3129, *, rngs: nnx.Rngs,
               widths: Sequence[int] | None = None, variant: str = "S", head: str = "rec",
               text_dim: int = 512, conv_type: str = "laconv", impl: str = "auto",
               heads: int | None = None, neck_depth: int = 3, rec_hidden: int | None = None,
               rec_level: int = 2, obj_prior: float | None = None, vqa_level: int = 4,
               aspp_channels: int | None = None, aspp_dilations: Sequence[int] = (6, 12, 18),
               attn_drop: float = 0.1, kernel_drop: float = 0.1, use_pos: bool = True,
               spec: TrunkSpec | None = None, width_multiplier: float = 1.0,
               dtype=jnp.float32):
    del width_multiplier  # accepted like every zoo model; sizes come from `variant` / widths
    dtype = common.resolve_dtype(dtype)
    if spec is not None and not isinstance(spec, TrunkSpec):
      raise TypeError(f"LaConvNet spec must be a TrunkSpec, got {type(spec).__name__}.")
    if spec is None and variant not in VARIANTS:
      raise ValueError(f"LaConvNet variant={variant!r}; choose one of {sorted(VARIANTS)}.")
    if head not in HEADS:
      raise ValueError(f"LaConvNet head={head!r}; choose one of {HEADS}.")
    if conv_type not in CONV_TYPES:
      raise ValueError(f"LaConvNet conv_type={conv_type!r}; choose one of {CONV_TYPES}.")
    spec = spec or VARIANTS[variant]
    dims = common.check_widths(f"laconvnet_{variant}", widths, 5, "5 stage dims")
    if dims is not None:
      spec = dataclasses.replace(spec, dims=tuple(dims),
                                 cond_dims=None if spec.cond_dims is None else spec.cond_dims)
    self.spec, self.widths = spec, list(spec.dims)
    self.head_type, self.conv_type, self.dtype = head, conv_type, dtype
    self.num_classes = num_classes
    self.text_dim = text_dim
    nh = heads or spec.heads
    cond = spec.cond()
    self.stem = Pool(3, spec.dims[0], 3, rngs=rngs, dtype=dtype)
    stages = []
    cin = spec.dims[0]
    for s in range(5):
      down = Pool(cin, spec.dims[s], 1, rngs=rngs, dtype=dtype) if s > 0 else None
      blocks = [
          LaConvBlock(spec.dims[s], text_dim, cond[s], k, spec.packings[s], spec.groups[s], nh,
                      rngs=rngs, conv_type=conv_type, impl=impl, attn_drop=attn_drop,
                      kernel_drop=kernel_drop, use_pos=use_pos, dtype=dtype)
          for k in spec.kernels[s]]
      stages.append(Stage(down, blocks))
      cin = spec.dims[s]
    self.stages = nnx.List(stages)
    chans = tuple(spec.dims[2:])
    self.fusion = nnx.List([])
    if conv_type == "static" and head in ("rec", "res"):
      self.sentence = AttFlat(text_dim, text_dim, rngs=rngs, drop=attn_drop, dtype=dtype)
      self.fusion = nnx.List([LateFusion(c, text_dim, rngs=rngs, dtype=dtype) for c in chans])
    self.neck = (PAFPN(chans, rngs=rngs, n=neck_depth, dtype=dtype) if head in ("rec", "res")
                 else None)
    if rec_level not in (0, 1, 2):
      raise ValueError(f"LaConvNet rec_level={rec_level!r}; choose 0 (s8), 1 (s16) or 2 (s32).")
    if vqa_level not in (2, 3, 4):
      raise ValueError(f"LaConvNet vqa_level={vqa_level!r}; choose 2 (s8), 3 (s16) or 4 (s32).")
    self.rec_level, self.vqa_level = rec_level, vqa_level
    if head == "rec":
      c = chans[rec_level]
      self.head = RecHead(c, rec_hidden or max(1, c // 2), 8 * 2 ** rec_level, rngs=rngs,
                          obj_prior=obj_prior, dtype=dtype)
    elif head == "res":
      self.head = ResHead(chans, aspp_channels or chans[0], tuple(aspp_dilations), neck_depth,
                          rngs=rngs, dtype=dtype)
    elif head == "vqa":
      self.head = VqaHead(spec.dims[vqa_level], text_dim, num_classes, rngs=rngs, drop=attn_drop,
                          dtype=dtype)
    else:
      self.head = None

  def trunk(self, image, text, text_mask, *, train=False, rng=None) -> list[jax.Array]:
    """The 5 stage maps (strides 2, 4, 8, 16, 32)."""
    x = self.stem(image.astype(self.dtype), train)
    text = text.astype(self.dtype)
    outs = []
    for s, st in enumerate(self.stages):
      if st.down is not None:
        x = st.down(x, train)
      for i, blk in enumerate(st.blocks):
        x = blk(x, text, text_mask, train=train, rng=_fold(rng, 100 * s + i))
      outs.append(x)
    return outs

  def __call__(self, image, text, text_mask, train: bool = False, rng=None):
    if image.ndim != 4 or text.ndim != 3 or text_mask.shape != text.shape[:2]:
      raise ValueError(f"LaConvNet expects image [B,H,W,3], text [B,L,D], text_mask [B,L]; got "
                       f"{image.shape}, {text.shape}, {text_mask.shape}.")
    if text.shape[-1] != self.text_dim:
      raise ValueError(f"text features have {text.shape[-1]} channels but the model was built "
                       f"with text_dim={self.text_dim}.")
    text_mask = text_mask.astype(bool)
    feats = self.trunk(image, text, text_mask, train=train, rng=rng)
    if self.head_type == "none":
      return feats
    if self.head_type == "vqa":
      return self.head(feats[self.vqa_level], text, text_mask, train=train, rng=_fold(rng, 999))
    f = feats[2:]
    if len(self.fusion):
      s = self.sentence(text.astype(self.dtype), text_mask, train=train, rng=_fold(rng, 998))
      f = [m(x, s, train) for m, x in zip(self.fusion, f)]
    p = self.neck(f, train)
    if self.head_type == "rec":
      return self.head(p[self.rec_level], train)
    return self.head(p, train, image.shape[1:3])

  def torch_naming_rules(self) -> dict:
    """{'official': nnx layer path -> module prefix of the official PyTorch `Net`
    (github.com/luogen1996/LaConvNet, REC: visual_encoder.*, multi_scale_manner.*, head.*;
    RES: the same plus detection_neck.*, with head.sconv.0.* as the mask head)}.

    `torch_import.load_torch_checkpoint(model, sd)` uses it; a full official checkpoint also
    holds `lang_encoder.*` (reported as unexpected here): load it into `laconvnet_vl` with
    `load_official_checkpoint`, or pass only the other keys."""
    _check_official(self)
    return {OFFICIAL_NAMING: official_torch_name}

  @staticmethod
  def default_widths(variant: str = "S", **_) -> list[int]:
    if variant not in VARIANTS:
      raise ValueError(f"LaConvNet variant={variant!r}; choose one of {sorted(VARIANTS)}.")
    return list(VARIANTS[variant].dims)


# ----------------------------------------------------------------------------- PyTorch import
# Official REC `Net` (models/laconvnet_det/net.py): lang_encoder (LSTM_SA), visual_encoder
# (LaConvNet), multi_scale_manner (PAFPN), head (REChead). Official RES `Net`
# (models/laconvnet_seg/net.py): the same first three, detection_neck (PAFPN_OnePath: the
# top-down half of PAFPN = our ResHead.td) and head (REShead: sconv.0 = aspp_decoder, whose
# darknet_conv branches name their BN 'batch_norm'; sconv.1 = UpsamplingBilinear2d, no tensors).
# Layouts: Conv2d OIHW -> HWIO; 1x1 Conv2d [o, i, 1, 1] and Linear [o, i] -> nnx.Linear [i, o];
# GRU weight_{ih,hh}_l0 [3H, in] -> Linear [in, 3H] (gate order r, z, n in both); BatchNorm
# weight/bias/running_* -> scale/bias/mean/var; MCAN LayerNorm and the embedding table as they are.

OFFICIAL_NAMING = "official"
# Computed by the official language encoder but used by neither the REC nor the RES net.
OFFICIAL_UNUSED = ("lang_encoder.att_flat.",)

_BLOCK_NAMES = {"cond/q": "cond_generator.mha.linear_q", "cond/k": "cond_generator.mha.linear_k",
                "cond/v": "cond_generator.mha.linear_v",
                "cond/out": "cond_generator.mha.linear_merge", "cond/bn": "cond_generator.norm",
                "laconv/gen": "conv1.linear", "bn": "bn1", "fc1": "block1.0", "bn1": "block1.1",
                "fc2": "block1.3", "bn2": "block1.4"}
_NECK_NAMES = {"td/lateral": "lateral_conv0", "td/c3_p4": "C3_p4", "td/reduce": "reduce_conv1",
               "td/c3_p3": "C3_p3", "bu_conv2": "bu_conv2", "c3_n3": "C3_n3",
               "bu_conv1": "bu_conv1", "c3_n4": "C3_n4"}
_HEAD_NAMES = {"stem": "stems.0", "conv1": "reg_convs.0.0", "conv2": "reg_convs.0.1",
               "reg": "reg_preds.0", "obj": "obj_preds.0"}
# ResHead: ASPP branch -> aspp_decoder (layers/conv_layer.py) child; cls -> its out_proj.
_ASPP_NAMES = {"b0": "conv0", "bd/0": "conv1", "bd/1": "conv2", "bd/2": "conv3", "pool": "conv4"}
_ASPP_LAYERS = {"conv": "conv", "bn": "batch_norm"}
OFFICIAL_ASPP_DILATIONS = (6, 12, 18)
_SA_NAMES = {"q": "mhatt.linear_q", "k": "mhatt.linear_k", "v": "mhatt.linear_v",
             "merge": "mhatt.linear_merge", "fc1": "ffn.mlp.fc.linear", "fc2": "ffn.mlp.linear",
             "norm1": "norm1", "norm2": "norm2"}


def official_torch_name(path: str) -> str:
  """nnx layer path of LaConvNet (or `laconvnet_vl`: 'visual/...', 'language/...') -> the
  module prefix in the official PyTorch REC / RES `Net`, e.g.
  'stages/1/blocks/0/cond/q' -> 'visual_encoder.blocks.1.1.cond_generator.mha.linear_q'
  (stages 2-5 start with their stride-2 Pool at index 0), 'head/td/c3_p3/conv1/bn' ->
  'detection_neck.C3_p3.conv1.bn', 'head/aspp/bd/0/bn' -> 'head.sconv.0.conv1.batch_norm'."""
  parts = path.split("/")
  if parts[0] == "visual":
    parts = parts[1:]
  rest = "/".join(parts[1:])
  try:
    if parts[0] == "language":
      if parts[1] == "sa":
        return f"lang_encoder.sa_list.{int(parts[2])}.{_SA_NAMES['/'.join(parts[3:])]}"
      if parts[1] == "gru" and len(parts) == 2:
        return "lang_encoder.lstm"
      if rest == "embedding":
        return "lang_encoder.embedding"
    elif parts[0] == "stem" and parts[1] == "proj":
      return f"visual_encoder.stem.conv.{parts[2]}"
    elif parts[0] == "stages":
      s = int(parts[1])
      if parts[2] == "down" and parts[3] == "proj":
        return f"visual_encoder.blocks.{s}.0.conv.{parts[4]}"
      if parts[2] == "blocks":
        i = int(parts[3]) + (1 if s > 0 else 0)
        return f"visual_encoder.blocks.{s}.{i}.{_BLOCK_NAMES['/'.join(parts[4:])]}"
    elif parts[0] == "neck":
      n = 2 if parts[1] == "td" else 1
      tail = ".".join(parts[1 + n:])
      return f"multi_scale_manner.{_NECK_NAMES['/'.join(parts[1:1 + n])]}.{tail}".rstrip(".")
    elif parts[0] == "head" and parts[1] == "td":  # RES: PAFPN_OnePath
      tail = ".".join(parts[3:])
      return f"detection_neck.{_NECK_NAMES['td/' + parts[2]]}.{tail}".rstrip(".")
    elif parts[0] == "head" and parts[1] == "aspp":  # RES: aspp_decoder branches
      n = 2 if parts[2] == "bd" else 1
      branch = _ASPP_NAMES["/".join(parts[2:2 + n])]
      layer = "/".join(parts[2 + n:])
      return f"head.sconv.0.{branch}" + (f".{_ASPP_LAYERS[layer]}" if layer else "")
    elif parts[0] == "head" and parts[1] == "cls" and len(parts) == 2:  # RES: 1x1 -> 1 logit
      return "head.sconv.0.out_proj"
    elif parts[0] == "head":
      tail = ".".join(parts[2:])
      return f"head.{_HEAD_NAMES[parts[1]]}.{tail}".rstrip(".")
  except (KeyError, IndexError, ValueError):
    pass
  raise ValueError(f"layer {path!r} has no counterpart in the official LaConvNet REC/RES net "
                   "(official checkpoints cover conv_type='laconv' with head 'rec', 'res' or "
                   "'none').")


def official_vocab(texts: Iterable[str], specials: Sequence[str] = ("[PAD]", "[UNK]", "[CLS]"),
                   ) -> dict[str, int]:
  """The official token ids (datasets/dataloader.py `tokenize`): specials 0, 1, 2, then words in
  order of first occurrence in `texts` -- every ref of the dataset's annotation JSON, in file
  order (all splits). An imported embedding table is indexed by these ids, so feed this dict to
  `jaxvision.methods.laconv.language.WordTokenizer(vocab)` (its default build orders by
  frequency). Normalisation: lowercase, strip . , ' ! ? " ( ) * # : ;, '-' and '/' -> space."""
  vocab = {w: i for i, w in enumerate(specials)}
  for text in texts:
    words = re.sub(r"[.,'!?\"()*#:;]", "", text.lower()).replace("-", " ").replace("/", " ")
    for w in words.split():
      vocab.setdefault(w, len(vocab))
  return vocab


def _check_official(model) -> None:
  net = getattr(model, "visual", model)
  if not isinstance(net, LaConvNet):
    raise TypeError(f"official LaConvNet import needs a LaConvNet or laconvnet_vl model, got "
                    f"{type(model).__name__}.")
  if net.conv_type != "laconv" or net.head_type not in ("rec", "res", "none"):
    raise ValueError(f"official LaConvNet checkpoints are REC or RES nets: build with "
                     f"conv_type='laconv' and head='rec' or 'res' (or 'none'), got "
                     f"conv_type={net.conv_type!r}, head={net.head_type!r}.")
  if net.head_type == "res":
    rates = tuple(int(m.conv.kernel_dilation[0]) for m in net.head.aspp.bd)
    if rates != OFFICIAL_ASPP_DILATIONS:  # same tensor shapes, different net: refuse loudly
      raise ValueError(f"official LaConvNet RES checkpoints use ASPP dilations "
                       f"{OFFICIAL_ASPP_DILATIONS}, the model has {rates}; build with "
                       f"aspp_dilations={OFFICIAL_ASPP_DILATIONS}.")


def _torch_layout(kind: str):
  """(torch shape from ours, convert torch array -> ours) for a parameter kind."""
  if kind == "conv":  # [kh, kw, ci, co] <- [co, ci, kh, kw]
    return (lambda sh: (sh[3], sh[2], sh[0], sh[1]),
            lambda a: np.transpose(a, (2, 3, 1, 0)))
  if kind == "linear":  # [i, o] <- [o, i] or a 1x1 conv [o, i, 1, 1]
    return lambda sh: (sh[1], sh[0]), lambda a: np.transpose(a.reshape(a.shape[0], -1), (1, 0))
  return (lambda sh: tuple(sh)), None


def official_torch_tensors(model) -> list[tuple[str, nnx.Variable, object, tuple[int, ...]]]:
  """[(official key, variable, convert fn or None, expected torch shape)] for every tensor of a
  LaConvNet / `laconvnet_vl` REC or RES model (GRU, MCAN LayerNorm and embedding included)."""
  _check_official(model)
  out = []

  def add(key, var, kind):
    if isinstance(var, nnx.Variable) and var.get_value() is not None:
      shape_fn, conv = _torch_layout(kind)
      out.append((key, var, conv, shape_fn(var.get_value().shape)))

  for path, node in nnx.iter_graph(model):
    p = common.path_str(path)
    if p == "language/gru":  # torch nn.GRU: weight_{ih,hh}_l0 [3H, in], gates (r, z, n)
      prefix = official_torch_name(p)
      for name in ("ih", "hh"):
        add(f"{prefix}.weight_{name}_l0", getattr(node, name).kernel, "linear")
        add(f"{prefix}.bias_{name}_l0", getattr(node, name).bias, None)
    elif p.startswith("language/gru/"):
      continue
    elif p == "language/embedding" and isinstance(node, nnx.Variable):
      add("lang_encoder.embedding.weight", node, None)
    elif isinstance(node, McanLayerNorm):
      prefix = official_torch_name(p)
      add(f"{prefix}.weight", node.weight, None)
      add(f"{prefix}.bias", node.bias, None)
    elif isinstance(node, (nnx.Conv, nnx.Linear)):
      prefix = official_torch_name(p)
      add(f"{prefix}.weight", node.kernel, "conv" if isinstance(node, nnx.Conv) else "linear")
      add(f"{prefix}.bias", node.bias, None)
    elif isinstance(node, nnx.BatchNorm):
      prefix = official_torch_name(p)
      for tname, var in (("weight", node.scale), ("bias", node.bias),
                         ("running_mean", node.mean), ("running_var", node.var)):
        add(f"{prefix}.{tname}", var, None)
  return out


def load_official_checkpoint(model, path_or_state_dict, *, strict: bool = True,
                             ignore: Sequence[str] = OFFICIAL_UNUSED):
  """Copies an official LaConvNet REC or RES checkpoint into `model` in place and returns it.

  Args:
    model: `laconvnet_vl` (language encoder + LaConvNet: every key of the official `Net`) or
      a LaConvNet (visual_encoder/multi_scale_manner/[detection_neck/]head; pass
      ignore=('lang_encoder.',)). head='rec' for `laconvnet_det` files, head='res' (default
      aspp_channels = 128 and aspp_dilations (6, 12, 18)) for `laconvnet_seg` files. Sizes
      must match (variant 'S'/'B', text_dim 512, embed_dim 300, vocab_size of the
      checkpoint's embedding).
    path_or_state_dict: `train.py`'s {'state_dict': ...} file (EMA weights), a bare state_dict
      or a mapping; a DDP 'module.' prefix is stripped.
    strict: raise `CheckpointMismatchError` naming every missing, unexpected and mis-shaped key.
    ignore: checkpoint key prefixes dropped silently (default: the unused AttFlat sentence head).
  """
  from jaxvision.models import torch_import as ti  # noqa: PLC0415 (import cycle)
  sd = ti.read_state_dict(path_or_state_dict)
  ti.copy_tensors(official_torch_tensors(model), sd, strict=strict, ignore=tuple(ignore),
                  title=f"official LaConvNet checkpoint does not match {type(model).__name__}",
                  hint="Build the model with the checkpoint's variant, sizes and head ('rec' for "
                       "laconvnet_det files, 'res' for laconvnet_seg files), load a LaConvNet "
                       "with ignore=('lang_encoder.',), or pass strict=False.")
  return model


from jaxvision.models import register_model  # noqa: E402

register_model("laconvnet_s", LaConvNet, variant="S")
register_model("laconvnet_b", LaConvNet, variant="B")
register_model("laconvnet_tiny", LaConvNet, variant="tiny")
