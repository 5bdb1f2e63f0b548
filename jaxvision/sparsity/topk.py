"""Exact integer top-k masks (per tensor and global over many tensors).

Ties are broken by position (earlier index kept), so exactly `k` entries are
kept: the integer-count rule the OptG spec recommends instead of the official
code's `floor(r_l * |S_l|)`. `ties="keep"` reproduces the code (every entry
tied with the k-th largest value is kept; the count can then exceed k).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def keep_count(n: int, sparsity: float) -> int:
  """Number of kept entries K = n - floor(n * sparsity), robust to float error.

  The removed count is rounded down, so a sparsity below 1/n removes nothing
  (OptG's epoch-0 state with all-zero scores is dense, spec §8.5) and the
  achieved sparsity floor(n p)/n is within 1/n of p (exact when n p is an
  integer). Products within 1e-6 of an integer are snapped to it: 1000 * 0.9 is
  900.0000000000001 in floating point, 1000 * (1 - 0.9) is 99.99999999999997.
  """
  if not 0.0 <= sparsity <= 1.0:
    raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
  x = n * float(sparsity)
  r = round(x)
  removed = int(r) if abs(x - r) < 1e-6 else int(math.floor(x))
  return n - removed


def _ranks_desc(flat: jax.Array) -> jax.Array:
  """Rank of each entry in descending order (0 = largest), ties by index."""
  n = flat.shape[0]
  order = jnp.argsort(-flat.astype(jnp.float32), stable=True)
  return jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))


def topk_mask(scores: jax.Array, k, ties: str = "exact") -> jax.Array:
  """Bool mask of the `k` largest entries of `scores` (any shape; k may be traced)."""
  flat = scores.reshape(-1)
  if ties == "exact":
    keep = _ranks_desc(flat) < k
  elif ties == "keep":
    srt = jnp.sort(flat)[::-1]
    tau = srt[jnp.clip(k - 1, 0, flat.shape[0] - 1)]
    keep = jnp.where(k > 0, flat >= tau, False)
  else:
    raise ValueError(f"ties must be 'exact' or 'keep', got {ties!r}")
  return keep.reshape(scores.shape)


def global_topk_masks(scores: dict, k, ties: str = "exact") -> dict:
  """Global top-k over several tensors, returned as per-tensor bool masks.

  Args:
    scores: {key: array} (any shapes), e.g. from `paths.flatten`.
    k: total number of entries to keep (int or traced int32).
  Returns:
    {key: bool array} with the shapes of `scores`; exactly k True overall when
    ties="exact". Per-layer counts follow from the global ranking.
  """
  keys = list(scores)
  flat = jnp.concatenate([scores[key].reshape(-1).astype(jnp.float32) for key in keys])
  keep = topk_mask(flat, k, ties)
  out, off = {}, 0
  for key in keys:
    n = scores[key].size
    out[key] = keep[off:off + n].reshape(scores[key].shape)
    off += n
  return out
