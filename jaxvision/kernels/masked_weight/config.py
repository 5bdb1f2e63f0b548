"""Static configuration of the masked-weight kernels."""
from __future__ import annotations

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class MaskedWeightConfig:
  """Elementwise tiles over the flat tensor viewed as [n/cols, cols] (or [1, n])."""
  cols: int = 1024          # flat row length when n is divisible by it
  tile_elems: int = 4096    # GPU tile size (power of two)
  num_warps: int = 4
  num_stages: int = 1
  tpu_tile_elems: int = 256 * 1024


DEFAULT_CONFIG = MaskedWeightConfig()

# Implementation order tried by impl="auto". Flip after benchmarks/kernels.py shows
# the Pallas kernel faster on this backend. Nothing has been measured on GPU/TPU yet.
PREFERRED = types.MappingProxyType({
    "cpu": ("xla",),
    "gpu": ("xla",),
    "tpu": ("xla",),
})
