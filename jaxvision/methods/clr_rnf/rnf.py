"""k-Reciprocal Nearest Filter (RNF) selection and the ablation selectors.

Spec: `shared/papers/clr_rnf.md` §2 step 3 and §9.5. Each filter i orders all filters by
distance (N_i[0] = i), R_i(k) = first k of N_i, I(k) = intersection of all R_i(k). Starting
at k = m, k grows while |I(k)| < m; on overshoot I(k-1) is kept and filled up to m from
I(k) minus I(k-1):
  fill='official' (default): in CPython `set.pop()` order, as the official `graph_weight`:
    I(k) = set(rows[0]).intersection(*rows[1:]) with rows = N[:, :k].tolist(), I(k-1) the
    same from N[:, :k-1], redundant = I(k).difference(I(k-1)), then I(k-1).add(
    redundant.pop()) until m are kept. Deterministic (hash-slot order of the ints, not
    ascending); reproduced by running those same set operations (CPython 3 semantics).
  fill='ascending': lower index first.

Closed form (used to find k): with rank_i(j) = position of j in N_i and r(j) = max_i
rank_i(j), I(k) = {j : r(j) <= k-1}, so k = (m-th smallest r) + 1. Within-row ties in
distance are broken by lower index (stable sort).
"""
from __future__ import annotations

import concurrent.futures
import os

import jax
import jax.numpy as jnp
import numpy as np

SELECTIONS = ("rnf", "l1", "random")
FILLS = ("official", "ascending")


def _as_filters(w) -> np.ndarray:
  w = np.asarray(w, np.float32)
  if w.ndim != 2:
    raise ValueError(f"filters must be a 2-D [n, d] array (one flattened filter per row), "
                     f"got shape {w.shape}.")
  return w


def kernel_to_filters(kernel) -> np.ndarray:
  """Conv kernel [kh, kw, cin, cout] (HWIO) or dense [cin, cout] -> filters [cout, d] (host).

  Rows are flattened in PyTorch order (cin, kh, kw) so distances match the official code.
  """
  k = np.asarray(kernel, np.float32)
  if k.ndim == 4:
    return np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1)).reshape(k.shape[3], -1))
  if k.ndim == 2:
    return np.ascontiguousarray(k.T)
  raise ValueError(f"expected a conv kernel [kh,kw,cin,cout] or a dense kernel [cin,cout], "
                   f"got shape {k.shape}.")


def sq_distances(w):
  """D_ij = max(|w_i|^2 + |w_j|^2 - 2 w_i.w_j, 0), fp32. w: [n, d] -> [n, n].

  numpy in, numpy out (host BLAS); jax in (also under jit), jax out.
  """
  xp = jnp if isinstance(w, jax.Array) else np
  w = w.astype(xp.float32)
  sq = (w * w).sum(axis=1)
  g = (jnp.matmul(w, w.T, precision=jax.lax.Precision.HIGHEST) if xp is jnp else w @ w.T)
  return xp.maximum(sq[:, None] + sq[None, :] - 2.0 * g, 0.0).astype(xp.float32)


def worst_ranks(d, n_valid=None):
  """r(j) = max_i rank_i(j) from a distance matrix d: [n, n] -> int32 [n].

  Each row is ordered ascending by distance with i itself first, ties by lower index (stable
  sort). numpy in: host numpy (the default path: no compile, fastest on CPU). jax in: jnp,
  jit-able; n_valid then marks the leading n_valid rows/columns as real (the rest is padding,
  ranked last and ignored; entries of r beyond n_valid are meaningless).
  """
  if isinstance(d, jax.Array):
    return _worst_ranks_jnp(d, d.shape[0] if n_valid is None else n_valid)
  d = np.array(d, np.float32)
  n = d.shape[0]
  if d.shape != (n, n):
    raise ValueError(f"distance matrix must be square [n, n], got {d.shape}.")
  np.fill_diagonal(d, -np.inf)
  workers = min(os.cpu_count() or 1, 4) if n >= 512 else 1
  if workers == 1:
    return _chunk_worst_ranks(d)
  chunks = np.array_split(d, workers, axis=0)  # numpy sorts release the GIL
  with concurrent.futures.ThreadPoolExecutor(workers) as ex:
    return np.max(np.stack(list(ex.map(_chunk_worst_ranks, chunks))), axis=0)


