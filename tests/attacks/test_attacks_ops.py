"""Attack ops: DecayReLU, projection, MI normalisation, DI resize-pad, TI smoothing, keys."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import attacks

resize_pad = jax.jit(attacks.resize_pad, static_argnums=4)
input_diversity = jax.jit(attacks.input_diversity, static_argnums=3)  # prob traced
project = jax.jit(attacks.project_linf)


def test_decay_relu_forward_is_relu_and_backward_gamma_scaled():
  x = jax.random.normal(jax.random.key(0), (3, 4, 4, 2)).at[0, 0, 0, 0].set(0.0)
  gamma = jnp.array([0.0, 0.3, 2.0])
  np.testing.assert_array_equal(attacks.decay_relu(x, gamma), jax.nn.relu(x))
  cot = jax.random.normal(jax.random.key(1), x.shape)
  out, vjp = jax.vjp(attacks.decay_relu, x, gamma)
  gx, gg = vjp(cot)
  expect = gamma[:, None, None, None] * (x > 0) * cot
  np.testing.assert_allclose(gx, expect, rtol=1e-6)
  assert gx[0, 0, 0, 0] == 0.0                       # x = 0 passes no gradient (as relu)
  np.testing.assert_array_equal(gg, jnp.zeros(3))    # gamma gets no gradient
  # gamma = 1 is exactly relu's gradient; a scalar gamma broadcasts; jit works.
  g1 = jax.grad(lambda z: jnp.sum(attacks.decay_relu(z, 1.0) * cot))(x)
  g0 = jax.grad(lambda z: jnp.sum(jax.nn.relu(z) * cot))(x)
  np.testing.assert_array_equal(g1, g0)
  gj = jax.jit(jax.grad(lambda z, g: jnp.sum(attacks.decay_relu(z, g) * cot)))(x, gamma)
  np.testing.assert_allclose(gj, expect, rtol=1e-6)


def test_project_linf_budget_and_range():
  x = jax.random.uniform(jax.random.key(0), (4, 5, 5, 3))
  xa = x + 0.5 * jax.random.normal(jax.random.key(1), x.shape)
  eps = 8 / 255
  p = project(xa, x, eps)
  assert float(jnp.abs(p - x).max()) <= eps + 1e-7
  assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0
  inside = x + 0.5 * eps * jnp.sign(xa - x)
  inside = jnp.clip(inside, 0.0, 1.0)
  np.testing.assert_allclose(project(inside, x, eps), inside, atol=1e-7)
  # per-example eps
  pe = project(xa, x, jnp.array([0.0, 0.01, 0.02, 0.03]))
  np.testing.assert_allclose(jnp.abs(pe - x).reshape(4, -1).max(1)[0], 0.0, atol=0)
  assert float(jnp.abs(pe - x)[3].max()) <= 0.03 + 1e-7


def test_mi_normalisation_formula():
  g = jnp.array([[1.0, -3.0, 2.0, 2.0], [0.5, 0.5, -0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
  m = jnp.array([[1.0, 1.0, -1.0, 0.0], [2.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
  out = attacks.momentum_update(m, g, 0.9)
  # by hand: mean|g| = 2, 0.5, 0 (zero gradient adds nothing)
  expect = np.array([[0.9 + 0.5, 0.9 - 1.5, -0.9 + 1.0, 1.0],
                     [1.8 + 1.0, 1.0, -1.0, 1.0],
                     [0.9, 1.8, 2.7, 3.6]])
  np.testing.assert_allclose(out, expect, rtol=1e-6)
  assert np.isfinite(np.asarray(attacks.mi_normalize(g))).all()


def _resize_pad_numpy(img, rnd, top, left, canvas):
  """The official three steps with PyTorch nearest (src = floor(dst * in / out)), by loops."""
  h, w, c = img.shape
  small = np.zeros((rnd, rnd, c), img.dtype)
  for i in range(rnd):
    for j in range(rnd):
      small[i, j] = img[i * h // rnd, j * w // rnd]
  pad = np.zeros((canvas, canvas, c), img.dtype)
  pad[top:top + rnd, left:left + rnd] = small
  out = np.zeros_like(img)
  for i in range(h):
    for j in range(w):
      out[i, j] = pad[i * canvas // h, j * canvas // w]
  return out


def test_resize_pad_hand_cases():
  img = np.arange(16, dtype=np.float32).reshape(4, 4, 1) + 1
  # canvas 5, rnd 4, image at rows 1..4: canvas rows (i*5)//4 = 0,1,2,3 -> [pad, r0, r1, r2].
  out = np.asarray(resize_pad(jnp.asarray(img), 4, 1, 0, 5))[..., 0]
  np.testing.assert_array_equal(out, np.concatenate([np.zeros((1, 4)), img[:3, :, 0]]))
  # rnd 5, no offset: sources (c*4)//5 for c = 0,1,2,3 -> rows/cols 0,0,1,2.
  out = np.asarray(resize_pad(jnp.asarray(img), 5, 0, 0, 5))[..., 0]
  np.testing.assert_array_equal(out, img[[0, 0, 1, 2]][:, [0, 0, 1, 2], 0])
  rng = np.random.default_rng(0)
  big = rng.uniform(size=(8, 8, 3)).astype(np.float32)
  canvas = attacks.canvas_size(8, 1 / 0.875)
  assert canvas == 9 and attacks.canvas_size(224, 1 / 0.875) == 256
  assert attacks.canvas_size(224, 1.1) == 246
  for rnd, top, left in [(8, 0, 1), (9, 0, 0), (8, 1, 1)]:
    np.testing.assert_array_equal(resize_pad(jnp.asarray(big), rnd, top, left, canvas),
                                  _resize_pad_numpy(big, rnd, top, left, canvas))
  big = rng.uniform(size=(12, 12, 2)).astype(np.float32)
  for rnd, top, left in [(12, 3, 0), (13, 1, 2), (15, 0, 0), (14, 1, 0)]:
    np.testing.assert_array_equal(resize_pad(jnp.asarray(big), rnd, top, left, 15),
                                  _resize_pad_numpy(big, rnd, top, left, 15))


def test_input_diversity_per_row_draws():
  x = jax.random.uniform(jax.random.key(0), (16, 12, 12, 3), minval=0.1, maxval=1.0)
  keys = jax.random.split(jax.random.key(1), 16)
  out = input_diversity(x, keys, 1.0, 1.25)
  assert out.shape == x.shape
  for i in range(16):  # every pixel is 0 (padding) or a pixel of its own row
    vals = set(np.asarray(x[i]).ravel().tolist()) | {0.0}
    assert set(np.asarray(out[i]).ravel().tolist()) <= vals
  assert not np.array_equal(out, x)
  np.testing.assert_array_equal(input_diversity(x, keys, 0.0, 1.25), x)
  # per-row keys: a row's draw does not depend on the rest of the batch
  np.testing.assert_array_equal(input_diversity(x[3:4], keys[3:4], 1.0, 1.25), out[3:4])
  half = input_diversity(x, keys, 0.5, 1.25)
  same = [bool(np.array_equal(half[i], x[i])) for i in range(16)]
  assert 0 < sum(same) < 16


def test_ti_kernel_and_depthwise_smoothing_by_hand():
  k1 = np.array([math.exp(-0.5), 1.0, math.exp(-0.5)])
  expect = np.outer(k1, k1) / (1 + 2 * math.exp(-0.5)) ** 2
  kern = attacks.gaussian_kernel(3, nsig=1.0)
  np.testing.assert_allclose(kern, expect, rtol=1e-6)
  assert abs(attacks.gaussian_kernel(7, 3.0).sum() - 1) < 1e-6
  g = np.zeros((1, 5, 5, 2), np.float32)
  g[0, 2, 2, 0] = 1.0   # impulse in the middle of channel 0
  g[0, 0, 0, 1] = 2.0   # impulse in the corner of channel 1
  out = np.asarray(attacks.ti_smooth(jnp.asarray(g), kern))
  ref0 = np.zeros((5, 5))
  ref0[1:4, 1:4] = expect
  np.testing.assert_allclose(out[0, :, :, 0], ref0, rtol=1e-6, atol=1e-7)
  ref1 = np.zeros((5, 5))
  ref1[0:2, 0:2] = 2 * expect[1:, 1:]   # zero padding truncates the kernel; no channel mixing
  np.testing.assert_allclose(out[0, :, :, 1], ref1, rtol=1e-6, atol=1e-7)


def test_example_keys_and_config_errors():
  k = jax.random.key(0)
  ks = attacks.example_keys(k, 3)
  assert ks.shape == (3,)
  assert attacks.example_keys(ks, 3) is ks
  with pytest.raises(ValueError, match="one key or 3 keys"):
    attacks.example_keys(jax.random.split(k, 2), 3)
  with pytest.raises(ValueError, match="typed key"):
    attacks.example_keys(jax.random.PRNGKey(0), 3)
  with pytest.raises(ValueError, match="16/255"):
    attacks.attack_config("mifgsm", eps=16)
  with pytest.raises(ValueError, match="16/255"):
    attacks.attack_config("llta", eps=16.0)
  with pytest.raises(ValueError, match="unknown attack 'lta'.*Did you mean 'llta'"):
    attacks.attack_config("lta")
  with pytest.raises(ValueError, match="no setting"):
    attacks.attack_config("dim", support_size=3)
  with pytest.raises(ValueError, match="query_size"):
    attacks.attack_config("llta", support_size=4, query_size=5)
  with pytest.raises(ValueError, match="odd"):
    attacks.attack_config("tim", ti_kernel=4)
  cfg = attacks.attack_config("llta_mi", eps=8 / 255)
  assert cfg.momentum == 1.0 and math.isclose(cfg.beta, 0.8 / 255) and cfg.alpha == 8 / 255
  assert attacks.attack_config("dim").alpha == pytest.approx(1.6 / 255)
