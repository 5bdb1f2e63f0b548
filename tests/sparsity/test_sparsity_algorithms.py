"""Mask-update rules: OptG refresh / revival / accumulation identity, GMP, RigL."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision import sparsity as sp
from jaxvision.core import roles
from jaxvision.methods.optg.method import make_sparse_train_step
from jaxvision.sparsity import masking, paths, topk
from tiny_models import TinySparseCNN as Tiny


N = 3 * 3 * 3 * 8 + 3 * 3 * 8 * 16 + 16 * 10  # 1528 masked weights


def _state(method, spe=5, epochs=8, target=0.8, beta=2.0, **kw):
  g, p, r = nnx.split(Tiny(nnx.Rngs(0)), nnx.Param, ...)
  plan = sp.make_plan(p, method=method, target=target, steps_per_epoch=spe,
                      total_steps=spe * epochs, beta=beta, **kw)
  extras = sp.init_extras(plan, p, jax.random.key(3))
  return g, p, r, plan, extras


def _data(n=256, seed=0):
  """Synthetic 8x8x3 images whose label is a function of the input (learnable)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 8, 8, 3)).astype(np.float32)
  y = (np.argmax(x.mean((1, 2)) @ rng.normal(size=(3, 10)), -1)).astype(np.int32)
  return x, y


def _kept(masks):
  return sum(int(m.sum()) for m in jax.tree.leaves(masks))


def test_optg_first_refresh_keeps_all_with_zero_scores():
  _, p, _, plan, ex = _state("optg")
  assert plan.num_masked == N
  assert plan.table[0] == N  # p_0 = 0.8 sigmoid(-8) = 2.7e-4 < 1/N
  ex = sp.refresh(plan, ex, p, jnp.int32(0))
  assert _kept(ex["masks"]) == N


def test_optg_refresh_counts_and_spec_rule():
  _, p, _, plan, ex = _state("optg")
  rng = np.random.default_rng(1)
  ex["scores"] = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), jnp.float32),
                              ex["scores"])
  for epoch in range(8):
    out = sp.refresh(plan, ex, p, jnp.int32(epoch * 5))
    k = topk.keep_count(N, plan.schedule.sparsity_at_update(epoch))
    assert plan.table[epoch] == k
    assert _kept(out["masks"]) == k  # sum_l #zeros(M_l) = N - K exactly
    # Not an update step: masks unchanged (bit-identical).
    same = sp.refresh(plan, out, p, jnp.int32(epoch * 5 + 3))
    for a, b in zip(jax.tree.leaves(out["masks"]), jax.tree.leaves(same["masks"])):
      np.testing.assert_array_equal(a, b)
  assert _kept(out["masks"]) == topk.keep_count(N, 0.8)  # last epoch: exactly the target


def test_optg_revival():
  _, p, _, plan, ex = _state("optg")
  rng = np.random.default_rng(2)
  ex["scores"] = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), jnp.float32),
                              ex["scores"])
  a = sp.refresh(plan, ex, p, jnp.int32(35))  # last epoch: 80%
  fm = paths.flatten(a["masks"])
  key = ("conv2", "kernel")
  idx = tuple(int(i) for i in np.argwhere(~np.asarray(fm[key]))[0])
  fs = paths.flatten(ex["scores"])
  fs[key] = fs[key].at[idx].set(100.0)  # hand-set above tau
  b = sp.refresh(plan, {**a, "scores": paths.nest(fs)}, p, jnp.int32(35))
  fb = paths.flatten(b["masks"])
  assert bool(fb[key][idx])  # revived
  assert _kept(b["masks"]) == _kept(a["masks"])  # another weight was removed instead
  changed = sum(int((np.asarray(fm[k]) != np.asarray(fb[k])).sum()) for k in fm)
  assert changed == 2


