"""Sparsity schedules (host side, float64) and their integer keep-count tables.

Masks change only at *update steps* `s = u * interval` (u = 0, 1, ...). A
schedule gives the target sparsity of update u; `keep_table` turns it into
exact integer keep counts that the jitted step indexes with `step // interval`.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxvision.sparsity import topk

KINDS = ("sigmoid", "cubic", "constant", "dense")


def sigmoid(x: float) -> float:
  if x >= 0:
    return 1.0 / (1.0 + math.exp(-x))
  e = math.exp(x)
  return e / (1.0 + e)


def sigmoid_ramp(epoch: float, total_epochs: float, beta: float = 1.0) -> float:
  """OptG's ramp sigmoid(beta * (e - E/2)) in [0, 1]."""
  return sigmoid(beta * (epoch - total_epochs / 2.0))


def sigmoid_sparsity(epoch, target, total_epochs, beta=1.0) -> float:
  """OptG: p_e = p_target * sigmoid(beta * (e - E/2))."""
  return target * sigmoid_ramp(epoch, total_epochs, beta)


def cubic_sparsity(step, target, begin_step, end_step, initial=0.0) -> float:
  """Gradual magnitude pruning (Zhu & Gupta 2017).

  p_t = p_f + (p_i - p_f) * (1 - (t - t0) / (t1 - t0))^3, clamped to [t0, t1].
  """
  if end_step <= begin_step:
    return target if step >= begin_step else initial
  frac = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
  return target + (initial - target) * (1.0 - frac) ** 3


@dataclasses.dataclass(frozen=True)
class Schedule:
  """When masks change and to what sparsity.

  Attributes:
    kind: 'sigmoid' (OptG), 'cubic' (GMP), 'constant' (RigL: fixed sparsity
      from step 0), 'dense' (sparsity 0).
    target: final sparsity p_target in [0, 1).
    interval: steps between mask updates (OptG: steps per epoch).
    total_steps: length of training.
    steps_per_epoch: converts steps to (fractional) epochs for 'sigmoid'.
    beta: sigmoid slope (per epoch).
    begin_frac, end_frac: 'cubic' ramp start/end as fractions of total_steps.
    snap_final: the last update uses exactly `target` (OptG's released models
      are evaluated with masks re-derived at p_target; for E=100, beta=1 the
      difference is 1e-21, for short demos it is not).
  """
  kind: str
  target: float
  interval: int
  total_steps: int
  steps_per_epoch: int = 1
  beta: float = 1.0
  begin_frac: float = 0.0
  end_frac: float = 0.75
  snap_final: bool = True

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"schedule kind {self.kind!r} unknown; valid: {KINDS}")
    if not 0.0 <= self.target < 1.0:
      raise ValueError(f"sparsity target must be in [0, 1), got {self.target}")
    if self.interval < 1 or self.total_steps < 1 or self.steps_per_epoch < 1:
      raise ValueError("interval, total_steps and steps_per_epoch must be >= 1")

  @property
  def num_updates(self) -> int:
    return -(-self.total_steps // self.interval)

  @property
  def total_epochs(self) -> float:
    return self.total_steps / self.steps_per_epoch

  def sparsity_at_update(self, u: int) -> float:
    """Target sparsity from update u (at step u*interval) on."""
    step = u * self.interval
    if self.kind == "dense":
      return 0.0
    if self.kind == "constant":
      return self.target
    last = u == self.num_updates - 1
    if self.kind == "sigmoid":
      if last and self.snap_final:
        return self.target
      # The official code refreshes at integer epochs e = 0..E-1.
      return sigmoid_sparsity(step / self.steps_per_epoch, self.target, self.total_epochs,
                              self.beta)
    begin = int(round(self.begin_frac * self.total_steps))
    end = int(round(self.end_frac * self.total_steps))
    if last and self.snap_final:
      return self.target
    return cubic_sparsity(step, self.target, begin, end)

  def sparsity_at_step(self, step: int) -> float:
    return self.sparsity_at_update(min(step // self.interval, self.num_updates - 1))

  def ramp_at_step(self, step: int) -> float:
    """sigmoid(beta*(e - E/2)) at the epoch of `step` (OptG score lr factor)."""
    return sigmoid_ramp(step // self.steps_per_epoch, self.total_epochs, self.beta)

  def keep_table(self, n: int) -> np.ndarray:
    """[num_updates] int32: global kept counts K_u = n - floor(n p_u) (`topk.keep_count`)."""
    return np.array([topk.keep_count(n, self.sparsity_at_update(u))
                     for u in range(self.num_updates)], np.int32)
