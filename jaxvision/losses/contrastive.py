"""Contrastive losses of DCL (Sun et al., AAAI 2022; spec dcl.md §2.3-2.4), usable on their own.

    inter = inter_icl_loss(q, k, labels, queue_real, queue_fake, tau=0.07)
    fake_term, real_term = intra_icl_loss(fmap, mask, labels, tau=0.07)

Both are computed with log-sum-exp in float32 (the raw exp terms reach e^(1/0.07) ~ 1.6e6),
and return 0 for a term whose class is absent from the batch (the official code gives NaN).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """x / max(||x||, eps) along `axis` (torch F.normalize), in float32."""
  x = x.astype(jnp.float32)
  return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), eps)


def inter_icl_loss(q: jax.Array, k: jax.Array, labels: jax.Array, queue_real: jax.Array,
                   queue_fake: jax.Array, tau: float = 0.07,
                   weights: jax.Array | None = None) -> jax.Array:
  """Inter-ICL (dcl.md §2.3): a real query's negatives are the fake queue, a fake query's the
  real queue; the positive is its own key.

  q, k: [B, D] unit vectors; labels: [B] (0 real, 1 fake); queue_real, queue_fake: [K, D].
  Returns the mean over rows of -log(e^{q.k/tau} / (e^{q.k/tau} + sum_j e^{q.Q_opp_j/tau})).
  """
  q, k = q.astype(jnp.float32), k.astype(jnp.float32)
  pos = jnp.sum(q * k, -1) / tau
  neg_r = q @ queue_fake.astype(jnp.float32).T / tau  # negatives of real queries
  neg_f = q @ queue_real.astype(jnp.float32).T / tau  # negatives of fake queries
  lse_neg = jnp.where(labels == 1, jax.nn.logsumexp(neg_f, 1), jax.nn.logsumexp(neg_r, 1))
  per_row = jax.nn.softplus(lse_neg - pos)  # = logaddexp(pos, neg) - pos, exact when small
  w = jnp.ones_like(pos) if weights is None else weights.astype(jnp.float32)
  return jnp.sum(w * per_row) / jnp.maximum(jnp.sum(w), 1e-12)


def patch_sets(mask: jax.Array, fake_threshold: float = 0.01) -> tuple[jax.Array, jax.Array]:
  """Forgery-mask locations -> (fake set M > threshold, real set M == 0), both bool [B, P]."""
  mask = mask.reshape(mask.shape[0], -1)
  return mask > fake_threshold, mask == 0


def intra_icl_loss(fmap: jax.Array, mask: jax.Array, labels: jax.Array, tau: float = 0.07,
                   fake_threshold: float = 0.01, exclude_masked_pairs: bool = False,
                   weights: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Intra-ICL (dcl.md §2.4) on local features of each image.

  fmap: [B, h, w, C] (normalised along C here); mask: [B, h, w] forgery mask in [0, 1] at the
  feature resolution; labels: [B]; weights: optional [B] 0/1 (rows with 0 are ignored).
  With S_i(a, b) = f_a.f_b / tau over the P = h*w locations of image i:
    fake term = -log(Pos_f / (Pos_f + Neg_f)), one scalar over all fake images, with
      Pos_f = sum_{i fake, a, b} exp(1[a, b in R_i] S_i(a, b)),
      Neg_f = sum_{i fake, a, b} exp(1[a in A_i, b in R_i] S_i(a, b)),
      R_i = {M == 0}, A_i = {M > fake_threshold};
    real term = -log sum_{i real, a, b} exp(S_i(a, b)).
  As in the official code, a pair outside the sets contributes exp(0) = 1; with
  `exclude_masked_pairs` it contributes nothing. Returns (fake term, real term); a term is 0
  when its class (or, when excluding, its pair set) is empty.
  """
  b = fmap.shape[0]
  f = l2_normalize(fmap.reshape(b, -1, fmap.shape[-1]), axis=-1)
  s = jnp.einsum("bpc,bqc->bpq", f, f) / tau
  fake_set, real_set = patch_sets(mask, fake_threshold)
  w = jnp.ones((b,), bool) if weights is None else weights > 0
  is_fake = (labels == 1) & w
  is_real = (labels == 0) & w
  # Pairs outside a set: value 0 (exp(0) = 1, official) or left out of the sum.
  included = lambda pairs: (jnp.ones_like(pairs) if not exclude_masked_pairs else pairs)
  pos_pairs = real_set[:, :, None] & real_set[:, None, :]
  neg_pairs = fake_set[:, :, None] & real_set[:, None, :]
  log_pos, has_pos = _masked_lse(jnp.where(pos_pairs, s, 0.0), included(pos_pairs), is_fake)
  log_neg, has_neg = _masked_lse(jnp.where(neg_pairs, s, 0.0), included(neg_pairs), is_fake)
  log_neg = jnp.where(has_neg, log_neg, -jnp.inf)
  fake_term = jnp.where(has_pos, jax.nn.softplus(log_neg - log_pos), 0.0)
  log_r, has_real = _masked_lse(s, jnp.ones(s.shape, bool), is_real)
  real_term = jnp.where(has_real, -log_r, 0.0)
  return fake_term, real_term


def _masked_lse(vals: jax.Array, pairs: jax.Array, rows: jax.Array):
  """log sum exp of vals[i, a, b] over rows[i] & pairs[i, a, b]; (value, non-empty).

  An empty selection gives a finite dummy value (and finite gradients) with non-empty False.
  """
  sel = pairs & rows[:, None, None]
  nonempty = jnp.any(sel)
  sel = jnp.where(nonempty, sel, True)
  return jax.nn.logsumexp(jnp.where(sel, vals, -jnp.inf).reshape(-1)), nonempty
