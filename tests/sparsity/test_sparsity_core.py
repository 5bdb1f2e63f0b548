"""Pure parts of jaxvision.sparsity: paths, exact top-k, schedules, distributions, STE."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision import sparsity
from jaxvision.sparsity import algorithms, masking, paths, schedules, topk
import tiny_models


Tiny = functools.partial(tiny_models.TinySparseCNN, conv2_bias=True)  # a bias: never masked


def _split():
  g, p, r = nnx.split(Tiny(nnx.Rngs(0)), nnx.Param, ...)
  return g, p, r


def test_select_default_masks_kernels_only():
  _, p, _ = _split()
  keys = [paths.path_str(k) for k in paths.select(p)]
  assert sorted(keys) == ["conv1/kernel", "conv2/kernel", "fc/kernel"]
  keys = [paths.path_str(k) for k in paths.select(p, exclude=r"^fc/")]
  assert sorted(keys) == ["conv1/kernel", "conv2/kernel"]
  with pytest.raises(ValueError, match="matches no parameter"):
    paths.select(p, include="nothing_here")


def test_first_last_layers():
  assert paths.first_last_layers(Tiny(nnx.Rngs(0))) == ("conv1/kernel", "fc/kernel")


def test_keep_count_is_exact():
  assert topk.keep_count(1000, 0.9) == 100          # naive floor gives 99
  assert topk.keep_count(1001, 0.9) == 101          # 900 removed: floor(n p)
  assert topk.keep_count(7, 0.0) == 7 and topk.keep_count(7, 0.1) == 7  # p < 1/n: dense
  n = 25_557_032
  assert topk.keep_count(n, 0.965) == n - math.floor(n * 0.965)
  for n in (17, 1000, 1528, 4099):
    for p in (0.5, 0.8, 0.9, 0.965, 0.99):
      assert 0 <= (1 - topk.keep_count(n, p) / n) - p + 1 / n and (1 - topk.keep_count(n, p) / n) <= p + 1e-12
  with pytest.raises(ValueError):
    topk.keep_count(10, 1.5)


def test_topk_exact_with_ties():
  s = jnp.array([0.0, 1.0, 0.0, 0.0, 2.0, 0.0])
  m = topk.topk_mask(s, 3)
  assert int(m.sum()) == 3
  np.testing.assert_array_equal(m, [True, True, False, False, True, False])  # ties by index
  mk = topk.topk_mask(s, 3, ties="keep")  # official code: all ties at tau kept
  assert int(mk.sum()) == 6
  assert int(topk.topk_mask(s, 0).sum()) == 0


def test_global_topk_per_layer_counts_follow_spec_rule():
  rng = np.random.default_rng(0)
  sc = {("a",): jnp.asarray(rng.normal(size=(3, 5))), ("b",): jnp.asarray(rng.normal(size=(40,)))}
  n = 55
  k = topk.keep_count(n, 0.8)
  masks = topk.global_topk_masks(sc, k)
  assert sum(int(m.sum()) for m in masks.values()) == k
  allv = np.concatenate([np.ravel(v) for v in sc.values()])
  tau = np.sort(allv)[::-1][k - 1]
  for key, s in sc.items():
    s = np.ravel(np.asarray(s))
    j = int((s < tau).sum())  # spec: zero exactly the j_l lowest scores of the layer
    zeros = np.where(~np.ravel(np.asarray(masks[key])))[0]
    assert len(zeros) == j
    np.testing.assert_array_equal(np.sort(zeros), np.sort(np.argsort(s)[:j]))


def test_sigmoid_schedule_values():
  p = lambda e: schedules.sigmoid_sparsity(e, 1.0, 100, 1.0)
  assert p(40) <= 5e-5
  assert abs(p(45) - 0.0067) < 1e-4 and abs(p(48) - 0.12) < 5e-3
  assert p(50) == 0.5 and abs(p(52) - 0.88) < 5e-3 and abs(p(55) - 0.993) < 1e-3
  assert p(60) > 1 - 1e-4
  assert schedules.sigmoid_sparsity(4, 0.8, 8, 2.0) == pytest.approx(0.4)
  sch = schedules.Schedule("sigmoid", 0.9, interval=5, total_steps=40, steps_per_epoch=5, beta=2)
  assert sch.num_updates == 8
  assert sch.sparsity_at_update(4) == pytest.approx(0.45)
  assert sch.ramp_at_step(22) == pytest.approx(schedules.sigmoid(2 * (4 - 4)))
  tab = sch.keep_table(1000)
  assert tab[0] == 1000 - math.floor(1000 * 0.9 * schedules.sigmoid(-8.0)) == 1000
  assert tab[-1] == 100 and np.all(np.diff(tab) <= 0)


def test_cubic_schedule():
  assert schedules.cubic_sparsity(0, 0.9, 10, 110) == 0.0
  assert schedules.cubic_sparsity(110, 0.9, 10, 110) == pytest.approx(0.9)
  assert schedules.cubic_sparsity(60, 0.9, 10, 110) == pytest.approx(0.9 * (1 - 0.5 ** 3))
  with pytest.raises(ValueError, match="schedule kind"):
    schedules.Schedule("linear", 0.5, 1, 10)


def test_uniform_and_erk_counts_exact():
  shapes = [(3, 3, 3, 8), (3, 3, 8, 16), (1, 1, 16, 10)]
  sizes = [math.prod(s) for s in shapes]
  n = sum(sizes)
  for p in (0.5, 0.9, 0.97):
    u = sparsity.uniform_counts(sizes, p)
    e = sparsity.erk_counts(shapes, p)
    assert u.sum() == topk.keep_count(n, p) == e.sum()
    assert np.all(e <= sizes) and np.all(e >= 0)
  # ERK density ~ sum(shape)/prod(shape): the small first layer is densest.
  e = sparsity.erk_counts(shapes, 0.9) / np.array(sizes)
  assert e[0] > e[1]
  # At 50% the first layer (raw density > 1) is clipped dense.
  assert sparsity.erk_counts(shapes, 0.5)[0] == sizes[0]


def test_ste_gradients_equal_formulas():
  g, p, r = _split()
  x = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
  y = jnp.arange(4) % 10
  keys = paths.select(p)
  masks = masking.init_masks(p, keys)
  rng = np.random.default_rng(0)
  masks = jax.tree.map(lambda m: jnp.asarray(rng.random(m.shape) > 0.5), masks)
  scores = jax.tree.map(lambda m: jnp.asarray(rng.normal(size=m.shape), jnp.float32), masks)

  def loss_eff(pe):
    logits = nnx.merge(g, pe, r, copy=True)(x, train=False)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def loss(pw, sc):
    return loss_eff(masking.apply_masks(pw, masks, sc))

  gw, gs = jax.grad(loss, argnums=(0, 1))(p, scores)
  peff = masking.map_masked(lambda w, m: w * m, p, masks)
  G = jax.grad(loss_eff)(peff)
  fG = dict(paths.leaves_with_paths(G))
  fW = dict(paths.leaves_with_paths(p))
  fgw = dict(paths.leaves_with_paths(gw))
  fgs = paths.flatten(gs)
  fm = paths.flatten(masks)
  for k in keys:
    np.testing.assert_allclose(fgw[k], fG[k] * fm[k], atol=1e-7)
    np.testing.assert_allclose(fgs[k], fG[k] * fW[k], atol=1e-7)
  # Unmasked params (BN, bias) get the plain gradient.
  np.testing.assert_allclose(fgw[("conv2", "bias")], fG[("conv2", "bias")], atol=1e-7)
  assert float(jnp.abs(fgw[keys[0]] * (1 - fm[keys[0]])).max()) == 0.0


def test_sparsity_metrics():
  masks = {"a": {"kernel": jnp.array([[True, False], [False, False]])},
           "b": {"kernel": jnp.ones((2, 2, 1, 1), bool)}}
  assert float(masking.sparsity(masks)) == pytest.approx(3 / 8)
  ls = masking.layer_sparsity(masks)
  assert float(ls["a/kernel"]) == 0.75 and float(ls["b/kernel"]) == 0.0
  params = {"a": {"kernel": jnp.array([[1.0, 2.0], [0.0, 3.0]])},
            "b": {"kernel": jnp.array([0.0, 1.0, 1.0, 1.0]).reshape(2, 2, 1, 1)}}
  assert float(masking.weight_sparsity(params, masks)) == pytest.approx(4 / 8)