def _chunk_worst_ranks(rows: np.ndarray) -> np.ndarray:
  """max over rows of rank_i(j) for a block of distance rows [r, n] -> int32 [n].

  Sorts unique uint64 keys (order-preserving float32 bits << 32 | column), which equals a
  stable argsort (ties by lower index) and runs several times faster (SIMD sort).
  """
  n = rows.shape[1]
  bits = (rows + np.float32(0.0)).view(np.uint32)  # + 0 turns -0.0 into +0.0
  bits = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))  # monotone in the float
  key = (bits.astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
  key.sort(axis=1)
  order = (key & np.uint64(0xFFFFFFFF)).astype(np.intp)               # N_i
  rank = np.empty(rows.shape, np.int32)
  np.put_along_axis(rank, order, np.broadcast_to(np.arange(n, dtype=np.int32), rows.shape),
                    axis=1)
  return rank.max(axis=0)


@jax.jit
def _worst_ranks_jnp(d: jax.Array, n_valid) -> jax.Array:
  n = d.shape[0]
  idx = jnp.arange(n)
  valid = idx < n_valid
  d = jnp.where(valid[None, :], d.astype(jnp.float32), jnp.inf)
  d = jnp.where(idx[:, None] == idx[None, :], -jnp.inf, d)
  order = jnp.argsort(d, axis=1, stable=True)
  pos = jnp.broadcast_to(idx.astype(jnp.int32)[None, :], (n, n))
  rank = jnp.zeros((n, n), jnp.int32).at[idx[:, None], order].set(pos)
  return jnp.where(valid[:, None], rank, 0).max(axis=0)


def neighbour_order(d) -> np.ndarray:
  """N [n, n] int: row i lists all filters by ascending distance from i (i first, ties by
  lower index; the same order `worst_ranks` uses). d: [n, n] distances (host)."""
  d = np.array(d, np.float32)
  np.fill_diagonal(d, -np.inf)
  return np.argsort(d, axis=1, kind="stable")


def _intersection(order: np.ndarray, k: int) -> set:
  """I(k) built exactly as the official code builds it (the set's hash layout matters)."""
  rows = order[:, :k].tolist()
  return set(rows[0]).intersection(*rows[1:])


def official_fill(order: np.ndarray, k: int, m: int) -> set:
  """Overshoot at k: I(k-1) filled up to m from I(k) \\ I(k-1) in `set.pop()` order."""
  prev = _intersection(order, k - 1)
  redundant = _intersection(order, k).difference(prev)
  while len(prev) != m:
    prev.add(redundant.pop())
  return prev


def _check_fill(fill):
  if fill not in FILLS:
    raise ValueError(f"rnf_fill={fill!r} is unknown; use one of {FILLS}.")


def rnf_select(filters, m: int, fill: str = "official") -> np.ndarray:
  """RNF: indices (ascending int32 [m]) of the kept filters (module doc).

  filters: [n, d] (one flattened filter per row, fp32). fill: 'official' (set-pop order on
  overshoot, the default) or 'ascending'. Runs on the host (fp32 Gram matmul, numpy
  sorts): one-shot work, and no per-shape compiles. The Python set operations run only
  when I(k) overshoots m.
  """
  _check_fill(fill)
  w = _as_filters(filters)
  n = w.shape[0]
  _check_m(m, n)
  d = sq_distances(w)
  r = worst_ranks(d)
  by_rank = np.lexsort((np.arange(n), r))
  k = int(r[by_rank[m - 1]]) + 1  # smallest k with |I(k)| >= m
  if fill == "ascending" or int(np.count_nonzero(r <= k - 1)) == m:
    return np.sort(by_rank[:m]).astype(np.int32)
  kept = official_fill(neighbour_order(d), k, m)
  return np.array(sorted(kept), np.int32)


def rnf_select_loop(filters, m: int, fill: str = "official") -> np.ndarray:
  """Reference: the official k-growing loop (host, O(n^3)), written from spec §2 step 3."""
  _check_fill(fill)
  w = _as_filters(filters)
  n = w.shape[0]
  _check_m(m, n)
  indices = neighbour_order(sq_distances(w))
  k, m_tmp, kept = m, 0, set()
  while m_tmp < m:
    rows = indices[:, :k].tolist()
    kept = set(rows[0]).intersection(*rows[1:])
    m_tmp = len(kept)
    if m_tmp > m:
      pre_rows = indices[:, :k - 1].tolist()
      pre = set(pre_rows[0]).intersection(*pre_rows[1:])
      redundant = kept.difference(pre)
      if fill == "ascending":
        pre |= set(sorted(redundant)[:m - len(pre)])
      else:
        while len(pre) != m:
          pre.add(redundant.pop())
      kept, m_tmp = pre, m
    k += 1
  return np.array(sorted(kept), np.int32)


def l1_select(filters, m: int) -> np.ndarray:
  """Ablation: the m filters with the largest L1 norm (ties by lower index), ascending."""
  w = _as_filters(filters)
  n = w.shape[0]
  _check_m(m, n)
  norms = np.abs(w).sum(axis=1)
  sel = np.lexsort((np.arange(n), -norms))[:m]
  return np.sort(sel).astype(np.int32)


def random_select(n: int, m: int, rng: np.random.Generator,
                  exclude_last: bool = False) -> np.ndarray:
  """Ablation: a random m-subset of range(n), ascending.

  exclude_last=True reproduces the official quirk (samples from range(n-1), so the last
  filter is never picked; needs m <= n-1).
  """
  _check_m(m, n)
  pool = n - 1 if (exclude_last and n > 1 and m <= n - 1) else n
  return np.sort(rng.choice(pool, size=m, replace=False)).astype(np.int32)


def select(filters, m: int, method: str = "rnf", rng: np.random.Generator | None = None,
           random_exclude_last: bool = False, rnf_fill: str = "official") -> np.ndarray:
  """Dispatches to RNF / L1 / random selection. Returns ascending int32 [m].

  rnf_fill: RNF's overshoot fill, 'official' (set-pop order) or 'ascending'.
  """
  if method == "rnf":
    return rnf_select(filters, m, rnf_fill)
  if method == "l1":
    return l1_select(filters, m)
  if method == "random":
    if rng is None:
      raise ValueError("random selection needs a numpy Generator `rng`.")
    return random_select(int(np.shape(filters)[0]), m, rng, random_exclude_last)
  raise ValueError(f"filter selection {method!r} is unknown; use one of {SELECTIONS}.")


def graph_loss(filters, kept: np.ndarray) -> float:
  """Official `cal_graph_loss`: ||S - B B^T||_1 / n^2 (S, B row-L1-normalised exp(-D))."""
  w = np.asarray(_as_filters(filters), np.float64)
  def sim(a, b):
    d = np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0)
    e = np.exp(-d)
    return e / e.sum(1, keepdims=True)
  s = sim(w, w)
  b = sim(w, w[np.asarray(kept)])
  return float(np.abs(s - b @ b.T).sum() / w.shape[0] ** 2)


def _check_m(m, n):
  if not (isinstance(m, (int, np.integer)) and 1 <= m <= n):
    raise ValueError(f"number of kept filters m={m!r} must be an int in [1, {n}].")

