"""GoogLeNet for CIFAR as used by HRank / CLR-RNF (Inception v1 modules, 32x32 input)."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common

# Branch output widths per Inception module: [1x1, 3x3, 5x5 (two 3x3), pool-proj].
FILTERS = ((64, 128, 32, 32), (128, 192, 96, 64), (192, 208, 48, 64), (160, 224, 64, 64),
           (128, 256, 64, 64), (112, 288, 64, 64), (256, 320, 128, 128), (256, 320, 128, 128),
           (384, 384, 128, 128))
# Prunable inner widths per module: [3x3 reduce, 5x5 reduce, first 3x3 of the 5x5 branch].
INNER = ((96, 16, 32), (128, 32, 96), (96, 16, 48), (112, 24, 64), (128, 24, 64), (144, 32, 64),
         (160, 32, 128), (160, 32, 128), (192, 48, 128))
NAMES = ("a3", "b3", "a4", "b4", "c4", "d4", "e4", "a5", "b5")
PRE_WIDTH = 192


class Inception(nnx.Module):
  """Four branches concatenated on channels. x: [B, H, W, cin] -> [B, H, W, sum(filters)].

  b1: 1x1; b3: 1x1 (reduce) -> 3x3; b5: 1x1 (reduce) -> 3x3 -> 3x3; pool: maxpool3/1 -> 1x1.
  Every conv has a bias and is followed by BN and ReLU.
  """

  def __init__(self, cin: int, filters: Sequence[int], inner: Sequence[int], *, rngs, dtype):
    n1, n3, n5, npool = filters
    r3, r5a, r5b = inner
    c = lambda i, o, k: common.conv(i, o, k, bias=True, dtype=dtype, rngs=rngs,
                                    kernel_init=common.kaiming_fan_out)
    b = lambda n: common.bn(n, dtype=dtype, rngs=rngs)
    self.b1_conv, self.b1_bn = c(cin, n1, 1), b(n1)
    self.b3_conv1, self.b3_bn1 = c(cin, r3, 1), b(r3)
    self.b3_conv2, self.b3_bn2 = c(r3, n3, 3), b(n3)
    self.b5_conv1, self.b5_bn1 = c(cin, r5a, 1), b(r5a)
    self.b5_conv2, self.b5_bn2 = c(r5a, r5b, 3), b(r5b)
    self.b5_conv3, self.b5_bn3 = c(r5b, n5, 3), b(n5)
    self.pool_conv, self.pool_bn = c(cin, npool, 1), b(npool)

  def __call__(self, x, train: bool):
    ura = not train
    cbr = lambda conv, norm, h: nnx.relu(norm(conv(h), use_running_average=ura))
    y1 = cbr(self.b1_conv, self.b1_bn, x)
    y3 = cbr(self.b3_conv2, self.b3_bn2, cbr(self.b3_conv1, self.b3_bn1, x))
    y5 = cbr(self.b5_conv1, self.b5_bn1, x)
    y5 = cbr(self.b5_conv3, self.b5_bn3, cbr(self.b5_conv2, self.b5_bn2, y5))
    yp = cbr(self.pool_conv, self.pool_bn, common.max_pool(x, 3, 1, padding=1))
    return jnp.concatenate([y1, y3, y5, yp], axis=-1)


class GoogLeNet(nnx.Module):
  """CIFAR GoogLeNet of HRank / CLR-RNF: conv3x3(192)+BN+ReLU, Inception a3 b3, maxpool,
  a4..e4, maxpool, a5 b5, global avg pool, Linear.

  Widths format: list of 27 ints, per Inception module (a3, b3, a4, b4, c4, d4, e4, a5, b5)
  the three widths CLR-RNF prunes: [3x3-branch 1x1 reduce, 5x5-branch 1x1 reduce, first 3x3
  of the 5x5 branch] (default (96, 16, 32), (128, 32, 96), ...). The branch output widths are
  fixed by `filters` (9 x 4, default the original). Convs have biases; maxpools are 3x3/2 pad 1.
  Init: conv N(0, sqrt(2 / (k*k*out))) (Kaiming fan_out), BN (1, 0).

  Call: `model(x, train) -> logits`; x: [B, 32, 32, 3]; logits: [B, num_classes].
  Submodules: `pre_conv`, `pre_bn`, `inception_<name>.{b1_conv, b3_conv1, b3_conv2, b5_conv1,
  b5_conv2, b5_conv3, pool_conv}` (+ matching `_bn`), `linear`.
  """
  default_input_shape = (32, 32, 3)

  def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, filters: Sequence[Sequence[int]] | None = None,
               dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    sc = lambda w: common.scale_width(w, width_multiplier)
    widths = common.check_widths("googlenet", widths, 27,
                                 "9 modules x [3x3 reduce, 5x5 reduce, 5x5 first 3x3]")
    if widths is None:
      widths = self.default_widths(width_multiplier)
    if filters is None:
      filters = [[sc(w) for w in f] for f in FILTERS]
    filters = [list(f) for f in filters]
    if len(filters) != 9 or any(len(f) != 4 for f in filters):
      raise ValueError(f"googlenet: filters must be 9 lists of 4 branch widths, got {filters}.")
    self.widths, self.filters = list(widths), filters
    self.dtype, self.num_classes = dtype, num_classes
    pre = sc(PRE_WIDTH)
    self.pre_conv = common.conv(in_channels, pre, 3, bias=True, dtype=dtype, rngs=rngs)
    self.pre_bn = common.bn(pre, dtype=dtype, rngs=rngs)
    cin = pre
    for i, name in enumerate(NAMES):
      setattr(self, f"inception_{name}",
              Inception(cin, filters[i], widths[3 * i:3 * i + 3], rngs=rngs, dtype=dtype))
      cin = sum(filters[i])
    self.linear = common.linear(cin, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    x = nnx.relu(self.pre_bn(self.pre_conv(x), use_running_average=not train))
    for name in NAMES:
      x = getattr(self, f"inception_{name}")(x, train)
      if name in ("b3", "e4"):
        x = common.max_pool(x, 3, 2, padding=1)
    return self.linear(common.global_avg_pool(x))

  def width_sources(self) -> list[str]:
    """Conv path whose output width is each widths entry (used to infer widths)."""
    return [f"inception_{n}/{c}" for n in NAMES for c in ("b3_conv1", "b5_conv1", "b5_conv2")]

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for t in INNER for w in t]
