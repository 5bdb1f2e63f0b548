"""Face-forgery detection: frame- and video-level AUC / EER / ACC.

Source: dcl.md §5 (DCL code `security/common` metrics). Scores are p_fake in
[0, 1], labels 1 = fake, 0 = real.
  AUC: sklearn roc_curve + auc over all test frames (= `ranking.roc_auc`,
       ties count 1/2).
  EER: root of 1 − x − TPR(x) on the interpolated ROC (`ranking.eer`).
  ACC: mean(1[p_fake > 0.5] == y) (`acc_rule='>'`, the shared metrics'
       default); `acc_rule='>='` counts p_fake >= 0.5 as fake, as DCL's own
       test script does (DCL configs pass it). Only scores exactly at the
       threshold differ.
  Video level (an extra; DCL reports frame level): a video's score is the
  mean of its frame scores, its label the (common) frame label; then the
  same three metrics over videos.
"""
from __future__ import annotations

import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators import ranking
from jaxvision.evaluators.base import ConcatAccumulator, to_numpy


def video_scores(scores, labels, video_ids):
  """Mean frame score per video. scores, labels, video_ids: [N].

  Returns (video_scores [V], video_labels [V], ids [V]) sorted by id. Raises
  ValueError if a video mixes labels.
  """
  s = to_numpy(scores).astype(np.float64).ravel()
  y = to_numpy(labels).ravel()
  v = to_numpy(video_ids).ravel()
  if not (s.shape == y.shape == v.shape):
    raise ValueError(f"scores {s.shape}, labels {y.shape}, video_ids {v.shape} must match")
  ids, inv = np.unique(v, return_inverse=True)
  counts = np.bincount(inv)
  vs = np.bincount(inv, weights=s) / counts
  ysum = np.bincount(inv, weights=y.astype(np.float64))
  if not np.all((ysum == 0) | (ysum == counts)):
    bad = ids[(ysum != 0) & (ysum != counts)][:5]
    raise ValueError(f"videos {bad.tolist()} have frames with different labels")
  return vs, (ysum > 0).astype(np.int64), ids


def binary_report(scores, labels, threshold: float = 0.5,
                  acc_rule: str = ">") -> dict[str, float]:
  """{'auc', 'eer', 'acc'} for [N] scores and 0/1 labels (acc_rule '>' | '>=')."""
  return {"auc": ranking.roc_auc(scores, labels), "eer": ranking.eer(scores, labels),
          "acc": ranking.accuracy_at(scores, labels, threshold, acc_rule)}


@EVALUATORS.register("forgery")
class ForgeryEvaluator:
  """Frame-level (and, with video ids, video-level) AUC / EER / ACC.

  `update(scores [B] p_fake, labels [B] 0/1, video_ids [B] int | None,
  mask [B] | None)` with this process's rows. `result()` -> {'auc', 'eer',
  'acc'} and, if ids were given, {'video_auc', 'video_eer', 'video_acc'};
  rows of all hosts are gathered first (AUC is not a mean of batch values).
  acc_rule: '>' (default) or '>=' (DCL's test script) for ACC at `threshold`.
  """

  def __init__(self, threshold: float = 0.5, acc_rule: str = ">"):
    if acc_rule not in ranking.ACC_RULES:
      raise ValueError(f"acc_rule must be one of {ranking.ACC_RULES}, got {acc_rule!r}")
    self.threshold = threshold
    self.acc_rule = acc_rule
    self.acc = ConcatAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, scores, labels, video_ids=None, mask=None):
    vals = {"scores": to_numpy(scores).astype(np.float64).ravel(),
            "labels": to_numpy(labels).astype(np.int64).ravel()}
    if video_ids is not None:
      vals["video_ids"] = to_numpy(video_ids).astype(np.int64).ravel()
    self.acc.update(vals, mask)

  def result(self) -> dict[str, float]:
    r = self.acc.result()
    out = binary_report(r["scores"], r["labels"], self.threshold, self.acc_rule)
    if "video_ids" in r:
      vs, vy, _ = video_scores(r["scores"], r["labels"], r["video_ids"])
      out.update({f"video_{k}": v for k, v in
                  binary_report(vs, vy, self.threshold, self.acc_rule).items()})
    return out
