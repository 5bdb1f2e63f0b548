"""SimOTA assignment and the LaConvNet REC loss (spec §3.3), fixed shapes, jittable.

One ground-truth box per sample (REC); A anchors = cells of the single head level
(stride 32 in the paper; the 64x64 demo uses stride 8).
Candidates: anchor centre strictly inside the GT box, or within +-radius*stride of the GT
centre. Cost = 3 * (-log(IoU + 1e-8)) + 1e5 * not(in box and in centre) (no class branch).
dynamic k = max(1, floor(sum of the top-10 candidate IoUs)); the k cheapest candidates are
foreground. Loss = 5 * sum_fg (1 - IoU^2) / n_fg + sum_all BCE(obj, fg) / n_fg, n_fg over the
batch (at least 1). 'giou' swaps the box term for 1 - GIoU.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxvision.methods.laconv.boxes import box_giou, box_iou

IOU_TYPES = ("iou", "giou")


def simota_assign(pred_boxes, centers, gt_box, stride: float, *, radius: float = 2.5,
                  topk: int = 10, valid=True):
  """One sample. pred_boxes [A, 4] cxcywh; centers [A, 2] anchor centres (x, y); gt_box [4]
  cxcywh; valid: scalar bool (False -> no foreground).

  Returns (fg [A] bool, iou [A] IoU of each prediction with the GT, dynamic_k int32).
  """
  pred_boxes = jax.lax.stop_gradient(pred_boxes)
  cx, cy, w, h = gt_box[0], gt_box[1], gt_box[2], gt_box[3]
  x, y = centers[:, 0], centers[:, 1]
  in_box = (x > cx - w / 2) & (x < cx + w / 2) & (y > cy - h / 2) & (y < cy + h / 2)
  r = radius * stride
  in_ctr = (x > cx - r) & (x < cx + r) & (y > cy - r) & (y < cy + r)
  cand = (in_box | in_ctr) & valid
  iou = box_iou(pred_boxes, gt_box[None, :])
  cost = 3.0 * -jnp.log(iou + 1e-8) + 1e5 * (~(in_box & in_ctr)).astype(jnp.float32)
  cost = jnp.where(cand, cost, jnp.inf)
  k_top = min(topk, iou.shape[0])
  top = jax.lax.top_k(jnp.where(cand, iou, 0.0), k_top)[0]
  dyn_k = jnp.maximum(1, jnp.floor(jnp.sum(top)).astype(jnp.int32))
  rank = jnp.argsort(jnp.argsort(cost, stable=True), stable=True)
  fg = cand & (rank < dyn_k)
  return fg, iou, dyn_k


def rec_loss(boxes, obj, gt_boxes, centers, stride: float, *, valid=None,
             iou_type: str = "iou", iou_weight: float = 5.0):
  """Batch REC loss. boxes [B, A, 4] cxcywh, obj [B, A] logits, gt_boxes [B, 4] cxcywh,
  centers [A, 2], valid [B] bool or None.

  Returns (loss scalar, aux dict: loss_iou, loss_obj, num_fg, fg [B, A]).
  """
  if iou_type not in IOU_TYPES:
    raise ValueError(f"iou_type={iou_type!r}; choose one of {IOU_TYPES}.")
  b = boxes.shape[0]
  valid = jnp.ones((b,), bool) if valid is None else jnp.asarray(valid, bool)
  fg, _, _ = jax.vmap(lambda p, g, v: simota_assign(p, centers, g, stride, valid=v))(
      boxes, gt_boxes, valid)
  fg = jax.lax.stop_gradient(fg)
  n_fg = jnp.maximum(jnp.sum(fg), 1).astype(jnp.float32)
  if iou_type == "iou":
    box_term = 1.0 - box_iou(boxes, gt_boxes[:, None, :]) ** 2
  else:
    box_term = 1.0 - box_giou(boxes, gt_boxes[:, None, :])
  loss_iou = iou_weight * jnp.sum(jnp.where(fg, box_term, 0.0)) / n_fg
  bce = optax.sigmoid_binary_cross_entropy(obj, fg.astype(obj.dtype))
  loss_obj = jnp.sum(jnp.where(valid[:, None], bce, 0.0)) / n_fg
  return loss_iou + loss_obj, {"loss_iou": loss_iou, "loss_obj": loss_obj, "num_fg": n_fg,
                               "fg": fg}


def rec_predict(boxes, obj):
  """Inference: the box of the highest-objectness cell. boxes [B, A, 4], obj [B, A] -> [B, 4]."""
  i = jnp.argmax(obj, axis=-1)
  return jnp.take_along_axis(boxes, i[:, None, None], axis=1)[:, 0]
