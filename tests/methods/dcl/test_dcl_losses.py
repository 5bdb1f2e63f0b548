"""Inter-/Intra-ICL: closed forms on toy embeddings, brute-force equality, guards, gradients."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.losses import contrastive as C

TAU = 0.07
T = 0.5  # closed forms use a mild temperature so float32 keeps the small differences
E = math.exp(1 / T)


def test_inter_icl_closed_form():
  # D = 2; a real query q = k = e1; fake queue rows [e2, -e1]: logits [1, 0, -1] / tau.
  q = jnp.array([[1.0, 0.0]])
  qf = jnp.array([[0.0, 1.0], [-1.0, 0.0]])
  qr = jnp.array([[1.0, 0.0], [1.0, 0.0]])  # unused by a real query
  loss = C.inter_icl_loss(q, q, jnp.array([0]), qr, qf, T)
  want = -math.log(E / (E + 1 + math.exp(-1 / T)))
  assert float(loss) == pytest.approx(want, rel=1e-5)
  # As a fake query it uses the real queue: logits [1, 1, 1] / tau -> log 3.
  loss_f = C.inter_icl_loss(q, q, jnp.array([1]), qr, qf, T)
  assert float(loss_f) == pytest.approx(math.log(3), rel=1e-5)


def test_inter_icl_matches_hand_ce_and_ignores_queue_order():
  rng = np.random.default_rng(0)
  unit = lambda *s: (lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True))(rng.normal(size=s))
  q, k, qr, qf = unit(6, 5), unit(6, 5), unit(10, 5), unit(10, 5)
  y = np.array([0, 1, 0, 1, 1, 0])
  rows = []
  for i in range(6):
    logits = np.concatenate([[q[i] @ k[i]], (qr if y[i] else qf) @ q[i]]) / TAU
    rows.append(-logits[0] + np.log(np.exp(logits).sum()))
  got = C.inter_icl_loss(*(jnp.asarray(a, jnp.float32) for a in (q, k)), jnp.asarray(y),
                         jnp.asarray(qr, jnp.float32), jnp.asarray(qf, jnp.float32), TAU)
  assert float(got) == pytest.approx(np.mean(rows), rel=1e-5)
  perm = rng.permutation(10)
  got_p = C.inter_icl_loss(*(jnp.asarray(a, jnp.float32) for a in (q, k)), jnp.asarray(y),
                           jnp.asarray(qr[perm], jnp.float32), jnp.asarray(qf[perm], jnp.float32),
                           TAU)
  assert float(got_p) == pytest.approx(float(got), rel=1e-6)


def _fmap(vectors):
  """[B, P, C] list -> fmap [B, 1, P, C]."""
  return jnp.asarray(np.asarray(vectors, np.float32)[:, None])


def test_intra_icl_closed_forms():
  e1, e2 = [1.0, 0.0], [0.0, 1.0]
  # Fake image, locations (e1, e2), mask (0, 1): R = {0}, A = {1}.
  # Pos = e^{1/tau} (pair 0,0) + 3 (other pairs, exp 0); Neg = exp(S(1,0) = 0) + 3 = 4.
  f, r = C.intra_icl_loss(_fmap([[e1, e2]]), jnp.array([[[0.0, 1.0]]]), jnp.array([1]), T)
  assert float(f) == pytest.approx(math.log((E + 7) / (E + 3)), rel=1e-5)
  assert float(r) == 0.0  # no real image
  # Same directions at both locations: Neg also has e^{1/tau} -> Pos / (Pos + Neg) = 1/2.
  f2, _ = C.intra_icl_loss(_fmap([[e1, e1]]), jnp.array([[[0.0, 1.0]]]), jnp.array([1]), T)
  assert float(f2) == pytest.approx(math.log(2), rel=1e-5)
  # Real image (e1, e2): Pos_r = 2 e^{1/tau} + 2 -> L = -log(2 e^{1/tau} + 2).
  _, r3 = C.intra_icl_loss(_fmap([[e1, e2]]), jnp.zeros((1, 1, 2)), jnp.array([0]), T)
  assert float(r3) == pytest.approx(-math.log(2 * E + 2), rel=1e-5)


def _brute(fmap, mask, labels, exclude):
  """Official formula with zeroed columns (float64 exp sums)."""
  b = fmap.shape[0]
  f = np.asarray(fmap, np.float64).reshape(b, -1, fmap.shape[-1])
  f = f / np.linalg.norm(f, axis=-1, keepdims=True)
  m = np.asarray(mask, np.float64).reshape(b, -1)
  pos = neg = pos_r = 0.0
  for i in range(b):
    s = f[i] @ f[i].T / TAU
    if labels[i] == 1:
      rr = (m[i] == 0)[:, None] & (m[i] == 0)[None]
      ar = (m[i] > 0.01)[:, None] & (m[i] == 0)[None]
      if exclude:
        pos += np.exp(s[rr]).sum()
        neg += np.exp(s[ar]).sum()
      else:
        pos += np.exp(np.where(rr, s, 0)).sum()
        neg += np.exp(np.where(ar, s, 0)).sum()
    else:
      pos_r += np.exp(s).sum()
  return -np.log(pos / (pos + neg)), -np.log(pos_r)


@pytest.mark.parametrize("exclude", [False, True])
def test_intra_icl_equals_brute_force(exclude):
  rng = np.random.default_rng(3)
  fmap = rng.normal(size=(4, 3, 3, 8)).astype(np.float32)
  mask = np.zeros((4, 3, 3), np.float32)
  mask[1, :2, :2] = rng.uniform(0.005, 1.0, (2, 2))  # includes a value in (0, 0.01]
  mask[3, 1:, :] = 1.0
  labels = np.array([0, 1, 0, 1])
  f, r = C.intra_icl_loss(jnp.asarray(fmap), jnp.asarray(mask), jnp.asarray(labels), TAU,
                          exclude_masked_pairs=exclude)
  bf, br = _brute(fmap, mask, labels, exclude)
  assert float(f) == pytest.approx(bf, rel=1e-5, abs=1e-6)
  assert float(r) == pytest.approx(br, rel=1e-5)


def test_intra_icl_all_zero_mask_gives_unit_negatives():
  """A fake with an all-zero mask: no fake locations, Neg = P^2 * #fakes (all exp(0))."""
  rng = np.random.default_rng(4)
  fmap = rng.normal(size=(2, 2, 2, 4)).astype(np.float32)
  f, _ = C.intra_icl_loss(jnp.asarray(fmap), jnp.zeros((2, 2, 2)), jnp.array([1, 1]), T)
  fn = fmap.reshape(2, 4, 4) / np.linalg.norm(fmap.reshape(2, 4, 4), axis=-1, keepdims=True)
  pos = sum(np.exp(fn[i] @ fn[i].T / T).sum() for i in range(2))
  assert float(f) == pytest.approx(-np.log(pos / (pos + 16 * 2)), rel=1e-5)