def test_gmp_reaches_target_without_regrowth():
  _, p, _, plan, ex = _state("gmp", spe=10, epochs=10, target=0.9, interval=10)
  assert plan.distribution == "uniform"
  prev = None
  for s in range(0, 100, 10):
    ex = sp.refresh(plan, ex, p, jnp.int32(s))
    fm = {k: np.asarray(v) for k, v in paths.flatten(ex["masks"]).items()}
    if prev is not None:  # pruned weights never come back
      assert all(np.all(fm[k] <= prev[k]) for k in fm)
    prev = fm
  counts = [int(m.sum()) for m in fm.values()]
  assert sum(counts) == topk.keep_count(N, 0.9)
  assert counts == list(sp.uniform_counts(plan.sizes, 0.9))
  # The kept weights are the largest-magnitude ones of their layer.
  w = masking.get_leaves(p, ex["masks"])
  for k in fm:
    a = np.abs(np.asarray(w[k]))
    assert a[fm[k]].min() >= a[~fm[k]].max()


def test_rigl_keeps_exact_counts_and_regrows():
  g, p, r, plan, ex = _state("rigl", spe=10, epochs=10, target=0.9, interval=10)
  counts0 = [int(m.sum()) for m in paths.flatten(ex["masks"]).values()]
  assert counts0 == list(sp.erk_counts(plan.shapes, 0.9))
  assert sum(counts0) == topk.keep_count(N, 0.9)
  rng = np.random.default_rng(0)
  grads = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in zip(plan.keys, plan.shapes)}
  ex1, p1 = sp.rigl_update(plan, ex, p, grads, jnp.int32(10))
  f0, f1 = paths.flatten(ex["masks"]), paths.flatten(ex1["masks"])
  assert [int(m.sum()) for m in f1.values()] == counts0
  grown = {k: np.asarray(f1[k] & ~f0[k]) for k in f0}
  assert sum(int(v.sum()) for v in grown.values()) > 0
  expected_drop = sum(plan.drop_table[1])
  assert sum(int(v.sum()) for v in grown.values()) <= expected_drop
  w1 = masking.get_leaves(p1, ex1["masks"])
  for k in grown:
    assert np.all(np.asarray(w1[k])[grown[k]] == 0.0)  # grown weights start at zero
  # Grown connections have the largest |G| among the non-kept ones.
  # No update at a non-interval step or after end_frac.
  for s in (11, 80):
    ex2, _ = sp.rigl_update(plan, ex1, p1, grads, jnp.int32(s))
    for a, b in zip(jax.tree.leaves(ex1["masks"]), jax.tree.leaves(ex2["masks"])):
      np.testing.assert_array_equal(a, b)


def _run(method, steps, lr=0.1, score_momentum=0.9, **kw):
  g, p, r, plan, ex = _state(method, **kw)
  x, y = _data()
  tx = optax.sgd(lr, momentum=0.9)
  score_tx = optax.sgd(lr, momentum=score_momentum) if method == "optg" else None
  step_fn = jax.jit(make_sparse_train_step(g, tx, plan, roles.ce_loss, score_tx))
  state = {"step": jnp.int32(0), "models": {"student": {"params": p, "rest": r}},
           "opt": {"student": tx.init(p)}, "extras": ex}
  if score_tx is not None:
    state["opt"]["scores"] = score_tx.init(ex["scores"])
  hist = []
  for s in range(steps):
    i = (s * 32) % 256
    state, m = step_fn(state, {"image": x[i:i + 32], "label": y[i:i + 32]}, jax.random.key(s))
    hist.append({k: float(v) for k, v in m.items()} | {
        "masks": [np.asarray(a) for a in jax.tree.leaves(state["extras"]["masks"])]})
  return plan, state, hist


