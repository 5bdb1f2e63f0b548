"""Dilated Residual Networks, arch D (Yu et al. 2017), and the DRNSeg segmentation wrapper.

GCC's Cityscapes mIoU protocol (gcc.md §5) segments generated photos with DRN-D-105 trained on
Cityscapes (`jaxvision.evaluators.cityscapes_miou`). Structure as the fyu/drn code (`drn.py`,
`segment.py`), NHWC, float32 params, `dtype` = compute dtype:

  layer0   conv7x7(3 -> c0) BN ReLU
  layer1   conv3x3(c0) BN ReLU                          (stride 1)
  layer2   conv3x3(c1) BN ReLU                          (stride 2)
  layer3/4 residual blocks, widths c2 / c3              (stride 2 each; output stride 8)
  layer5   residual blocks c4, dilation 2               (stride 1)
  layer6   residual blocks c5, dilation 4
  layer7   conv3x3(c6) BN ReLU, dilation 2              (no residual)
  layer8   conv3x3(c7) BN ReLU, dilation 1
  classifier: avg_pool(pool_size) -> 1x1 conv (bias) -> flatten     (DRN with num_classes > 0)

Blocks: 'bottleneck' (1x1 c -> 3x3 c -> 1x1 4c; the 3x3 conv uses the block's second dilation
only, as the reference) or 'basic' (3x3 -> 3x3). The first block of a level gets a 1x1 conv + BN
projection when the stride or the width changes. DRN-D-105 = bottleneck, blocks
(1, 1, 3, 4, 23, 3, 1, 1), channels (16, 32, 64, 128, 256, 512, 512, 512).

DRNSeg(x) = up(seg(base(x))): base = the DRN without avgpool/fc, seg = 1x1 conv (bias) to the
classes, up = the fixed bilinear x8 depthwise ConvTranspose2d(k 16, stride 8, padding 4) with
the `fill_up_weights` kernel (never trained: a `FixedKernel`, not an nnx.Param).

PyTorch import (`jaxvision.models.load_torch_checkpoint`): DRN uses the fyu/drn names
(`layer0.0`, `layer3.0.conv1`, `layer3.0.downsample.0`, `fc`); DRNSeg the names of the official
`drn-d-105_ms_cityscapes.pth` (`base.<level>...`, `seg`, `up`), where base is
nn.Sequential(layer0..layer8), so `base.5.0.conv1.weight` = layer5 block 0 conv1.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models import common

DRN_D_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)
DRN_D_105_LAYERS = (1, 1, 3, 4, 23, 3, 1, 1)
BLOCKS = ("bottleneck", "basic")
_EXPANSION = {"bottleneck": 4, "basic": 1}


class FixedKernel(nnx.Variable):
  """A constant weight that is part of the model (and its checkpoint) but never trained."""


def _conv(cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1, dilation: int = 1,
          bias: bool = False, dtype=jnp.float32) -> nnx.Conv:
  """PyTorch Conv2d(k, stride, padding=dilation * (k // 2), dilation); DRN init N(0, 2/fan_out)."""
  p = dilation * (k // 2)
  return nnx.Conv(cin, cout, kernel_size=(k, k), strides=(stride, stride),
                  padding=((p, p), (p, p)), kernel_dilation=(dilation, dilation), use_bias=bias,
                  kernel_init=common.kaiming_fan_out, bias_init=common.zeros, dtype=dtype,
                  param_dtype=jnp.float32, rngs=rngs)


class ConvBNReLU(nnx.Module):
  """conv3x3/7x7 (stride, dilation) -> BN -> ReLU (one unit of layer0/1/2/7/8). x: [B, H, W, C]."""

  def __init__(self, cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1,
               dilation: int = 1, dtype=jnp.float32):
    self.conv = _conv(cin, cout, k, stride=stride, dilation=dilation, dtype=dtype, rngs=rngs)
    self.bn = common.bn(cout, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return nnx.relu(self.bn(self.conv(x), use_running_average=not train))


class DRNBlock(nnx.Module):
  """Bottleneck or basic residual block; `dilation` = (first, second) as fyu/drn."""

  def __init__(self, block: str, cin: int, planes: int, *, rngs: nnx.Rngs, stride: int = 1,
               dilation: tuple[int, int] = (1, 1), project: bool = False, dtype=jnp.float32):
    self.block = block
    cout = planes * _EXPANSION[block]
    if block == "bottleneck":
      self.conv1 = _conv(cin, planes, 1, dtype=dtype, rngs=rngs)
      self.bn1 = common.bn(planes, dtype=dtype, rngs=rngs)
      self.conv2 = _conv(planes, planes, 3, stride=stride, dilation=dilation[1], dtype=dtype,
                         rngs=rngs)
      self.bn2 = common.bn(planes, dtype=dtype, rngs=rngs)
      self.conv3 = _conv(planes, cout, 1, dtype=dtype, rngs=rngs)
      self.bn3 = common.bn(cout, dtype=dtype, rngs=rngs)
    else:
      self.conv1 = _conv(cin, planes, 3, stride=stride, dilation=dilation[0], dtype=dtype,
                         rngs=rngs)
      self.bn1 = common.bn(planes, dtype=dtype, rngs=rngs)
      self.conv2 = _conv(planes, cout, 3, dilation=dilation[1], dtype=dtype, rngs=rngs)
      self.bn2 = common.bn(cout, dtype=dtype, rngs=rngs)
    self.project = project
    if project:
      self.downsample_conv = _conv(cin, cout, 1, stride=stride, dtype=dtype, rngs=rngs)
      self.downsample_bn = common.bn(cout, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    ura = not train
    y = nnx.relu(self.bn1(self.conv1(x), use_running_average=ura))
    y = self.bn2(self.conv2(y), use_running_average=ura)
    if self.block == "bottleneck":
      y = self.bn3(self.conv3(nnx.relu(y)), use_running_average=ura)
    sc = (self.downsample_bn(self.downsample_conv(x), use_running_average=ura)
          if self.project else x)
    return nnx.relu(y + sc)


class DRN(nnx.Module):
  """DRN arch D (see module docstring): x [B, H, W, 3] -> logits [B, num_classes].

  Widths format: 8 ints, the channels of layer0..layer8's levels (c0..c7; residual levels
  output c * 4 with bottlenecks); default DRN_D_CHANNELS x width_multiplier. `layers`: blocks
  (or convs) per level, 8 ints; a 0 at levels 6-8 drops the level. num_classes = 0 builds the
  trunk only (no avgpool / fc; `features` is then the whole model). Init as fyu/drn:
  convs N(0, 2 / (k*k*cout)), BN (1, 0), fc bias 0.
  Submodules: layer0[0], layer{1,2,7,8}[i] (ConvBNReLU .conv/.bn), layer{3..6}[i] (DRNBlock
  .conv1/.bn1/..., .downsample_conv/.downsample_bn), fc.
  """
  default_input_shape = (224, 224, 3)

  def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs,
               widths: Sequence[int] | None = None, width_multiplier: float = 1.0,
               layers: Sequence[int] = DRN_D_105_LAYERS, block: str = "bottleneck",
               pool_size: int = 28, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    if block not in BLOCKS:
      raise ValueError(f"drn: block must be one of {BLOCKS}, got {block!r}.")
    layers = [int(n) for n in layers]
    if len(layers) != 8 or min(layers[:5]) < 1 or min(layers) < 0:
      raise ValueError(f"drn: layers must be 8 block counts (levels 0-4 >= 1, levels 5-7 >= 0), "
                       f"got {layers}.")
    widths = common.check_widths("drn", widths, 8, "8 level channels c0..c7")
    if widths is None:
      widths = DRN.default_widths(width_multiplier=width_multiplier)
    self.widths, self.layers, self.block = list(widths), layers, block
    self.num_classes, self.pool_size, self.dtype = int(num_classes), int(pool_size), dtype
    c = widths
    exp = _EXPANSION[block]
    self.layer0 = nnx.List([ConvBNReLU(in_channels, c[0], 7, dtype=dtype, rngs=rngs)])
    cin = c[0]

    def convs(level, n, stride=1, dilation=1):
      nonlocal cin
      out = []
      for i in range(n):
        out.append(ConvBNReLU(cin, c[level], 3, stride=stride if i == 0 else 1,
                              dilation=dilation, dtype=dtype, rngs=rngs))
        cin = c[level]
      return nnx.List(out)

    def blocks(level, n, stride=1, dilation=1):
      nonlocal cin
      out = [DRNBlock(block, cin, c[level], stride=stride, dilation=(dilation, dilation),
                      project=stride != 1 or cin != c[level] * exp, dtype=dtype, rngs=rngs)]
      cin = c[level] * exp
      out += [DRNBlock(block, cin, c[level], dilation=(dilation, dilation), dtype=dtype,
                       rngs=rngs) for _ in range(1, n)]
      return nnx.List(out)

    self.layer1 = convs(0, layers[0])
    self.layer2 = convs(1, layers[1], stride=2)
    self.layer3 = blocks(2, layers[2], stride=2)
    self.layer4 = blocks(3, layers[3], stride=2)
    self.layer5 = blocks(4, layers[4], dilation=2)
    self.layer6 = blocks(5, layers[5], dilation=4) if layers[5] else None
    self.layer7 = convs(6, layers[6], dilation=2) if layers[6] else None
    self.layer8 = convs(7, layers[7], dilation=1) if layers[7] else None
    self.out_dim = cin
    self.fc = (_conv(cin, num_classes, 1, bias=True, dtype=dtype, rngs=rngs)
               if num_classes > 0 else None)

  def levels(self) -> list[tuple[str, nnx.List]]:
    """The present levels in order, [(name, modules)] (DRNSeg's `base` = this sequence)."""
    names = [f"layer{i}" for i in range(9)]
    return [(n, getattr(self, n)) for n in names if getattr(self, n) is not None]

  def features(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x: [B, H, W, 3] -> [B, H/8, W/8, out_dim] (H, W multiples of 8)."""
    x = x.astype(self.dtype)
    for _, level in self.levels():
      for m in level:
        x = m(x, train)
    return x

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.fc is None:
      return self.features(x, train)
    h = common.avg_pool(self.features(x, train), self.pool_size, self.pool_size)
    if h.shape[1:3] != (1, 1):
      raise ValueError(f"drn: the classifier pools {self.pool_size}x{self.pool_size} windows of "
                       f"the stride-8 map; input {x.shape[1:3]} must be {8 * self.pool_size} "
                       f"square (or set pool_size={x.shape[1] // 8}).")
    return self.fc(h).reshape(h.shape[0], -1)

  def torch_naming_rules(self) -> dict:
    """fyu/drn `DRN` state_dict names (see `torch_path`)."""
    return {"drn": lambda p: torch_path(p, self)}

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in DRN_D_CHANNELS]


def torch_path(path: str, drn: DRN, base_prefix: str | None = None) -> str:
  """nnx path of a DRN layer -> fyu/drn module name.

  'layer2/0/conv' -> 'layer2.0' (bn -> 'layer2.1'; unit i of a conv level is modules
  3i, 3i+1); 'layer3/0/downsample_conv' -> 'layer3.0.downsample.0'; with `base_prefix`
  ('base') the level name becomes its index among the present levels ('base.3.0...').
  """
  parts = path.split("/")
  if parts[0] == "fc":
    return "fc"
  level, i, layer = parts[0], int(parts[1]), parts[2]
  if base_prefix is not None:
    index = [n for n, _ in drn.levels()].index(level)
    head = f"{base_prefix}.{index}"
  else:
    head = level
  if layer in ("conv", "bn"):
    return f"{head}.{3 * i + (1 if layer == 'bn' else 0)}"
  if layer.startswith("downsample"):
    return f"{head}.{i}.downsample.{0 if layer.endswith('conv') else 1}"
  return f"{head}.{i}.{layer}"


def bilinear_up_kernel(k: int = 16) -> np.ndarray:
  """fyu/drn `fill_up_weights`: [k, k] with w[i, j] = (1 - |i/f - c|)(1 - |j/f - c|),
  f = ceil(k/2), c = (2f - 1 - f % 2) / (2f). For k = 16: the x8 bilinear (triangle) taps
  (1 - |2i - 15| / 16) in each direction."""
  f = math.ceil(k / 2)
  c = (2 * f - 1 - f % 2) / (2.0 * f)
  t = 1.0 - np.abs(np.arange(k) / f - c)
  return np.outer(t, t).astype(np.float32)


class BilinearUp(nnx.Conv):
  """Fixed depthwise ConvTranspose2d(C, C, k=2s, stride=s, padding=s/2, groups=C, bias=False)
  with the `fill_up_weights` kernel: [B, h, w, C] -> [B, s*h, s*w, C].

  The kernel is stored as an nnx.Conv kernel [k, k, 1, C] (so the torch weight [C, 1, k, k]
  maps by the usual conv transpose), held in a `FixedKernel` (not trained). Interior outputs
  equal bilinear interpolation (half-pixel centres); the outer s/2 rows/columns see only one
  input row (zero padding), e.g. 9/16, 11/16, 13/16, 15/16 of the edge value for s = 8.
  """

  def __init__(self, channels: int, scale: int = 8, *, rngs: nnx.Rngs, dtype=jnp.float32):
    k = 2 * scale
    super().__init__(channels, channels, (k, k), padding="VALID", feature_group_count=channels,
                     use_bias=False, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
    w = np.broadcast_to(bilinear_up_kernel(k)[:, :, None, None], (k, k, 1, channels))
    self.kernel = FixedKernel(jnp.asarray(w, jnp.float32))
    self.scale = scale

  def __call__(self, x: jax.Array) -> jax.Array:
    s = self.scale
    k = 2 * s
    p = k - 1 - s // 2  # transposed conv = lhs-dilated conv with the flipped kernel
    w = self.kernel.get_value()[::-1, ::-1].astype(self.dtype)
    return jax.lax.conv_general_dilated(
        x.astype(self.dtype), w, window_strides=(1, 1), padding=((p, p), (p, p)),
        lhs_dilation=(s, s), dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=x.shape[-1], precision=jax.lax.Precision.HIGHEST)


class DRNSeg(nnx.Module):
  """fyu/drn `DRNSeg`: x [B, H, W, 3] -> upsampled logits [B, H, W, num_classes] (H, W
  multiples of 8). `seg_logits(x)` gives the stride-8 logits [B, H/8, W/8, num_classes].

  Widths / width_multiplier / layers / block: as `DRN` (the base; default DRN-D-105). The
  official forward also returns log_softmax(up(...)); apply `jax.nn.log_softmax` to the output.
  Submodules: base (a DRN, num_classes=0), seg (1x1 conv, bias; N(0, 2/num_classes), bias 0),
  up (`BilinearUp`).
  """
  default_input_shape = (256, 256, 3)

  def __init__(self, num_classes: int = 19, *, rngs: nnx.Rngs,
               widths: Sequence[int] | None = None, width_multiplier: float = 1.0,
               layers: Sequence[int] = DRN_D_105_LAYERS, block: str = "bottleneck",
               dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    self.base = DRN(0, rngs=rngs, widths=widths, width_multiplier=width_multiplier,
                    layers=layers, block=block, dtype=dtype, in_channels=in_channels)
    self.widths, self.num_classes, self.dtype = self.base.widths, int(num_classes), dtype
    self.seg = _conv(self.base.out_dim, num_classes, 1, bias=True, dtype=dtype, rngs=rngs)
    self.up = BilinearUp(num_classes, 8, dtype=dtype, rngs=rngs)

  def seg_logits(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x: [B, H, W, 3] -> [B, H/8, W/8, num_classes] (the official forward's second output)."""
    return self.seg(self.base.features(x, train))

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.shape[1] % 8 or x.shape[2] % 8:
      raise ValueError(f"drn_seg: input height and width must be multiples of 8, got "
                       f"{x.shape[1:3]}.")
    return self.up(self.seg_logits(x, train))

  def torch_naming_rules(self) -> dict:
    """Official DRNSeg names: base.<level index>..., seg, up."""
    def rule(p: str) -> str:
      head, _, rest = p.partition("/")
      return torch_path(rest, self.base, "base") if head == "base" else head
    return {"drn_seg": rule}

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return DRN.default_widths(width_multiplier)


def _register():
  from jaxvision.models import register_model  # pylint: disable=import-outside-toplevel
  register_model("drn_d_105", DRN, layers=DRN_D_105_LAYERS, block="bottleneck")
  register_model("drn_seg", DRNSeg)


_register()
