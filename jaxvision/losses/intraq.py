"""IntraQ synthesis loss terms (Zhong et al., CVPR 2022; official code distill_data.py).

- Soft inception loss (SIL): (p_y - y_soft)^2 with y_soft ~ U(eps, 1) w.p. p_soft, else 1.
- Marginal distance constraint (MDC): keep d = 1 - cos(f, c_y) inside [lambda_l, lambda_u].
- Class centres: running per-class sums / counts of penultimate features.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def sample_soft_targets(rng: jax.Array, n: int, eps: float, p_soft: float = 0.5) -> jax.Array:
  """Soft prior labels [n]: with prob. p_soft drawn from U(eps, 1), else exactly 1."""
  if not 0.0 <= eps <= 1.0:
    raise ValueError(f"eps (targetPro) must be in [0, 1], got {eps}.")
  k1, k2 = jax.random.split(rng)
  soft = jax.random.uniform(k1, (n,), minval=eps, maxval=1.0)
  use = jax.random.uniform(k2, (n,)) < p_soft
  return jnp.where(use, soft, 1.0)


def soft_inception_loss(logits: jax.Array, labels: jax.Array, targets: jax.Array) -> jax.Array:
  """L_SIL = mean_i (softmax(logits_i)[y_i] - targets_i)^2.

  logits: [B, K] (softmax in float32); labels: [B] int; targets: [B] in [0, 1].
  """
  p = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  py = jnp.take_along_axis(p, labels[:, None], axis=-1)[:, 0]
  return jnp.mean(jnp.square(py - targets))


def cosine_distance(f: jax.Array, c: jax.Array, eps: float = 1e-6) -> jax.Array:
  """1 - cos(f, c) per row (torch.cosine_similarity semantics, eps 1e-6). f, c: [B, D]."""
  num = jnp.sum(f * c, axis=-1)
  den = jnp.maximum(jnp.linalg.norm(f, axis=-1) * jnp.linalg.norm(c, axis=-1), eps)
  return 1.0 - num / den


def marginal_distance_loss(features: jax.Array, centres: jax.Array, mask: jax.Array,
                           lambda_l: float, lambda_u: float) -> jax.Array:
  """L_MDC: hinge keeping d_i = 1 - cos(f_i, c_i) in [lambda_l, lambda_u] where mask_i = 1.

  features: [B, D]; centres: [B, D] (the centre of each sample's class; no gradient
  reaches it); mask: [B] (1 where the class has a centre). Returns
  sum_i m_i max(0, l - d_i) / (sum m + 1e-6) + sum_i m_i max(0, d_i - u) / (sum m + 1e-6).
  """
  if lambda_l > lambda_u:
    raise ValueError(f"lambda_l={lambda_l} must be <= lambda_u={lambda_u}.")
  d = cosine_distance(features.astype(jnp.float32),
                      jax.lax.stop_gradient(centres.astype(jnp.float32)))
  m = mask.astype(jnp.float32)
  denom = jnp.sum(m) + 1e-6
  return (jnp.sum(m * jax.nn.relu(lambda_l - d)) / denom
          + jnp.sum(m * jax.nn.relu(d - lambda_u)) / denom)


def init_class_centres(num_classes: int, dim: int) -> dict:
  """Running per-class feature sums {'sum': [K, D], 'count': [K]} (float32)."""
  return {"sum": jnp.zeros((num_classes, dim), jnp.float32),
          "count": jnp.zeros((num_classes,), jnp.float32)}


def update_class_centres(centres: dict, features: jax.Array, labels: jax.Array) -> dict:
  """Adds features [B, D] of finished images with labels [B] to the running sums."""
  k = centres["count"].shape[0]
  onehot = jax.nn.one_hot(labels, k, dtype=jnp.float32)
  return {"sum": centres["sum"] + onehot.T @ features.astype(jnp.float32),
          "count": centres["count"] + onehot.sum(0)}


def lookup_centres(centres: dict, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(class mean [B, D], mask [B]) for labels [B]; mask 0 where a class has no images yet."""
  cnt = centres["count"][labels]
  mean = centres["sum"][labels] / jnp.maximum(cnt, 1.0)[:, None]
  return jax.lax.stop_gradient(mean), (cnt > 0).astype(jnp.float32)
