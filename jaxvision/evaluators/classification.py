"""Classification: top-k accuracy and cross-entropy per example (jit-safe).

Definitions (standard ImageNet protocol, as in torchvision/timm `accuracy`):
  top-k correct = 1 if the true label is among the k largest logits. Ties at
  the k-th logit are broken by `jax.lax.top_k` (lower index first).
  loss = softmax cross-entropy, -log softmax(logits)[label], in float32.
Dataset accuracy = mean over real (unpadded) examples: feed `per_example`
outputs to `base.MeanAccumulator` with the batch's padding mask.
Bad input: labels must have an integer dtype (float labels raise); concrete
labels outside [0, C) raise (rows with mask 0 are exempt); under jit such a row
counts as wrong with NaN loss (never wrapped to the last class). A row with a
NaN logit is never counted correct (its loss is NaN).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import MeanAccumulator, check_mask, is_traced, to_numpy


def check_labels(labels, num_classes: int, mask=None) -> None:
  """Raises ValueError for non-integer labels or (concrete) labels outside
  [0, num_classes) on rows with mask 1. Traced labels: only the dtype is checked."""
  dt = labels.dtype
  if not jnp.issubdtype(dt, jnp.integer) or dt == jnp.bool_:
    raise ValueError(f"labels must be integer class indices, got dtype {dt}; cast with "
                     ".astype(int) only if they really are whole numbers")
  if is_traced(labels) or (mask is not None and is_traced(mask)):
    return
  lab = to_numpy(labels)
  m = check_mask(mask, lab.shape[0]) if lab.ndim == 1 else np.ones(lab.shape, bool)
  bad = np.flatnonzero(m & ((lab < 0) | (lab >= num_classes)))
  if bad.size:
    raise ValueError(f"labels must lie in [0, {num_classes}); rows {bad[:5].tolist()} have "
                     f"{lab[bad[:5]].tolist()} (an ignore label such as -1 must be masked out "
                     "with mask=0)")


def per_example(logits: jax.Array, labels: jax.Array,
                topk: Sequence[int] = (1, 5), *, mask=None) -> dict[str, jax.Array]:
  """Per-example top-k hits and CE loss.

  Args:
    logits: [B, C] float.
    labels: [B] int in [0, C) (see module doc for bad labels).
    topk: the k values; a k >= C is skipped (its key is omitted).
    mask: optional [B] 0/1; rows with 0 are exempt from the label check.
  Returns:
    dict of float32 [B]: `top{k}` (1.0 if correct else 0.0) and `loss`.
  """
  logits, labels = jnp.asarray(logits), jnp.asarray(labels)
  if logits.ndim != 2:
    raise ValueError(f"logits must be [B, C], got shape {logits.shape}")
  if labels.shape != logits.shape[:1]:
    raise ValueError(f"labels must be [B]={logits.shape[:1]}, got {labels.shape}")
  num_classes = logits.shape[1]
  check_labels(labels, num_classes, mask)
  logits = logits.astype(jnp.float32)
  labels = labels.astype(jnp.int32)
  valid = (labels >= 0) & (labels < num_classes) & ~jnp.any(jnp.isnan(logits), axis=1)
  safe = jnp.clip(labels, 0, num_classes - 1)
  out = {}
  ks = [k for k in topk if k < num_classes]
  if ks:
    _, idx = jax.lax.top_k(logits, max(ks))
    hit = (idx == labels[:, None]) & valid[:, None]  # [B, kmax]
    for k in ks:
      out[f"top{k}"] = jnp.any(hit[:, :k], axis=1).astype(jnp.float32)
  logp = jax.nn.log_softmax(logits, axis=-1)
  loss = -jnp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
  in_range = (labels >= 0) & (labels < num_classes)
  out["loss"] = jnp.where(in_range, loss, jnp.nan)
  return out


@EVALUATORS.register("classification")
class ClassificationEvaluator:
  """Top-k accuracy and mean CE over padded, possibly multi-host batches.

  `update(logits [B, C], labels [B], mask [B] | None)` with this process's
  rows; `result()` -> {'top1', 'top5', 'loss'} means over real rows (all hosts).
  """

  def __init__(self, topk: Sequence[int] = (1, 5)):
    self.topk = tuple(topk)
    self._fn = jax.jit(per_example, static_argnames="topk")
    self.acc = MeanAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, logits, labels, mask=None):
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim == 2:
      check_labels(labels, logits.shape[1], mask)  # host check: the jitted fn cannot raise
    vals = self._fn(logits, labels, topk=self.topk)
    self.acc.update(vals, mask if mask is not None else np.ones(len(labels)))

  def result(self) -> dict[str, float]:
    return self.acc.result()
