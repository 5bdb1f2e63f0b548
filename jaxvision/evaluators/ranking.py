"""Rank-based binary metrics: AUC (ties handled), ROC, EER (host-side numpy).

AUC is the Mann-Whitney statistic with average ranks for ties:
  AUC = (Σ_{i: y_i=1} r_i − n⁺(n⁺+1)/2) / (n⁺ n⁻),
r_i the 1-based tied rank of score_i (ties get the mean rank). This equals
sklearn `roc_auc_score` (trapezoidal area under the ROC curve, a tie between a
positive and a negative counts 1/2) and AutoDL's `libscores.auc_metric`
(autodl.md §4). It is invariant to strictly increasing transforms of scores.
"""
from __future__ import annotations

import numpy as np

from jaxvision.evaluators.base import to_numpy


def _binary(scores, labels):
  s = to_numpy(scores).astype(np.float64).ravel()
  y = to_numpy(labels).ravel()
  if s.shape != y.shape:
    raise ValueError(f"scores {s.shape} and labels {y.shape} must have the same length")
  if not np.all((y == 0) | (y == 1)):
    raise ValueError("labels must be binary 0/1 (1 = positive, e.g. fake)")
  if not np.all(np.isfinite(s)):
    raise ValueError("scores must be finite")
  return s, y.astype(bool)


def roc_auc(scores, labels) -> float:
  """AUC with tied scores counted 1/2. scores: [N] float, labels: [N] 0/1.

  Raises ValueError when only one class is present (AUC undefined).
  """
  s, y = _binary(scores, labels)
  npos = int(y.sum())
  nneg = y.size - npos
  if npos == 0 or nneg == 0:
    raise ValueError("AUC is undefined with only one class in labels")
  from scipy import stats  # lazily: importing scipy.stats costs ~1 s per process
  r = stats.rankdata(s)  # average ranks for ties
  return float((r[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def roc_curve(scores, labels):
  """(fpr, tpr, thresholds) at every distinct score, decreasing threshold.

  A sample is predicted positive when score >= threshold. Starts at (0, 0)
  with threshold +inf (sklearn `roc_curve(drop_intermediate=False)` points).
  """
  s, y = _binary(scores, labels)
  npos = y.sum()
  nneg = y.size - npos
  if npos == 0 or nneg == 0:
    raise ValueError("ROC is undefined with only one class in labels")
  order = np.argsort(-s, kind="mergesort")
  s, y = s[order], y[order]
  last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # end of each tie group
  tps = np.cumsum(y)[last]
  fps = (last + 1) - tps
  fpr = np.r_[0.0, fps / nneg]
  tpr = np.r_[0.0, tps / npos]
  return fpr, tpr, np.r_[np.inf, s[last]]


def eer(scores, labels) -> float:
  """Equal error rate: the x with 1 − x − TPR(x) = 0 on the linearly
  interpolated ROC (what `brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)`
  returns in the DCL code, dcl.md §5). At a vertical ROC step the root is the
  step's FPR. Returns a fraction in [0, 1]."""
  fpr, tpr, _ = roc_curve(scores, labels)
  f = fpr + tpr - 1.0  # nondecreasing along the curve, -1 at start, +1 at end
  k = int(np.argmax(f >= 0))
  if k == 0:
    return float(fpr[0])
  x0, x1, y0, y1 = fpr[k - 1], fpr[k], tpr[k - 1], tpr[k]
  if x1 == x0:
    return float(x0)
  slope = (y1 - y0) / (x1 - x0)
  return float(x0 + (1.0 - x0 - y0) / (1.0 + slope))


ACC_RULES = (">", ">=")


def accuracy_at(scores, labels, threshold: float = 0.5, rule: str = ">") -> float:
  """mean(1[score > threshold] == label); rule '>=' counts score == threshold
  as positive (DCL's test script: p_fake >= 0.5 is fake); '>' is the shared
  `security/common` metrics' strict rule."""
  if rule not in ACC_RULES:
    raise ValueError(f"rule must be one of {ACC_RULES}, got {rule!r}")
  s, y = _binary(scores, labels)
  pos = s >= threshold if rule == ">=" else s > threshold
  return float(np.mean(pos == y))
