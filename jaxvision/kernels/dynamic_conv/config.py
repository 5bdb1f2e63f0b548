"""Static configuration of the dynamic-convolution kernels."""
from __future__ import annotations

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class DynamicConvConfig:
  """One program computes a [block_w, C] strip of one output row.

  block_w = min(next_pow2(W), max(1, tile_elems // C)) (a power of two).
  """
  tile_elems: int = 2048
  num_warps: int = 4
  num_stages: int = 1


DEFAULT_CONFIG = DynamicConvConfig()

# Implementation order tried by impl="auto". Flip after benchmarks/kernels.py shows
# the Pallas kernel faster on this backend. Nothing has been measured on GPU yet;
# there is no TPU kernel for this op.
PREFERRED = types.MappingProxyType({
    "cpu": ("xla",),
    "gpu": ("xla",),
    "tpu": ("xla",),
})
