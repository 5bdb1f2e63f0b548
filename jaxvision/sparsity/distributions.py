"""Per-layer distributions of a global sparsity: uniform and ERK.

Both return exact integer keep counts per layer that sum to
`topk.keep_count(sum(sizes), sparsity)` (largest-remainder rounding), so the
global sparsity is exact. ('global' is not a fixed distribution: it follows
from a global top-k of the scores, see `topk.global_topk_masks`.)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from jaxvision.sparsity import topk

DISTRIBUTIONS = ("global", "uniform", "erk")


def _round_to_total(dens: np.ndarray, sizes: np.ndarray, total: int) -> np.ndarray:
  raw = dens * sizes
  k = np.minimum(np.floor(raw + 1e-9).astype(np.int64), sizes)
  rem = total - int(k.sum())
  if rem > 0:
    frac = raw - k
    frac[k >= sizes] = -1.0
    for i in np.argsort(-frac, kind="stable")[:rem]:
      k[i] += 1
  elif rem < 0:
    for i in np.argsort(raw - k, kind="stable")[: -rem]:
      k[i] -= 1
  return k


def uniform_counts(sizes: Sequence[int], sparsity: float) -> np.ndarray:
  """Every layer keeps (1 - sparsity) of its weights. sizes: [L] ints."""
  sizes = np.asarray(sizes, np.int64)
  total = topk.keep_count(int(sizes.sum()), sparsity)
  dens = np.full(len(sizes), 1.0 - sparsity)
  return _round_to_total(dens, sizes, total)


def erk_counts(shapes: Sequence[tuple], sparsity: float, power: float = 1.0) -> np.ndarray:
  """Erdos-Renyi-Kernel (RigL, Evci et al. 2020) keep counts.

  Density of layer l is proportional to sum(shape)/prod(shape) (kernel dims
  included); layers whose density would exceed 1 are made dense and the rest
  is re-scaled, as in RigL's code. shapes: kernel shapes, e.g. [kh, kw, cin, cout].
  """
  sizes = np.array([math.prod(s) for s in shapes], np.int64)
  n = int(sizes.sum())
  total = topk.keep_count(n, sparsity)
  raw = np.array([(sum(s) / math.prod(s)) ** power for s in shapes], np.float64)
  dense = np.zeros(len(shapes), bool)
  while True:
    budget = total - sizes[dense].sum()
    free = ~dense
    eps = budget / float((raw[free] * sizes[free]).sum()) if free.any() else 0.0
    dens = np.where(dense, 1.0, eps * raw)
    over = (dens > 1.0) & free
    if not over.any():
      break
    dense |= over
  return _round_to_total(np.clip(dens, 0.0, 1.0), sizes, total)


def layer_counts(kind: str, shapes: Sequence[tuple], sparsity: float) -> np.ndarray:
  if kind == "uniform":
    return uniform_counts([math.prod(s) for s in shapes], sparsity)
  if kind == "erk":
    return erk_counts(shapes, sparsity)
  raise ValueError(f"per-layer distribution must be 'uniform' or 'erk', got {kind!r}")
