"""CLR: FLOPs factors, scores, global threshold, keep counts (spec §2 steps 1-2, §8 1-3)."""
import numpy as np
import pytest

from jaxvision.methods.clr_rnf import ranking

VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def test_vgg_flops_factors_match_official():
  f = ranking.vgg_flops_factors(VGG_CFG)
  official = np.array(ranking.OFFICIAL_FLOPS_CFG["vgg16"])
  # flops_mode='table' uses the constants literally as printed in the official code
  # (5 decimals), 'measured' the exact ratios; they agree to the printed precision.
  assert ranking.OFFICIAL_FLOPS_CFG["vgg16"][1:7] == (18.15625, 9.07812, 18.07812, 9.03906,
                                                      18.03906, 18.03906)
  assert f[:2].tolist() == official[:2].tolist()
  assert f[2:7].tolist() == [9.078125, 18.078125, 9.0390625, 18.0390625, 18.0390625]
  np.testing.assert_allclose(f, official, rtol=0, atol=5.0001e-6)
  assert f[1] == 581 / 32  # conv2: 32*32*64*(64*9+5) / (32*32*64*(3*9+5))


@pytest.mark.parametrize("name,n", [("resnet56", 9), ("resnet110", 18)])
def test_resnet_cifar_flops_factors_match_official(name, n):
  f = ranking.resnet_cifar_flops_factors(n)
  np.testing.assert_allclose(f, ranking.OFFICIAL_FLOPS_CFG[name], rtol=0, atol=5e-6)
  assert f[0] == 1.0 and f[1] == 296 / 327 and f[n] == 440 / 654 and f[2 * n] == 872 / 1308


def test_exact_keep_counts_hand_made():
  u0 = np.arange(1, 9, dtype=np.float32).reshape(2, 4)   # |w| = 1..8, 4 filters
  u1 = -np.arange(9, 13, dtype=np.float32).reshape(2, 2)  # |w| = 9..12, 2 filters
  # λ = 0, pr 0.5: N=12, K=6, tau = 6th largest = 7; unit0 has 6/8 below -> floor(4*2/8)=1.
  r = ranking.cross_layer_ranking([u0, u1], [4, 2], [1.0, 4.0], 1.0, 0.5, mode="magnitude")
  assert r.tau == 7.0 and r.keep == (1, 2) and r.rates == (6 / 8, 0.0)
  assert r.num_ranked == 12 and r.num_kept_weights == 6
  # λ = 1, f = (1, 4): unit1 scores 2.25..3; tau = 3 -> unit0 2/8 below -> 3; unit1 3/4
  # below -> floor(2/4) = 0, clamped to 1.
  r = ranking.cross_layer_ranking([u0, u1], [4, 2], [1.0, 4.0], 1.0, 0.5)
  assert r.tau == 3.0 and r.keep == (3, 1) and r.rates == (2 / 8, 3 / 4)


def test_ties_at_threshold_are_kept():
  w = [np.ones((3, 3), np.float32), np.ones((2, 4), np.float32)]
  r = ranking.cross_layer_ranking(w, [3, 2], [1.0, 1.0], 0.0, 0.6)
  assert r.tau == 1.0 and r.keep == (3, 2) and r.rates == (0.0, 0.0)


def test_keep_count_is_exact_integer_arithmetic():
  # 1 - 3/4 of 12 filters is exactly 3 (float 12*(1-0.75) could floor badly in general).
  assert ranking.keep_counts([12, 7, 5], [3, 0, 10], [4, 7, 10]) == (3, 7, 1)


def test_lambda0_rates_are_global_magnitude_fractions():
  rng = np.random.default_rng(0)
  ws = [rng.standard_normal(s).astype(np.float32) for s in [(3, 3, 4, 8), (3, 3, 8, 16), (16, 5)]]
  r = ranking.cross_layer_ranking(ws, [8, 16, 5], [1.0, 9.0, 0.1], 0.0, 0.7)
  allv = np.abs(np.concatenate([w.ravel() for w in ws]))
  k = int(np.floor(allv.size * 0.3))
  tau = np.sort(allv)[::-1][k - 1]
  assert r.tau == tau and np.count_nonzero(allv >= tau) == k  # no ties in random data
  for w, rate in zip(ws, r.rates):
    assert rate == np.count_nonzero(np.abs(w) < tau) / w.size


def test_keep_monotone_in_pr_target_and_in_f():
  rng = np.random.default_rng(1)
  ws = [rng.standard_normal((3, 3, 4, n)).astype(np.float32) for n in (8, 16, 32, 4)]
  ns, f = [8, 16, 32, 4], [1.0, 2.0, 0.5, 3.0]
  prev = None
  for pr in np.linspace(0.0, 0.95, 12):
    keep = ranking.cross_layer_ranking(ws, ns, f, 0.5, float(pr)).keep
    assert all(1 <= k <= n for k, n in zip(keep, ns))
    if prev is not None:
      assert all(a <= b for a, b in zip(keep, prev))
    prev = keep
  base = ranking.cross_layer_ranking(ws, ns, f, 2.0, 0.5).keep
  for i in range(4):
    f2 = list(f)
    f2[i] *= 2
    assert ranking.cross_layer_ranking(ws, ns, f2, 2.0, 0.5).keep[i] <= base[i]


def test_pr_zero_keeps_everything_and_uniform_mode():
  ws = [np.arange(12, dtype=np.float32).reshape(3, 4), np.ones((64,), np.float32)]
  assert ranking.cross_layer_ranking(ws, [4, 64], [1, 1], 1.0, 0.0).keep == (4, 64)
  r = ranking.cross_layer_ranking(ws, [4, 64], [1, 1], 1.0, 0.44, mode="uniform")
  assert r.keep == (2, 35)  # floor(4*0.56)=2, floor(64*0.56)=35
  assert r.keep_of(256, 1) == 143  # floor(256 * 14/25)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_bad_pr_target_raises(bad):
  with pytest.raises(ValueError, match="pr_target"):
    ranking.cross_layer_ranking([np.ones(4)], [2], [1.0], 1.0, bad)


def test_bad_mode_and_f_raise():
  with pytest.raises(ValueError, match="ranking mode"):
    ranking.cross_layer_ranking([np.ones(4)], [2], [1.0], 1.0, 0.5, mode="nope")
  with pytest.raises(ValueError, match="flops factors"):
    ranking.cross_layer_ranking([np.ones(4)], [2], [0.0], 1.0, 0.5)
