"""Classification per-example metrics and masked, padded accumulation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators import base, classification


def test_per_example_hand_case():
  logits = jnp.array([[3.0, 2.0, 1.0, 0.0, -1.0, -2.0],
                      [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                      [0.0, 0.0, 9.0, 0.0, 0.0, 0.0]])
  labels = jnp.array([0, 0, 1])
  out = jax.jit(classification.per_example)(logits, labels)
  np.testing.assert_array_equal(out["top1"], [1.0, 0.0, 0.0])
  # row 1: label 0 is the smallest logit -> not in top 5 of 6; row 2: ties at 0
  # broken by index, label 1 is among the 5 largest (9, 0, 0, 0, 0).
  np.testing.assert_array_equal(out["top5"], [1.0, 0.0, 1.0])
  expect = -jax.nn.log_softmax(logits)[jnp.arange(3), labels]
  np.testing.assert_allclose(out["loss"], expect, rtol=1e-6)
  np.testing.assert_allclose(out["loss"][1], np.log(np.exp(np.arange(6.0)).sum()), rtol=1e-6)


def test_topk_skipped_when_k_ge_classes():
  out = classification.per_example(jnp.zeros((2, 5)), jnp.array([0, 1]))
  assert set(out) == {"top1", "loss"}
  with pytest.raises(ValueError, match="labels"):
    classification.per_example(jnp.zeros((2, 5)), jnp.array([0, 1, 2]))


def test_mean_accumulator_mask_ignores_padding():
  acc = base.MeanAccumulator()
  acc.update({"a": np.array([1.0, 0.0, np.nan, 7.0])}, np.array([1, 1, 0, 0]))
  acc.update({"a": jnp.array([1.0, 1.0])}, jnp.array([1, 1]))
  assert acc.result() == {"a": 0.75}
  with pytest.raises(ValueError, match="0/1"):
    acc.update({"a": np.ones(2)}, np.array([2, 0]))


def test_padded_batches_change_nothing():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(37, 10)).astype(np.float32)
  labels = rng.integers(0, 10, 37)
  plain = classification.ClassificationEvaluator()
  plain.update(logits, labels)
  padded = classification.ClassificationEvaluator()
  for s in range(0, 37, 16):  # batches of 16 padded with junk rows
    lg, lb = logits[s:s + 16], labels[s:s + 16]
    n = len(lb)
    lg = np.concatenate([lg, rng.normal(size=(16 - n, 10)) * 100]).astype(np.float32)
    lb = np.concatenate([lb, np.zeros(16 - n, int)])
    padded.update(lg, lb, mask=(np.arange(16) < n).astype(np.int32))
  a, b = plain.result(), padded.result()
  assert a.keys() == b.keys() == {"top1", "top5", "loss"}
  for k in a:
    assert a[k] == pytest.approx(b[k], rel=1e-6)
  assert a["top1"] == pytest.approx(np.mean(logits.argmax(1) == labels))


def test_registry_names():
  for name in ("classification", "psnr_ssim", "matting", "forgery", "attack_success", "vqa",
               "rec", "autodl_alc", "fid", "miou", "compression"):
    assert EVALUATORS.get(name) is not None


def test_allgather_single_process_identity():
  x = np.arange(6.0).reshape(3, 2)
  np.testing.assert_array_equal(base.allgather_sum(x), x)
  np.testing.assert_array_equal(base.allgather_concat(x), x)


def test_multihost_reduction_with_fake_two_processes(monkeypatch):
  """Two hosts with different local rows: sums/counts and rows are combined."""
  from jax.experimental import multihost_utils
  other = {}  # what the fake second process contributes, keyed by call shape

  def fake_allgather(x, tiled=False):
    x = np.asarray(x)
    return np.stack([x, other.get(x.shape, x)])

  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(multihost_utils, "process_allgather", fake_allgather)
  acc = base.MeanAccumulator()
  acc.update({"a": np.array([1.0, 3.0, 100.0])}, np.array([1, 1, 0]))  # host 0: sum 4, n 2
  other[(2, 1)] = np.array([[10.0], [3.0]])  # host 1: sum 10 over 3 rows
  assert acc.result() == {"a": pytest.approx(14.0 / 5.0)}
  # variable-length concat: host 0 has 2 rows, host 1 has 3
  other[()] = np.int64(3)
  other[(3,)] = np.array([7.0, 8.0, 9.0])
  np.testing.assert_array_equal(base.allgather_concat(np.array([1.0, 2.0])),
                                [1.0, 2.0, 7.0, 8.0, 9.0])