def test_guards_and_finite_gradients():
  rng = np.random.default_rng(5)
  fmap = jnp.asarray(rng.normal(size=(3, 2, 2, 4)).astype(np.float32))
  mask = jnp.zeros((3, 2, 2)).at[:, 0, 0].set(1.0)
  for labels in ([0, 0, 0], [1, 1, 1]):
    for exclude in (False, True):
      def total(fm):
        f, r = C.intra_icl_loss(fm, mask, jnp.asarray(labels), TAU, exclude_masked_pairs=exclude)
        return f + 0.01 * r
      val, g = jax.value_and_grad(total)(fmap)
      assert np.isfinite(float(val)) and bool(jnp.all(jnp.isfinite(g)))
  f, r = C.intra_icl_loss(fmap, mask, jnp.array([0, 0, 0]), TAU)
  assert float(f) == 0.0 and float(r) < 0
  # Excluding masked pairs with a fake whose every location is fake: no positive pairs -> 0.
  f2, _ = C.intra_icl_loss(fmap[:1], jnp.ones((1, 2, 2)), jnp.array([1]), TAU,
                           exclude_masked_pairs=True)
  assert float(f2) == 0.0
  # Row weights drop rows (e.g. padding): same as removing them.
  a, _ = C.intra_icl_loss(fmap, mask, jnp.array([1, 0, 1]), TAU, weights=jnp.array([1, 1, 0]))
  b, _ = C.intra_icl_loss(fmap[:2], mask[:2], jnp.array([1, 0]), TAU)
  assert float(a) == pytest.approx(float(b), rel=1e-6)
