"""Super-resolution zoo: EDSR, RRDB-Net (ESRGAN), RCAN, the ESRGAN discriminator, VGG-19 features.

All NHWC, float32 params, `dtype` = compute dtype, images in [0, 1] (rgb_range 1). The SR
nets map LR [B, h, w, 3] -> SR [B, h·s, w·s, 3] for scale s in {2, 3, 4}; `num_classes` is
read as the number of output channels (3 for RGB). Pixel-shuffle follows PyTorch's channel
order (c·r² + i·r + j), so torch weights of EDSR/RCAN map 1:1 after OIHW -> HWIO.

Registered names (see the class docstrings): edsr_baseline (16 x 64, res scale 1), edsr
(32 x 256, res scale 0.1), rrdbnet (23 RRDB, nf 64, gc 32), rcan (10 groups x 20 RCAB, 64),
esrgan_discriminator (VGG-style, 128x128 input), vgg19_features (torchvision VGG-19 trunk
up to relu3_4 / conv5_4, for perceptual and contrastive losses), random_conv_features (a
fixed random 3-conv embedding, the stand-in when no VGG weights are given).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models import common

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCALES = (2, 3, 4)

# PyTorch Conv2d default init: kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)) = var 1/(3 fan_in).
torch_conv_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int):
  bound = 1.0 / np.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound,
                                                                  bound)


def sr_conv(cin: int, cout: int, k: int = 3, *, rngs: nnx.Rngs, dtype=jnp.float32,
            stride: int = 1, padding: int | None = None, bias: bool = True,
            scale: float = 1.0) -> nnx.Conv:
  """Conv2d with bias and PyTorch's default init; `scale` multiplies the init (RRDB uses 0.1)."""
  kinit = torch_conv_init
  if scale != 1.0:
    kinit = nnx.initializers.variance_scaling(2.0 * scale ** 2, "fan_in", "normal")
  return common.conv(cin, cout, k, stride=stride, padding=padding, bias=bias, dtype=dtype,
                     kernel_init=kinit, bias_init=(common.zeros if scale != 1.0
                                                   else _torch_bias_init(cin * k * k)),
                     rngs=rngs)


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
  """PyTorch PixelShuffle in NHWC: [B, H, W, C·r²] -> [B, H·r, W·r, C] (channel c·r²+i·r+j)."""
  b, h, w, c = x.shape
  if c % (r * r):
    raise ValueError(f"pixel_shuffle: channels {c} not divisible by r²={r * r}.")
  oc = c // (r * r)
  x = x.reshape(b, h, w, oc, r, r).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, h * r, w * r, oc)


def upsample_nearest(x: jax.Array, r: int) -> jax.Array:
  """Nearest-neighbour ×r: [B, H, W, C] -> [B, H·r, W·r, C]."""
  return jnp.repeat(jnp.repeat(x, r, axis=1), r, axis=2)


def _check_scale(name: str, scale: int) -> int:
  if scale not in SCALES:
    raise ValueError(f"{name}: scale must be one of {SCALES}, got {scale!r}.")
  return int(scale)


def _stages(scale: int) -> list[int]:
  """Upsampling factors applied in turn: ×2 -> [2], ×3 -> [3], ×4 -> [2, 2]."""
  return {2: [2], 3: [3], 4: [2, 2]}[scale]


class Upsampler(nnx.Module):
  """EDSR/RCAN pixel-shuffle upsampler: per ×2 stage conv(C -> 4C) + shuffle; ×3: conv(C -> 9C).

  x: [B, H, W, C] -> [B, H·s, W·s, C]. Submodules: `convs[i]`.
  """

  def __init__(self, scale: int, nf: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    self.factors = _stages(scale)
    self.convs = nnx.List([sr_conv(nf, r * r * nf, 3, dtype=dtype, rngs=rngs)
                           for r in self.factors])

  def __call__(self, x: jax.Array) -> jax.Array:
    for r, c in zip(self.factors, self.convs):
      x = pixel_shuffle(c(x), r)
    return x


class ResBlock(nnx.Module):
  """EDSR block: conv3x3 -> ReLU -> conv3x3, ·res_scale, + x. x: [B, H, W, nf]."""

  def __init__(self, nf: int, res_scale: float, *, rngs: nnx.Rngs, dtype=jnp.float32):
    self.res_scale = res_scale
    self.conv1 = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)
    self.conv2 = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return x + self.res_scale * self.conv2(nnx.relu(self.conv1(x)))


