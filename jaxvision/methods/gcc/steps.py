"""Jitted update steps of the selective student discriminator (spec §2.3 steps 3 and 5).

Both steps close over a discriminator's graphdef (`graphdef, state = nnx.split(d)`) and map
its state to the new state; the optimizer state covers only the parameters the step trains:

    d_step = make_d_weight_step(graphdef, d_tx, "hinge")      # d_tx = optax.adam(2e-4, 0.5)
    d_opt = init_opt(d_tx, d, WEIGHTS)
    state, d_opt, m = d_step(state, d_opt, cond, real, fake)

    arch = make_arch_step(graphdef, a_tx, "hinge")            # a_tx = optax.adam(1e-4)
    a_opt = init_opt(a_tx, d, ALPHA)
    state, a_opt, m = arch(state, a_opt, cond, real, fake_s, gap_t)

`cond` is the conditioning image concatenated before the D (Pix2Pix: the input x) or None
(CycleGAN, SAGAN, SRGAN). D runs in train mode, so BatchNorm running statistics advance in
both steps, as in the official code; the arch step changes no `nnx.Param` but alpha.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision.methods.gcc import gan_losses
from jaxvision.methods.gcc.gates import ALPHA, WEIGHTS, clip_alpha


def d_input(cond: jax.Array | None, img: jax.Array) -> jax.Array:
  """concat([cond, img], channels) for a conditional D, else img. [B, H, W, C]."""
  return img if cond is None else jnp.concatenate([cond, img.astype(cond.dtype)], axis=-1)


def init_opt(tx: optax.GradientTransformation, model: nnx.Module, which) -> Any:
  """Optimizer state for the `which` params (WEIGHTS or ALPHA) of `model`."""
  return tx.init(nnx.state(model, which))


def teacher_gap(d_t: nnx.Module, cond, fake_t: jax.Array, loss_type: str,
                train: bool = True) -> jax.Array:
  """gap(D_T, fake_T) = |L_G^adv - L_D^fake| on D_T's logits, no gradient (a scalar)."""
  p = d_t(d_input(cond, jax.lax.stop_gradient(fake_t)), train=train)
  return jax.lax.stop_gradient(gan_losses.loss_gap(p, loss_type))


def _split(graphdef, state, which):
  model = nnx.merge(graphdef, state)
  g, trained, rest = nnx.split(model, which, ...)
  return g, trained, rest


def make_d_weight_step(graphdef, tx: optax.GradientTransformation, loss_type: str,
                       half: bool = True, jit: bool = True):
  """D weight update with alpha frozen: loss = d_loss(D(real), D(fake.detach())).

  Returns step(state, opt_state, cond, real, fake) -> (state, opt_state, dict(d_loss, d_real,
  d_fake)), jitted unless jit=False (to compose it inside a larger jitted step).
  """
  gan_losses.check_loss_type(loss_type)

  def step(state, opt_state, cond, real, fake):
    g, w, rest = _split(graphdef, state, WEIGHTS)

    def loss_fn(w):
      d = nnx.merge(g, w, rest, copy=True)
      p_real = d(d_input(cond, real), train=True)
      p_fake = d(d_input(cond, jax.lax.stop_gradient(fake)), train=True)
      lr = gan_losses.d_loss_real(p_real, loss_type)
      lf = gan_losses.d_loss_fake(p_fake, loss_type)
      loss = (lr + lf) * (0.5 if half else 1.0)
      return loss, (nnx.state(d, nnx.Not(WEIGHTS)), dict(d_loss=loss, d_real=lr, d_fake=lf))

    grads, (new_rest, metrics) = jax.grad(loss_fn, has_aux=True)(w)
    updates, opt_state = tx.update(grads, opt_state, w)
    w = optax.apply_updates(w, updates)
    return nnx.state(nnx.merge(g, w, new_rest)), opt_state, metrics

  return jax.jit(step) if jit else step


def make_arch_step(graphdef, tx: optax.GradientTransformation, loss_type: str,
                   half: bool = True, jit: bool = True):
  """Architecture (alpha) step: clip alpha into [0, 1], then one `tx` step on

      L_arch = |gap(D_S, fake_s) - gap_t| + d_loss(D_S(real), D_S(fake_s))

  with every D weight frozen (spec §2.3 step 5). fake_s gets no gradient; gap_t is the
  teacher pair's gap (`teacher_gap`). Returns step(state, opt_state, cond, real, fake_s,
  gap_t) -> (state, opt_state, dict(arch_loss, gap_s, gap_t, d_loss)), jitted unless jit=False.
  """
  gan_losses.check_loss_type(loss_type)

  def step(state, opt_state, cond, real, fake_s, gap_t):
    g, alpha, rest = _split(graphdef, state, ALPHA)
    alpha = clip_alpha(alpha)

    def loss_fn(alpha):
      d = nnx.merge(g, alpha, rest, copy=True)
      p_real = d(d_input(cond, real), train=True)
      p_fake = d(d_input(cond, jax.lax.stop_gradient(fake_s)), train=True)
      loss, parts = gan_losses.arch_loss(p_real, p_fake, gap_t, loss_type, half)
      return loss, (nnx.state(d, nnx.Not(ALPHA)), dict(arch_loss=loss, **parts))

    grads, (new_rest, metrics) = jax.grad(loss_fn, has_aux=True)(alpha)
    updates, opt_state = tx.update(grads, opt_state, alpha)
    alpha = optax.apply_updates(alpha, updates)
    return nnx.state(nnx.merge(g, alpha, new_rest)), opt_state, metrics

  return jax.jit(step) if jit else step
