"""GAN losses (GCC `models/GANLoss.py`) and the selective-D architecture loss (spec §2.1, §2.3).

p: discriminator logits of any shape; every mean is over all elements.
- hinge:   D real mean(relu(1 - p)), D fake mean(relu(1 + p)), G -mean(p)
- lsgan:   D real mean((p - 1)^2),   D fake mean(p^2),          G mean((p - 1)^2)
- vanilla: BCE with logits against 1 (real) / 0 (fake); G uses target 1.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

LOSS_TYPES = ("hinge", "lsgan", "vanilla")


def check_loss_type(loss_type: str) -> str:
  if loss_type not in LOSS_TYPES:
    raise ValueError(f"GAN loss_type must be one of {LOSS_TYPES}, got {loss_type!r}.")
  return loss_type


def _bce(p, target):
  # mean of -[t log s(p) + (1 - t) log(1 - s(p))], numerically stable.
  return jnp.mean(jnp.maximum(p, 0) - p * target + jnp.log1p(jnp.exp(-jnp.abs(p))))


def d_loss_real(p: jax.Array, loss_type: str) -> jax.Array:
  """Discriminator loss on real logits."""
  p = p.astype(jnp.float32)
  check_loss_type(loss_type)
  if loss_type == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - p))
  if loss_type == "lsgan":
    return jnp.mean(jnp.square(p - 1.0))
  return _bce(p, 1.0)


def d_loss_fake(p: jax.Array, loss_type: str) -> jax.Array:
  """Discriminator loss on fake logits."""
  p = p.astype(jnp.float32)
  check_loss_type(loss_type)
  if loss_type == "hinge":
    return jnp.mean(jax.nn.relu(1.0 + p))
  if loss_type == "lsgan":
    return jnp.mean(jnp.square(p))
  return _bce(p, 0.0)


def g_loss(p: jax.Array, loss_type: str) -> jax.Array:
  """Generator adversarial loss on the logits of its fakes."""
  p = p.astype(jnp.float32)
  check_loss_type(loss_type)
  if loss_type == "hinge":
    return -jnp.mean(p)
  if loss_type == "lsgan":
    return jnp.mean(jnp.square(p - 1.0))
  return _bce(p, 1.0)


def d_loss(p_real: jax.Array, p_fake: jax.Array, loss_type: str, half: bool = True) -> jax.Array:
  """(L_real + L_fake) * (1/2 if half else 1) (SAGAN uses half=False)."""
  s = d_loss_real(p_real, loss_type) + d_loss_fake(p_fake, loss_type)
  return 0.5 * s if half else s


def loss_gap(p_fake: jax.Array, loss_type: str) -> jax.Array:
  """gap(D, fake) = |L_G^adv(p_fake) - L_D^fake(p_fake)| (a scalar; GCC `get_D_arch_diff`)."""
  return jnp.abs(g_loss(p_fake, loss_type) - d_loss_fake(p_fake, loss_type))


def arch_loss(p_real_s: jax.Array, p_fake_s: jax.Array, gap_teacher: jax.Array, loss_type: str,
              half: bool = True) -> tuple[jax.Array, dict]:
  """L_arch = |gap(D_S, fake_S) - gap_T| + d_loss(D_S real, D_S fake) (spec §2.3 step 5).

  p_real_s / p_fake_s: student-D logits on the real pair and on the student's fake;
  gap_teacher: gap(D_T, fake_T) (held constant). Returns (loss, dict(gap_s, gap_t, d_loss)).
  """
  gap_s = loss_gap(p_fake_s, loss_type)
  gap_t = jax.lax.stop_gradient(jnp.asarray(gap_teacher, jnp.float32))
  dl = d_loss(p_real_s, p_fake_s, loss_type, half)
  return jnp.abs(gap_s - gap_t) + dl, dict(gap_s=gap_s, gap_t=gap_t, d_loss=dl)


def ema_gap(prev: jax.Array, new: jax.Array, beta: float) -> jax.Array:
  """Teacher-gap EMA (GCC intent): beta * new + (1 - beta) * prev; prev == 0 means unset.

  The released code leaves beta = 1 for the teacher (instantaneous gap); that is the default
  (`teacher_gap_ema` off)."""
  return jnp.where(prev == 0.0, new, beta * new + (1.0 - beta) * prev)


# ------------------------------------------------------------------ CycleGAN reconstruction


def l1(a: jax.Array, b: jax.Array) -> jax.Array:
  """mean |a - b| over all elements (float32), PyTorch nn.L1Loss."""
  return jnp.mean(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)))


def cycle_loss(rec: jax.Array, real: jax.Array, lambda_cycle: float) -> jax.Array:
  """lambda_cycle * mean|G_other(G(real)) - real| (one direction; CycleGAN lambda_A / B = 10)."""
  return lambda_cycle * l1(rec, real)


def identity_loss(idt: jax.Array, real: jax.Array, lambda_cycle: float,
                  lambda_identity: float) -> jax.Array:
  """lambda_identity * lambda_cycle * mean|G(real) - real| for G fed its own output domain
  (CycleGAN: 0.5 * 10 = 5 per direction)."""
  return (lambda_identity * lambda_cycle) * l1(idt, real)
