"""IntraQ loss terms on hand-made inputs, BN taps, KD, RRC."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import losses
from jaxvision.methods.intraq import augment


def test_soft_targets_range_and_fraction():
  t = np.asarray(losses.sample_soft_targets(jax.random.key(0), 4000, 0.6, 0.5))
  assert t.min() >= 0.6 and t.max() <= 1.0
  frac_one = np.mean(t == 1.0)
  assert 0.45 < frac_one < 0.55
  assert np.all(losses.sample_soft_targets(jax.random.key(1), 100, 1.0) == 1.0)


def test_soft_inception_loss_hand_value():
  logits = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]))
  labels = jnp.array([0, 2])
  ones = jnp.ones(2)
  want = ((0.7 - 1) ** 2 + (0.5 - 1) ** 2) / 2  # eps=1: mean (p_y - 1)^2
  assert abs(float(losses.soft_inception_loss(logits, labels, ones)) - want) < 1e-6
  soft = jnp.array([0.7, 0.9])
  want = (0.0 + 0.4 ** 2) / 2
  assert abs(float(losses.soft_inception_loss(logits, labels, soft)) - want) < 1e-6


def test_marginal_distance_bounds():
  f = jax.random.normal(jax.random.key(0), (6, 5))
  c = jax.random.normal(jax.random.key(1), (6, 5))
  m = jnp.ones(6)
  assert float(losses.marginal_distance_loss(f, c, m, 0.0, 2.0)) == 0.0  # band = all of [0, 2]
  # d = 0 at the centre: loss = lambda_l
  assert abs(float(losses.marginal_distance_loss(f, f, m, 0.1, 0.8)) - 0.1) < 1e-5
  assert float(losses.marginal_distance_loss(f, c, jnp.zeros(6), 0.1, 0.2)) == 0.0
  # opposite direction: d = 2 -> loss = 2 - u
  assert abs(float(losses.marginal_distance_loss(f, -f, m, 0.0, 0.8)) - 1.2) < 1e-5
  # only masked rows count
  mask = jnp.array([1.0, 0, 0, 0, 0, 0])
  assert abs(float(losses.marginal_distance_loss(f, f, mask, 0.3, 0.8)) - 0.3) < 1e-5
  g = jax.grad(lambda cc: losses.marginal_distance_loss(f, cc, m, 0.1, 0.2))(c)
  assert float(jnp.abs(g).sum()) == 0.0  # centres get no gradient
  gf = jax.grad(lambda ff: losses.marginal_distance_loss(ff, f, m, 0.1, 0.2))(f * 1.0)
  assert np.all(np.isfinite(np.asarray(gf)))
  with pytest.raises(ValueError, match="lambda_l"):
    losses.marginal_distance_loss(f, c, m, 0.5, 0.1)


def test_class_centres_running_mean():
  cs = losses.init_class_centres(3, 2)
  cs = losses.update_class_centres(cs, jnp.array([[1.0, 0.0], [3.0, 2.0]]), jnp.array([0, 0]))
  cs = losses.update_class_centres(cs, jnp.array([[5.0, 1.0]]), jnp.array([2]))
  mean, mask = losses.lookup_centres(cs, jnp.array([0, 1, 2]))
  np.testing.assert_allclose(np.asarray(mean), [[2.0, 1.0], [0.0, 0.0], [5.0, 1.0]])
  np.testing.assert_array_equal(np.asarray(mask), [1.0, 0.0, 1.0])


def test_kd_loss_hand_value_and_zero_at_match():
  s = jnp.array([[1.0, 0.0]])
  t = jnp.array([[0.0, 1.0]])
  ps, pt = jax.nn.softmax(s / 2.0), jax.nn.softmax(t / 2.0)
  kl = float(jnp.sum(pt * (jnp.log(pt) - jnp.log(ps))))
  assert abs(float(losses.kd_loss(s, t, 2.0, 3.0)) - 3.0 * 4.0 * kl) < 1e-5
  assert abs(float(losses.kd_loss(t, t, 20.0, 20.0))) < 1e-6
  g = jax.grad(lambda tt: losses.kd_loss(s, tt, 2.0))(t)
  assert float(jnp.abs(g).sum()) == 0.0


class BNNet(nnx.Module):
  def __init__(self, rngs):
    self.c = nnx.Conv(3, 4, (3, 3), rngs=rngs)
    self.bn = nnx.BatchNorm(4, rngs=rngs)
    self.fc = nnx.Linear(4, 3, rngs=rngs)

  def __call__(self, x, train=False):
    return self.fc(nnx.relu(self.bn(self.c(x), use_running_average=not train)).mean((1, 2)))


def test_bn_taps_record_input_statistics_and_loss():
  m = BNNet(nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(0), (5, 6, 6, 3))
  pre = m.c(x)
  y0 = m(x)
  info = losses.attach_taps(m, feature_layer="fc")
  assert info == {"bn": ["bn"], "feature": "fc"}
  np.testing.assert_allclose(np.asarray(m(x)), np.asarray(y0), rtol=1e-6)  # unchanged output
  (mu, var, rm, rv), = losses.bn_stats(m)
  np.testing.assert_allclose(np.asarray(mu), np.asarray(pre.mean((0, 1, 2))), atol=1e-5)
  np.testing.assert_allclose(np.asarray(var), np.asarray(pre.var((0, 1, 2))), atol=1e-5)
  want = float(jnp.mean(mu ** 2) + jnp.mean((var - 1.0) ** 2))  # running stats 0 / 1
  assert abs(float(losses.bn_stats_loss(losses.bn_stats(m))) - want) < 1e-5
  assert losses.captured_features(m).shape == (5, 4)
  losses.detach_taps(m)
  assert isinstance(m.bn, nnx.BatchNorm) and isinstance(m.fc, nnx.Linear)


def test_rrc_identity_and_gradient():
  x = jax.random.normal(jax.random.key(0), (2, 8, 6, 3))
  full = jnp.array([[0, 0, 8, 6], [0, 0, 8, 6]])
  crop = jax.jit(augment.crop_resize)
  np.testing.assert_allclose(np.asarray(crop(x, full)), np.asarray(x), atol=1e-6)
  g = jax.jit(jax.grad(lambda v: jnp.sum(augment.crop_resize(v, full) * x)))(x)
  np.testing.assert_allclose(np.asarray(g), np.asarray(x), atol=1e-5)  # VJP = identity
  flipped = crop(x, full, jnp.array([True, False]))
  np.testing.assert_allclose(np.asarray(flipped[0]), np.asarray(x[0, :, ::-1]), atol=1e-6)
  half = crop(x, jnp.array([[2, 1, 4, 4], [0, 0, 6, 3]]))
  assert half.shape == x.shape and float(jnp.abs(half - x).max()) > 1e-2
  sample = jax.jit(augment.sample_boxes, static_argnums=(1, 2, 3))
  boxes = sample(jax.random.key(3), 500, 32, 32, (0.5, 1.0))
  area = np.asarray(boxes[:, 2] * boxes[:, 3]) / 1024.0
  assert area.min() >= 0.45 and area.max() <= 1.0
  assert np.all(np.asarray(boxes[:, 0] + boxes[:, 2]) <= 32)
  assert np.all(np.asarray(boxes[:, 1] + boxes[:, 3]) <= 32)
