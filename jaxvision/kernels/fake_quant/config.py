"""Static configuration of the fake-quant kernels."""
from __future__ import annotations

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class FakeQuantConfig:
  """Block sizes (powers of two). A tile holds about `tile_elems` elements.

  GPU (Triton): 2-D tiles (rows, cols), cols <= `max_cols`. TPU (Mosaic): tiles
  whose last two dims are multiples of (8, 128) or the full dims.
  """
  tile_elems: int = 4096
  max_cols: int = 1024
  num_warps: int = 4
  num_stages: int = 1
  tpu_tile_elems: int = 256 * 1024
  tpu_max_cols: int = 2048


DEFAULT_CONFIG = FakeQuantConfig()

# Implementation order tried by impl="auto" on each backend. Flip an entry to
# ("pallas_gpu", "xla") / ("pallas_tpu", "xla") only after benchmarks/kernels.py shows
# the Pallas kernel faster on this backend. Nothing has been measured on GPU/TPU yet.
PREFERRED = types.MappingProxyType({
    "cpu": ("xla",),
    "gpu": ("xla",),
    "tpu": ("xla",),
})
