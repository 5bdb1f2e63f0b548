"""Evaluator and ensembler: validation NAUC drives selection and ensembling (§6-7).

Each trained model (a checkpoint of a net after a call, a fitted sklearn or
LightGBM model) is added with its validation prediction and its test
prediction. `predict()` combines them:
  'topk'     mean test prediction of the k best by validation NAUC (image, video,
             speech; DeepWisdom keeps the best checkpoints);
  'relative' mean of the models with validation NAUC >= frac * best (text);
  'blend'    DeepWisdom's tabular blend: sort by validation AUC, take the largest
             top-k whose AUC std < std_max, w_i ∝ max(0.01, a_i + 15 (a_i − ā)),
             pred = Σ w_i p_i / mean(p_i), divided by max(1, max pred) (a global
             positive scale: per-column AUC unchanged, values stay in [0, 1]).
The `last_checkpoint` ablation returns the latest test prediction instead.
"""
from __future__ import annotations

import numpy as np

from jaxvision.evaluators import autodl as ev


def val_score(y_val: np.ndarray, p_val: np.ndarray) -> float:
  """Validation NAUC (0 when no column has both classes)."""
  if y_val.size == 0:
    return 0.0
  return ev.nauc(y_val, p_val)


class Ensembler:
  """Keeps (name, val NAUC, test prediction) per model; combines them."""

  def __init__(self, mode: str = "topk", top_k: int = 3, frac: float = 0.97,
               std_max: float = 0.01, last_only: bool = False):
    if mode not in ("topk", "relative", "blend"):
      raise ValueError(f"unknown ensemble mode {mode!r}; use topk, relative or blend")
    self.mode, self.top_k, self.frac, self.std_max = mode, top_k, frac, std_max
    self.last_only = last_only
    self.entries: list[tuple[str, float, np.ndarray]] = []

  def add(self, name: str, score: float, test_pred: np.ndarray):
    self.entries.append((name, float(score), np.asarray(test_pred, np.float64)))

  @property
  def best_score(self) -> float:
    return max((e[1] for e in self.entries), default=-np.inf)

  def predict(self) -> np.ndarray:
    if not self.entries:
      raise ValueError("the ensembler is empty: train a model before predicting")
    if self.last_only:
      return self.entries[-1][2]
    order = sorted(self.entries, key=lambda e: -e[1])
    if self.mode == "topk":
      chosen = order[:self.top_k]
      return np.mean([e[2] for e in chosen], axis=0)
    if self.mode == "relative":
      best = order[0][1]
      thr = self.frac * best if best > 0 else best
      return np.mean([e[2] for e in order if e[1] >= thr], axis=0)
    a = np.array([e[1] for e in order])
    k = 1
    for j in range(len(order), 0, -1):
      if np.std(a[:j]) < self.std_max:
        k = j
        break
    a = a[:k]
    w = np.maximum(0.01, a + 15.0 * (a - a.mean()))
    w = w / w.sum()
    preds = [e[2] for e in order[:k]]
    out = sum(wi * p / max(float(np.mean(p)), 1e-12) for wi, p in zip(w, preds))
    # one positive global scale keeps every column's ranking (so the AUC) and [0, 1]
    return out / max(1.0, float(out.max()))
