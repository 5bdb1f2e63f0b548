"""GAN generators and discriminators (GCC, issue 14): Pix2Pix U-Net, PatchGAN, mobile / plain
ResNet generators (CycleGAN), SAGAN G/D (spectral norm + self-attention), SRResNet + its D.

All are NHWC, float32 params, `dtype` = compute dtype, and width-configurable per layer: a
pruned generator is the same class built with other `widths` (formats in each docstring; they
follow the official GCC `filter_cfgs` / `cfg` lists so a released cfg can be passed as is).
Generators return images in [-1, 1] (tanh). Call: `model(x, train=False)`; with
`features=True` a model returns `(out, [feature maps])`, the GCC distillation layers.

Discriminators can carry per-channel selective-activation gates (`gates=True`): a
`SelectiveGate` multiplies channel c by m_c = (sign(alpha_c - threshold) + 1) / 2 with a
straight-through gradient (dm/dalpha = 1). alpha is a `GateAlpha` (an `nnx.Param` subclass)
so optimizers can select or exclude it with `nnx.state(model, GateAlpha)`.

Initialisation follows the official code (`init_weights`): conv / conv-transpose / linear
weights N(0, 0.02), biases 0, BN gamma N(1, 0.02), BN beta N(0, `bn_beta_std`) with the
code's quirk std 1.0 by default (pass bn_beta_std=0.0 for beta = 0). SAGAN and SRGAN use
PyTorch's default layer init.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common

normal02 = nnx.initializers.normal(0.02)
torch_default = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
zeros = nnx.initializers.zeros_init()


# ----------------------------------------------------------------------------- layers


def _bn(n: int, *, rngs: nnx.Rngs, dtype, beta_std: float | None) -> nnx.BatchNorm:
  """BatchNorm2d (momentum 0.1 PyTorch, eps 1e-5). beta_std None: PyTorch init (1, 0);
  else the GCC init gamma ~ N(1, 0.02), beta ~ N(0, beta_std)."""
  if beta_std is None:
    return common.bn(n, rngs=rngs, dtype=dtype)

  def scale_init(key, shape, dt=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dt)

  def bias_init(key, shape, dt=jnp.float32):
    return beta_std * jax.random.normal(key, shape, dt)

  return nnx.BatchNorm(n, momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32,
                       scale_init=scale_init, bias_init=bias_init, rngs=rngs)


def conv_transpose(cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1,
                   padding: int = 0, output_padding: int = 0, bias: bool = True,
                   dtype=jnp.float32, kernel_init=normal02) -> nnx.ConvTranspose:
  """PyTorch ConvTranspose2d(cin, cout, k, stride, padding, output_padding).

  Output size (H-1)*stride - 2*padding + k + output_padding. The kernel is stored as
  (k, k, cout, cin) with `transpose_kernel=True`, i.e. torch weight (cin, cout, k, k)
  transposed by (2, 3, 1, 0); the explicit lax padding is (k-1-p, k-1-p+output_padding).
  """
  lo = k - 1 - padding
  pad = ((lo, lo + output_padding), (lo, lo + output_padding))
  return nnx.ConvTranspose(cin, cout, (k, k), strides=(stride, stride), padding=pad,
                           transpose_kernel=True, use_bias=bias, kernel_init=kernel_init,
                           bias_init=zeros, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)


def instance_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """InstanceNorm2d without affine (statistics per sample and channel over H, W, in f32)."""
  xf = x.astype(jnp.float32)
  mean = jnp.mean(xf, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(xf - mean), axis=(1, 2), keepdims=True)
  return ((xf - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def reflect_pad(x: jax.Array, p: int) -> jax.Array:
  """ReflectionPad2d(p) on [B, H, W, C]."""
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
  """PyTorch PixelShuffle(r) in NHWC: [B, H, W, C*r*r] -> [B, H*r, W*r, C] (torch order)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, c // (r * r), r, r)
  x = x.transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, h * r, w * r, c // (r * r))


class GateAlpha(nnx.Param):
  """Retention parameters alpha of a selective-activation gate (trained by the arch step)."""


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def gate_mask(alpha: jax.Array, threshold: float) -> jax.Array:
  """m = (sign(alpha - threshold) + 1) / 2 in {0, 1/2, 1}; straight-through: dm/dalpha = 1."""
  return (jnp.sign(alpha - threshold) + 1.0) / 2.0


def _gate_mask_fwd(alpha, threshold):
  return gate_mask(alpha, threshold), None


def _gate_mask_bwd(threshold, _, g):
  return (g,)


gate_mask.defvjp(_gate_mask_fwd, _gate_mask_bwd)


class SelectiveGate(nnx.Module):
  """y = x * m[None, None, None, :], m = gate_mask(alpha, threshold); alpha init 1.0.

  Gradients: dx = g * m, dalpha_c = sum_{b,h,w} g * x (straight-through). x: [B, H, W, C].
  """

  def __init__(self, channels: int, threshold: float = 0.5):
    self.alpha = GateAlpha(jnp.ones((channels,), jnp.float32))
    self.threshold = float(threshold)

  def mask(self) -> jax.Array:
    return gate_mask(self.alpha[...], self.threshold)

  def __call__(self, x: jax.Array) -> jax.Array:
    return x * self.mask().astype(x.dtype)


class SNVector(nnx.BatchStat):
  """Power-iteration vector of spectral normalisation (updated in train mode)."""


def _l2n(v, eps=1e-12):
  return v / (jnp.linalg.norm(v) + eps)


