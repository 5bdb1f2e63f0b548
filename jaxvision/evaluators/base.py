"""Host-side accumulation shared by all evaluators, multi-host aware.

Conventions (every evaluator in this package):
  * Evaluation batches are padded to a fixed global size; a `mask: [B]` of 0/1
    marks the real rows. Padded rows never change a result.
  * Each process passes only its *addressable* (process-local) rows. When
    `jax.process_count() > 1`, sums/counts (or the per-example arrays of
    rank-based metrics) are combined across hosts with
    `jax.experimental.multihost_utils.process_allgather`, so every host gets
    the same result. All hosts must call `result()` (it is a collective).
"""
from __future__ import annotations

from typing import Mapping

import jax
import numpy as np


def to_numpy(x) -> np.ndarray:
  """Any array-like (jax, numpy, list) -> host numpy array."""
  if isinstance(x, jax.Array):
    if not x.is_fully_addressable:
      raise ValueError(
          "got a jax.Array that is not fully addressable; pass only this "
          "process's addressable data (e.g. x.addressable_shards / the local "
          "batch), each process calls update() with its own rows")
    return np.asarray(jax.device_get(x))
  return np.asarray(x)


def is_traced(x) -> bool:
  """True for an abstract value under jit/vmap/grad (its values are unknown)."""
  tracer = getattr(jax.core, "Tracer", None)
  if tracer is None:  # pragma: no cover (jax.core.Tracer was removed)
    from jax._src import core as _core  # pylint: disable=g-import-not-at-top
    tracer = _core.Tracer
  return isinstance(x, tracer)


def check_mask(mask, n: int) -> np.ndarray:
  """Validates a 0/1 mask of length n -> bool [n]; None means all valid."""
  if mask is None:
    return np.ones((n,), bool)
  m = to_numpy(mask)
  if m.shape != (n,):
    raise ValueError(f"mask must have shape [{n}] (one entry per row), got {m.shape}")
  if not np.all((m == 0) | (m == 1)):
    raise ValueError("mask must contain only 0/1 (or booleans)")
  return m.astype(bool)


def allgather_sum(x: np.ndarray) -> np.ndarray:
  """Sums a fixed-shape host array over processes (identity on one host)."""
  x = np.asarray(x)
  if jax.process_count() == 1:
    return x
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.process_allgather(x)).sum(axis=0)


def allgather_concat(x: np.ndarray) -> np.ndarray:
  """Concatenates variable-length host arrays [n_p, ...] over processes.

  The arrays are padded to the longest length, gathered, and unpadded, so the
  order is process 0's rows, then process 1's, etc.
  """
  x = np.asarray(x)
  if jax.process_count() == 1:
    return x
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  n = np.asarray(multihost_utils.process_allgather(np.int64(x.shape[0])))
  pad = int(n.max()) - x.shape[0]
  xp = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)], 0)
  g = np.asarray(multihost_utils.process_allgather(xp))
  return np.concatenate([g[p, :int(n[p])] for p in range(len(n))], 0)


class MeanAccumulator:
  """Masked running means of per-example values, summed across hosts.

  `update(values, mask)`: `values` is a dict of arrays `[B]` (jax or numpy),
  `mask: [B]` of 0/1 (1 = real example, 0 = padding). Values of padded rows
  are ignored, even if NaN. Each process passes only its addressable rows.
  `result()` returns `{name: sum(v * mask) / sum(mask)}` as Python floats; with
  several processes the sums and counts are first summed over all hosts
  (a collective: call it on every host). A key never updated with a real row
  gives NaN.
  """

  def __init__(self):
    self.reset()

  def reset(self):
    self._sums: dict[str, float] = {}
    self._counts: dict[str, float] = {}

  def update(self, values: Mapping[str, object], mask=None):
    for k, v in values.items():
      v = to_numpy(v).astype(np.float64)
      if v.ndim != 1:
        raise ValueError(f"value '{k}' must have shape [B], got {v.shape}")
      m = check_mask(mask, v.shape[0])
      self._sums[k] = self._sums.get(k, 0.0) + float(np.where(m, v, 0.0).sum())
      self._counts[k] = self._counts.get(k, 0.0) + float(m.sum())

  def result(self) -> dict[str, float]:
    keys = sorted(self._sums)
    sc = np.array([[self._sums[k] for k in keys], [self._counts[k] for k in keys]],
                  np.float64).reshape(2, len(keys))
    sc = allgather_sum(sc)
    return {k: (float(sc[0, i] / sc[1, i]) if sc[1, i] > 0 else float("nan"))
            for i, k in enumerate(keys)}


class ConcatAccumulator:
  """Keeps the real rows of per-example arrays for rank-based metrics.

  `update(values, mask)` stores `v[mask]` for each key (arrays `[B, ...]`);
  `result()` returns `{name: array [N, ...]}` concatenated over updates and,
  with several processes, over hosts (process order; a collective).
  """

  def __init__(self):
    self.reset()

  def reset(self):
    self._parts: dict[str, list[np.ndarray]] = {}

  def update(self, values: Mapping[str, object], mask=None):
    for k, v in values.items():
      v = to_numpy(v)
      m = check_mask(mask, v.shape[0])
      self._parts.setdefault(k, []).append(v[m])

  def result(self) -> dict[str, np.ndarray]:
    return {k: allgather_concat(np.concatenate(p, 0)) for k, p in sorted(self._parts.items())}
