"""Segmentation: confusion matrix, mIoU (Cityscapes/DRN), per-sample mask IoU.

Sources: gcc.md §5 (pix2pix Cityscapes protocol, DRN `fast_hist` /
`per_class_iu`): the confusion matrix C[gt, pred] is accumulated over all
pixels with 0 <= gt < num_classes (labels >= num_classes, e.g. 255, are
ignored); IoU_c = C_cc / (Σ_j C_cj + Σ_i C_ic − C_cc); mIoU = nanmean_c IoU_c
× 100 (a class absent from both gt and pred is NaN and skipped).
laconv.md §5 (RES): per-sample IoU of binarised masks (pred > 0, gt > 0.5).
"""
from __future__ import annotations

import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import allgather_sum, to_numpy


def confusion_matrix(gt, pred, num_classes: int) -> np.ndarray:
  """C [num_classes, num_classes] int64, rows = ground truth, cols = prediction.

  gt, pred: int arrays of the same shape (any rank); gt outside
  [0, num_classes) is ignored; pred must lie in [0, num_classes).
  """
  g = to_numpy(gt).astype(np.int64).ravel()
  p = to_numpy(pred).astype(np.int64).ravel()
  if g.shape != p.shape:
    raise ValueError(f"gt {g.shape} and pred {p.shape} must have the same number of pixels")
  keep = (g >= 0) & (g < num_classes)
  if np.any((p[keep] < 0) | (p[keep] >= num_classes)):
    raise ValueError(f"pred has labels outside [0, {num_classes})")
  idx = num_classes * g[keep] + p[keep]
  return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_iou(conf) -> np.ndarray:
  """IoU per class from a confusion matrix [K, K]; NaN for absent classes."""
  c = np.asarray(conf, np.float64)
  inter = np.diag(c)
  union = c.sum(0) + c.sum(1) - inter
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(union > 0, inter / union, np.nan)


def miou(conf) -> float:
  """mIoU in % = nanmean(per-class IoU) × 100."""
  iou = per_class_iou(conf)
  return float(np.nanmean(iou) * 100.0) if np.any(~np.isnan(iou)) else float("nan")


def mask_iou(pred_logits, gt_mask) -> np.ndarray:
  """Per-sample IoU of binary masks (pred > 0, gt > 0.5). [B, H, W] -> [B];
  an empty union gives 0 (as the LaConvNet code, which adds no epsilon
  rule for it)."""
  p = to_numpy(pred_logits) > 0
  g = to_numpy(gt_mask) > 0.5
  if p.shape != g.shape:
    raise ValueError(f"pred {p.shape} and gt {g.shape} must have the same shape")
  axes = tuple(range(1, p.ndim))
  inter = np.logical_and(p, g).sum(axes)
  union = np.logical_or(p, g).sum(axes)
  return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


@EVALUATORS.register("miou")
class MiouEvaluator:
  """Confusion-matrix mIoU over padded, multi-host batches.

  `update(gt [B, H, W] int, pred [B, H, W] int, mask [B] | None)`;
  `result()` -> {'miou', 'pixel_acc'} in %, matrices summed over hosts.
  """

  def __init__(self, num_classes: int = 19):
    self.num_classes = num_classes
    self.reset()

  def reset(self):
    self.conf = np.zeros((self.num_classes, self.num_classes), np.int64)

  def update(self, gt, pred, mask=None):
    g, p = to_numpy(gt), to_numpy(pred)
    if mask is not None:
      m = to_numpy(mask).astype(bool)
      g, p = g[m], p[m]
    self.conf += confusion_matrix(g, p, self.num_classes)

  def result(self) -> dict[str, float]:
    c = allgather_sum(self.conf)
    return {"miou": miou(c), "pixel_acc": float(100.0 * np.trace(c) / max(c.sum(), 1))}
