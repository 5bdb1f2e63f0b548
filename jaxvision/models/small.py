"""Small CNNs for fast tests and demos."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common

CNN_SMALL_WIDTHS = (16, 32, 64)


class CNNSmall(nnx.Module):
  """Tiny CNN: 3 x [conv3x3 -> BN -> ReLU] (stride 1, 2, 2) -> GAP -> Linear.

  Widths format: list of 3 ints, the conv output widths (default [16, 32, 64]).
  Call: `model(x, train) -> logits`; x: [B, H, W, C] (any H, W; default 32x32x3).
  Submodules: `convs[i]`, `bns[i]`, `fc`.
  """
  default_input_shape = (32, 32, 3)

  def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    widths = common.check_widths("cnn_small", widths, 3, "3 conv output widths")
    if widths is None:
      widths = self.default_widths(width_multiplier)
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    convs, bns, cin = [], [], in_channels
    for i, w in enumerate(widths):
      convs.append(common.conv(cin, w, 3, stride=1 if i == 0 else 2, dtype=dtype, rngs=rngs))
      bns.append(common.bn(w, dtype=dtype, rngs=rngs))
      cin = w
    self.convs, self.bns = nnx.List(convs), nnx.List(bns)
    self.fc = common.linear(cin, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    for c, b in zip(self.convs, self.bns):
      x = nnx.relu(b(c(x), use_running_average=not train))
    return self.fc(common.global_avg_pool(x))

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    return [f"convs/{i}" for i in range(len(self.widths))]

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in CNN_SMALL_WIDTHS]
