"""Static configuration of the dynamic-convolution kernels."""
from __future__ import annotations

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class DynamicConvConfig:
  """One program computes a [block_w, C] strip of one output row.

  block_w = min(next_pow2(W), max(1, tile_elems // C)) (a power of two).
  TPU kernel: a program owns `tpu_max_rows` (or the largest divisor of H below it) output rows
  and holds one example's padded image and weights in VMEM, at most `tpu_vmem_budget` bytes.
  """
  tile_elems: int = 2048
  num_warps: int = 4
  num_stages: int = 1
  tpu_max_rows: int = 8
  tpu_vmem_budget: int = 12 * 1024 * 1024


DEFAULT_CONFIG = DynamicConvConfig()

# Implementation order tried by impl="auto". Flip after benchmarks/kernels.py shows
# the Pallas kernel faster on this backend. Nothing has been measured on GPU or TPU yet
# (the TPU kernel, per-pixel only, is tested in interpret mode and lowered to Mosaic on CPU).
PREFERRED = types.MappingProxyType({
    "cpu": ("xla",),
    "gpu": ("xla",),
    "tpu": ("xla",),
})
