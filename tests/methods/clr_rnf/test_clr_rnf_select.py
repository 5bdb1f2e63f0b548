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


@pytest.mark.parametrize("fill", rnf.FILLS)
def test_overshoot_small_indices_same_in_both_fills(fill):
  # m=2: I(3) = {2}; I(4) = {1, 2, 3} overshoots -> keep {2} + one of {1, 3}. Indices < 8
  # sit in slot = value of the 8-slot set, so set.pop() gives the lower one too: {1}.
  w = np.arange(5, dtype=np.float32)[:, None]
  np.testing.assert_array_equal(rnf.rnf_select(w, 2, fill), [1, 2])
  np.testing.assert_array_equal(rnf.rnf_select_loop(w, 2, fill), [1, 2])


def test_overshoot_official_set_pop_order_hand_case():
  # Ten filters on a line, w_i = i; worst ranks r = [9 8 7 6 5 5 6 7 8 9], so
  # I(8) = {2..7} (6 filters) and I(9) = {1..8} (8) overshoot m = 7. The official
  # code pops from redundant = I(9) - I(8) = {1, 8}: a 2-element set has 8 slots and an
  # int sits in slot value % 8, so 8 (slot 0) pops before 1 (slot 1): it keeps {2..8}.
  # Lower-index-first keeps {1..7}.
  w = np.arange(10, dtype=np.float32)[:, None]
  np.testing.assert_array_equal(rnf.worst_ranks(rnf.sq_distances(w)),
                                [9, 8, 7, 6, 5, 5, 6, 7, 8, 9])
  redundant = {1, 2, 3, 4, 5, 6, 7, 8}.difference({2, 3, 4, 5, 6, 7})
  assert redundant.pop() == 8  # the CPython behaviour the official fill relies on
  np.testing.assert_array_equal(rnf.rnf_select(w, 7), np.arange(2, 9))
  np.testing.assert_array_equal(rnf.rnf_select(w, 7, "official"), np.arange(2, 9))
  np.testing.assert_array_equal(rnf.rnf_select(w, 7, "ascending"), np.arange(1, 8))
  np.testing.assert_array_equal(rnf.rnf_select_loop(w, 7), np.arange(2, 9))
  np.testing.assert_array_equal(rnf.select(w, 7, "rnf", rnf_fill="ascending"), np.arange(1, 8))
  with pytest.raises(ValueError, match="rnf_fill"):
    rnf.rnf_select(w, 7, "random")


def test_official_fill_equals_official_loop_and_differs_from_ascending():
  # The fast path (closed form for k, set ops only on overshoot) against the official
  # k-growing loop; on seeded random layers the two fills disagree often (spec §2).
  rng = np.random.default_rng(5)
  differ = 0
  for t in range(120):
    n, d = int(rng.integers(9, 40)), int(rng.integers(1, 6))
    m = int(rng.integers(1, n + 1))
    w = (rng.integers(-2, 3, size=(n, d)) if t % 3 == 0 else rng.standard_normal((n, d)))
    w = w.astype(np.float32)
    off = rnf.rnf_select(w, m, "official")
    np.testing.assert_array_equal(off, rnf.rnf_select_loop(w, m, "official"))
    asc = rnf.rnf_select(w, m, "ascending")
    np.testing.assert_array_equal(asc, rnf.rnf_select_loop(w, m, "ascending"))
    assert len(set(off.tolist())) == m and np.all(np.diff(off) > 0)
    # both fills keep I(k-1) and differ only inside I(k) - I(k-1): same worst-rank multiset
    r = rnf.worst_ranks(rnf.sq_distances(w))
    assert sorted(r[off].tolist()) == sorted(r[asc].tolist())
    differ += int(not np.array_equal(off, asc))
  assert differ >= 10


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
    for fill in rnf.FILLS:
      np.testing.assert_array_equal(rnf.rnf_select(w, m, fill), rnf.rnf_select_loop(w, m, fill))


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


def test_prune_options_rnf_fill_reaches_the_selector():
  from jaxvision.methods.clr_rnf.pruning import PruneOptions, make_selector
  w = np.arange(10, dtype=np.float32)[:, None]
  assert PruneOptions().rnf_fill == "official"
  np.testing.assert_array_equal(make_selector(PruneOptions())(w, 7, "convs/0"), np.arange(2, 9))
  asc = make_selector(PruneOptions(rnf_fill="ascending").validate())
  np.testing.assert_array_equal(asc(w, 7, "convs/0"), np.arange(1, 8))
  with pytest.raises(ValueError, match="rnf_fill"):
    PruneOptions(rnf_fill="sorted").validate()
