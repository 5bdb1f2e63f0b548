"""Referring expression comprehension (REC) accuracy and box IoU.

Source: laconv.md §5 (SimREC/LaConvNet `batch_box_iou`): IoU of continuous
boxes (no +1 pixel convention) in original image coordinates,
  IoU = |A ∩ B| / (|A| + |B| − |A ∩ B|),
and REC accuracy = % of expressions with IoU > 0.5 (strict: IoU = 0.5 is a
miss; a NaN IoU is a miss). A box with a NaN/inf coordinate gets IoU NaN
(never 0). The box format is an explicit argument: 'xyxy' (x1, y1, x2, y2) or
'xywh' (x1, y1, width, height; top-left corner, COCO style).
"""
from __future__ import annotations

import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import MeanAccumulator, check_mask, to_numpy

BOX_FORMATS = ("xyxy", "xywh")


def to_xyxy(boxes, box_format: str) -> np.ndarray:
  """boxes: [N, 4] in `box_format` -> [N, 4] xyxy float64."""
  if box_format not in BOX_FORMATS:
    raise ValueError(f"box_format must be one of {BOX_FORMATS}, got '{box_format}'")
  b = to_numpy(boxes).astype(np.float64)
  if b.ndim != 2 or b.shape[1] != 4:
    raise ValueError(f"boxes must be [N, 4], got {b.shape}")
  if box_format == "xywh":
    b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
  if np.any(b[:, 2:] < b[:, :2]):  # NaN rows pass here; box_iou makes them NaN
    raise ValueError(f"boxes have x2 < x1 or y2 < y1; are they really '{box_format}'?")
  return b


def box_iou(pred, target, box_format: str) -> np.ndarray:
  """Per-row IoU of paired boxes. pred, target: [N, 4] -> [N] in [0, 1];
  NaN where either box has a non-finite coordinate."""
  a = to_xyxy(pred, box_format)
  b = to_xyxy(target, box_format)
  if a.shape != b.shape:
    raise ValueError(f"pred {a.shape} and target {b.shape} must be paired [N, 4]")
  with np.errstate(invalid="ignore", over="ignore"):
    tl = np.maximum(a[:, :2], b[:, :2])
    br = np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=1)
    union = np.prod(a[:, 2:] - a[:, :2], 1) + np.prod(b[:, 2:] - b[:, :2], 1) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
  finite = np.isfinite(a).all(1) & np.isfinite(b).all(1)
  return np.where(finite, iou, np.nan)


def rec_accuracy(pred, target, box_format: str, threshold: float = 0.5) -> float:
  """% of rows with IoU > threshold (strict; a NaN IoU is a miss)."""
  iou = box_iou(pred, target, box_format)
  with np.errstate(invalid="ignore"):
    return float(100.0 * np.mean(iou > threshold)) if iou.size else float("nan")


@EVALUATORS.register("rec")
class RecEvaluator:
  """REC accuracy (%) and mean IoU over padded, multi-host batches.

  Args: box_format ('xyxy' | 'xywh', required), threshold.
  `update(pred_boxes [B, 4], gt_boxes [B, 4], mask [B] | None)`;
  `result()` -> {'accuracy', 'miou'}.
  """

  def __init__(self, box_format: str, threshold: float = 0.5):
    if box_format not in BOX_FORMATS:
      raise ValueError(f"box_format must be one of {BOX_FORMATS}, got '{box_format}'")
    self.box_format = box_format
    self.threshold = threshold
    self.acc = MeanAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, pred, target, mask=None):
    p, t = to_numpy(pred), to_numpy(target)
    m = check_mask(mask, p.shape[0])
    iou = np.zeros(p.shape[0])
    iou[m] = box_iou(p[m], t[m], self.box_format)  # padded rows may hold junk boxes
    with np.errstate(invalid="ignore"):
      hit = iou > self.threshold
    self.acc.update({"accuracy": 100.0 * hit, "miou": 100.0 * iou}, mask)

  def result(self) -> dict[str, float]:
    return self.acc.result()
