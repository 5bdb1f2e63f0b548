"""Plain-jnp masked weight / supermask: the oracle and the CPU default.

Forward: out = w * m, m = (scores >= threshold) or a given 0/1 mask.
Backward (OptG §2, straight-through to the scores):
  dL/dw      = g * m
  dL/dscores = g * w        (only when scores are given)
  threshold and mask get no gradient.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class MWSpec:
  mode: str  # "threshold" (m from scores) | "mask" (m given; scores optional)
  has_scores: bool


def mask_math(scores, thr, mask):
  """Boolean mask from scores >= thr, or from a given 0/1 mask (nonzero = keep)."""
  if mask is None:
    return scores >= thr
  return mask != 0


def forward_math(w, m):
  return w * m.astype(w.dtype)


def backward_math(g, w, m, scores_dtype):
  """(dw, dscores or None)."""
  dw = g * m.astype(g.dtype)
  if scores_dtype is None:
    return dw, None
  ds = (g.astype(jnp.float32) * w.astype(jnp.float32)).astype(scores_dtype)
  return dw, ds


def _split(spec, scores, aux):
  """aux is the threshold (mode "threshold") or the mask (mode "mask")."""
  if spec.mode == "threshold":
    return mask_math(scores, aux, None)
  return mask_math(None, None, aux)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def masked_weight_reference(w, scores, aux, spec: MWSpec):
  """w: [...]; scores: like w or None; aux: scalar threshold or mask like w."""
  return forward_math(w, _split(spec, scores, aux))


def _fwd(w, scores, aux, spec):
  return masked_weight_reference(w, scores, aux, spec), (w, scores, aux)


def _bwd(spec, res, g):
  w, scores, aux = res
  m = _split(spec, scores, aux)
  dw, ds = backward_math(g, w, m, scores.dtype if spec.has_scores else None)
  return dw, ds, None


masked_weight_reference.defvjp(_fwd, _bwd)
