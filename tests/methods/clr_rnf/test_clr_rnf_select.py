"""RNF selection (spec §2 step 3, §8 items 4-7) and the ablation selectors."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.methods.clr_rnf import rnf


def test_worked_example_positions():
  w = np.arange(5, dtype=np.float32)[:, None]
  np.testing.assert_array_equal(rnf.worst_ranks(rnf.sq_distances(w)), [4, 3, 2, 3, 4])
  np.testing.assert_array_equal(rnf.rnf_select(w, 1), [2])
  np.testing.assert_array_equal(rnf.rnf_select_loop(w, 1), [2])


def test_overshoot_fills_from_new_members_by_index():
  # m=2: I(3) = {2}; I(4) = {1, 2, 3} overshoots -> keep {2} + lowest new index {1}.
  w = np.arange(5, dtype=np.float32)[:, None]
  np.testing.assert_array_equal(rnf.rnf_select(w, 2), [1, 2])
  np.testing.assert_array_equal(rnf.rnf_select_loop(w, 2), [1, 2])


def test_ties_broken_by_lower_index():
  # Two identical filters far from two others: both members of every tie go by index.
  w = np.array([[0.0], [0.0], [10.0], [10.0]], np.float32)
  np.testing.assert_array_equal(rnf.rnf_select(w, 1), rnf.rnf_select_loop(w, 1))
  np.testing.assert_array_equal(rnf.rnf_select(w, 3), rnf.rnf_select_loop(w, 3))


def test_closed_form_equals_iterative_loop():
  rng = np.random.default_rng(0)
  for t in range(300):
    n, d = int(rng.integers(2, 13)), int(rng.integers(1, 5))
    m = int(rng.integers(1, n + 1))
    if t % 2:  # integer grids: many distance ties
      w = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    else:
      w = rng.standard_normal((n, d)).astype(np.float32)
    np.testing.assert_array_equal(rnf.rnf_select(w, m), rnf.rnf_select_loop(w, m))


def test_output_contract_and_m_equals_n():
  rng = np.random.default_rng(1)
  w = rng.standard_normal((17, 6)).astype(np.float32)
  for m in (1, 5, 16):
    s = rnf.rnf_select(w, m)
    assert s.dtype == np.int32 and len(s) == m and len(set(s.tolist())) == m
    assert np.all(np.diff(s) > 0) and s.min() >= 0 and s.max() < 17
  np.testing.assert_array_equal(rnf.rnf_select(w, 17), np.arange(17))
  with pytest.raises(ValueError, match="kept filters"):
    rnf.rnf_select(w, 0)
  with pytest.raises(ValueError, match="2-D"):
    rnf.rnf_select(w[None], 1)


def test_invariant_to_similarity_transform_and_permutation():
  rng = np.random.default_rng(2)
  w = rng.standard_normal((12, 5)).astype(np.float32)
  d = rnf.sq_distances(w)
  e = np.exp(-d.astype(np.float64))
  s = e / e.sum(1, keepdims=True)  # code's similarity: sorting S descending == D ascending
  np.testing.assert_array_equal(rnf.worst_ranks(d), rnf.worst_ranks(-s))
  perm = rng.permutation(12)
  sel = rnf.rnf_select(w, 4)
  sel_p = rnf.rnf_select(w[perm], 4)
  np.testing.assert_array_equal(np.sort(perm[sel_p]), sel)


def test_jax_path_matches_numpy_with_padding():
  rng = np.random.default_rng(3)
  w = rng.standard_normal((11, 4)).astype(np.float32)
  d = rnf.sq_distances(w)
  np.testing.assert_allclose(np.asarray(rnf.sq_distances(jnp.asarray(w))), d, atol=1e-4)
  pad = np.zeros((16, 16), np.float32)
  pad[:11, :11] = d
  np.testing.assert_array_equal(np.asarray(rnf.worst_ranks(jnp.asarray(pad), 11))[:11],
                                rnf.worst_ranks(d))


def test_kernel_to_filters_uses_torch_order():
  k = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)  # HWIO
  f = rnf.kernel_to_filters(k)
  assert f.shape == (4, 12)
  np.testing.assert_array_equal(f[1], k[..., 1].transpose(2, 0, 1).ravel())


def test_l1_and_random_selectors():
  w = np.array([[1.0, 1.0], [-3.0, 0.0], [0.5, 0.0], [2.0, -1.0]], np.float32)
  np.testing.assert_array_equal(rnf.l1_select(w, 2), [1, 3])
  rng = np.random.default_rng(0)
  for _ in range(20):
    s = rnf.random_select(5, 4, rng, exclude_last=True)
    assert 4 not in s and len(set(s.tolist())) == 4
  assert sorted(rnf.random_select(5, 5, rng).tolist()) == [0, 1, 2, 3, 4]
  with pytest.raises(ValueError, match="selection"):
    rnf.select(w, 1, "kmeans")


def test_graph_loss_hand_computed():
  # Two identical filters: S = 0.5 everywhere; keeping one gives B = ones -> |0.5 - 1| * 4 / 4.
  assert rnf.graph_loss(np.zeros((2, 1)), np.array([0])) == pytest.approx(0.5)
