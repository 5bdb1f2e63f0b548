"""ImageNet ResNet-18/34/50 (torchvision v1.5 layout: stride in the 3x3 conv)."""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common

STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
BASE_WIDTHS = (64, 128, 256, 512)


def _add_projection(block, cin: int, cout: int, stride: int, *, rngs, dtype) -> None:
  """torchvision `downsample` (1x1 conv, stride, BN) when the shape changes."""
  block.has_proj = stride != 1 or cin != cout
  if block.has_proj:
    block.downsample_conv = common.conv(cin, cout, 1, stride=stride, padding=0, dtype=dtype,
                                        rngs=rngs)
    block.downsample_bn = common.bn(cout, dtype=dtype, rngs=rngs)


def _shortcut(block, x, use_running_average: bool):
  if not block.has_proj:
    return x
  return block.downsample_bn(block.downsample_conv(x), use_running_average=use_running_average)


class BasicBlock(nnx.Module):
  """conv3x3(stride)-BN-ReLU-conv3x3-BN + shortcut, ReLU. x: [B, H, W, cin]."""

  def __init__(self, cin: int, inner: Sequence[int], cout: int, stride: int, *, rngs, dtype):
    self.conv1 = common.conv(cin, inner[0], 3, stride=stride, dtype=dtype, rngs=rngs)
    self.bn1 = common.bn(inner[0], dtype=dtype, rngs=rngs)
    self.conv2 = common.conv(inner[0], cout, 3, dtype=dtype, rngs=rngs)
    self.bn2 = common.bn(cout, dtype=dtype, rngs=rngs)
    _add_projection(self, cin, cout, stride, rngs=rngs, dtype=dtype)

  def __call__(self, x, train: bool, act=None):
    """`act`: optional replacement for the residual-branch ReLU (default nnx.relu)."""
    ura = not train
    act = nnx.relu if act is None else act
    y = act(self.bn1(self.conv1(x), use_running_average=ura))
    y = self.bn2(self.conv2(y), use_running_average=ura)
    sc = _shortcut(self, x, ura)
    return nnx.relu(y + sc)


class Bottleneck(nnx.Module):
  """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1-BN + shortcut, ReLU. x: [B, H, W, cin]."""

  def __init__(self, cin: int, inner: Sequence[int], cout: int, stride: int, *, rngs, dtype):
    c1, c2 = inner
    self.conv1 = common.conv(cin, c1, 1, padding=0, dtype=dtype, rngs=rngs)
    self.bn1 = common.bn(c1, dtype=dtype, rngs=rngs)
    self.conv2 = common.conv(c1, c2, 3, stride=stride, dtype=dtype, rngs=rngs)
    self.bn2 = common.bn(c2, dtype=dtype, rngs=rngs)
    self.conv3 = common.conv(c2, cout, 1, padding=0, dtype=dtype, rngs=rngs)
    self.bn3 = common.bn(cout, dtype=dtype, rngs=rngs)
    _add_projection(self, cin, cout, stride, rngs=rngs, dtype=dtype)

  def __call__(self, x, train: bool, act=None):
    """`act`: optional replacement for both residual-branch ReLUs (default nnx.relu)."""
    ura = not train
    act = nnx.relu if act is None else act
    y = act(self.bn1(self.conv1(x), use_running_average=ura))
    y = act(self.bn2(self.conv2(y), use_running_average=ura))
    y = self.bn3(self.conv3(y), use_running_average=ura)
    sc = _shortcut(self, x, ura)
    return nnx.relu(y + sc)


