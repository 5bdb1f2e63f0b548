"""The DCL step on the spec §8 miniature: momentum formula, memory, loss terms, training."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision.core import roles
from jaxvision.losses import contrastive as C
from jaxvision.methods.dcl import queues, step as S
from jaxvision.methods.dcl.objective import DCLNet, ObjectiveConfig

B, HW = 8, 16


def _data(seed=0):
  """4 reals (smooth noise) + 4 fakes (a pasted high-frequency square, mask = that square)."""
  rng = np.random.default_rng(seed)
  smooth = rng.normal(size=(B, 4, 4, 3))
  img = np.clip(0.5 + 0.2 * np.repeat(np.repeat(smooth, 4, 1), 4, 2), 0, 1)
  mask = np.zeros((B, HW, HW), np.float32)
  for i in range(4, 8):
    y, x = rng.integers(0, 8, 2)
    img[i, y:y + 8, x:x + 8] = rng.uniform(size=(8, 8, 3))
    mask[i, y:y + 8, x:x + 8] = 1
  img = img.astype(np.float32)
  k_img = np.clip(img + 0.02 * rng.normal(size=img.shape), 0, 1).astype(np.float32)
  norm = lambda a: jnp.asarray((a - 0.5) / 0.5)
  return {"image": norm(img), "image_k": norm(k_img), "mask": jnp.asarray(mask),
          "label": jnp.asarray([0] * 4 + [1] * 4, jnp.int32)}


CFG = S.DCLConfig(objective=ObjectiveConfig(ce_only_epochs=0),
                  queue=queues.QueueConfig(size=64, slack=8, dim=16, hard=2),
                  views=None)


@pytest.fixture(scope="module")
def setup(tiny_backbone):
  q = DCLNet(tiny_backbone(nnx.Rngs(0)), rngs=nnx.Rngs(1))
  k = DCLNet(tiny_backbone(nnx.Rngs(2)), rngs=nnx.Rngs(3))  # differs from q: a real EMA test
  gq, _, _ = roles.split(q)
  gk, _, _ = roles.split(k)
  tx = optax.adam(1e-3)
  qs = roles.model_state(q)
  state = {"step": jnp.zeros((), jnp.int32),
           "models": {S.QUERY: qs, S.KEY: roles.model_state(k)},
           "opt": {S.QUERY: tx.init(qs["params"])},
           "extras": {"memory": queues.init_memory(jax.random.key(5), CFG.queue)}}
  return gq, gk, tx, state


def test_one_step_momentum_memory_and_terms(setup):
  gq, gk, tx, state = setup
  batch = _data()
  fn = jax.jit(S.make_train_step(gq, gk, tx, CFG, steps_per_epoch=10))
  new, m = fn(state, batch, jax.random.key(0))
  # theta_k = 0.999 theta_k0 + 0.001 theta_q0 (pre-update query params), exactly.
  want = jax.tree.map(lambda a, b: 0.999 * a + 0.001 * b, state["models"][S.KEY]["params"],
                      state["models"][S.QUERY]["params"])
  for a, b in zip(jax.tree.leaves(new["models"][S.KEY]["params"]), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  # The query moved (Adam), the step counter advanced.
  assert any(not np.allclose(a, b) for a, b in zip(
      jax.tree.leaves(new["models"][S.QUERY]["params"]),
      jax.tree.leaves(state["models"][S.QUERY]["params"])))
  assert int(new["step"]) == 1
  # Memory: the key embeddings of this batch (key encoder after its momentum update) fed it.
  k_model = nnx.merge(gk, new["models"][S.KEY]["params"], state["models"][S.KEY]["rest"],
                      copy=True)
  keys = k_model(batch["image_k"], train=True)["embedding"]
  mem = queues.update_memory(state["extras"]["memory"], keys, batch["label"], CFG.queue)
  for name in ("queue_real", "queue_fake", "proto_real", "proto_fake"):
    np.testing.assert_allclose(new["extras"]["memory"][name], mem[name], rtol=1e-5, atol=1e-6)
  assert int(new["extras"]["memory"]["ptr_fake"]) == 2
  # The reported terms are the library losses on the query forward (pre-update params).
  q_model = roles.merge(gq, state["models"][S.QUERY])
  out = q_model(batch["image"], train=True)
  inter = C.inter_icl_loss(out["embedding"], keys, batch["label"], mem["queue_real"],
                           mem["queue_fake"], 0.07)
  np.testing.assert_allclose(m["inter"], inter, rtol=1e-4)
  f, r = C.intra_icl_loss(out["fmap"], S.resize_mask(batch["mask"], (4, 4)), batch["label"])
  np.testing.assert_allclose(m["intra_fake"], f, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(m["intra_real"], r, rtol=1e-4)
  total = 0.5 * m["ce"] + 0.5 * m["inter"] + 0.05 * m["intra_fake"] + 0.0005 * m["intra_real"]
  np.testing.assert_allclose(m["loss"], total, rtol=1e-5)


def test_ce_warmup_then_loss_decreases(setup):
  gq, gk, tx, state = setup
  batch = _data(1)
  warm = dataclasses.replace(CFG, objective=ObjectiveConfig(ce_only_epochs=1))
  fn = jax.jit(S.make_train_step(gq, gk, tx, warm, steps_per_epoch=5))
  losses = []
  for i in range(20):
    state, m = fn(state, batch, jax.random.key(i))
    if i < 5:  # epoch 0: CE only
      assert float(m["loss"]) == pytest.approx(float(m["ce"]), rel=1e-6)
    assert np.isfinite(float(m["loss"]))
    losses.append((float(m["loss"]), float(m["ce"])))
  assert float(m["ce_weight"]) == 0.5
  dcl = [l for l, _ in losses[5:]]
  assert np.mean(dcl[-5:]) < np.mean(dcl[:5])
  assert losses[-1][1] < losses[0][1]  # CE goes down too
