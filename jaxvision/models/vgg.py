"""VGG-16 for CIFAR as used by the pruning papers (CLR-RNF, HRank)."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common

# Default conv widths; max-pool (2x2, stride 2) follows the convs at these 0-based indices.
VGG16_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
VGG16_POOL_AFTER = (1, 3, 6, 9, 12)


class VGG(nnx.Module):
  """CIFAR VGG-16 (CLR-RNF §3): 13 x [conv3x3 (bias) -> BN -> ReLU], 5 max-pools, Linear.

  Widths format: list of 13 ints, the output channels of the 13 convs in order
  (default [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]). The classifier is
  a single Linear(widths[-1] -> num_classes) on the globally averaged features (1x1 at 32x32).
  Init: conv Kaiming-normal fan_out, bias 0; BN (1, 0); Linear N(0, 0.01), bias 0.

  Call: `model(x, train) -> logits`; x: [B, 32, 32, 3] NHWC; logits: [B, num_classes].
  Submodules: `convs[i]`, `bns[i]` (i = 0..12), `classifier`.
  """
  default_input_shape = (32, 32, 3)

  def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    fmt = "13 conv output widths"
    widths = common.check_widths("vgg16", widths, len(VGG16_WIDTHS), fmt)
    if widths is None:
      widths = [common.scale_width(w, width_multiplier) for w in VGG16_WIDTHS]
    self.widths = list(widths)
    self.num_classes = num_classes
    self.dtype = dtype
    convs, bns = [], []
    cin = in_channels
    for w in widths:
      convs.append(common.conv(cin, w, 3, bias=True, dtype=dtype, rngs=rngs))
      bns.append(common.bn(w, dtype=dtype, rngs=rngs))
      cin = w
    self.convs = nnx.List(convs)
    self.bns = nnx.List(bns)
    self.classifier = common.linear(cin, num_classes, dtype=dtype, rngs=rngs,
                                    kernel_init=nnx.initializers.normal(0.01))

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    for i, (c, b) in enumerate(zip(self.convs, self.bns)):
      x = nnx.relu(b(c(x), use_running_average=not train))
      if i in VGG16_POOL_AFTER:
        x = common.max_pool(x, 2, 2)
    return self.classifier(common.global_avg_pool(x))

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    return [f"convs/{i}" for i in range(len(self.widths))]

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in VGG16_WIDTHS]