def test_optg_train_step_schedule_loss_and_mask_stability():
  plan, state, hist = _run("optg", 40)  # E=8 epochs x 5 steps, p=0.8, beta=2 (spec §8)
  for s, h in enumerate(hist):
    assert round((1 - h["sparsity"]) * N) == plan.table[s // 5]
    if s % 5:
      for a, b in zip(hist[s - 1]["masks"], h["masks"]):
        np.testing.assert_array_equal(a, b)  # fixed within an epoch
  assert round((1 - hist[-1]["sparsity"]) * N) == topk.keep_count(N, 0.8)
  assert np.mean([h["loss"] for h in hist[15:20]]) < np.mean([h["loss"] for h in hist[:3]])
  # Scores moved and masks are non-uniform across layers (global top-k).
  ls = sp.layer_sparsity(state["extras"]["masks"])
  assert len({round(float(v), 4) for v in ls.values()}) > 1


def test_optg_score_accumulation_identity():
  """Momentum 0, fixed mask, constant lr: S_T = -lr * sum_t G_t * W_t (spec §2)."""
  g, p, r, plan, ex = _state("optg", spe=100, epochs=1, target=0.5)
  rng = np.random.default_rng(4)
  masks = jax.tree.map(lambda m: jnp.asarray(rng.random(m.shape) > 0.3), ex["masks"])
  ex = {**ex, "masks": masks}
  x, y = _data()
  lr = 0.05
  tx, score_tx = optax.sgd(lr), optax.sgd(lr)
  step_fn = jax.jit(make_sparse_train_step(g, tx, plan, roles.ce_loss, score_tx))
  state = {"step": jnp.int32(1),  # not an update step: mask stays as set
           "models": {"student": {"params": p, "rest": r}},
           "opt": {"student": tx.init(p), "scores": score_tx.init(ex["scores"])}, "extras": ex}

  def loss_eff(pe, rest, batch):
    model = nnx.merge(g, pe, rest, copy=True)
    return roles.ce_loss(model, batch, None)[0]

  acc = jax.tree.map(jnp.zeros_like, ex["scores"])
  fm = paths.flatten(masks)
  for t in range(6):
    batch = {"image": x[t * 32:(t + 1) * 32], "label": y[t * 32:(t + 1) * 32]}
    ms = state["models"]["student"]
    peff = masking.map_masked(lambda w, m: w * m, ms["params"], masks)
    G = masking.get_leaves(jax.grad(loss_eff)(peff, ms["rest"], batch), masks)
    W = masking.get_leaves(ms["params"], masks)
    acc = paths.nest({k: paths.flatten(acc)[k] - lr * G[k] * W[k] for k in fm})
    state, _ = step_fn(state, batch, jax.random.key(t))
  for k in fm:
    np.testing.assert_allclose(paths.flatten(state["extras"]["scores"])[k],
                               paths.flatten(acc)[k], atol=1e-6)
  for a, b in zip(jax.tree.leaves(masks), jax.tree.leaves(state["extras"]["masks"])):
    np.testing.assert_array_equal(a, b)


def test_gmp_and_rigl_steps_reach_target():
  for method in ("gmp", "rigl"):
    plan, state, hist = _run(method, 40, spe=5, epochs=8, target=0.9, interval=5)
    assert round((1 - hist[-1]["sparsity"]) * N) == topk.keep_count(N, 0.9), method
    ms = state["models"]["student"]["params"]
    assert float(sp.weight_sparsity(ms, state["extras"]["masks"])) >= 1 - topk.keep_count(N, 0.9) / N - 1e-6


def test_plan_errors():
  _, p, _ = nnx.split(Tiny(nnx.Rngs(0)), nnx.Param, ...)
  with pytest.raises(ValueError, match="sparsity.method"):
    sp.make_plan(p, method="snip", target=0.5, steps_per_epoch=1, total_steps=10)
  with pytest.raises(ValueError, match="rigl keeps"):
    sp.make_plan(p, method="rigl", target=0.5, steps_per_epoch=1, total_steps=10,
                 distribution="global")
  with pytest.raises(ValueError, match="in \\[0, 1\\)"):
    sp.make_plan(p, method="optg", target=1.0, steps_per_epoch=1, total_steps=10)
