"""DCL memory: queue enqueue/dequeue and sharding, hard-key selection, prototypes, momentum."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.methods.dcl import queues as Q


def _unit(rng, *shape):
  x = rng.normal(size=shape).astype(np.float32)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_enqueue_writes_rows_advances_and_dequeues_oldest():
  rng = np.random.default_rng(0)
  queue = jnp.asarray(_unit(rng, 8 + 2, 3))  # K = 8, slack 2
  rows = jnp.asarray(_unit(rng, 2, 3))
  q1, p1 = Q.enqueue(queue, jnp.int32(0), rows, jnp.array([True, True]), 8)
  np.testing.assert_array_equal(q1[:2], rows)
  np.testing.assert_array_equal(q1[2:], queue[2:])  # every other row unchanged
  assert int(p1) == 2
  # A row marked invalid (its shard had too few keys of the class) keeps the old content.
  q2, p2 = Q.enqueue(q1, p1, rows, jnp.array([False, True]), 8)
  np.testing.assert_array_equal(q2[2], q1[2])
  np.testing.assert_array_equal(q2[3], rows[1])
  assert int(p2) == 4
  # Wrap-around: ptr 7 writes rows 7, 8 (slack), then ptr -> (7 + 2) mod 8 = 1.
  q3, p3 = Q.enqueue(q2, jnp.int32(7), rows, jnp.array([True, True]), 8)
  np.testing.assert_array_equal(q3[7:9], rows)
  assert int(p3) == 1
  # FIFO: after K / n = 4 enqueues of 2 rows from ptr 0, ptr is back at 0, so the next write
  # replaces the oldest rows (those of the first enqueue).
  q, p = queue, jnp.int32(0)
  batches = [jnp.asarray(_unit(rng, 2, 3)) for _ in range(5)]
  for b in batches[:4]:
    q, p = Q.enqueue(q, p, b, jnp.ones(2, bool), 8)
  assert int(p) == 0
  np.testing.assert_array_equal(q[:2], batches[0])
  q, p = Q.enqueue(q, p, batches[4], jnp.ones(2, bool), 8)
  np.testing.assert_array_equal(q[:2], batches[4])
  np.testing.assert_array_equal(q[2:8], jnp.concatenate(batches[1:4]))
  with pytest.raises(ValueError, match="slack"):
    Q.enqueue(queue, jnp.int32(0), jnp.zeros((3, 3)), jnp.ones(3, bool), 8)


def test_queue_config_errors():
  Q.check_queue_config(Q.QueueConfig(size=64, slack=8, dim=16, hard=2, shards=2), 8)
  with pytest.raises(ValueError, match="not divisible by the global batch 24"):
    Q.check_queue_config(Q.QueueConfig(size=64, slack=8, dim=16, hard=2), 24)
  with pytest.raises(ValueError, match="not divisible by the 3 data shards"):
    Q.check_queue_config(Q.QueueConfig(size=64, slack=8, dim=16, hard=2, shards=3), 8)
  with pytest.raises(ValueError, match="exceeds the per-shard batch"):
    Q.check_queue_config(Q.QueueConfig(size=64, slack=8, dim=16, hard=5, shards=2), 8)
  with pytest.raises(ValueError, match="queue slack"):
    Q.check_queue_config(Q.QueueConfig(size=64, slack=3, dim=16, hard=2, shards=2), 8)


def test_select_hard_top_n_per_shard():
  rng = np.random.default_rng(1)
  keys = _unit(rng, 16, 4)
  labels = np.array([0, 1] * 8)
  labels[8:] = [1, 1, 1, 0, 0, 0, 0, 0]  # shard 2 has 3 fakes
  proto = _unit(rng, 4)
  rows, valid, idx = Q.select_hard(jnp.asarray(keys), jnp.asarray(labels), 1, jnp.asarray(proto),
                                   3, shards=2)
  assert rows.shape == (6, 4) and valid.shape == (6,)  # n * shards rows
  for s in range(2):
    sl = np.arange(8 * s, 8 * s + 8)
    fakes = sl[labels[sl] == 1]
    want = fakes[np.argsort(-(keys[fakes] @ proto))][:3]
    np.testing.assert_array_equal(np.sort(np.asarray(idx[3 * s:3 * s + 3])), np.sort(want))
  assert bool(jnp.all(valid))
  np.testing.assert_array_equal(rows, keys[np.asarray(idx)])
  # A shard with fewer keys of the class than n marks the rest invalid.
  _, valid2, idx2 = Q.select_hard(jnp.asarray(keys), jnp.asarray(labels), 1, jnp.asarray(proto),
                                  4, shards=2)
  assert np.asarray(valid2).tolist() == [True] * 4 + [True] * 3 + [False]
  assert set(np.asarray(idx2)[4:7].tolist()) == {8, 9, 10}


def test_update_memory_prototypes_then_hard_keys():
  cfg = Q.QueueConfig(size=8, slack=4, dim=4, hard=2, shards=1)
  mem = Q.init_memory(jax.random.key(0), cfg)
  rng = np.random.default_rng(2)
  keys = _unit(rng, 6, 4)
  labels = np.array([0, 0, 0, 1, 1, 1])
  new = jax.jit(lambda m, k, y: Q.update_memory(m, k, y, cfg))(mem, jnp.asarray(keys),
                                                                jnp.asarray(labels))
  pr = 0.9 * np.asarray(mem["proto_real"]) + 0.1 * keys[:3].mean(0)
  pf = 0.9 * np.asarray(mem["proto_fake"]) + 0.1 * keys[3:].mean(0)
  np.testing.assert_allclose(new["proto_real"], pr, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(new["proto_fake"], pf, rtol=1e-6, atol=1e-6)
  # Fakes most similar to the (updated) real prototype enter the fake queue, and vice versa.
  hard_f = 3 + np.argsort(-(keys[3:] @ pr))[:2]
  hard_r = np.argsort(-(keys[:3] @ pf))[:2]
  np.testing.assert_allclose(new["queue_fake"][:2], keys[hard_f], rtol=1e-6)
  np.testing.assert_allclose(new["queue_real"][:2], keys[hard_r], rtol=1e-6)
  np.testing.assert_array_equal(new["queue_fake"][2:], mem["queue_fake"][2:])
  assert int(new["ptr_fake"]) == 2 and int(new["ptr_real"]) == 2
  # A batch without reals leaves the real prototype and the real queue as they were.
  only_f = Q.update_memory(mem, jnp.asarray(keys), jnp.ones(6, jnp.int32), cfg)
  np.testing.assert_array_equal(only_f["proto_real"], mem["proto_real"])
  np.testing.assert_array_equal(only_f["queue_real"], mem["queue_real"])
  assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(only_f))


def test_momentum_update_formula_and_no_gradient():
  k = {"a": jnp.array([1.0, 2.0]), "b": {"c": jnp.array(3.0)}}
  q = {"a": jnp.array([5.0, -2.0]), "b": {"c": jnp.array(0.0)}}
  out = Q.momentum_update(k, q, 0.999)
  np.testing.assert_allclose(out["a"], [0.999 * 1 + 0.001 * 5, 0.999 * 2 - 0.001 * 2], rtol=1e-6)
  np.testing.assert_allclose(out["b"]["c"], 0.999 * 3, rtol=1e-6)
  g = jax.grad(lambda qq: sum(jnp.sum(x) for x in jax.tree.leaves(Q.momentum_update(k, qq))))(q)
  assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(g))