class ResNet(nnx.Module):
  """ImageNet ResNet-18/34 (basic blocks) and ResNet-50 (bottlenecks), torchvision v1.5 layout.

  Stem conv7x7/2 -> BN -> ReLU -> maxpool3/2 -> 4 stages -> global avg pool -> fc.
  Widths format (flat list of ints):
    [stem] + per-block inner widths + [out_1, out_2, out_3, out_4]
  where per-block inner widths are [conv1] per basic block (ResNet-18/34: 8 / 16 entries) or
  [conv1, conv2] per bottleneck (ResNet-50: 16 blocks -> 32 entries), in block order, and
  out_s is the output width of stage s (conv2 of basic blocks / conv3 of bottlenecks, the
  downsample conv and the residual stream). Defaults: ResNet-50 [64] + [64, 64]*3 +
  [128, 128]*4 + [256, 256]*6 + [512, 512]*3 + [256, 512, 1024, 2048] (37 entries);
  ResNet-18 [64] + [64]*2 + [128]*2 + [256]*2 + [512]*2 + [64, 128, 256, 512] (13 entries).
  CLR-RNF's pruned ResNet-50 sets conv1_b / conv2_b per block, out_s per stage and the stem.
  A block gets a 1x1 conv + BN projection when its stride is 2 or its in/out widths differ.
  Init: conv Kaiming-normal fan_out, BN (1, 0).

  Call: `model(x, train) -> logits`; x: [B, 224, 224, 3]; logits: [B, num_classes].
  Optional `branch_act(h, stage, block) -> h` replaces the residual-branch ReLUs (after bn1, and
  after bn2 in bottlenecks; not the ReLU after the add) of block `block` of stage `stage`
  (0-based); used by the transfer attacks (SGM, LLTA DecayReLU).
  Submodules: `conv1`, `bn1`, `layer{1..4}[i].{conv1,bn1,conv2,bn2[,conv3,bn3]
  [,downsample_conv,downsample_bn]}`, `fc`.
  """
  default_input_shape = (224, 224, 3)

  def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs, depth: int = 50,
               widths: Sequence[int] | None = None, width_multiplier: float = 1.0,
               dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    if depth not in STAGE_BLOCKS:
      raise ValueError(f"ImageNet ResNet depth must be one of {sorted(STAGE_BLOCKS)}, got {depth}.")
    name = f"resnet{depth}"
    nb = STAGE_BLOCKS[depth]
    per = 2 if depth >= 50 else 1
    n_expected = 1 + per * sum(nb) + 4
    widths = common.check_widths(
        name, widths, n_expected,
        f"[stem] + {per} inner width(s) per block x {sum(nb)} blocks + 4 stage output widths")
    if widths is None:
      widths = self.default_widths(depth, width_multiplier)
    self.widths = list(widths)
    self.depth, self.dtype, self.num_classes = depth, dtype, num_classes
    stem, inner, outs = widths[0], widths[1:-4], widths[-4:]
    block_cls = Bottleneck if depth >= 50 else BasicBlock
    self.conv1 = common.conv(in_channels, stem, 7, stride=2, padding=3, dtype=dtype, rngs=rngs)
    self.bn1 = common.bn(stem, dtype=dtype, rngs=rngs)
    cin, k = stem, 0
    for s in range(4):
      blocks = []
      for b in range(nb[s]):
        stride = 2 if (s > 0 and b == 0) else 1
        blocks.append(block_cls(cin, inner[k:k + per], outs[s], stride, rngs=rngs, dtype=dtype))
        k += per
        cin = outs[s]
      setattr(self, f"layer{s + 1}", nnx.List(blocks))
    self.fc = common.linear(cin, num_classes, dtype=dtype, rngs=rngs)

  def blocks(self):
    return [*self.layer1, *self.layer2, *self.layer3, *self.layer4]

  def __call__(self, x: jax.Array, train: bool = False, branch_act=None) -> jax.Array:
    x = x.astype(self.dtype)
    x = nnx.relu(self.bn1(self.conv1(x), use_running_average=not train))
    x = common.max_pool(x, 3, 2, padding=1)
    for s, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
      for b, blk in enumerate(stage):
        x = blk(x, train, None if branch_act is None else
                functools.partial(branch_act, stage=s, block=b))
    return self.fc(common.global_avg_pool(x))

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    nb = STAGE_BLOCKS[self.depth]
    convs = ("conv1", "conv2") if self.depth >= 50 else ("conv1",)
    last = "conv3" if self.depth >= 50 else "conv2"
    inner = [f"layer{s + 1}/{b}/{c}" for s in range(4) for b in range(nb[s]) for c in convs]
    return ["conv1"] + inner + [f"layer{s + 1}/0/{last}" for s in range(4)]

  @staticmethod
  def default_widths(depth: int = 50, width_multiplier: float = 1.0, **_) -> list[int]:
    nb = STAGE_BLOCKS[depth]
    sc = lambda w: common.scale_width(w, width_multiplier)
    per = 2 if depth >= 50 else 1
    expansion = 4 if depth >= 50 else 1
    inner = [sc(BASE_WIDTHS[s]) for s in range(4) for _ in range(nb[s]) for _ in range(per)]
    return [sc(64)] + inner + [sc(w * expansion) for w in BASE_WIDTHS]