def _mean_shift(x: jax.Array, mean: Sequence[float] | None, sign: float) -> jax.Array:
  if mean is None:
    return x
  return x + sign * jnp.asarray(mean, x.dtype)


class EDSR(nnx.Module):
  """EDSR (Lim et al. 2017): head conv -> n_resblocks ResBlocks -> conv, + head (global skip)
  -> pixel-shuffle upsampler -> tail conv; RGB mean (DIV2K) subtracted in, added back out.

  Widths format: [n_feats] (one int). Sizes: baseline 16 blocks × 64, res scale 1
  (1,369,859 params at ×2, 1,517,571 at ×4); paper 32 × 256, res scale 0.1 (43,089,923
  at ×4).
  Call: `model(lr, train=False) -> sr`; lr: [B, h, w, 3] in [0, 1]; sr: [B, h·s, w·s, C].
  Submodules: `head`, `body[i].{conv1,conv2}`, `body_conv`, `upsampler.convs[i]`, `tail`.
  """
  default_input_shape = (48, 48, 3)

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               scale: int = 4, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0,
               rgb_mean: Sequence[float] | None = DIV2K_RGB_MEAN, width_multiplier: float = 1.0,
               dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    self.scale = _check_scale("EDSR", scale)
    widths = common.check_widths("edsr", widths, 1, "[n_feats]")
    if widths is None:
      widths = self.default_widths(n_feats=n_feats, width_multiplier=width_multiplier)
    nf = widths[0]
    if n_resblocks < 1:
      raise ValueError(f"EDSR: n_resblocks must be >= 1, got {n_resblocks}.")
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    self.rgb_mean = None if rgb_mean is None else tuple(float(v) for v in rgb_mean)
    self.head = sr_conv(in_channels, nf, 3, dtype=dtype, rngs=rngs)
    self.body = nnx.List([ResBlock(nf, res_scale, dtype=dtype, rngs=rngs)
                          for _ in range(n_resblocks)])
    self.body_conv = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)
    self.upsampler = Upsampler(scale, nf, dtype=dtype, rngs=rngs)
    self.tail = sr_conv(nf, num_classes, 3, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = _mean_shift(x.astype(self.dtype), self.rgb_mean, -1.0)
    x = self.head(x)
    y = x
    for blk in self.body:
      y = blk(y)
    y = self.body_conv(y) + x
    y = self.tail(self.upsampler(y))
    return _mean_shift(y, self.rgb_mean if self.num_classes == 3 else None, 1.0)

  @staticmethod
  def default_widths(n_feats: int = 64, width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(n_feats, width_multiplier)]


class ResidualDenseBlock(nnx.Module):
  """ESRGAN RDB: 5 densely connected convs (growth gc, LeakyReLU 0.2 after the first 4),
  output ·0.2 + x. x: [B, H, W, nf]."""

  def __init__(self, nf: int, gc: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    self.convs = nnx.List([sr_conv(nf + i * gc, gc if i < 4 else nf, 3, dtype=dtype, rngs=rngs,
                                   scale=0.1) for i in range(5)])

  def __call__(self, x: jax.Array) -> jax.Array:
    feats = [x]
    for i, c in enumerate(self.convs):
      y = c(jnp.concatenate(feats, axis=-1))
      if i < 4:
        feats.append(nnx.leaky_relu(y, 0.2))
    return x + 0.2 * y


class RRDB(nnx.Module):
  """Residual-in-residual dense block: 3 RDBs, output ·0.2 + x."""

  def __init__(self, nf: int, gc: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    self.rdbs = nnx.List([ResidualDenseBlock(nf, gc, dtype=dtype, rngs=rngs) for _ in range(3)])

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x
    for r in self.rdbs:
      y = r(y)
    return x + 0.2 * y


class RRDBNet(nnx.Module):
  """RRDB-Net, the ESRGAN generator (Wang et al. 2018): conv_first -> n_blocks RRDB -> conv_body,
  + trunk skip -> per upsampling stage nearest ×r + conv + LReLU(0.2) -> conv_hr + LReLU ->
  conv_last. Stages: ×2 -> [2], ×3 -> [3], ×4 -> [2, 2]. No mean shift. 23 blocks, nf 64,
  gc 32: 16,697,987 params at ×4. RDB convs init Kaiming·0.1 (ESRGAN).

  Widths format: [nf, gc]. Call: `model(lr) -> sr`, lr: [B, h, w, 3] -> [B, h·s, w·s, C].
  Submodules: `conv_first`, `body[i].rdbs[j].convs[k]`, `conv_body`, `conv_up[i]`, `conv_hr`,
  `conv_last`.
  """
  default_input_shape = (32, 32, 3)

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               scale: int = 4, n_blocks: int = 23, nf: int = 64, gc: int = 32,
               width_multiplier: float = 1.0, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    self.scale = _check_scale("RRDBNet", scale)
    widths = common.check_widths("rrdbnet", widths, 2, "[nf, gc]")
    if widths is None:
      widths = self.default_widths(nf=nf, gc=gc, width_multiplier=width_multiplier)
    nf, gc = widths
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    self.factors = _stages(scale)
    self.conv_first = sr_conv(in_channels, nf, 3, dtype=dtype, rngs=rngs)
    self.body = nnx.List([RRDB(nf, gc, dtype=dtype, rngs=rngs) for _ in range(n_blocks)])
    self.conv_body = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)
    self.conv_up = nnx.List([sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs) for _ in self.factors])
    self.conv_hr = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)
    self.conv_last = sr_conv(nf, num_classes, 3, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = self.conv_first(x.astype(self.dtype))
    y = x
    for blk in self.body:
      y = blk(y)
    y = x + self.conv_body(y)
    for r, c in zip(self.factors, self.conv_up):
      y = nnx.leaky_relu(c(upsample_nearest(y, r)), 0.2)
    return self.conv_last(nnx.leaky_relu(self.conv_hr(y), 0.2))

  @staticmethod
  def default_widths(nf: int = 64, gc: int = 32, width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(nf, width_multiplier), common.scale_width(gc, width_multiplier)]


class ChannelAttention(nnx.Module):
  """RCAN CA: GAP -> 1x1 conv nf -> nf/r (ReLU) -> 1x1 conv -> sigmoid, scales x."""

  def __init__(self, nf: int, reduction: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    mid = max(1, nf // reduction)
    self.down = sr_conv(nf, mid, 1, dtype=dtype, rngs=rngs)
    self.up = sr_conv(mid, nf, 1, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    s = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(x.dtype)
    return x * jax.nn.sigmoid(self.up(nnx.relu(self.down(s))))


class RCAB(nnx.Module):
  """Residual channel-attention block: conv -> ReLU -> conv -> CA, + x."""

  def __init__(self, nf: int, reduction: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    self.conv1 = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)
    self.conv2 = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)
    self.ca = ChannelAttention(nf, reduction, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return x + self.ca(self.conv2(nnx.relu(self.conv1(x))))


class ResidualGroup(nnx.Module):
  """RCAN residual group: n RCABs -> conv, + x."""

  def __init__(self, nf: int, n: int, reduction: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    self.blocks = nnx.List([RCAB(nf, reduction, dtype=dtype, rngs=rngs) for _ in range(n)])
    self.conv = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x
    for b in self.blocks:
      y = b(y)
    return x + self.conv(y)


class RCAN(nnx.Module):
  """RCAN (Zhang et al. 2018): mean shift -> head conv -> n_groups residual groups of n_blocks
  RCABs -> conv, + head (long skip) -> pixel-shuffle upsampler -> tail conv -> mean shift.
  10 × 20 × 64, reduction 16: 15,592,355 params at ×4 (the official PyTorch count,
  15,592,379, adds the 24 frozen MeanShift conv values).

  Widths format: [n_feats]. Call: `model(lr) -> sr`, [B, h, w, 3] -> [B, h·s, w·s, C].
  Submodules: `head`, `groups[g].blocks[b].{conv1,conv2,ca.down,ca.up}`, `groups[g].conv`,
  `body_conv`, `upsampler.convs[i]`, `tail`.
  """
  default_input_shape = (48, 48, 3)

  def __init__(self, num_classes: int = 3, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               scale: int = 4, n_groups: int = 10, n_blocks: int = 20, n_feats: int = 64,
               reduction: int = 16, rgb_mean: Sequence[float] | None = DIV2K_RGB_MEAN,
               width_multiplier: float = 1.0, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    self.scale = _check_scale("RCAN", scale)
    widths = common.check_widths("rcan", widths, 1, "[n_feats]")
    if widths is None:
      widths = self.default_widths(n_feats=n_feats, width_multiplier=width_multiplier)
    nf = widths[0]
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    self.rgb_mean = None if rgb_mean is None else tuple(float(v) for v in rgb_mean)
    self.head = sr_conv(in_channels, nf, 3, dtype=dtype, rngs=rngs)
    self.groups = nnx.List([ResidualGroup(nf, n_blocks, reduction, dtype=dtype, rngs=rngs)
                            for _ in range(n_groups)])
    self.body_conv = sr_conv(nf, nf, 3, dtype=dtype, rngs=rngs)
    self.upsampler = Upsampler(scale, nf, dtype=dtype, rngs=rngs)
    self.tail = sr_conv(nf, num_classes, 3, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = self.head(_mean_shift(x.astype(self.dtype), self.rgb_mean, -1.0))
    y = x
    for g in self.groups:
      y = g(y)
    y = self.tail(self.upsampler(self.body_conv(y) + x))
    return _mean_shift(y, self.rgb_mean if self.num_classes == 3 else None, 1.0)

  @staticmethod
  def default_widths(n_feats: int = 64, width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(n_feats, width_multiplier)]


ESRGAN_D_WIDTHS = (64, 128, 256, 512, 512)


class ESRGANDiscriminator(nnx.Module):
  """ESRGAN VGG-style discriminator (`VGGStyleDiscriminator128`): 5 stages of
  [conv3x3 s1, conv4x4 s2 (pad 1)] with widths 64, 128, 256, 512, 512, BatchNorm after every
  conv but the first (those convs have no bias), LeakyReLU 0.2, then FC(512·4·4 -> 100) ->
  LReLU -> FC(100 -> num_classes=1). Flattening follows PyTorch (C, H, W) order.

  Widths format: the 5 stage widths. Call: `model(x, train) -> logits [B, num_classes]`;
  x: [B, input_size, input_size, 3] (default 128; `input_size`, a multiple of 32, sets the
  FC fan-in).
  Submodules: `convs[i]` (i = 0..9), `bns[i]` (for convs 1..9), `fc1`, `fc2`.
  """
  default_input_shape = (128, 128, 3)

  def __init__(self, num_classes: int = 1, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               input_size: int = 128, width_multiplier: float = 1.0, dtype=jnp.float32,
               in_channels: int = 3, fc_hidden: int = 100):
    dtype = common.resolve_dtype(dtype)
    widths = common.check_widths("esrgan_discriminator", widths, 5, "5 stage widths")
    if widths is None:
      widths = self.default_widths(width_multiplier=width_multiplier)
    if input_size % 32 or input_size < 32:
      raise ValueError(f"ESRGANDiscriminator: input_size must be a multiple of 32, "
                       f"got {input_size}.")
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    self.input_size = input_size
    convs, bns, cin = [], [], in_channels
    for s, w in enumerate(widths):
      convs.append(sr_conv(cin, w, 3, bias=(s == 0), dtype=dtype, rngs=rngs))
      if s > 0:
        bns.append(common.bn(w, dtype=dtype, rngs=rngs))
      convs.append(sr_conv(w, w, 4, stride=2, padding=1, bias=False, dtype=dtype, rngs=rngs))
      bns.append(common.bn(w, dtype=dtype, rngs=rngs))
      cin = w
    self.convs, self.bns = nnx.List(convs), nnx.List(bns)
    hw = input_size // 32
    self.fc1 = common.linear(cin * hw * hw, fc_hidden, dtype=dtype, rngs=rngs)
    self.fc2 = common.linear(fc_hidden, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.shape[1:3] != (self.input_size, self.input_size):
      raise ValueError(f"ESRGANDiscriminator was built for {self.input_size}x{self.input_size} "
                       f"inputs, got {x.shape[1:3]}; pass input_size= to match the HR patch.")
    x = x.astype(self.dtype)
    bn_i = 0
    for i, c in enumerate(self.convs):
      x = c(x)
      if i > 0:
        x = self.bns[bn_i](x, use_running_average=not train)
        bn_i += 1
      x = nnx.leaky_relu(x, 0.2)
    x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # PyTorch flatten order
    return self.fc2(nnx.leaky_relu(self.fc1(x), 0.2))

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in ESRGAN_D_WIDTHS]


# torchvision vgg19().features: conv widths and the pools (after conv 1, 3, 7, 11, 15).
VGG19_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)
VGG19_POOL_AFTER = (1, 3, 7, 11, 15)
VGG19_LAYER_NAMES = tuple(f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
                          for i in range(1, n + 1))


def _vgg19_depth(layer: str) -> int:
  """Number of convs up to and including `layer` ('relu3_4' -> 8, 'conv5_4' -> 16)."""
  name = "conv" + layer[len("relu"):] if layer.startswith("relu") else layer
  if name not in VGG19_LAYER_NAMES:
    raise ValueError(f"VGG19Features: unknown layer {layer!r}; use e.g. 'relu3_4' or 'conv5_4' "
                     "(convB_I / reluB_I, B=1..5).")
  return VGG19_LAYER_NAMES.index(name) + 1


def vgg19_torch_index(conv_idx: int) -> int:
  """Index in torchvision `vgg19().features` of conv number `conv_idx` (0..15)."""
  return 2 * conv_idx + sum(1 for p in VGG19_POOL_AFTER if p < conv_idx)


class VGG19Features(nnx.Module):
  """Frozen-feature VGG-19 trunk (torchvision layout), cut at `layer`.

  layer: 'relu3_4' (256 ch, stride 4; DECLoss), 'conv5_4' (pre-activation, 512 ch, stride 16;
  ESRGAN perceptual), or any 'convB_I' / 'reluB_I'. Input RGB [B, H, W, 3] in [0, 1]; ImageNet
  normalisation is applied inside when `normalize`. Returns [B, H/stride, W/stride, C].
  Load weights with `load_vgg19_torchvision(model, state_dict_or_path)`.
  Widths format: the conv widths up to the cut. Submodules: `convs[i]`.
  """
  default_input_shape = (224, 224, 3)

  def __init__(self, num_classes: int = 0, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               layer: str = "relu3_4", normalize: bool = True, width_multiplier: float = 1.0,
               dtype=jnp.float32, in_channels: int = 3):
    del num_classes
    dtype = common.resolve_dtype(dtype)
    n = _vgg19_depth(layer)
    widths = common.check_widths("vgg19_features", widths, n, f"{n} conv widths")
    if widths is None:
      widths = self.default_widths(layer=layer, width_multiplier=width_multiplier)
    self.widths, self.dtype, self.layer = list(widths), dtype, layer
    self.final_relu = layer.startswith("relu")
    self.normalize = normalize
    self.stride = 2 ** sum(1 for p in VGG19_POOL_AFTER if p < n - 1)
    convs, cin = [], in_channels
    for w in widths:
      convs.append(sr_conv(cin, w, 3, dtype=dtype, rngs=rngs))
      cin = w
    self.convs = nnx.List(convs)
    self.out_channels = cin

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = x.astype(jnp.float32)
    if self.normalize:
      x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
    x = x.astype(self.dtype)
    last = len(self.convs) - 1
    for i, c in enumerate(self.convs):
      x = c(x)
      if i < last or self.final_relu:
        x = nnx.relu(x)
      if i in VGG19_POOL_AFTER and i < last:
        x = common.max_pool(x, 2, 2)
    return x

  @staticmethod
  def default_widths(layer: str = "relu3_4", width_multiplier: float = 1.0, **_) -> list[int]:
    n = _vgg19_depth(layer)
    return [common.scale_width(w, width_multiplier) for w in VGG19_WIDTHS[:n]]


def load_vgg19_torchvision(model: VGG19Features, path_or_state_dict, *,
                           strict: bool = True) -> VGG19Features:
  """Copies torchvision `vgg19().state_dict()` (keys `features.{i}.weight/bias`) into `model`.

  Keys past the cut (deeper convs, `classifier.*`) are ignored; a missing or mis-shaped key
  raises CheckpointMismatchError (strict) naming every such key.
  """
  from jaxvision.models.torch_import import (  # pylint: disable=import-outside-toplevel
      CheckpointMismatchError, read_state_dict)
  sd = read_state_dict(path_or_state_dict)
  problems, updates = [], []
  for i, c in enumerate(model.convs):
    t = vgg19_torch_index(i)
    kh, kw, ci, co = c.kernel.get_value().shape
    for key, var, want in ((f"features.{t}.weight", c.kernel, (co, ci, kh, kw)),
                           (f"features.{t}.bias", c.bias, (co,))):
      if key not in sd:
        problems.append(f"missing {key}")
        continue
      arr = sd[key]
      arr = arr.detach().cpu().float().numpy() if hasattr(arr, "detach") else np.asarray(arr)
      if tuple(arr.shape) != want:
        problems.append(f"{key}: checkpoint {tuple(arr.shape)} vs model {want}")
        continue
      if arr.ndim == 4:
        arr = np.transpose(arr, (2, 3, 1, 0))
      updates.append((var, arr))
  if problems and strict:
    raise CheckpointMismatchError("VGG-19 state_dict does not match VGG19Features "
                                  f"(layer {model.layer}): " + "; ".join(problems) +
                                  ". Pass torchvision's vgg19(weights=...).state_dict().")
  for var, arr in updates:
    var.set_value(jnp.asarray(np.ascontiguousarray(arr), jnp.float32))
  return model


class RandomConvFeatures(nnx.Module):
  """A fixed random-init embedding for DECLoss / perceptual terms when no VGG-19 weights are
  given (spec §8): conv3x3 3->16 (s1) -> ReLU -> conv 16->32 (s2) -> ReLU -> conv 32->32 (s2);
  stride 4 like VGG relu3_4. Used frozen; the weights are fixed by the PRNG seed.

  Widths format: the 3 conv widths (default [16, 32, 32]).
  Call: x [B, H, W, 3] in [0, 1] -> [B, H/4, W/4, widths[-1]] (H, W multiples of 4).
  """
  default_input_shape = (48, 48, 3)
  stride = 4

  def __init__(self, num_classes: int = 0, *, rngs: nnx.Rngs,
               widths: Sequence[int] | None = None, width_multiplier: float = 1.0,
               dtype=jnp.float32, in_channels: int = 3):
    del num_classes
    widths = common.check_widths("random_conv_features", widths, 3, "3 conv widths")
    if widths is None:
      widths = self.default_widths(width_multiplier=width_multiplier)
    self.widths, self.dtype = list(widths), common.resolve_dtype(dtype)
    cin, convs = in_channels, []
    for i, w in enumerate(widths):
      convs.append(common.conv(cin, w, 3, stride=1 if i == 0 else 2, bias=True, dtype=self.dtype,
                               rngs=rngs))
      cin = w
    self.convs = nnx.List(convs)
    self.out_channels = cin

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = (x.astype(jnp.float32) - 0.5).astype(self.dtype)
    for i, c in enumerate(self.convs):
      x = c(x)
      if i < len(self.convs) - 1:
        x = nnx.relu(x)
    return x

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in (16, 32, 32)]


from jaxvision.models import register_model  # noqa: E402  pylint: disable=wrong-import-position

register_model("edsr_baseline", EDSR)  # class defaults: 16 blocks x 64, res scale 1
register_model("edsr", EDSR, n_resblocks=32, n_feats=256, res_scale=0.1)
register_model("rrdbnet", RRDBNet)
register_model("rcan", RCAN)
register_model("esrgan_discriminator", ESRGANDiscriminator)
register_model("vgg19_features", VGG19Features)
register_model("random_conv_features", RandomConvFeatures)