class SpectralNorm(nnx.Module):
  """SAGAN's SpectralNorm around a Conv / ConvTranspose: W / sigma(W), one power iteration.

  The weight matrix is PyTorch's `w.view(w.shape[0], -1)` (rows: cout for a conv, cin for a
  conv-transpose); u [rows] and v [cols] are `SNVector`s updated in train mode (PyTorch's
  module also updates them in eval). sigma = u^T W v with u, v held constant (the gradient
  flows through W only), as in the official code. The wrapped layer is `sn_layer`, so it is
  counted by `jaxvision.flops` (thop missed these convs; see `count_sagan_thop_artifact`).
  """

  def __init__(self, layer: nnx.Conv | nnx.ConvTranspose, *, rngs: nnx.Rngs):
    self.sn_layer = layer
    w = self._matrix()
    ku, kv = rngs.params(), rngs.params()
    self.u = SNVector(_l2n(jax.random.normal(ku, (w.shape[0],), jnp.float32)))
    self.v = SNVector(_l2n(jax.random.normal(kv, (w.shape[1],), jnp.float32)))

  def _matrix(self) -> jax.Array:
    # Conv kernel (kh, kw, cin, cout) -> torch (cout, cin, kh, kw); ConvTranspose kernel
    # (kh, kw, cout, cin) [transpose_kernel] -> torch (cin, cout, kh, kw): the same transpose.
    k = self.sn_layer.kernel[...]
    return jnp.transpose(k, (3, 2, 0, 1)).reshape(k.shape[3], -1)

  def sigma(self, update: bool) -> jax.Array:
    w = self._matrix()
    wd = jax.lax.stop_gradient(w)
    v = _l2n(wd.T @ self.u[...])
    u = _l2n(wd @ v)
    if update:
      self.u[...] = u
      self.v[...] = v
    return u @ (w @ v)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    s = self.sigma(update=train)
    y = self.sn_layer(x)
    if self.sn_layer.bias is not None:
      b = self.sn_layer.bias[...].astype(y.dtype)
      return (y - b) / s.astype(y.dtype) + b
    return y / s.astype(y.dtype)


