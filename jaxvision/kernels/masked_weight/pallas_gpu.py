"""Masked weight / supermask as a Pallas Triton kernel (GPU; interpret on CPU).

Power-of-two tiles over the flat tensor; speed on a GPU is unmeasured.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxvision.kernels._dispatch import interpret, next_pow2
from jaxvision.kernels.masked_weight import _pallas
from jaxvision.kernels.masked_weight.config import MaskedWeightConfig
from jaxvision.kernels.masked_weight.reference import MWSpec

_FLOATS = (jnp.float32, jnp.bfloat16, jnp.float16)


def supported(w, scores, mask) -> str | None:
  if w.dtype not in _FLOATS:
    return f"weight dtype {w.dtype} (float32/bfloat16/float16 only)"
  if scores is not None and scores.dtype not in _FLOATS:
    return f"scores dtype {scores.dtype} (float32/bfloat16/float16 only)"
  if w.size == 0:
    return "empty input"
  return None


def view(n: int, cols: int):
  return (n // cols, cols) if n % cols == 0 and n >= cols else (1, n)


def static(w, spec: MWSpec, cfg: MaskedWeightConfig) -> _pallas.Static:
  rows, cols = view(w.size, cfg.cols)
  bn = min(next_pow2(cols), cfg.tile_elems)
  bm = min(next_pow2(rows), max(1, cfg.tile_elems // bn))
  return _pallas.Static(spec, rows, cols, (bm, bn), interpret(), "gpu",
                        cfg.num_warps, cfg.num_stages)


def masked_weight_gpu(w, scores, aux, spec: MWSpec, cfg: MaskedWeightConfig):
  return _pallas.masked_weight_pallas(w, scores, aux, static(w, spec, cfg))
