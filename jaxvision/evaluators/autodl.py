"""AutoDL scoring: per-class AUC, NAUC, ALC, average rank, learning curve.

Source: autodl.md §4 (starting kit `score.py` v20191219, `libscores.py`).
  NAUC: for each valid column k of the n x K 0/1 solution Y (0 < Σ_i Y_ik < n)
    AUC_k = (Σ_{i:Y_ik=1} r_ik − n⁺(n⁺+1)/2) / (n⁺ n⁻), r_ik the tied
    (average) rank of P_ik in column k; NAUC = 2·mean_k AUC_k − 1 (unweighted).
    No valid column: NAUC = 0 (the spec's resolution; a warning is logged).
  Time transform: t̃(t) = log(1 + t/t0) / log(1 + T/t0), t0 = 60 s, T = 1200 s.
  ALC: step ('post') curve from (0, 0), held until t̃ = 1:
    ALC = Σ_i s_i (x_{i+1} − x_i), x_i = t̃(t_i), x_{n+1} = 1; predictions
    with t > T are dropped; no prediction gives 0.
  Ranking: per dataset, rank participants by ALC (1 = best, ties get the
    average rank, scipy `rankdata`); the leaderboard rank is the mean over
    datasets.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import to_numpy

T0 = 60.0
TIME_BUDGET = 1200.0


def _solution_predictions(solution, prediction):
  y = to_numpy(solution).astype(np.float64)
  p = to_numpy(prediction).astype(np.float64)
  if y.ndim == 1:
    y, p = y[:, None], p.reshape(-1, 1)
  if y.shape != p.shape or y.ndim != 2:
    raise ValueError(f"solution {y.shape} and prediction {p.shape} must both be [n, K]")
  if not np.all(np.isfinite(p)):
    raise ValueError("predictions must be finite")
  return y, p


def column_aucs(solution, prediction) -> np.ndarray:
  """Per-class AUC with tied ranks. solution, prediction: [n, K] -> [K];
  NaN where the column is invalid (all positives or all negatives)."""
  y, p = _solution_predictions(solution, prediction)
  pos = y == 1
  npos = pos.sum(0).astype(np.float64)
  nneg = y.shape[0] - npos
  from scipy import stats  # lazily: importing scipy.stats costs ~1 s per process
  r = stats.rankdata(p, axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    auc = ((r * pos).sum(0) - npos * (npos + 1) / 2) / (npos * nneg)
  valid = (npos > 0) & (nneg > 0)
  return np.where(valid, auc, np.nan)


def nauc(solution, prediction) -> float:
  """NAUC = 2·mean(valid per-class AUC) − 1 in [−1, 1] (module doc)."""
  a = column_aucs(solution, prediction)
  if np.all(np.isnan(a)):
    logging.warning("NAUC undefined: every column of the solution has a single class; "
                    "returning 0")
    return 0.0
  return float(2.0 * np.nanmean(a) - 1.0)


def onehot_accuracy(solution, prediction) -> float:
  """AutoDL's logged accuracy for one-hot solutions:
  Σ_ik Y_ik·P_ik/(Σ_k |P_ik| + 1e-15) / n."""
  y, p = _solution_predictions(solution, prediction)
  return float(np.sum((y * p).sum(1) / (np.abs(p).sum(1) + 1e-15)) / y.shape[0])


def time_transform(t, t0: float = T0, time_budget: float = TIME_BUDGET):
  """t̃(t) = log(1 + t/t0) / log(1 + T/t0); t in seconds (scalar or array)."""
  return np.log1p(np.asarray(t, np.float64) / t0) / math.log1p(time_budget / t0)


def alc(timestamps: Sequence[float], scores: Sequence[float], t0: float = T0,
        time_budget: float = TIME_BUDGET) -> float:
  """Area under the step learning curve on the transformed time axis.

  timestamps: [n] seconds since the start (increasing); scores: [n] NAUC.
  """
  t = np.asarray(timestamps, np.float64).ravel()
  s = np.asarray(scores, np.float64).ravel()
  if t.shape != s.shape:
    raise ValueError(f"{t.size} timestamps but {s.size} scores")
  if np.any(np.diff(t) < 0) or np.any(t < 0):
    raise ValueError("timestamps must be non-negative and increasing")
  keep = t <= time_budget
  t, s = t[keep], s[keep]
  if t.size == 0:
    return 0.0
  x = np.r_[time_transform(t, t0, time_budget), 1.0]
  return float(np.sum(s * np.diff(x)))


def average_rank(alcs, names: Sequence[str] | None = None):
  """Leaderboard rank. alcs: [participants, datasets] (higher is better).

  Returns [participants] mean rank over datasets (ties: average rank), or a
  dict name -> mean rank when `names` is given.
  """
  a = np.asarray(alcs, np.float64)
  if a.ndim != 2:
    raise ValueError(f"alcs must be [participants, datasets], got {a.shape}")
  from scipy import stats  # lazily: importing scipy.stats costs ~1 s per process
  ranks = stats.rankdata(-a, axis=0)  # per dataset column
  mean = ranks.mean(axis=1)
  return dict(zip(names, mean.tolist())) if names is not None else mean


def plot_learning_curve(timestamps, scores, path: str, *, t0: float = T0,
                        time_budget: float = TIME_BUDGET, title: str = "") -> str:
  """Writes the step learning curve (NAUC vs t̃) as a PNG with the ALC in the
  title; matplotlib's Agg backend, no display needed. Returns `path`."""
  # An explicit Agg canvas: works headless and leaves the pyplot backend alone.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top

  t = np.asarray(timestamps, np.float64)
  s = np.asarray(scores, np.float64)
  keep = t <= time_budget
  x = np.r_[0.0, time_transform(t[keep], t0, time_budget), 1.0]
  y = np.r_[0.0, s[keep], s[keep][-1] if keep.any() else 0.0]
  score = alc(t, s, t0, time_budget)
  fig = Figure(figsize=(6, 4))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  ax.step(x, y, where="post", label="NAUC")
  ax.fill_between(x, y, step="post", alpha=0.3)
  ax.scatter(x[1:-1], y[1:-1], s=12)
  ax.set_xlim(0, 1)
  ax.set_ylim(min(-0.05, y.min() - 0.05), 1.05)
  ax.set_xlabel(f"transformed time log(1 + t/{t0:g}) / log(1 + {time_budget:g}/{t0:g})")
  ax.set_ylabel("NAUC (2·AUC − 1)")
  ax.set_title(f"{title + ': ' if title else ''}ALC = {score:.4f}")
  ax.grid(True, alpha=0.3)
  fig.savefig(path, dpi=100)
  return path