class SelfAttention(nnx.Module):
  """SAGAN Self_Attn: q, k = 1x1 conv (C -> max(1, C//8)), v = 1x1 conv (C -> C), gamma = 0.

  out_i = sum_j softmax_j(q_i . k_j) v_j; returns gamma * out + x. x: [B, H, W, C].
  """

  def __init__(self, c: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    cq = max(1, c // 8)
    kw = dict(rngs=rngs, bias=True, dtype=dtype, kernel_init=torch_default)
    self.query_conv = common.conv(c, cq, 1, padding=0, **kw)
    self.key_conv = common.conv(c, cq, 1, padding=0, **kw)
    self.value_conv = common.conv(c, c, 1, padding=0, **kw)
    self.gamma = nnx.Param(jnp.zeros((1,), jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    q = self.query_conv(x).reshape(b, h * w, -1)
    k = self.key_conv(x).reshape(b, h * w, -1)
    v = self.value_conv(x).reshape(b, h * w, c)
    att = jax.nn.softmax(jnp.einsum("bic,bjc->bij", q, k).astype(jnp.float32), axis=-1)
    out = jnp.einsum("bij,bjc->bic", att.astype(v.dtype), v).reshape(b, h, w, c)
    return self.gamma[...].astype(x.dtype) * out + x


def _kw(**kw) -> tuple:
  """Constructor kwargs as a static, hashable attribute (`build_kw`, used by `rebuild`)."""
  return tuple(sorted(kw.items()))


def rebuild(model: nnx.Module, widths: Sequence[int], *, rngs: nnx.Rngs | None = None,
            abstract: bool = False, **override) -> nnx.Module:
  """The same architecture as `model` with other `widths` (fresh init; GCC re-initialises the
  pruned generator). abstract=True builds it under `nnx.eval_shape` (for MAC counting)."""
  kw = dict(model.build_kw, **override)
  num_classes = kw.pop("num_classes")
  def make():
    return type(model)(num_classes, rngs=rngs or nnx.Rngs(0), widths=list(widths), **kw)

  return nnx.eval_shape(make) if abstract else make()


def _lrelu(x, slope=0.2):
  return jax.nn.leaky_relu(x, slope)


# ----------------------------------------------------------------------------- Pix2Pix U-Net


class UnetLevel(nnx.Module):
  """One U-Net level i: down conv (+BN) ... up conv-transpose (+BN, dropout)."""

  def __init__(self, level: int, num_downs: int, deepest: bool, cin: int, d: int, up_in: int,
               up_out: int, *, use_dropout: bool, rngs, dtype, beta_std):
    self.level, self.deepest = level, deepest
    self.outermost = level == 1
    self.innermost = level == num_downs
    self.down_conv = common.conv(cin, d, 4, stride=2, padding=1, bias=False, dtype=dtype,
                                 kernel_init=normal02, rngs=rngs)
    self.has_down_bn = not self.outermost and not self.innermost
    if self.has_down_bn:
      self.down_bn = _bn(d, rngs=rngs, dtype=dtype, beta_std=beta_std)
    self.up_conv = conv_transpose(up_in, up_out, 4, stride=2, padding=1, bias=self.outermost,
                                  dtype=dtype, rngs=rngs)
    if not self.outermost:
      self.up_bn = _bn(up_out, rngs=rngs, dtype=dtype, beta_std=beta_std)
    self.use_dropout = bool(use_dropout) and 5 <= level < num_downs
    if self.use_dropout:
      self.dropout = nnx.Dropout(0.5, rngs=rngs)


class UnetGenerator(nnx.Module):
  """Pix2Pix U-Net generator (GCC `UnetGenertor`), num_downs levels, BN, dropout 0.5.

  Level i (1..N) halves the resolution with Conv4x4 s2 p1 (no bias; LeakyReLU(0.2) before it
  except at level 1; BN after it except at levels 1 and N) and doubles it back with
  ConvTranspose4x4 s2 p1 (ReLU before; BN after, no bias, except level 1: bias + tanh);
  levels 5..N-1 apply dropout after the up BN. The up conv of level i reads
  concat(skip_i, up_{i+1}) (the deepest existing level reads its own down output).

  Widths format (GCC `filter_cfgs`, 2N-1 ints): [d_1..d_N, u_N..u_2] = down-conv outputs,
  then up-conv outputs from the innermost level outwards (level 1's up output is
  `num_classes`). Default d_i = ngf * min(2^(i-1), 8), u_i = d_{i-1}. A level i >= 2 whose
  d_i or u_i is 0 is removed together with every deeper level (their entries must be 0).

  KD features (`features=True`, GCC `generator_extract_layers`): [LReLU(BN output of level 2),
  LReLU(BN output of level 4), ReLU(up input of level 4), ReLU(up input of level 2)]; widths
  [d_2, d_4, d_4 + u_5, d_2 + u_3] (see `kd_widths`). The LeakyReLU is what the official
  hooks hold: the next level's in-place LeakyReLU(0.2) rewrites the hooked BN output.
  """
  default_input_shape = (256, 256, 3)

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               ngf: int = 64, num_downs: int = 8, in_channels: int = 3, use_dropout: bool = True,
               width_multiplier: float = 1.0, bn_beta_std: float = 1.0, dtype=jnp.float32):
    if num_downs < 4:
      raise ValueError(f"pix2pix_unet: num_downs must be >= 4 (KD reads level 4), got {num_downs}.")
    dtype = common.resolve_dtype(dtype)
    ngf = common.scale_width(ngf, width_multiplier)
    n = num_downs
    name = "pix2pix_unet"
    if widths is None:
      widths = UnetGenerator.default_widths(ngf=ngf, num_downs=n)
    widths = common.check_widths(name, widths, 2 * n - 1, f"[d_1..d_{n}, u_{n}..u_2]", True)
    d = [None] + widths[:n]                                  # d[i], i = 1..n
    u = [None, num_classes] + [widths[2 * n - i] for i in range(2, n + 1)]  # u[i], i = 1..n
    if d[1] == 0:
      raise ValueError(f"{name}: d_1 (widths[0]) must be >= 1; level 1 cannot be removed.")
    depth = 1
    while depth < n and d[depth + 1] > 0 and u[depth + 1] > 0:
      depth += 1
    extra = [i for i in range(depth + 1, n + 1) if d[i] or u[i]]
    if extra:
      raise ValueError(f"{name}: level {depth + 1} is removed (a 0 width) so levels {extra} "
                       f"must have width 0 too; got widths={widths}.")
    self.widths, self.num_downs, self.depth, self.ngf = list(widths), n, depth, ngf
    self.num_classes, self.dtype = num_classes, dtype
    levels = []
    for i in range(1, depth + 1):
      up_in = d[i] if i == depth else d[i] + u[i + 1]
      levels.append(UnetLevel(i, n, i == depth, in_channels if i == 1 else d[i - 1], d[i], up_in,
                              u[i], use_dropout=use_dropout, rngs=rngs, dtype=dtype,
                              beta_std=bn_beta_std))
    self.levels = nnx.List(levels)
    self.build_kw = _kw(num_classes=num_classes, ngf=ngf, num_downs=n, in_channels=in_channels,
                        use_dropout=use_dropout, bn_beta_std=bn_beta_std, dtype=dtype.name)

  @staticmethod
  def default_widths(ngf: int = 64, num_downs: int = 8, width_multiplier: float = 1.0,
                     **_) -> list[int]:
    ngf = common.scale_width(ngf, width_multiplier)
    d = [ngf * min(2 ** i, 8) for i in range(num_downs)]
    return d + [d[i - 2] for i in range(num_downs, 1, -1)]

  def kd_widths(self) -> list[int]:
    """Channel counts of the 4 KD features (GCC channel_cfgs[1], [3], [-4], [-2])."""
    n, w = self.num_downs, self.widths
    d = [None] + w[:n]
    u = [None, self.num_classes] + [w[2 * n - i] for i in range(2, n + 1)]
    cat = lambda i: d[i] if i == self.depth else d[i] + u[i + 1]  # noqa: E731
    return [d[2], d[4], cat(4), cat(2)]

  def __call__(self, x: jax.Array, train: bool = False, features: bool = False):
    """x: [B, H, W, Cin] (H, W divisible by 2^depth) -> [B, H, W, num_classes] in [-1, 1]."""
    ura = not train
    h = x.astype(self.dtype)
    skips, feats = [], {}
    for lv in self.levels:
      if not lv.outermost:
        h = _lrelu(h)
      h = lv.down_conv(h)
      if lv.has_down_bn:
        h = lv.down_bn(h, use_running_average=ura)
      if lv.level in (2, 4):
        # GCC hooks this BN output; the next level's in-place LeakyReLU then rewrites it.
        feats[f"down{lv.level}"] = _lrelu(h)
      skips.append(h)
    up = None
    for lv in reversed(list(self.levels)):
      inp = skips[lv.level - 1] if up is None else jnp.concatenate([skips[lv.level - 1], up], -1)
      inp = nnx.relu(inp)
      if lv.level in (2, 4):
        feats[f"up{lv.level}"] = inp
      up = lv.up_conv(inp)
      if lv.outermost:
        up = jnp.tanh(up)
      else:
        up = lv.up_bn(up, use_running_average=ura)
        if lv.use_dropout:
          up = lv.dropout(up, deterministic=not train)
    if features:
      return up, [feats["down2"], feats["down4"], feats["up4"], feats["up2"]]
    return up


# ----------------------------------------------------------------------------- PatchGAN


class PatchDiscriminator(nnx.Module):
  """PatchGAN (70x70 for n_layers 3) with optional per-channel selective-activation gates.

  Layers (4x4 convs, padding 1): C(in -> w_0, s2, bias) -> LReLU(0.2) [-> gate];
  for k = 1..n_layers: C(w_{k-1} -> w_k, s2 if k < n_layers else s1) -> norm [-> gate]
  -> LReLU(0.2); C(w_n -> 1, s1, bias). norm: 'batch' (no conv bias, GCC init) or
  'instance' (no affine, conv bias; the CycleGAN teacher D).

  Widths format (n_layers+1 ints): [w_0..w_n]; default ndf * min(2^k, 8).
  KD features (`features=True`, GCC `discriminator_extract_layers`): the norm outputs of
  layers 1 and n_layers as the official hooks hold them: LReLU(norm) in the plain D (in-place
  LeakyReLU), the pre-gate norm output in the gated D. Returns logits [B, h, w, 1].
  """
  default_input_shape = (256, 256, 6)

  def __init__(self, num_classes: int = 1, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               ndf: int = 64, n_layers: int = 3, in_channels: int = 6, gates: bool = False,
               threshold: float = 0.5, norm: str = "batch", width_multiplier: float = 1.0,
               bn_beta_std: float = 1.0, dtype=jnp.float32):
    if norm not in ("batch", "instance"):
      raise ValueError(f"patchgan: norm must be 'batch' or 'instance', got {norm!r}.")
    if n_layers < 1:
      raise ValueError(f"patchgan: n_layers must be >= 1, got {n_layers}.")
    dtype = common.resolve_dtype(dtype)
    ndf = common.scale_width(ndf, width_multiplier)
    if widths is None:
      widths = PatchDiscriminator.default_widths(ndf=ndf, n_layers=n_layers)
    widths = common.check_widths("patchgan", widths, n_layers + 1, "[w_0..w_n_layers]")
    self.widths, self.n_layers, self.norm, self.dtype = list(widths), n_layers, norm, dtype
    self.gated = bool(gates)
    ckw = dict(rngs=rngs, dtype=dtype, kernel_init=normal02)
    convs, norms, gate_list = [], [], []
    cin = in_channels
    for k, w in enumerate(widths):
      stride = 2 if k < n_layers else 1
      convs.append(common.conv(cin, w, 4, stride=stride, padding=1,
                               bias=(k == 0 or norm == "instance"), **ckw))
      if k > 0 and norm == "batch":
        norms.append(_bn(w, rngs=rngs, dtype=dtype, beta_std=bn_beta_std))
      if gates:
        gate_list.append(SelectiveGate(w, threshold))
      cin = w
    self.convs = nnx.List(convs)
    self.norms = nnx.List(norms)
    self.gates = nnx.List(gate_list)
    self.last = common.conv(cin, num_classes, 4, stride=1, padding=1, bias=True, **ckw)
    self.build_kw = _kw(num_classes=num_classes, n_layers=n_layers, in_channels=in_channels,
                        gates=gates, threshold=threshold, norm=norm, bn_beta_std=bn_beta_std,
                        dtype=dtype.name)

  @staticmethod
  def default_widths(ndf: int = 64, n_layers: int = 3, width_multiplier: float = 1.0,
                     **_) -> list[int]:
    ndf = common.scale_width(ndf, width_multiplier)
    return [ndf * min(2 ** k, 8) for k in range(n_layers + 1)]

  def __call__(self, x: jax.Array, train: bool = False, features: bool = False):
    """x: [B, H, W, in_channels] -> logits [B, H', W', 1] (H' = H/2^n_layers - 2)."""
    h = x.astype(self.dtype)
    feats = []
    for k, conv in enumerate(self.convs):
      h = conv(h)
      if k == 0:
        h = _lrelu(h)
        if self.gated:
          h = self.gates[0](h)
        continue
      h = (self.norms[k - 1](h, use_running_average=not train) if self.norm == "batch"
           else instance_norm(h))
      if k == 1 or k == self.n_layers:
        # GCC hooks the norm output: in the plain D the in-place LeakyReLU then rewrites it.
        feats.append(h if self.gated else _lrelu(h))
      if self.gated:
        h = self.gates[k](h)
      h = _lrelu(h)
    out = self.last(h)
    if features:
      return out, [feats[0], feats[-1]]
    return out


# ----------------------------------------------------------------------------- ResNet generators


class MobileResnetBlock(nnx.Module):
  """x + IN(Sep(mid -> c)(pad(ReLU(IN(Sep(c -> mid)(pad(x))))))), Sep = dw3x3 -> IN -> 1x1."""

  def __init__(self, c: int, mid: int, *, rngs, dtype):
    kw = dict(rngs=rngs, dtype=dtype, kernel_init=normal02, bias=True)
    self.dw1 = common.conv(c, c, 3, padding=0, groups=c, **kw)
    self.pw1 = common.conv(c, mid, 1, padding=0, **kw)
    self.dw2 = common.conv(mid, mid, 3, padding=0, groups=mid, **kw)
    self.pw2 = common.conv(mid, c, 1, padding=0, **kw)

  def __call__(self, x):
    h = self.pw1(instance_norm(self.dw1(reflect_pad(x, 1))))
    h = nnx.relu(instance_norm(h))
    h = self.pw2(instance_norm(self.dw2(reflect_pad(h, 1))))
    return x + instance_norm(h)


class ResnetBlock(nnx.Module):
  """x + IN(conv3(c <- mid)(pad(ReLU(IN(conv3(c -> mid)(pad(x))))))) (CycleGAN ResnetBlock)."""

  def __init__(self, c: int, mid: int, *, rngs, dtype):
    kw = dict(rngs=rngs, dtype=dtype, kernel_init=normal02, bias=True)
    self.conv1 = common.conv(c, mid, 3, padding=0, **kw)
    self.conv2 = common.conv(mid, c, 3, padding=0, **kw)

  def __call__(self, x):
    h = nnx.relu(instance_norm(self.conv1(reflect_pad(x, 1))))
    return x + instance_norm(self.conv2(reflect_pad(h, 1)))


class _ResnetGeneratorBase(nnx.Module):
  """Shared stem / downsampling / upsampling of the CycleGAN ResNet generators."""
  default_input_shape = (256, 256, 3)
  _name = ""

  def _build(self, num_classes, widths, n_blocks, in_channels, rngs, dtype, block_cls):
    kw = dict(rngs=rngs, dtype=dtype, kernel_init=normal02, bias=True)
    c0, c1, c2 = widths[:3]
    mids = self._block_mids(widths, n_blocks)
    u1, u2 = widths[-2:]
    self.stem = common.conv(in_channels, c0, 7, padding=0, **kw)
    self.down1 = common.conv(c0, c1, 3, stride=2, padding=1, **kw)
    self.down2 = common.conv(c1, c2, 3, stride=2, padding=1, **kw)
    self.block_index = [b for b, m in enumerate(mids) if m > 0]
    self.blocks = nnx.List([block_cls(c2, mids[b], rngs=rngs, dtype=dtype)
                            for b in self.block_index])
    self.up1 = conv_transpose(c2, u1, 3, stride=2, padding=1, output_padding=1, rngs=rngs,
                              dtype=dtype)
    self.up2 = conv_transpose(u1, u2, 3, stride=2, padding=1, output_padding=1, rngs=rngs,
                              dtype=dtype)
    self.last = common.conv(u2, num_classes, 7, padding=0, **kw)
    self.n_blocks, self.dtype = n_blocks, dtype
    # KD taps (GCC model.9/12/15/18): after down2, and after blocks n/3, 2n/3, n.
    self.kd_after = [n_blocks // 3, 2 * n_blocks // 3, n_blocks]

  def kd_widths(self) -> list[int]:
    return [self.widths[2]] * 4

  def __call__(self, x: jax.Array, train: bool = False, features: bool = False):
    """x: [B, H, W, Cin] (H, W divisible by 4) -> [B, H, W, num_classes] in [-1, 1]."""
    h = x.astype(self.dtype)
    h = nnx.relu(instance_norm(self.stem(reflect_pad(h, 3))))
    h = nnx.relu(instance_norm(self.down1(h)))
    h = nnx.relu(instance_norm(self.down2(h)))
    feats = [h]
    done = 0
    blocks = dict(zip(self.block_index, self.blocks))
    for b in range(self.n_blocks):
      if b in blocks:
        h = blocks[b](h)
      done += 1
      if done in self.kd_after[:-1] or (done == self.n_blocks):
        feats.append(h)
    h = nnx.relu(instance_norm(self.up1(h)))
    h = nnx.relu(instance_norm(self.up2(h)))
    out = jnp.tanh(self.last(reflect_pad(h, 3)))
    if features:
      return out, feats[:4]
    return out


class MobileResnetGenerator(_ResnetGeneratorBase):
  """CycleGAN mobile ResNet generator (GAN Compression / GCC), InstanceNorm (no affine), reflect.

  ReflPad3 -> C7(in -> c0) -> IN -> ReLU -> C3s2(c0 -> c1) -> IN -> ReLU -> C3s2(c1 -> c2) ->
  IN -> ReLU -> n_blocks x MobileResnetBlock(c2, mid_b) -> ConvT3s2(c2 -> u1) -> IN -> ReLU ->
  ConvT3s2(u1 -> u2) -> IN -> ReLU -> ReflPad3 -> C7(u2 -> out) -> tanh. All convs have bias.

  Widths format (GCC `cfg`, 3 + 2*n_blocks + 2 ints): [c0, c1, c2, (mid_b, res_b) x n_blocks,
  u1, u2]; every res_b must equal c2 (the residual width); a block with mid_b = 0 is
  skipped. Default (ngf 64): [64, 128, 256, (256, 256) x 9, 128, 64].
  KD features: [after down2, after block n/3, 2n/3, n] (GCC model.9/12/15/18), width c2.
  """
  _name = "mobile_resnet_generator"

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               ngf: int = 64, n_blocks: int = 9, in_channels: int = 3,
               width_multiplier: float = 1.0, dtype=jnp.float32):
    dtype = common.resolve_dtype(dtype)
    ngf = common.scale_width(ngf, width_multiplier)
    if widths is None:
      widths = MobileResnetGenerator.default_widths(ngf=ngf, n_blocks=n_blocks)
    widths = common.check_widths(self._name, widths, 5 + 2 * n_blocks,
                             "[c0, c1, c2, (mid, res) x n_blocks, u1, u2]", allow_zero=True)
    zero = [i for i, w in enumerate(widths) if w == 0 and not (3 <= i < 3 + 2 * n_blocks
                                                              and (i - 3) % 2 == 0)]
    if zero:
      raise ValueError(f"{self._name}: only block inner widths may be 0; entries {zero} are 0.")
    res = widths[4:3 + 2 * n_blocks:2]
    if any(r != widths[2] for r in res):
      raise ValueError(f"{self._name}: every block's residual width must equal c2={widths[2]} "
                       f"(residual add); got {res}.")
    self.widths = list(widths)
    self._build(num_classes, widths, n_blocks, in_channels, rngs, dtype, MobileResnetBlock)
    self.build_kw = _kw(num_classes=num_classes, n_blocks=n_blocks, in_channels=in_channels,
                        dtype=dtype.name)

  @staticmethod
  def _block_mids(widths, n_blocks):
    return widths[3:3 + 2 * n_blocks:2]

  @staticmethod
  def default_widths(ngf: int = 64, n_blocks: int = 9, width_multiplier: float = 1.0,
                     **_) -> list[int]:
    ngf = common.scale_width(ngf, width_multiplier)
    return [ngf, 2 * ngf, 4 * ngf] + [4 * ngf] * (2 * n_blocks) + [2 * ngf, ngf]


class ResnetGenerator(_ResnetGeneratorBase):
  """The original CycleGAN ResNet generator (9 blocks of two 3x3 convs), InstanceNorm, reflect.

  Same stem / down / up as `MobileResnetGenerator`; block b: ReflPad1 -> C3(c2 -> mid_b) ->
  IN -> ReLU -> ReflPad1 -> C3(mid_b -> c2) -> IN, + x. Widths format (3 + n_blocks + 2):
  [c0, c1, c2, mid_1..mid_n, u1, u2]; default (ngf 64) [64, 128, 256, 256 x 9, 128, 64]
  (56.83 G thop MACs at 256x256, the literature's "56.8 G CycleGAN").
  """
  _name = "resnet_generator"

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               ngf: int = 64, n_blocks: int = 9, in_channels: int = 3,
               width_multiplier: float = 1.0, dtype=jnp.float32):
    dtype = common.resolve_dtype(dtype)
    ngf = common.scale_width(ngf, width_multiplier)
    if widths is None:
      widths = ResnetGenerator.default_widths(ngf=ngf, n_blocks=n_blocks)
    widths = common.check_widths(self._name, widths, 5 + n_blocks,
                             "[c0, c1, c2, mid_1..mid_n, u1, u2]")
    self.widths = list(widths)
    self._build(num_classes, widths, n_blocks, in_channels, rngs, dtype, ResnetBlock)
    self.build_kw = _kw(num_classes=num_classes, n_blocks=n_blocks, in_channels=in_channels,
                        dtype=dtype.name)

  @staticmethod
  def _block_mids(widths, n_blocks):
    return widths[3:3 + n_blocks]

  @staticmethod
  def default_widths(ngf: int = 64, n_blocks: int = 9, width_multiplier: float = 1.0,
                     **_) -> list[int]:
    ngf = common.scale_width(ngf, width_multiplier)
    return [ngf, 2 * ngf, 4 * ngf] + [4 * ngf] * n_blocks + [2 * ngf, ngf]


# ----------------------------------------------------------------------------- SAGAN


class SAGANGenerator(nnx.Module):
  """SAGAN generator for 64x64 (GCC `models/SAGAN.py`): z [B, z_dim] -> image [B, 64, 64, 3].

  l1: SN-ConvT4(z -> c1) on 1x1 -> BN -> ReLU (4x4); l2..l4: SN-ConvT4 s2 p1 -> BN -> ReLU
  (8, 16, 32); attn1 (c3) after l3, attn2 (c4) after l4; last: ConvT4 s2 p1 (c4 -> 3) -> tanh.
  Widths format (4 ints): [c1, c2, c3, c4]; default ngf * [8, 4, 2, 1] (the BN layers GCC
  prunes). KD features: [l2 output, attn2 output] (GCC `l2`, `attn2`).
  z may also be given as [B, 1, 1, z_dim].
  """
  default_input_shape = (1, 1, 128)

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               ngf: int = 64, z_dim: int = 128, width_multiplier: float = 1.0,
               dtype=jnp.float32):
    dtype = common.resolve_dtype(dtype)
    ngf = common.scale_width(ngf, width_multiplier)
    if widths is None:
      widths = SAGANGenerator.default_widths(ngf=ngf)
    widths = common.check_widths("sagan_generator", widths, 4, "[c1, c2, c3, c4]")
    self.widths, self.z_dim, self.dtype = list(widths), z_dim, dtype
    ti = dict(rngs=rngs, dtype=dtype, kernel_init=torch_default)
    cin = z_dim
    sn, bns = [], []
    for k, w in enumerate(widths):
      layer = (conv_transpose(cin, w, 4, **ti) if k == 0 else
               conv_transpose(cin, w, 4, stride=2, padding=1, **ti))
      sn.append(SpectralNorm(layer, rngs=rngs))
      bns.append(common.bn(w, rngs=rngs, dtype=dtype))
      cin = w
    self.sn = nnx.List(sn)
    self.bns = nnx.List(bns)
    self.attn1 = SelfAttention(widths[2], rngs=rngs, dtype=dtype)
    self.attn2 = SelfAttention(widths[3], rngs=rngs, dtype=dtype)
    self.last = conv_transpose(widths[3], num_classes, 4, stride=2, padding=1, **ti)
    self.build_kw = _kw(num_classes=num_classes, z_dim=z_dim, dtype=dtype.name)

  @staticmethod
  def default_widths(ngf: int = 64, width_multiplier: float = 1.0, **_) -> list[int]:
    ngf = common.scale_width(ngf, width_multiplier)
    return [8 * ngf, 4 * ngf, 2 * ngf, ngf]

  def kd_widths(self) -> list[int]:
    return [self.widths[1], self.widths[3]]

  def __call__(self, z: jax.Array, train: bool = False, features: bool = False):
    """z: [B, z_dim] or [B, 1, 1, z_dim] -> [B, 64, 64, 3] in [-1, 1]."""
    h = z.reshape(z.shape[0], 1, 1, -1).astype(self.dtype)
    feats = []
    for k in range(4):
      h = nnx.relu(self.bns[k](self.sn[k](h, train), use_running_average=not train))
      if k == 1:
        feats.append(h)
      if k == 2:
        h = self.attn1(h)
    h = self.attn2(h)
    feats.append(h)
    out = jnp.tanh(self.last(h))
    return (out, feats) if features else out


class SAGANDiscriminator(nnx.Module):
  """SAGAN discriminator for 64x64: l1..l4 SN-Conv4 s2 p1 (bias) [-> gate] -> LReLU(0.1);
  attn1 (w3) after l3, attn2 (w4) after l4; last Conv4 valid (w4 -> 1) -> logits [B].

  Widths format (4 ints): [w1..w4]; default ndf * [1, 2, 4, 8]. Gates (GCC, threshold 0.1)
  sit after each SN conv, before the LeakyReLU. KD features: [l2 output, attn2 output].
  """
  default_input_shape = (64, 64, 3)

  def __init__(self, num_classes: int = 1, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               ndf: int = 64, in_channels: int = 3, gates: bool = False, threshold: float = 0.1,
               width_multiplier: float = 1.0, dtype=jnp.float32):
    dtype = common.resolve_dtype(dtype)
    ndf = common.scale_width(ndf, width_multiplier)
    if widths is None:
      widths = SAGANDiscriminator.default_widths(ndf=ndf)
    widths = common.check_widths("sagan_discriminator", widths, 4, "[w1, w2, w3, w4]")
    self.widths, self.dtype, self.gated = list(widths), dtype, bool(gates)
    ti = dict(rngs=rngs, dtype=dtype, kernel_init=torch_default, bias=True)
    cin, sn = in_channels, []
    for w in widths:
      sn.append(SpectralNorm(common.conv(cin, w, 4, stride=2, padding=1, **ti), rngs=rngs))
      cin = w
    self.sn = nnx.List(sn)
    self.gates = nnx.List([SelectiveGate(w, threshold) for w in widths] if gates else [])
    self.attn1 = SelfAttention(widths[2], rngs=rngs, dtype=dtype)
    self.attn2 = SelfAttention(widths[3], rngs=rngs, dtype=dtype)
    self.last = common.conv(widths[3], num_classes, 4, padding=0, **ti)
    self.build_kw = _kw(num_classes=num_classes, in_channels=in_channels, gates=gates,
                        threshold=threshold, dtype=dtype.name)

  @staticmethod
  def default_widths(ndf: int = 64, width_multiplier: float = 1.0, **_) -> list[int]:
    ndf = common.scale_width(ndf, width_multiplier)
    return [ndf, 2 * ndf, 4 * ndf, 8 * ndf]

  def __call__(self, x: jax.Array, train: bool = False, features: bool = False):
    """x: [B, 64, 64, in_channels] -> logits [B]."""
    h = x.astype(self.dtype)
    feats = []
    for k in range(4):
      h = self.sn[k](h, train)
      if self.gated:
        h = self.gates[k](h)
      h = _lrelu(h, 0.1)
      if k == 1:
        feats.append(h)
      if k == 2:
        h = self.attn1(h)
    h = self.attn2(h)
    feats.append(h)
    out = self.last(h).reshape(h.shape[0])
    return (out, feats) if features else out


# ----------------------------------------------------------------------------- SRGAN


class PReLU(nnx.Module):
  """nn.PReLU() with one shared slope (init 0.25)."""

  def __init__(self):
    self.weight = nnx.Param(jnp.full((1,), 0.25, jnp.float32))

  def __call__(self, x):
    a = self.weight[...].astype(x.dtype)
    return jnp.where(x >= 0, x, a * x)


class SRResidualBlock(nnx.Module):
  """x + BN(C3(inner -> c)(PReLU(BN(C3(c -> inner)(x)))))."""

  def __init__(self, c: int, inner: int, *, rngs, dtype):
    kw = dict(rngs=rngs, dtype=dtype, kernel_init=torch_default, bias=True)
    self.conv1 = common.conv(c, inner, 3, **kw)
    self.bn1 = common.bn(inner, rngs=rngs, dtype=dtype)
    self.act = PReLU()
    self.conv2 = common.conv(inner, c, 3, **kw)
    self.bn2 = common.bn(c, rngs=rngs, dtype=dtype)

  def __call__(self, x, train):
    ura = not train
    h = self.act(self.bn1(self.conv1(x), use_running_average=ura))
    return x + self.bn2(self.conv2(h), use_running_average=ura)


class SRResNet(nnx.Module):
  """SRResNet generator (SRGAN, GCC `models/SRGAN.py`), x`scale` (2, 4 or 8).

  C9(in -> c) -> PReLU; n_blocks x SRResidualBlock(c, inner_b); C3(c -> c) -> BN, + stem;
  log2(scale) x [C3(c -> 4c) -> PixelShuffle(2) -> PReLU]; C9(c -> out) -> tanh. All convs
  have bias. Widths format (1 + n_blocks ints): [c, inner_1..inner_n] (GCC prunes the inner
  widths; the prototype trunk is ngf 24); default [64] * 17. KD features: [after block n/2,
  after block n] (trunk width).
  """
  default_input_shape = (24, 24, 3)

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               n_channels: int = 64, n_blocks: int = 16, scale: int = 4, in_channels: int = 3,
               width_multiplier: float = 1.0, dtype=jnp.float32):
    if scale not in (2, 4, 8):
      raise ValueError(f"srresnet: scale must be 2, 4 or 8, got {scale}.")
    dtype = common.resolve_dtype(dtype)
    n_channels = common.scale_width(n_channels, width_multiplier)
    if widths is None:
      widths = SRResNet.default_widths(n_channels=n_channels, n_blocks=n_blocks)
    widths = common.check_widths("srresnet", widths, 1 + n_blocks, "[c, inner_1..inner_n]")
    c = widths[0]
    self.widths, self.n_blocks, self.dtype = list(widths), n_blocks, dtype
    kw = dict(rngs=rngs, dtype=dtype, kernel_init=torch_default, bias=True)
    self.conv1 = common.conv(in_channels, c, 9, **kw)
    self.act1 = PReLU()
    self.blocks = nnx.List([SRResidualBlock(c, w, rngs=rngs, dtype=dtype) for w in widths[1:]])
    self.conv2 = common.conv(c, c, 3, **kw)
    self.bn2 = common.bn(c, rngs=rngs, dtype=dtype)
    n_up = int(math.log2(scale))
    self.up_convs = nnx.List([common.conv(c, 4 * c, 3, **kw) for _ in range(n_up)])
    self.up_acts = nnx.List([PReLU() for _ in range(n_up)])
    self.conv3 = common.conv(c, num_classes, 9, **kw)
    self.build_kw = _kw(num_classes=num_classes, n_blocks=n_blocks, scale=scale,
                        in_channels=in_channels, dtype=dtype.name)

  @staticmethod
  def default_widths(n_channels: int = 64, n_blocks: int = 16, width_multiplier: float = 1.0,
                     **_) -> list[int]:
    c = common.scale_width(n_channels, width_multiplier)
    return [c] * (1 + n_blocks)

  def kd_widths(self) -> list[int]:
    return [self.widths[0]] * 2

  def __call__(self, x: jax.Array, train: bool = False, features: bool = False):
    """x: [B, h, w, 3] -> [B, h*scale, w*scale, 3] in [-1, 1]."""
    h = self.act1(self.conv1(x.astype(self.dtype)))
    stem, feats = h, []
    for b, blk in enumerate(self.blocks):
      h = blk(h, train)
      if b + 1 in (self.n_blocks // 2, self.n_blocks):
        feats.append(h)
    h = self.bn2(self.conv2(h), use_running_average=not train) + stem
    for conv, act in zip(self.up_convs, self.up_acts):
      h = act(pixel_shuffle(conv(h), 2))
    out = jnp.tanh(self.conv3(h))
    return (out, feats) if features else out


class SRDiscriminator(nnx.Module):
  """SRGAN VGG-style discriminator (GCC version): n_blocks x [C3(bias), stride 1 / 2 alternating
  -> BN (not block 0) [-> gate] -> LReLU(0.2)] -> global average pool -> Linear(w_last -> 1).

  Widths format (n_blocks ints); default: n_channels, then doubled every 2nd block
  ([64, 64, 128, 128] for 4 blocks). KD features: [block 1 output, last block output].
  """
  default_input_shape = (96, 96, 3)

  def __init__(self, num_classes: int = 1, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               n_channels: int = 64, n_blocks: int = 4, in_channels: int = 3, gates: bool = False,
               threshold: float = 0.5, width_multiplier: float = 1.0, dtype=jnp.float32):
    dtype = common.resolve_dtype(dtype)
    n_channels = common.scale_width(n_channels, width_multiplier)
    if widths is None:
      widths = SRDiscriminator.default_widths(n_channels=n_channels, n_blocks=n_blocks)
    widths = common.check_widths("srgan_discriminator", widths, n_blocks, f"{n_blocks} block widths")
    self.widths, self.dtype, self.gated = list(widths), dtype, bool(gates)
    kw = dict(rngs=rngs, dtype=dtype, kernel_init=torch_default, bias=True)
    convs, bns, cin = [], [], in_channels
    for i, w in enumerate(widths):
      convs.append(common.conv(cin, w, 3, stride=1 if i % 2 == 0 else 2, **kw))
      if i > 0:
        bns.append(common.bn(w, rngs=rngs, dtype=dtype))
      cin = w
    self.convs, self.bns = nnx.List(convs), nnx.List(bns)
    self.gates = nnx.List([SelectiveGate(w, threshold) for w in widths] if gates else [])
    self.fc = common.linear(cin, num_classes, rngs=rngs, dtype=dtype)
    self.build_kw = _kw(num_classes=num_classes, n_blocks=n_blocks, in_channels=in_channels,
                        gates=gates, threshold=threshold, dtype=dtype.name)

  @staticmethod
  def default_widths(n_channels: int = 64, n_blocks: int = 4, width_multiplier: float = 1.0,
                     **_) -> list[int]:
    c = common.scale_width(n_channels, width_multiplier)
    out, cin = [], 3
    for i in range(n_blocks):
      w = (c if i == 0 else cin * 2) if i % 2 == 0 else cin
      out.append(w)
      cin = w
    return out

  def __call__(self, x: jax.Array, train: bool = False, features: bool = False):
    """x: [B, H, W, 3] -> logits [B, 1]."""
    h = x.astype(self.dtype)
    feats = []
    for i, conv in enumerate(self.convs):
      h = conv(h)
      if i > 0:
        h = self.bns[i - 1](h, use_running_average=not train)
      if self.gated:
        h = self.gates[i](h)
      h = _lrelu(h, 0.2)
      if i == 1 or i == len(self.convs) - 1:
        feats.append(h)
    out = self.fc(common.global_avg_pool(h))
    return (out, [feats[0], feats[-1]]) if features else out


# ----------------------------------------------------------------------------- helpers


def gates_of(model: nnx.Module) -> list[tuple[str, SelectiveGate]]:
  """All SelectiveGate submodules as (path, gate), in graph order."""
  return [(common.path_str(p), n) for p, n in nnx.iter_graph(model) if isinstance(n, SelectiveGate)]


from jaxvision.models import register_model  # noqa: E402

register_model("pix2pix_unet", UnetGenerator)
register_model("patchgan", PatchDiscriminator)
register_model("mobile_resnet_generator", MobileResnetGenerator)
register_model("resnet_generator", ResnetGenerator)
register_model("sagan_generator", SAGANGenerator)
register_model("sagan_discriminator", SAGANDiscriminator)
register_model("srresnet", SRResNet)
register_model("srgan_discriminator", SRDiscriminator)
