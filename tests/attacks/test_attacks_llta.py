"""LLTA: base-γ search, support/query split, meta gradient vs a naive loop, the whole attack
(budget, loss up, batched == per-image loop, determinism) on a tiny zoo ResNet (spec §8)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import attacks
from jaxvision.attacks import llta as L
from jaxvision.models import CifarResNet

B, EPS = 2, 8 / 255
CFG = attacks.LLTAConfig(eps=EPS, steps=3, search_epochs=1, search_samples=2, num_tasks=2,
                         support_size=4, query_size=2)


# ------------------------------------------------------------------ γ search (analytic models)

def _analytic_grad_fn(norm_of_gamma):
  """grad_fn whose per-row gradient is x scaled so that ‖∇‖₂ = ‖x‖₂ · norm_of_gamma(γ)."""
  def grad_fn(x, y, gamma):
    return x * jax.vmap(norm_of_gamma)(gamma)[:, None, None, None]
  return grad_fn


def test_gamma_search_zero_when_no_candidate_lowers_the_norm():
  x = jnp.ones((3, 2, 2, 1))
  y = jnp.zeros((3,), jnp.int32)
  g0 = jnp.full((3, 4), 0.5)
  keys = jax.random.split(jax.random.key(0), 3)
  cfg = attacks.LLTAConfig(search_epochs=3, search_samples=5)
  bowl = _analytic_grad_fn(lambda g: 1.0 + jnp.sum((g - 0.5) ** 2))  # minimum at γ = 0.5
  out = jax.jit(lambda x, g, k: attacks.search_gamma(bowl, x, y, g, k, cfg))(x, g0, keys)
  np.testing.assert_array_equal(out, g0)           # Δγ = 0 exactly


def test_gamma_search_lowers_the_gradient_norm():
  x = jnp.ones((4, 2, 2, 1))
  y = jnp.zeros((4,), jnp.int32)
  g0 = jnp.full((4, 3), 0.5)
  keys = jax.random.split(jax.random.key(1), 4)
  cfg = attacks.LLTAConfig(search_epochs=5, search_samples=5)
  lin = lambda g: 1.0 + jnp.sum(g)                   # norm falls as γ falls
  out = jax.jit(lambda x, g, k: attacks.search_gamma(_analytic_grad_fn(lin), x, y, g, k, cfg))(
      x, g0, keys)
  assert np.all(np.asarray(out).sum(1) < 1.5)         # every example moved downhill
  assert np.all(np.asarray(out) >= 0)


# ------------------------------------------------------------------ tiny surrogate

@pytest.fixture(scope="module")
def tiny():
  model = CifarResNet(10, rngs=nnx.Rngs(0), depth=14, stage_widths=(4, 4, 4))
  sur, var = attacks.from_nnx(model, mean=(0.4,) * 3, std=(0.3,) * 3)
  x = jax.random.uniform(jax.random.key(1), (B, 8, 8, 3))
  y = jax.jit(lambda v, z: attacks.predict_labels(sur, v, z))(var, x)
  return sur, var, x, y


def test_support_query_split(tiny):
  sur, var, x, y = tiny
  g = sur.num_gammas
  gamma = jax.random.uniform(jax.random.key(2), (B, g), minval=0.3, maxval=0.7)
  keys = jax.random.split(jax.random.key(3), B)
  cfg = attacks.LLTAConfig(num_tasks=3, support_size=6, query_size=4, model_aug_prob=0.5,
                           data_aug_prob=0.5)
  t = jax.jit(lambda x, g, k: attacks.sample_tasks(x, g, k, cfg))(x, gamma, keys)
  assert t.spt_x.shape == (B, 6, 8, 8, 3) and t.qry_x.shape == (B, 4, 8, 8, 3)
  assert t.spt_gamma.shape == (B, 6, g) and t.qry_gamma.shape == (B, 4, g)
  sel = np.asarray(t.select)
  assert sel.shape == (B, 3, 4) and sel.min() >= 0 and sel.max() < 6
  assert all(len(set(row)) == 4 for row in sel.reshape(-1, 4))      # distinct per task
  for b in range(B):
    for name, xs, gs in (("spt", t.spt_x, t.spt_gamma), ("qry", t.qry_x, t.qry_gamma)):
      off = np.asarray(gs[b]) - np.asarray(gamma[b])
      assert np.abs(off).max() <= 0.1 + 1e-6                         # γ + U[-r, r] or γ
      for j in range(xs.shape[1]):                                   # whole-copy model aug
        assert np.all(off[j] == 0) or np.all(off[j] != 0), name
      vals = set(np.asarray(x[b]).ravel().tolist()) | {0.0}
      assert set(np.asarray(xs[b]).ravel().tolist()) <= vals        # DI pixels only
  # support and query copies are independent draws (different augmentations)
  assert not np.array_equal(t.spt_x[:, :4], t.qry_x)
  # p_d = p_m = 0: every copy is x with the base γ
  cfg0 = attacks.LLTAConfig(num_tasks=1, support_size=3, query_size=2, model_aug_prob=0.0,
                            data_aug_prob=0.0)
  t0 = jax.jit(lambda x, g, k: attacks.sample_tasks(x, g, k, cfg0))(x, gamma, keys)
  np.testing.assert_array_equal(t0.spt_x, jnp.broadcast_to(x[:, None], t0.spt_x.shape))
  np.testing.assert_array_equal(t0.qry_gamma, jnp.broadcast_to(gamma[:, None], (B, 2, g)))


def test_meta_gradient_equals_naive_loop(tiny):
  sur, var, x, y = tiny
  g = sur.num_gammas
  gamma = jnp.full((B, g), 0.5)
  cfg = CFG
  tasks = jax.jit(lambda x, g, k: attacks.sample_tasks(x, g, k, cfg))(
      x, gamma, jax.random.split(jax.random.key(4), B))
  grad_fn = L._model_fns(sur, var)
  batched = np.asarray(jax.jit(lambda t, y: attacks.meta_gradient(grad_fn, t, y, cfg))(tasks, y))
  chunked_cfg = attacks.LLTAConfig(**{**cfg.__dict__, "tasks_per_batch": 1})
  chunked = np.asarray(jax.jit(lambda t, y: attacks.meta_gradient(grad_fn, t, y, chunked_cfg))(
      tasks, y))
  one = jax.jit(grad_fn)
  loop = np.zeros(x.shape, np.float32)
  for b in range(B):
    yb = y[b:b + 1]
    for n in range(cfg.num_tasks):
      for j in range(cfg.query_size):
        i = int(tasks.select[b, n, j])
        sx, sg = tasks.spt_x[b, i][None], tasks.spt_gamma[b, i][None]
        gs = one(sx, yb, sg)
        u = jnp.clip(sx + jnp.clip(cfg.alpha * jnp.sign(gs), -EPS, EPS), 0, 1) - sx
        gq = one(tasks.qry_x[b, j][None] + u, yb, tasks.qry_gamma[b, j][None])
        loop[b] += np.asarray(gs[0] + gq[0])
  scale = np.abs(loop).max()
  np.testing.assert_allclose(batched, loop, rtol=1e-4, atol=1e-5 * scale)
  np.testing.assert_allclose(chunked, loop, rtol=1e-4, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def adv(tiny):
  sur, var, x, y = tiny
  attack = attacks.make_attack(CFG, sur)
  return attack, np.asarray(attack(var, x, y, jax.random.key(5)))


def test_llta_budget_range_and_loss_increase(tiny, adv):
  sur, var, x, y = tiny
  _, xa = adv
  assert np.abs(xa - np.asarray(x)).max() <= EPS + 1e-6 and xa.min() >= 0 and xa.max() <= 1
  ce = jax.jit(lambda z: jax.vmap(lambda a, b: attacks.ce_sum(sur.apply(var, a[None]),
                                                              b[None]))(z, y))
  assert np.all(np.asarray(ce(xa)) > np.asarray(ce(x)))


def test_llta_batched_equals_per_image_loop_and_determinism(tiny, adv):
  sur, var, x, y = tiny
  attack, xa = adv
  keys = attacks.example_keys(jax.random.key(5), B)
  loop = np.concatenate([np.asarray(attack(var, x[i:i + 1], y[i:i + 1], keys[i:i + 1]))
                         for i in range(B)])
  np.testing.assert_allclose(loop, xa, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(attack(var, x, y, jax.random.key(5))), xa)
  assert not np.array_equal(np.asarray(attack(var, x, y, jax.random.key(6))), xa)


def test_llta_ti_smooths_the_meta_gradient(tiny):
  """One outer step of LLTA+MI+TI = Π(x + β·sign(MI(W_ti * meta_gradient))), by hand."""
  sur, var, x, y = tiny
  cfg = attacks.attack_config("llta_mi_ti", eps=EPS, steps=1, search_epochs=0, num_tasks=2,
                              support_size=4, query_size=2, ti_kernel=3)
  assert (cfg.momentum, cfg.ti_kernel) == (1.0, 3)
  xa = np.asarray(jax.jit(lambda v, x, y, k: attacks.llta_attack(cfg, sur, v, x, y, k))(
      var, x, y, jax.random.key(7)))

  @jax.jit  # the hand composition, compiled once (op by op it is hundreds of small compiles)
  def by_hand(var, x, y):
    keys = attacks.example_keys(jax.random.key(7), B)
    kt = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, 0), 2))(keys)
    gamma = jnp.full((B, sur.num_gammas), cfg.gamma_init)
    tasks = attacks.sample_tasks(x, gamma, kt[:, 1], cfg)
    g = attacks.meta_gradient(L._model_fns(sur, var), tasks, y, cfg)
    return attacks.mi_normalize(attacks.ti_smooth(g, attacks.gaussian_kernel(3, 3.0)))

  want = np.clip(np.asarray(x) + cfg.beta * np.sign(np.asarray(by_hand(var, x, y))), 0, 1)
  np.testing.assert_allclose(xa, want, atol=1e-6)
  with pytest.raises(ValueError, match="ti_kernel must be 0"):
    attacks.attack_config("llta", ti_kernel=4)
