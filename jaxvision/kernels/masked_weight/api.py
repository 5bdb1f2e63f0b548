"""`masked_weight`: the public entry point; picks the implementation."""
from __future__ import annotations

import jax.numpy as jnp

from jaxvision.kernels import _dispatch
from jaxvision.kernels.masked_weight import pallas_gpu, pallas_tpu
from jaxvision.kernels.masked_weight.config import (DEFAULT_CONFIG, PREFERRED,
                                                    MaskedWeightConfig)
from jaxvision.kernels.masked_weight.reference import MWSpec, masked_weight_reference


def masked_weight(w, scores=None, *, mask=None, threshold=None, impl: str = "auto",
                  config: MaskedWeightConfig | None = None):
  """w * m with supermask (OptG) gradients.

  Args:
    w: [...] weights (float32/bfloat16).
    scores: like w, or None. With `threshold`, m = scores >= threshold.
    mask: like w, 0/1 (bool, int or float; nonzero keeps), precomputed e.g. by a
      global top-k. Give either `mask` or `threshold`, not both.
    threshold: scalar (may be traced); needs `scores`.
    impl: "auto" | "xla" | "pallas" | "pallas_gpu" | "pallas_tpu".
  Returns:
    w * m, dtype of w. Backward: dw = g*m; dscores = g*w (when scores given);
    nothing to mask/threshold.
  """
  w = jnp.asarray(w)
  if not jnp.issubdtype(w.dtype, jnp.floating):
    raise TypeError(f"masked_weight: w must be floating, got {w.dtype}.")
  if scores is not None:
    scores = jnp.asarray(scores)
    if scores.shape != w.shape:
      raise ValueError(f"masked_weight: scores shape {scores.shape} != w shape {w.shape}.")
    if not jnp.issubdtype(scores.dtype, jnp.floating):
      raise TypeError(f"masked_weight: scores must be floating, got {scores.dtype}.")
  if (mask is None) == (threshold is None):
    raise ValueError("masked_weight: give exactly one of mask= (a 0/1 array like w) or "
                     "threshold= (with scores; m = scores >= threshold).")
  if threshold is not None:
    if scores is None:
      raise ValueError("masked_weight: threshold= needs scores (m = scores >= threshold).")
    aux = jnp.asarray(threshold, scores.dtype)
    if aux.size != 1:
      raise ValueError(f"masked_weight: threshold must be a scalar, got shape {aux.shape}; "
                       "do per-layer top-k outside and pass mask= instead.")
    aux = aux.reshape(())
    spec = MWSpec("threshold", True)
  else:
    aux = jnp.asarray(mask)
    if aux.shape != w.shape:
      raise ValueError(f"masked_weight: mask shape {aux.shape} != w shape {w.shape}.")
    spec = MWSpec("mask", scores is not None)
  cfg = config or DEFAULT_CONFIG
  which = _dispatch.choose(
      "masked_weight", impl, PREFERRED,
      {"pallas_gpu": lambda: pallas_gpu.supported(w, scores, mask),
       "pallas_tpu": lambda: pallas_tpu.supported(w, scores, mask)})
  if which == "pallas_gpu":
    return pallas_gpu.masked_weight_gpu(w, scores, aux, spec, cfg)
  if which == "pallas_tpu":
    return pallas_tpu.masked_weight_tpu(w, scores, aux, spec, cfg)
  return masked_weight_reference(w, scores, aux, spec)
