"""Classification: top-k accuracy and cross-entropy per example (jit-safe).

Definitions (standard ImageNet protocol, as in torchvision/timm `accuracy`):
  top-k correct = 1 if the true label is among the k largest logits. Ties at
  the k-th logit are broken by `jax.lax.top_k` (lower index first).
  loss = softmax cross-entropy, -log softmax(logits)[label], in float32.
Dataset accuracy = mean over real (unpadded) examples: feed `per_example`
outputs to `base.MeanAccumulator` with the batch's padding mask.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import MeanAccumulator


def per_example(logits: jax.Array, labels: jax.Array,
                topk: Sequence[int] = (1, 5)) -> dict[str, jax.Array]:
  """Per-example top-k hits and CE loss.

  Args:
    logits: [B, C] float.
    labels: [B] int in [0, C).
    topk: the k values; a k >= C is skipped (its key is omitted).
  Returns:
    dict of float32 [B]: `top{k}` (1.0 if correct else 0.0) and `loss`.
  """
  if logits.ndim != 2:
    raise ValueError(f"logits must be [B, C], got shape {logits.shape}")
  if labels.shape != logits.shape[:1]:
    raise ValueError(f"labels must be [B]={logits.shape[:1]}, got {labels.shape}")
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[1]
  labels = labels.astype(jnp.int32)
  out = {}
  ks = [k for k in topk if k < num_classes]
  if ks:
    _, idx = jax.lax.top_k(logits, max(ks))
    hit = idx == labels[:, None]  # [B, kmax]
    for k in ks:
      out[f"top{k}"] = jnp.any(hit[:, :k], axis=1).astype(jnp.float32)
  logp = jax.nn.log_softmax(logits, axis=-1)
  out["loss"] = -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]
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
    vals = self._fn(jnp.asarray(logits), jnp.asarray(labels), topk=self.topk)
    self.acc.update(vals, mask if mask is not None else np.ones(len(labels)))

  def result(self) -> dict[str, float]:
    return self.acc.result()
