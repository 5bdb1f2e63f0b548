"""Knowledge-distillation losses."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def kd_loss(student_logits: jax.Array, teacher_logits: jax.Array, temperature: float = 1.0,
            alpha: float = 1.0) -> jax.Array:
  """alpha * T^2 * KL(softmax(t/T) || softmax(s/T)), summed over classes, mean over batch.

  student_logits, teacher_logits: [B, K]; log-softmax in float32; no gradient to the teacher.
  """
  if temperature <= 0:
    raise ValueError(f"temperature must be > 0, got {temperature}.")
  t = jax.lax.stop_gradient(teacher_logits.astype(jnp.float32)) / temperature
  s = student_logits.astype(jnp.float32) / temperature
  log_pt, log_ps = jax.nn.log_softmax(t, -1), jax.nn.log_softmax(s, -1)
  kl = jnp.sum(jnp.exp(log_pt) * (log_pt - log_ps), axis=-1)
  return alpha * temperature ** 2 * jnp.mean(kl)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy; logits [B, K], integer labels [B]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))