@EVALUATORS.register("autodl_alc")
class AlcEvaluator:
  """One task's learning curve: record each prediction, score with ALC.

  `update(timestamp, prediction [n, K], solution [n, K])` (host-side; the
  AutoDL driver runs on one host); `result()` -> {'alc', 'nauc' (last),
  'duration', 'num_predictions'}; `plot(path)` writes the curve PNG.
  """

  def __init__(self, t0: float = T0, time_budget: float = TIME_BUDGET):
    self.t0, self.time_budget = t0, time_budget
    self.reset()

  def reset(self):
    self.timestamps: list[float] = []
    self.naucs: list[float] = []

  def update(self, timestamp: float, prediction, solution):
    self.timestamps.append(float(timestamp))
    self.naucs.append(nauc(solution, prediction))

  def result(self) -> dict[str, float]:
    return {"alc": alc(self.timestamps, self.naucs, self.t0, self.time_budget),
            "nauc": self.naucs[-1] if self.naucs else 0.0,
            "duration": self.timestamps[-1] if self.timestamps else 0.0,
            "num_predictions": float(len(self.naucs))}

  def plot(self, path: str, title: str = "") -> str:
    return plot_learning_curve(self.timestamps, self.naucs, path, t0=self.t0,
                               time_budget=self.time_budget, title=title)
