"""EfficientNet-B0...B4 (Tan & Le 2019): MBConv blocks with squeeze-excitation, SiLU,
compound width/depth scaling and drop-connect (stochastic depth), NHWC.

    model = build("efficientnet_b0", 1000, rngs=nnx.Rngs(0))      # torchvision / timm layout
    model = build("tf_efficientnet_b4", 2, rngs=nnx.Rngs(0))      # TF "same" padding, BN eps 1e-3
    fmap = model.features(x, train)            # [B, H/32, W/32, C_head] (timm forward_features)
    logits = model.head(fmap, train)           # pool -> dropout -> fc
    load_torch_checkpoint(model, sd)           # torchvision / timm / efficientnet_pytorch names

Scaling (torchvision `_efficientnet_conf`, timm and efficientnet_pytorch agree): every base width
w becomes make_divisible(w * width_coef, 8), every stage's repeats ceil(n * depth_coef); the head
is 4x the last stage width. Drop-connect rate of block i (of N) is drop_connect * i / N and is
applied only on residual blocks, per sample (torchvision StochasticDepth "row").
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models import common

# (expand, kernel, stride, base out width, base repeats) per stage; base stem 32.
BASE_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
               (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BASE_STEM = 32
# variant -> (width coef, depth coef, input resolution, classifier dropout)
VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
            "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4)}
# style -> (TF "same" padding, BN epsilon, flax BN momentum)
STYLES = {"torch": (False, 1e-5, 0.9), "tf": (True, 1e-3, 0.99)}
NAMINGS = ("torchvision", "timm", "efficientnet_pytorch")


def make_divisible(v: float, divisor: int = 8) -> int:
  """Nearest multiple of `divisor` >= divisor, never more than 10% below v."""
  new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
  return new_v + divisor if new_v < 0.9 * v else new_v


def stage_repeats(variant: str = "b0", depth_multiplier: float = 1.0) -> list[int]:
  """Blocks per stage: ceil(base repeats * depth coef * depth_multiplier)."""
  d = _variant(variant)[1] * depth_multiplier
  if d <= 0:
    raise ValueError(f"depth_multiplier must be > 0, got {depth_multiplier}.")
  return [int(math.ceil(n * d)) for *_, n in BASE_STAGES]


def _variant(v: str):
  if v not in VARIANTS:
    raise ValueError(f"unknown EfficientNet variant {v!r}; choose one of {sorted(VARIANTS)}.")
  return VARIANTS[v]


def _conv(cin, cout, k, stride, same, *, rngs, dtype, groups=1, bias=False, kernel_init=None):
  kernel_init = common.kaiming_fan_out if kernel_init is None else kernel_init
  if not same:
    return common.conv(cin, cout, k, stride=stride, groups=groups, bias=bias, dtype=dtype,
                       rngs=rngs, kernel_init=kernel_init)
  return nnx.Conv(cin, cout, kernel_size=(k, k), strides=(stride, stride), padding="SAME",
                  feature_group_count=groups, use_bias=bias, kernel_init=kernel_init,
                  bias_init=common.zeros, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)


class MBConv(nnx.Module):
  """[1x1 expand-BN-SiLU] -> kxk depthwise(stride)-BN-SiLU -> SE -> 1x1 project-BN
  (+ drop-connect + identity when stride 1 and cin == cout). x: [B, H, W, cin].

  Submodules: `expand_conv`/`expand_bn` (None when expand == 1), `dw_conv`, `dw_bn`,
  `se_reduce`, `se_expand` (1x1 convs with bias; squeeze width max(1, cin // 4)),
  `project_conv`, `project_bn`, `drop_path`.
  """

  def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int, drop: float, *,
               same: bool, bn_eps: float, bn_momentum: float, rngs: nnx.Rngs, dtype):
    bn = lambda n: nnx.BatchNorm(n, momentum=bn_momentum, epsilon=bn_eps, dtype=dtype,
                                 param_dtype=jnp.float32, rngs=rngs)
    mid = cin * expand
    self.residual = stride == 1 and cin == cout
    if expand != 1:
      self.expand_conv = _conv(cin, mid, 1, 1, same, rngs=rngs, dtype=dtype)
      self.expand_bn = bn(mid)
    else:
      self.expand_conv = self.expand_bn = None
    self.dw_conv = _conv(mid, mid, k, stride, same, groups=mid, rngs=rngs, dtype=dtype)
    self.dw_bn = bn(mid)
    sq = max(1, cin // 4)
    self.se_reduce = _conv(mid, sq, 1, 1, False, bias=True, rngs=rngs, dtype=dtype)
    self.se_expand = _conv(sq, mid, 1, 1, False, bias=True, rngs=rngs, dtype=dtype)
    self.project_conv = _conv(mid, cout, 1, 1, same, rngs=rngs, dtype=dtype)
    self.project_bn = bn(cout)
    self.drop_path = nnx.Dropout(drop if self.residual else 0.0, broadcast_dims=(1, 2, 3),
                                 rngs=rngs)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ura = not train
    y = x
    if self.expand_conv is not None:
      y = nnx.silu(self.expand_bn(self.expand_conv(y), use_running_average=ura))
    y = nnx.silu(self.dw_bn(self.dw_conv(y), use_running_average=ura))
    s = jnp.mean(y.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(y.dtype)
    s = nnx.sigmoid(self.se_expand(nnx.silu(self.se_reduce(s))))
    y = self.project_bn(self.project_conv(y * s), use_running_average=ura)
    if self.residual:
      y = self.drop_path(y, deterministic=not train) + x
    return y


class EfficientNet(nnx.Module):
  """EfficientNet-B0...B4 classifier.

  Stem conv3x3/2-BN-SiLU, 7 stages of MBConv blocks (see BASE_STAGES; stride at each stage's
  first block), head conv1x1-BN-SiLU, global avg pool, dropout, fc.
  Widths format: 9 ints, [stem, out_1, ..., out_7, head] (expansion widths are expand * block
  input). Defaults: make_divisible(base * width coef * width_multiplier), head = 4 * out_7.
  Kwargs: variant 'b0'..'b4'; width_multiplier / depth_multiplier (extra scaling on top of the
  variant's coefficients, for tiny demo models); style 'torch' (symmetric padding, BN eps
  1e-5: torchvision, timm `efficientnet_b*`) or 'tf' (TF "same" padding, BN eps 1e-3, momentum
  0.01: timm `tf_efficientnet_b*`, efficientnet_pytorch); bn_eps overrides the style's;
  dropout (default the variant's: 0.2, 0.2, 0.3, 0.3, 0.4); drop_connect (default 0.2).
  Call: `model(x, train) -> logits`; x: [B, H, W, 3]; `features` / `head` split it.
  Submodules: `stem_conv`, `stem_bn`, `stages[s][b]` (MBConv), `head_conv`, `head_bn`,
  `dropout`, `fc`.
  """
  default_input_shape = (224, 224, 3)

  def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs,
               widths: Sequence[int] | None = None, variant: str = "b0",
               width_multiplier: float = 1.0, depth_multiplier: float = 1.0,
               style: str = "torch", bn_eps: float | None = None, dropout: float | None = None,
               drop_connect: float = 0.2, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    _, _, _, default_dropout = _variant(variant)
    if style not in STYLES:
      raise ValueError(f"EfficientNet style {style!r} is unknown; choose one of {sorted(STYLES)}.")
    same, eps, momentum = STYLES[style]
    eps = eps if bn_eps is None else float(bn_eps)
    dropout = default_dropout if dropout is None else float(dropout)
    for name, rate in (("dropout", dropout), ("drop_connect", drop_connect)):
      if not 0.0 <= rate < 1.0:
        raise ValueError(f"EfficientNet {name} must be in [0, 1), got {rate}.")
    widths = common.check_widths(f"efficientnet_{variant}", widths, 9,
                                 "[stem, 7 stage output widths, head]")
    if widths is None:
      widths = self.default_widths(variant, width_multiplier)
    repeats = stage_repeats(variant, depth_multiplier)
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    self.variant, self.style, self.repeats = variant, style, repeats
    kw = dict(same=same, bn_eps=eps, bn_momentum=momentum, rngs=rngs, dtype=dtype)
    bn = lambda n: nnx.BatchNorm(n, momentum=momentum, epsilon=eps, dtype=dtype,
                                 param_dtype=jnp.float32, rngs=rngs)
    self.stem_conv = _conv(in_channels, widths[0], 3, 2, same, rngs=rngs, dtype=dtype)
    self.stem_bn = bn(widths[0])
    total, idx, cin, stages = sum(repeats), 0, widths[0], []
    for (expand, k, stride, _, _), n, cout in zip(BASE_STAGES, repeats, widths[1:8]):
      blocks = []
      for b in range(n):
        blocks.append(MBConv(cin, cout, expand, k, stride if b == 0 else 1,
                             drop_connect * idx / total, **kw))
        cin, idx = cout, idx + 1
      stages.append(nnx.List(blocks))
    self.stages = nnx.List(stages)
    self.head_conv = _conv(cin, widths[8], 1, 1, same, rngs=rngs, dtype=dtype)
    self.head_bn = bn(widths[8])
    self.dropout = nnx.Dropout(dropout, rngs=rngs)
    self.fc = common.linear(widths[8], num_classes, dtype=dtype, rngs=rngs,
                            kernel_init=nnx.initializers.variance_scaling(1 / 3, "fan_out",
                                                                          "uniform"))

  def features(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x: [B, H, W, 3] -> feature map [B, ceil(H/32), ceil(W/32), widths[8]] (after head SiLU)."""
    ura = not train
    x = nnx.silu(self.stem_bn(self.stem_conv(x.astype(self.dtype)), use_running_average=ura))
    for stage in self.stages:
      for block in stage:
        x = block(x, train)
    return nnx.silu(self.head_bn(self.head_conv(x), use_running_average=ura))

  def head(self, fmap: jax.Array, train: bool = False) -> jax.Array:
    """fmap: [B, h, w, C] -> logits [B, num_classes] (avg pool, dropout, fc)."""
    return self.fc(self.dropout(common.global_avg_pool(fmap), deterministic=not train))

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.head(self.features(x, train), train)

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    return (["stem_conv"] + [f"stages/{s}/0/project_conv" for s in range(7)] + ["head_conv"])

  def torch_naming_rules(self) -> dict[str, Callable[[str], str]]:
    """{naming: fn(nnx layer path) -> torch module prefix} for torchvision, timm and
    efficientnet_pytorch (lukemelas) state_dicts."""
    return {"torchvision": _torchvision_name, "timm": _timm_name,
            "efficientnet_pytorch": lambda p: _lukemelas_name(p, self.repeats)}

  @staticmethod
  def default_widths(variant: str = "b0", width_multiplier: float = 1.0, **_) -> list[int]:
    w = _variant(variant)[0] * width_multiplier
    if w <= 0:
      raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}.")
    outs = [make_divisible(BASE_STEM * w)]
    outs += [make_divisible(c * w) for _, _, _, c, _ in BASE_STAGES]
    return outs + [4 * outs[-1]]


# ---------------------------------------------------------------- PyTorch names (nnx path -> torch)
_TOP = {  # nnx top-level layer -> (torchvision, timm, efficientnet_pytorch)
    "stem_conv": ("features.0.0", "conv_stem", "_conv_stem"),
    "stem_bn": ("features.0.1", "bn1", "_bn0"),
    "head_conv": ("features.8.0", "conv_head", "_conv_head"),
    "head_bn": ("features.8.1", "bn2", "_bn1"),
    "fc": ("classifier.1", "classifier", "_fc"),
}
_TIMM_BLOCK = {"dw_conv": "conv_dw", "se_reduce": "se.conv_reduce", "se_expand": "se.conv_expand",
               "project_conv": "conv_pwl", "expand_conv": "conv_pw", "expand_bn": "bn1"}
_LUKE_BLOCK = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dw_conv": "_depthwise_conv",
               "dw_bn": "_bn1", "se_reduce": "_se_reduce", "se_expand": "_se_expand",
               "project_conv": "_project_conv", "project_bn": "_bn2"}


def _split_block(path: str):
  _, s, b, layer = path.split("/")
  return int(s), int(b), layer


def _torchvision_name(path: str) -> str:
  if path in _TOP:
    return _TOP[path][0]
  s, b, layer = _split_block(path)
  # torchvision MBConv.block = [expand?] + [dw] + [se] + [project]; each Conv2dNormActivation
  # is (conv, bn); a stage-1 block (expand 1) starts at dw.
  order = ["expand", "dw", "se", "project"] if s > 0 else ["dw", "se", "project"]
  part, kind = layer.split("_")
  i = order.index(part)
  sub = {"conv": "0", "bn": "1", "reduce": "fc1", "expand": "fc2"}[kind]
  return f"features.{s + 1}.{b}.block.{i}.{sub}"


def _timm_name(path: str) -> str:
  if path in _TOP:
    return _TOP[path][1]
  s, b, layer = _split_block(path)
  if s == 0:  # timm DepthwiseSeparableConv: conv_dw, bn1, se, conv_pw, bn2
    name = {"dw_bn": "bn1", "project_conv": "conv_pw", "project_bn": "bn2"}.get(
        layer, _TIMM_BLOCK.get(layer))
  else:  # InvertedResidual: conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3
    name = {"dw_bn": "bn2", "project_bn": "bn3"}.get(layer, _TIMM_BLOCK.get(layer))
  return f"blocks.{s}.{b}.{name}"


def _lukemelas_name(path: str, repeats: Sequence[int]) -> str:
  if path in _TOP:
    return _TOP[path][2]
  s, b, layer = _split_block(path)
  return f"_blocks.{sum(repeats[:s]) + b}.{_LUKE_BLOCK[layer]}"


def load_torch_checkpoint(model: EfficientNet, path_or_state_dict, *, naming: str = "auto",
                          strict: bool = True, prefix: str = "") -> EfficientNet:
  """Copies a torchvision / timm / efficientnet_pytorch state_dict into `model` (in place).

  `prefix` selects a sub-module of a larger checkpoint (e.g. 'encoder.' for DCL's
  BinaryClassifier backbone); keys without it are dropped. Conversions and strict errors are
  those of `jaxvision.models.torch_import` (see its `load_torch_checkpoint`).
  """
  from jaxvision.models import torch_import  # pylint: disable=import-outside-toplevel
  sd = torch_import.read_state_dict(path_or_state_dict)
  if prefix:
    sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if not sd:
      raise torch_import.CheckpointMismatchError(
          f"no checkpoint key starts with prefix {prefix!r}; pass the prefix of the backbone.")
  return torch_import.load_torch_checkpoint(model, sd, naming=naming, strict=strict)


def _register():
  from jaxvision.models import register_model  # pylint: disable=import-outside-toplevel
  for v, (_, _, res, _) in VARIANTS.items():
    for style, prefix in (("torch", ""), ("tf", "tf_")):
      cls = type(f"{prefix.upper()}EfficientNet{v.upper()}", (EfficientNet,),
                 {"default_input_shape": (res, res, 3), "__doc__": EfficientNet.__doc__})
      register_model(f"{prefix}efficientnet_{v}", cls, variant=v, style=style)


_register()
