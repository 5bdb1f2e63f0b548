"""Mask-update rules: OptG (supermask scores), GMP, RigL and dense, as pure functions.

A `Plan` is built once on the host (which tensors, integer keep-count tables);
`init_extras` makes the sparsity part of the training state
(`state["extras"]`: `masks`, plus `scores` for OptG); `refresh` (before the
step's forward pass) and `rigl_update` (after the dense gradient) are pure and
jittable and switch on `step` with `jax.lax.cond`, so the one core loop runs
them unchanged inside the train step.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.sparsity import distributions
from jaxvision.sparsity import masking
from jaxvision.sparsity import paths as paths_lib
from jaxvision.sparsity import schedules
from jaxvision.sparsity import topk

METHODS = ("optg", "gmp", "rigl", "dense")


@dataclasses.dataclass(frozen=True)
class Plan:
  """Static description of a sparse run (host side; closed over by the step).

  Attributes:
    method: 'optg' | 'gmp' | 'rigl' | 'dense'.
    keys: masked parameter key tuples, in `paths.flatten` order.
    shapes: their shapes.
    schedule: when masks change and the sparsity per update.
    distribution: 'global' (one top-k over all layers) | 'uniform' | 'erk'.
    table: [num_updates] global keep counts ('global') or
      [num_updates, L] per-layer keep counts, as nested tuples of ints.
    ties: 'exact' (exact integer counts) | 'keep' (official OptG code).
    drop_table: RigL: [num_updates, L] drop (= grow) counts.
    rigl_end_step: RigL: no mask updates at or after this step.
  """
  method: str
  keys: tuple
  shapes: tuple
  schedule: schedules.Schedule
  distribution: str = "global"
  table: tuple = ()
  ties: str = "exact"
  drop_table: tuple = ()
  rigl_end_step: int = 0

  @property
  def num_masked(self) -> int:
    return int(sum(math.prod(s) for s in self.shapes))

  @property
  def sizes(self) -> list[int]:
    return [int(math.prod(s)) for s in self.shapes]

  def kept_at_update(self, u: int) -> int:
    """Total kept weights from update u on (host side)."""
    row = self.table[min(u, len(self.table) - 1)]
    return int(sum(row)) if isinstance(row, tuple) else int(row)


def make_plan(params, *, method: str, target: float, steps_per_epoch: int, total_steps: int,
              include: str = paths_lib.DEFAULT_INCLUDE, exclude: Optional[str] = None,
              distribution: Optional[str] = None, interval: Optional[int] = None,
              beta: float = 1.0, begin_frac: float = 0.0, end_frac: float = 0.75,
              drop_fraction: float = 0.3, ties: str = "exact", snap_final: bool = True) -> Plan:
  """Builds the plan from an (abstract) param state.

  Args:
    params: NNX param state or nested dict; only shapes are read.
    method: 'optg' (sigmoid schedule, global signed-score top-k, default interval
      = steps_per_epoch), 'gmp' (cubic schedule of |W| top-k, default interval
      100, default distribution 'uniform'), 'rigl' (constant sparsity, ERK
      default, drop/grow every `interval`=100 steps until `end_frac`, drop fraction
      drop_fraction/2 * (1 + cos(pi t / t_end))), 'dense'.
    target: final sparsity in [0, 1).
  """
  if method not in METHODS:
    raise ValueError(f"sparsity.method {method!r} unknown; valid: {METHODS}")
  if ties not in ("exact", "keep"):
    raise ValueError(f"sparsity.ties must be 'exact' or 'keep', got {ties!r}")
  if method == "dense":
    sched = schedules.Schedule("dense", 0.0, interval=total_steps, total_steps=total_steps,
                               steps_per_epoch=steps_per_epoch)
    return Plan("dense", (), (), sched)
  keys = paths_lib.select(params, include, exclude)
  leaves = dict(paths_lib.leaves_with_paths(params))
  keys = tuple(sorted(keys, key=paths_lib.path_str))
  shapes = tuple(tuple(int(d) for d in leaves[k].shape) for k in keys)
  default_dist = {"optg": "global", "gmp": "uniform", "rigl": "erk"}[method]
  dist = distribution or default_dist
  if dist not in distributions.DISTRIBUTIONS:
    raise ValueError(f"sparsity.distribution {dist!r} unknown; valid: "
                     f"{distributions.DISTRIBUTIONS}")
  if method == "rigl" and dist == "global":
    raise ValueError("rigl keeps per-layer counts fixed: use distribution 'erk' or 'uniform'")
  if interval is None or interval <= 0:
    interval = steps_per_epoch if method == "optg" else 100
  interval = int(min(interval, total_steps))
  kind = {"optg": "sigmoid", "gmp": "cubic", "rigl": "constant"}[method]
  sched = schedules.Schedule(kind, float(target), interval=interval, total_steps=total_steps,
                             steps_per_epoch=steps_per_epoch, beta=beta, begin_frac=begin_frac,
                             end_frac=end_frac, snap_final=snap_final)
  n = int(sum(math.prod(s) for s in shapes))
  if dist == "global":
    table = tuple(int(k) for k in sched.keep_table(n))
  else:
    table = tuple(tuple(int(c) for c in distributions.layer_counts(
        dist, shapes, sched.sparsity_at_update(u))) for u in range(sched.num_updates))
  drop_table, end_step = (), 0
  if method == "rigl":
    end_step = int(round(end_frac * total_steps))
    rows = []
    for u in range(sched.num_updates):
      t = u * interval
      frac = drop_fraction / 2 * (1 + math.cos(math.pi * t / max(end_step, 1)))
      rows.append(tuple(int(math.floor(frac * c)) for c in table[u]))
    drop_table = tuple(rows)
  return Plan(method, keys, shapes, sched, dist, table, ties, drop_table, end_step)


def init_extras(plan: Plan, params, rng) -> dict:
  """{'masks': nested bool masks, 'scores': fp32 zeros (OptG only)}.

  OptG/GMP start dense (all ones; OptG's first refresh at step 0 keeps all
  when p_0 < 1/N). RigL starts at its target with random per-layer masks.
  """
  if plan.method == "dense":
    return {"masks": {}}
  masks = masking.init_masks(params, plan.keys)
  out = {"masks": masks}
  if plan.method == "optg":
    out["scores"] = masking.init_scores(masks)
  if plan.method == "rigl":
    flat = paths_lib.flatten(masks)
    rngs = jax.random.split(rng, len(plan.keys))
    counts = plan.table[0]
    new = {k: topk.topk_mask(jax.random.uniform(r, flat[k].shape), c)
           for k, r, c in zip(plan.keys, rngs, counts)}
    out["masks"] = paths_lib.nest(new)
  return out


def _update_index(plan: Plan, step):
  return jnp.minimum(step // plan.schedule.interval, plan.schedule.num_updates - 1)


def _masks_from_scores(plan: Plan, scores: dict, u) -> dict:
  """Top-k of `scores` ({key: array}) with the plan's counts at update u."""
  if plan.distribution == "global":
    k = jnp.asarray(np.array(plan.table, np.int32))[u]
    return topk.global_topk_masks(scores, k, plan.ties)
  tab = jnp.asarray(np.array(plan.table, np.int32))[u]
  return {key: topk.topk_mask(scores[key], tab[i], plan.ties) for i, key in enumerate(plan.keys)}


