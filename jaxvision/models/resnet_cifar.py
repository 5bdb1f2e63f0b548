"""CIFAR ResNet-20/32/56/110 (basic blocks), shortcut option A (CLR-RNF) or B (pytorchcv)."""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common

STAGE_WIDTHS = (16, 32, 64)


def blocks_per_stage(depth: int) -> int:
  if depth < 8 or (depth - 2) % 6:
    raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 56, 110, ...), got {depth}.")
  return (depth - 2) // 6


class CifarBasicBlock(nnx.Module):
  """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + shortcut, ReLU. x: [B, H, W, cin]."""

  def __init__(self, cin: int, inner: int, cout: int, stride: int, shortcut: str, *,
               rngs: nnx.Rngs, dtype, kernel_init):
    self.stride = stride
    self.cin, self.cout = cin, cout
    self.shortcut = shortcut
    self.conv1 = common.conv(cin, inner, 3, stride=stride, dtype=dtype, kernel_init=kernel_init,
                             rngs=rngs)
    self.bn1 = common.bn(inner, dtype=dtype, rngs=rngs)
    self.conv2 = common.conv(inner, cout, 3, dtype=dtype, kernel_init=kernel_init, rngs=rngs)
    self.bn2 = common.bn(cout, dtype=dtype, rngs=rngs)
    self.has_proj = (stride != 1 or cin != cout) and shortcut == "B"
    if self.has_proj:
      self.downsample_conv = common.conv(cin, cout, 1, stride=stride, padding=0, dtype=dtype,
                                         kernel_init=kernel_init, rngs=rngs)
      self.downsample_bn = common.bn(cout, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool, act=None) -> jax.Array:
    """`act`: optional replacement for the residual-branch ReLU (default nnx.relu)."""
    ura = not train
    act = nnx.relu if act is None else act
    y = act(self.bn1(self.conv1(x), use_running_average=ura))
    y = self.bn2(self.conv2(y), use_running_average=ura)
    if self.has_proj:
      sc = self.downsample_bn(self.downsample_conv(x), use_running_average=ura)
    else:
      sc = x[:, ::self.stride, ::self.stride, :] if self.stride != 1 else x
      if self.cout != self.cin:  # option A: zero-pad channels, (cout-cin)//2 before.
        lo = (self.cout - self.cin) // 2
        sc = jnp.pad(sc, ((0, 0), (0, 0), (0, 0), (lo, self.cout - self.cin - lo)))
    return nnx.relu(y + sc)


class CifarResNet(nnx.Module):
  """CIFAR ResNet-(6n+2): stem conv3x3(16) -> 3 stages x n basic blocks (16/32/64) -> GAP -> fc.

  Widths format: list of 3n ints, the inner width (conv1 output channels) of each basic block,
  in order (stage 1 blocks, then stage 2, then stage 3); defaults are the stage widths. This is
  the structure CLR-RNF prunes. The stage (conv2/shortcut) widths are fixed by `stage_widths`
  (default (16, 32, 64) x width_multiplier) and the stem outputs stage_widths[0].
  Shortcut: 'A' = parameter-free (stride-2 subsample + zero channel padding, CLR-RNF), or
  'B' = 1x1 conv (stride) + BN projection where the shape changes (pytorchcv ResNet-20).
  Init: Kaiming normal (fan_in), BN (1, 0), fc PyTorch default.

  Call: `model(x, train) -> logits`; x: [B, 32, 32, 3]; logits: [B, num_classes].
  Optional `branch_act(h, stage, block) -> h` replaces the residual-branch ReLU (after bn1) of
  block `block` of stage `stage` (0-based); used by the transfer attacks (SGM, LLTA DecayReLU).
  Submodules: `conv1`, `bn1`, `layer{1,2,3}[i].{conv1,bn1,conv2,bn2[,downsample_conv,
  downsample_bn]}`, `fc`.
  """
  default_input_shape = (32, 32, 3)

  def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs, depth: int = 56,
               widths: Sequence[int] | None = None, width_multiplier: float = 1.0,
               shortcut: str = "A", stage_widths: Sequence[int] | None = None, dtype=jnp.float32,
               in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    if shortcut not in ("A", "B"):
      raise ValueError(f"shortcut must be 'A' (parameter-free) or 'B' (1x1 conv + BN), "
                       f"got {shortcut!r}.")
    n = blocks_per_stage(depth)
    name = f"resnet{depth}"
    if stage_widths is None:
      stage_widths = [common.scale_width(w, width_multiplier) for w in STAGE_WIDTHS]
    stage_widths = common.check_widths(name, stage_widths, 3, "stage_widths: 3 ints")
    widths = common.check_widths(name, widths, 3 * n, f"{3 * n} per-block inner widths")
    if widths is None:
      widths = [w for w in stage_widths for _ in range(n)]
    self.widths = list(widths)
    self.stage_widths = list(stage_widths)
    self.depth, self.shortcut, self.dtype = depth, shortcut, dtype
    self.num_classes = num_classes
    ki = common.kaiming_fan_in
    self.conv1 = common.conv(in_channels, stage_widths[0], 3, dtype=dtype, kernel_init=ki,
                             rngs=rngs)
    self.bn1 = common.bn(stage_widths[0], dtype=dtype, rngs=rngs)
    cin = stage_widths[0]
    for s in range(3):
      blocks = []
      for b in range(n):
        stride = 2 if (s > 0 and b == 0) else 1
        blocks.append(CifarBasicBlock(cin, widths[s * n + b], stage_widths[s], stride, shortcut,
                                      rngs=rngs, dtype=dtype, kernel_init=ki))
        cin = stage_widths[s]
      setattr(self, f"layer{s + 1}", nnx.List(blocks))
    self.fc = common.linear(cin, num_classes, dtype=dtype, rngs=rngs)

  def blocks(self) -> list[CifarBasicBlock]:
    return [*self.layer1, *self.layer2, *self.layer3]

  def __call__(self, x: jax.Array, train: bool = False, branch_act=None) -> jax.Array:
    x = x.astype(self.dtype)
    x = nnx.relu(self.bn1(self.conv1(x), use_running_average=not train))
    for s, stage in enumerate((self.layer1, self.layer2, self.layer3)):
      for b, blk in enumerate(stage):
        x = blk(x, train, None if branch_act is None else
                functools.partial(branch_act, stage=s, block=b))
    return self.fc(common.global_avg_pool(x))

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    n = len(self.widths) // 3
    return [f"layer{s + 1}/{b}/conv1" for s in range(3) for b in range(n)]

  @staticmethod
  def default_widths(depth: int = 56, width_multiplier: float = 1.0, stage_widths=None,
                     **_) -> list[int]:
    n = blocks_per_stage(depth)
    if stage_widths is None:
      stage_widths = [common.scale_width(w, width_multiplier) for w in STAGE_WIDTHS]
    return [w for w in stage_widths for _ in range(n)]
