"""Masked weight / supermask as a Pallas Mosaic TPU kernel (interpret on CPU).

Same kernel bodies as the GPU version with TPU-legal tiles (rows a multiple of
32 or full, columns full). Boolean masks are passed as int8. Unmeasured on TPU.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxvision.kernels._dispatch import interpret
from jaxvision.kernels.masked_weight import _pallas
from jaxvision.kernels.masked_weight.config import MaskedWeightConfig
from jaxvision.kernels.masked_weight.pallas_gpu import supported, view
from jaxvision.kernels.masked_weight.reference import MWSpec

__all__ = ["supported", "masked_weight_tpu"]


def static(w, spec: MWSpec, cfg: MaskedWeightConfig) -> _pallas.Static:
  rows, cols = view(w.size, cfg.cols)
  if rows == 1:
    bn = cols if cols <= cfg.tpu_tile_elems else cfg.tpu_tile_elems
    return _pallas.Static(spec, rows, cols, (1, bn), interpret(), "tpu")
  cap = max(32, (cfg.tpu_tile_elems // cols) // 32 * 32)
  return _pallas.Static(spec, rows, cols, (rows if rows <= cap else cap, cols),
                        interpret(), "tpu")


def masked_weight_tpu(w, scores, aux, spec: MWSpec, cfg: MaskedWeightConfig):
  if spec.mode == "mask" and aux.dtype == jnp.bool_:
    aux = aux.astype(jnp.int8)
  return _pallas.masked_weight_pallas(w, scores, aux, static(w, spec, cfg))
