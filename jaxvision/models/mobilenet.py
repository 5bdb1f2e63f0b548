"""MobileNetV1 / MobileNetV2 for ImageNet in the pytorchcv layout (IntraQ's checkpoints)."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common

V1_STAGES = ((64,), (128, 128), (256, 256), (512,) * 6, (1024, 1024))
V2_STAGES = ((16,), (24, 24), (32, 32, 32), (64, 64, 64, 64, 96, 96, 96), (160, 160, 160, 320))


def _split(flat: Sequence[int], stages: Sequence[Sequence[int]]) -> list[list[int]]:
  out, k = [], 0
  for st in stages:
    out.append(list(flat[k:k + len(st)]))
    k += len(st)
  return out


class DwsBlock(nnx.Module):
  """dw3x3(stride)-BN-ReLU -> pw1x1-BN-ReLU. x: [B, H, W, cin]."""

  def __init__(self, cin: int, cout: int, stride: int, *, rngs, dtype):
    self.dw_conv = common.conv(cin, cin, 3, stride=stride, groups=cin, dtype=dtype, rngs=rngs,
                               kernel_init=common.kaiming_fan_in)
    self.dw_bn = common.bn(cin, dtype=dtype, rngs=rngs)
    self.pw_conv = common.conv(cin, cout, 1, padding=0, dtype=dtype, rngs=rngs)
    self.pw_bn = common.bn(cout, dtype=dtype, rngs=rngs)

  def __call__(self, x, train: bool):
    ura = not train
    x = nnx.relu(self.dw_bn(self.dw_conv(x), use_running_average=ura))
    return nnx.relu(self.pw_bn(self.pw_conv(x), use_running_average=ura))


class MobileNetV1(nnx.Module):
  """MobileNetV1 (pytorchcv `mobilenet_w1`): conv3x3/2 (32) then 13 depthwise-separable units
  in 5 stages [64], [128, 128], [256, 256], [512 x 6], [1024, 1024] (stride 2 at the first unit
  of stages 2-5), global avg pool, Linear.

  Widths format: list of 14 ints, [stem] + the 13 pointwise (unit output) widths in order; each
  depthwise conv keeps its input width.
  Call: `model(x, train) -> logits`; x: [B, 224, 224, 3].
  Submodules: `stem_conv`, `stem_bn`, `stages[s][u].{dw_conv, dw_bn, pw_conv, pw_bn}`, `fc`.
  """
  default_input_shape = (224, 224, 3)

  def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    widths = common.check_widths("mobilenet_v1", widths, 14, "[stem] + 13 unit output widths")
    if widths is None:
      widths = self.default_widths(width_multiplier)
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    self.stem_conv = common.conv(in_channels, widths[0], 3, stride=2, dtype=dtype, rngs=rngs)
    self.stem_bn = common.bn(widths[0], dtype=dtype, rngs=rngs)
    cin, stages = widths[0], []
    for s, st in enumerate(_split(widths[1:], V1_STAGES)):
      units = []
      for u, w in enumerate(st):
        units.append(DwsBlock(cin, w, 2 if (u == 0 and s > 0) else 1, rngs=rngs, dtype=dtype))
        cin = w
      stages.append(nnx.List(units))
    self.stages = nnx.List(stages)
    self.fc = common.linear(cin, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    x = nnx.relu(self.stem_bn(self.stem_conv(x), use_running_average=not train))
    for st in self.stages:
      for unit in st:
        x = unit(x, train)
    return self.fc(common.global_avg_pool(x))

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    return ["stem_conv"] + [f"stages/{s}/{u}/pw_conv" for s, st in enumerate(V1_STAGES)
                            for u in range(len(st))]

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in (32,) + sum(V1_STAGES, ())]


class InvertedResidual(nnx.Module):
  """pytorchcv LinearBottleneck: 1x1 (mid)-BN-ReLU6 -> dw3x3(stride)-BN-ReLU6 -> 1x1-BN,
  + identity when `residual`. x: [B, H, W, cin]."""

  def __init__(self, cin: int, mid: int, cout: int, stride: int, residual: bool, *, rngs, dtype):
    self.residual = residual
    self.conv1 = common.conv(cin, mid, 1, padding=0, dtype=dtype, rngs=rngs)
    self.bn1 = common.bn(mid, dtype=dtype, rngs=rngs)
    self.conv2 = common.conv(mid, mid, 3, stride=stride, groups=mid, dtype=dtype, rngs=rngs)
    self.bn2 = common.bn(mid, dtype=dtype, rngs=rngs)
    self.conv3 = common.conv(mid, cout, 1, padding=0, dtype=dtype, rngs=rngs)
    self.bn3 = common.bn(cout, dtype=dtype, rngs=rngs)

  def __call__(self, x, train: bool):
    ura = not train
    y = nnx.relu6(self.bn1(self.conv1(x), use_running_average=ura))
    y = nnx.relu6(self.bn2(self.conv2(y), use_running_average=ura))
    y = self.bn3(self.conv3(y), use_running_average=ura)
    return y + x if self.residual else y


class MobileNetV2(nnx.Module):
  """MobileNetV2 (pytorchcv `mobilenetv2_w1`): conv3x3/2 (32)-BN-ReLU6, 17 inverted residual
  units in 5 stages [16], [24 x 2], [32 x 3], [64 x 4, 96 x 3], [160 x 3, 320] (stride 2 at the
  first unit of stages 2-5; expansion 6 except the first unit, whose 1x1 conv keeps 32 channels),
  conv1x1 (1280)-BN-ReLU6, global avg pool, Linear without bias (pytorchcv's 1x1 conv output).

  Widths format: list of 36 ints, [stem] + [mid_u, out_u] for the 17 units + [final 1x1 width].
  mid_u is the expansion (and depthwise) width. Units that are residual in the original network
  (stride 1 and in == out there) must keep out_u equal to their input width.
  Call: `model(x, train) -> logits`; x: [B, 224, 224, 3].
  Submodules: `stem_conv`, `stem_bn`, `stages[s][u].{conv1,bn1,conv2,bn2,conv3,bn3}`,
  `final_conv`, `final_bn`, `fc`.
  """
  default_input_shape = (224, 224, 3)

  def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    widths = common.check_widths("mobilenet_v2", widths, 36,
                                 "[stem] + [mid, out] x 17 units + [final]")
    if widths is None:
      widths = self.default_widths(width_multiplier)
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    stem, final = widths[0], widths[-1]
    mids, outs = widths[1:-1:2], widths[2:-1:2]
    self.stem_conv = common.conv(in_channels, stem, 3, stride=2, dtype=dtype, rngs=rngs)
    self.stem_bn = common.bn(stem, dtype=dtype, rngs=rngs)
    cin, k, stages = stem, 0, []
    prev_default = 32
    for s, st in enumerate(V2_STAGES):
      units = []
      for u, default_out in enumerate(st):
        stride = 2 if (u == 0 and s > 0) else 1
        residual = stride == 1 and default_out == prev_default
        if residual and outs[k] != cin:
          raise ValueError(f"mobilenet_v2: unit {k} is residual, so its output width must equal "
                           f"its input width {cin}; got {outs[k]}.")
        units.append(InvertedResidual(cin, mids[k], outs[k], stride, residual, rngs=rngs,
                                      dtype=dtype))
        cin, prev_default, k = outs[k], default_out, k + 1
      stages.append(nnx.List(units))
    self.stages = nnx.List(stages)
    self.final_conv = common.conv(cin, final, 1, padding=0, dtype=dtype, rngs=rngs)
    self.final_bn = common.bn(final, dtype=dtype, rngs=rngs)
    self.fc = nnx.Linear(final, num_classes, use_bias=False, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs,
                         kernel_init=nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in",
                                                                       "uniform"))

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    ura = not train
    x = nnx.relu6(self.stem_bn(self.stem_conv(x), use_running_average=ura))
    for st in self.stages:
      for unit in st:
        x = unit(x, train)
    x = nnx.relu6(self.final_bn(self.final_conv(x), use_running_average=ura))
    return self.fc(common.global_avg_pool(x))

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    units = [f"stages/{s}/{u}" for s, st in enumerate(V2_STAGES) for u in range(len(st))]
    return ["stem_conv"] + [f"{p}/{c}" for p in units for c in ("conv1", "conv3")] + ["final_conv"]

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    sc = lambda w: common.scale_width(w, width_multiplier)
    out, cin = [sc(32)], 32
    for s, st in enumerate(V2_STAGES):
      for u, w in enumerate(st):
        mid = cin if (s == 0 and u == 0) else cin * 6
        out += [sc(mid), sc(w)]
        cin = w
    # pytorchcv keeps 1280 for width scales <= 1.
    return out + [1280 if width_multiplier <= 1.0 else sc(1280)]