def refresh(plan: Plan, extras: dict, params, step) -> dict:
  """Mask refresh before the forward pass of `step` (OptG, GMP).

  Runs (via lax.cond) only when step % interval == 0:
    OptG: masks = top-k of the signed scores (global by default).
    GMP: masks = top-k of |W| among currently kept weights (no regrowth).
  """
  if plan.method not in ("optg", "gmp"):
    return extras
  u = _update_index(plan, step)
  do = (step % plan.schedule.interval) == 0

  def new_masks(_):
    if plan.method == "optg":
      sc = paths_lib.flatten(extras["scores"])
    else:
      w = masking.get_leaves(params, extras["masks"])
      fm = paths_lib.flatten(extras["masks"])
      sc = {k: jnp.where(fm[k], jnp.abs(w[k]).astype(jnp.float32), -1.0) for k in plan.keys}
    return paths_lib.nest(_masks_from_scores(plan, sc, u))

  masks = jax.lax.cond(do, new_masks, lambda _: extras["masks"], None)
  return {**extras, "masks": masks}


def rigl_update(plan: Plan, extras: dict, params, dense_grads: dict, step):
  """RigL drop/grow (Evci et al. 2020) after the dense gradient of `step`.

  At steps 0 < step < end, step % interval == 0: per layer drop the n smallest
  |W| among active weights and grow the n inactive ones with the largest
  |dL/dW_eff|; per-layer counts stay exact. Newly grown weights start at 0.

  Args:
    dense_grads: {key: G} gradient w.r.t. the masked (effective) weights.
  Returns:
    (extras, params) with new masks and grown weights zeroed.
  """
  if plan.method != "rigl":
    return extras, params
  u = _update_index(plan, step)
  do = ((step % plan.schedule.interval) == 0) & (step > 0) & (step < plan.rigl_end_step)
  ndrop = jnp.asarray(np.array(plan.drop_table, np.int32))[u]
  counts = jnp.asarray(np.array(plan.table, np.int32))[u]
  w = masking.get_leaves(params, extras["masks"])
  fm = paths_lib.flatten(extras["masks"])

  def update(_):
    out = {}
    for i, k in enumerate(plan.keys):
      m = fm[k]
      keep = topk.topk_mask(jnp.where(m, jnp.abs(w[k]).astype(jnp.float32), -jnp.inf),
                            counts[i] - ndrop[i])
      grow = topk.topk_mask(
          jnp.where(keep, -jnp.inf, jnp.abs(dense_grads[k]).astype(jnp.float32)), ndrop[i])
      out[k] = keep | grow
    return out

  new = jax.lax.cond(do, update, lambda _: fm, None)
  params = masking.map_masked(lambda p, m_old, m_new: jnp.where(m_new & ~m_old, 0.0, p)
                              .astype(p.dtype), params, extras["masks"], paths_lib.nest(new))
  return {**extras, "masks": paths_lib.nest(new)}, params
