"""AutoDL NAUC/ALC/rank anchors, FID/KID math, Inception loader, compression."""
import os
import sys
import types

import numpy as np
import pytest
from flax import nnx
from sklearn.metrics import roc_auc_score

from jaxvision.evaluators import autodl, compression, gan, inception


# ---------------------------------------------------------------- AutoDL
def test_nauc_anchor():
  y = [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]]
  p = [[.9, .1, .5], [.2, .8, .5], [.4, .4, .5], [.4, .3, .5]]
  a = autodl.column_aucs(y, p)
  np.testing.assert_allclose(a[:2], [0.875, 0.75])
  assert np.isnan(a[2])
  assert autodl.nauc(y, p) == pytest.approx(0.625)
  assert autodl.nauc(y, np.exp(3 * np.asarray(p)) + 2) == pytest.approx(0.625)
  y = np.asarray(y, float)
  assert autodl.nauc(y, y) == 1.0
  assert autodl.nauc(y, -y) == -1.0
  assert autodl.nauc(y, np.zeros_like(y)) == 0.0
  assert autodl.nauc(np.ones((3, 2)), np.random.rand(3, 2)) == 0.0  # all invalid


def test_column_auc_matches_sklearn():
  rng = np.random.default_rng(0)
  y = (rng.random((200, 5)) < 0.3).astype(float)
  p = np.round(rng.random((200, 5)) + 0.3 * y, 1)  # ties
  np.testing.assert_allclose(autodl.column_aucs(y, p),
                             [roc_auc_score(y[:, k], p[:, k]) for k in range(5)], atol=1e-12)


def test_time_transform_and_alc_anchors():
  np.testing.assert_allclose(autodl.time_transform([60, 300, 600]),
                             [0.227670, 0.588519, 0.787610], atol=1e-6)
  assert autodl.alc([60, 300, 600], [.5, .8, .9]) == pytest.approx(0.530848, abs=1e-6)
  assert autodl.alc([60], [1.0]) == pytest.approx(0.772330, abs=1e-6)
  assert autodl.alc([0], [1.0]) == 1.0
  assert autodl.alc([6, 15, 30], [.2, .6, .7], t0=60, time_budget=60) == pytest.approx(
      0.485232, abs=1e-6)
  assert autodl.alc([], []) == 0.0
  # predictions after T are dropped; delaying an improving prediction lowers ALC
  assert autodl.alc([60, 1300], [.5, 1.0]) == autodl.alc([60], [.5])
  assert autodl.alc([60, 400], [.5, .9]) < autodl.alc([60, 300], [.5, .9])
  assert autodl.alc([60, 300], [.5, .95]) > autodl.alc([60, 300], [.5, .9])
  assert -1 <= autodl.alc([1, 2], [-1, -1]) <= 1


def test_average_rank():
  alcs = np.array([[.80, .64, .90, .91, .78],   # DeepWisdom-like
                   [.74, .60, .87, .89, .77],
                   [.73, .66, .88, .87, .77]])
  r = autodl.average_rank(alcs, names=["a", "b", "c"])
  # ranks per dataset: a 1,2,1,1,1 ; b 2,3,3,2,2.5 ; c 3,1,2,3,2.5
  assert r == pytest.approx({"a": 1.2, "b": 12.5 / 5, "c": 11.5 / 5})


def test_learning_curve_png(tmp_path):
  ev = autodl.AlcEvaluator()
  y = np.eye(3)[[0, 1, 2, 0]]
  ev.update(60, y * 0.5 + 0.1, y)
  ev.update(300, y, y)
  r = ev.result()
  assert r["nauc"] == 1.0 and r["num_predictions"] == 2.0
  assert r["alc"] == pytest.approx(autodl.alc([60, 300], [1.0, 1.0]))
  path = ev.plot(str(tmp_path / "curve.png"))
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- FID / KID
def test_fid_identical_and_gaussian_cases():
  rng = np.random.default_rng(0)
  f = rng.normal(size=(500, 8))
  assert gan.fid_from_features(f, f) == pytest.approx(0.0, abs=1e-9)
  # 1-D: (m1-m2)^2 + s1 + s2 - 2 sqrt(s1 s2) = (m1-m2)^2 + (sd1-sd2)^2
  assert gan.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
  # diagonal: sum over dimensions
  got = gan.frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 16.0]))
  assert got == pytest.approx((1 + 4) + (1 - 2) ** 2 + (2 - 4) ** 2)
  # non-commuting full covariances vs scipy.linalg.sqrtm (pytorch-fid's route)
  from scipy import linalg
  a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
  s1, s2 = a @ a.T, b @ b.T + np.eye(6)
  ref = np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real) + 1.0
  assert gan.frechet_distance(np.ones(6) / np.sqrt(6), s1, np.zeros(6), s2) == pytest.approx(ref)
  # a singular covariance (fewer samples than dims) stays finite
  few = rng.normal(size=(5, 20))
  assert np.isfinite(gan.fid_from_features(few, few + 1.0))
  assert gan.fid_from_features(few, few + 1.0) == pytest.approx(20.0, rel=1e-6)


