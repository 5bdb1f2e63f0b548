"""Matting losses: closed forms, zero at the target, the training loss decreasing (§8 item 10)."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision.losses import matting as M
from jaxvision.methods.lfpnet.encoding import encode, make_trimap, trimap_onehot
from jaxvision.methods.lfpnet.losses import lfpnet_loss

sys.path.insert(0, os.path.dirname(__file__))
import lfpnet_testlib as T  # noqa: E402


def test_masked_l1_and_composition_closed_forms():
  p = jnp.zeros((1, 2, 2, 1)).at[0, 0, 0, 0].set(1.0)
  t = jnp.zeros((1, 2, 2, 1))
  m = jnp.ones((1, 2, 2, 1)).at[0, 1, 1, 0].set(0.0)
  assert abs(float(M.masked_l1(p, t, m)) - 1 / 3) < 1e-6
  assert float(M.masked_l1(p, t, jnp.zeros_like(m))) == 0.0
  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.uniform(size=(1, 8, 8, 1)), jnp.float32)
  f, b = (jnp.asarray(rng.uniform(size=(1, 8, 8, 3)), jnp.float32) for _ in range(2))
  img = a * f + (1 - a) * b
  mask = jnp.ones_like(a)
  assert float(M.composition_loss(a, f, b, img, mask)) < 1e-6
  assert float(M.laplacian_loss(a, a, mask, levels=3)) == 0.0
  assert float(M.gradient_loss(a, a, mask)) == 0.0
  # gradient loss of a ramp vs flat: |d/dx| = 1 on every column pair.
  ramp = jnp.broadcast_to(jnp.arange(8.0)[None, None, :, None], (1, 8, 8, 1))
  assert abs(float(M.gradient_loss(ramp, jnp.zeros_like(ramp), mask)) - 1.0) < 1e-5
  # Laplacian pyramid reconstructs the input.
  pyr = M.laplacian_pyramid(a, 3)
  assert [q.shape[1] for q in pyr] == [8, 4, 2]


def _composite(s, seed=0):
  """One synthetic composite of side 2s: smooth alpha, random smooth F and B."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:2 * s, :2 * s] / (2 * s)
  alpha = np.clip((xx - 0.5) * 6 + 0.5 + 0.1 * np.sin(9 * yy), 0, 1).astype(np.float32)
  fg = np.stack([0.8 + 0.1 * np.sin(5 * yy), 0.3 + 0 * xx, 0.2 + 0.1 * xx], -1)
  bg = np.stack([0.1 + 0.2 * yy, 0.6 + 0.2 * np.cos(4 * xx), 0.9 - 0.3 * yy], -1)
  img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
  tri = make_trimap(alpha, rng, (2, 4))
  img_u8 = (img * 255).astype(np.uint8)
  xc, _ = encode(img_u8, tri)
  c = slice(s // 2, 3 * s // 2)
  x, raw = encode(img_u8[c, c], tri[c, c])
  f32 = lambda a: jnp.asarray(a[None], jnp.float32)  # noqa: E731
  batch = dict(raw=f32(raw), onehot=f32(trimap_onehot(tri[c, c])), alpha=f32(alpha[c, c, None]),
               fg=f32(fg[c, c]), bg=f32(bg[c, c]), alpha_ctx=f32(alpha[..., None]),
               onehot_ctx=f32(trimap_onehot(tri)))
  return f32(x), f32(xc), batch


def test_loss_decreases_on_free_outputs():
  """Loss + FBA fusion give useful gradients: 20 Adam steps on free logits of (alpha, F, B)."""
  from jaxvision.models.lfpnet import fba_fusion
  _, _, batch = _composite(T.S)
  logits = jnp.zeros((1, T.S, T.S, 7))
  opt = optax.adam(0.1)
  s = opt.init(logits)

  def loss_fn(z):
    o = jax.nn.sigmoid(z)
    a, f, b = fba_fusion(o[..., :1], batch["raw"], o[..., 1:4], o[..., 4:7])
    return lfpnet_loss(jnp.concatenate([a, f, b], -1), batch)[0]

  @jax.jit
  def step(z, s):
    l, g = jax.value_and_grad(loss_fn)(z)
    u, s = opt.update(g, s)
    return optax.apply_updates(z, u), s, l

  losses = []
  for _ in range(20):
    logits, s, l = step(logits, s)
    losses.append(float(l))
  assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
def test_loss_decreases_over_20_adam_steps():
  x, xc, batch = _composite(T.S)
  # The test model with one branch per pyramid (rppm / ppm / aspp) and one block per stage:
  # every kind of layer, fewer ops to compile for the training step.
  model = T.build(seed=1, blocks=(1, 1, 1, 1), rppm_bins=(1,), ppm_bins=(1,), aspp_rates=(3,))
  graphdef, params = nnx.split(model)
  opt = optax.adam(1e-3)
  opt_state = opt.init(params)

  def loss_fn(p):
    out, ctx = nnx.merge(graphdef, p)(x, xc, batch["raw"], return_context=True)
    return lfpnet_loss(out, batch, ctx)

  @jax.jit
  def step(p, s):
    (l, terms), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
    u, s = opt.update(g, s, p)
    return optax.apply_updates(p, u), s, l, terms

  losses = []
  for _ in range(20):
    params, opt_state, l, terms = step(params, opt_state)
    losses.append(float(l))
  assert set(terms) == {"l_alpha", "l_comp", "l_lap", "l_grad", "l_fb", "l_context", "loss"}
  assert np.isfinite(losses).all()
  assert np.mean(losses[-3:]) < 0.7 * losses[0], losses