def test_kid():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(60, 4))
  # hand formula for one subset of everything
  k = lambda a, b: (a @ b.T / 4 + 1) ** 3  # noqa: E731
  y = rng.normal(1.0, 1.0, size=(60, 4))
  kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
  ref = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (60 * 59) - 2 * kxy.mean()
  assert gan.polynomial_mmd2(x, y) == pytest.approx(ref)
  mean, std = gan.kid_from_features(x, y, num_subsets=5, subset_size=100)
  assert mean == pytest.approx(ref) and std == pytest.approx(0.0, abs=1e-12)
  # identical sets: the unbiased estimate is 2[(S - tr)/(m(m-1)) - S/m²] (slightly < 0)
  same, _ = gan.kid_from_features(x, x.copy(), num_subsets=3, subset_size=60)
  assert same == pytest.approx(2 * ((kxx.sum() - np.trace(kxx)) / (60 * 59) - kxx.mean()))
  assert abs(same) < 0.05 * ref
  ev = gan.FidEvaluator(real_features=x, kid=True, kid_subsets=2, kid_subset_size=60)
  ev.update(np.r_[y, np.full((4, 4), 1e6)], mask=np.r_[np.ones(60), np.zeros(4)])
  r = ev.result()
  assert r["fid"] == pytest.approx(gan.fid_from_features(x, y))
  assert r["kid"] == pytest.approx(ref)


def test_inception_missing_weights_message(monkeypatch, tmp_path):
  monkeypatch.delenv(inception.ENV_VAR, raising=False)
  with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth"):
    inception.InceptionFeatureExtractor()
  with pytest.raises(FileNotFoundError, match="JAXVISION_INCEPTION_WEIGHTS"):
    inception.load_inception_weights(str(tmp_path / "nope.pth"))


def test_inception_npz_roundtrip_and_shape_check(tmp_path):
  params = inception.random_inception_params(0)
  assert len(params) == 94 * 5  # 94 conv+BN blocks, pytorch-fid names
  assert params["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
  path = str(tmp_path / "w.npz")
  np.savez(path, **params)
  ex = inception.InceptionFeatureExtractor(path, resize=False)
  x = np.random.default_rng(0).random((2, 75, 75, 3)).astype(np.float32)
  f = np.asarray(ex(x))
  assert f.shape == (2, 2048) and np.all(np.isfinite(f)) and np.all(f >= 0)
  bad = dict(params)
  bad["Conv2d_1a_3x3.conv.weight"] = np.zeros((32, 3, 5, 5), np.float32)
  with pytest.raises(ValueError, match="Conv2d_1a_3x3"):
    inception.InceptionFeatureExtractor(params=bad, resize=False)(x)


# ---------------------------------------------------------------- compression
def test_sparsity_report_paths_and_overall():
  tree = {"conv1": {"kernel": np.array([[0, 1], [0, 0]], float), "bias": np.zeros(2)},
          "fc": {"kernel": np.ones((2, 3))}}
  r = compression.sparsity_report(tree)
  assert set(r["layers"]) == {"conv1/kernel", "fc/kernel"}  # biases excluded
  assert r["layers"]["conv1/kernel"] == {"numel": 4, "nnz": 1, "sparsity": 0.75}
  assert r["sparsity"] == pytest.approx(1 - 7 / 10)
  r2 = compression.sparsity_report(tree, include="conv1")
  assert set(r2["layers"]) == {"conv1/kernel", "conv1/bias"}
  dense = compression.sparsity_report({"w": np.ones((3, 3))})
  assert dense["sparsity"] == 0.0


def test_sparsity_of_nnx_state_and_model_size():
  m = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
  st = nnx.state(m, nnx.Param)
  r = compression.sparsity_report(st)
  assert list(r["layers"]) == ["kernel"]
  size = compression.model_size_bits(st, bits={"kernel": 4})
  assert size["layers"]["kernel"] == {"numel": 12, "bits": 4, "size_bits": 48}
  assert size["layers"]["bias"]["bits"] == 32
  assert size["total_bits"] == 48 + 3 * 32
  assert size["total_mib"] == pytest.approx(144 / 8 / 2 ** 20)
  with pytest.raises(ValueError, match="positive"):
    compression.model_size_bits(st, bits=0)


def test_flops_report_calls_counter(monkeypatch):
  calls = []

  def count(model, input_shape, convention="thop"):
    calls.append((model, input_shape, convention))
    return {"flops": 100.0 if model == "big" else 25.0, "params": 10.0 if model == "big" else 4.0,
            "layers": []}

  monkeypatch.setitem(sys.modules, "jaxvision.flops", types.SimpleNamespace(count=count))
  import jaxvision
  monkeypatch.setattr(jaxvision, "flops", sys.modules["jaxvision.flops"], raising=False)
  r = compression.flops_report("big", "small", (1, 32, 32, 3))
  assert r == {"flops_before": 100.0, "flops_after": 25.0, "flops_reduction": 0.75,
               "params_before": 10.0, "params_after": 4.0, "params_reduction": 0.6}
  assert calls[0] == ("big", (1, 32, 32, 3), "thop")
