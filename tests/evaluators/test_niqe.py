"""NIQE: AGGD moment fit, feature layout, a model fit on the embedded photos ranks distortions,
pristine-model files, and the loop evaluator (padding, mask)."""
import numpy as np
import pytest
from scipy import ndimage
from scipy.special import gamma

from jaxvision.core.errors import ConfigError
from jaxvision.evaluators import niqe as N
from jaxvision.evaluators import protocol


def _aggd_samples(rng, n, alpha, sl, sr):
  """AGGD draws: side with P(left) = sl / (sl + sr), |x| = beta * G^(1/alpha), G ~ Gamma(1/alpha)."""
  g = rng.gamma(1 / alpha, 1.0, n) ** (1 / alpha)
  left = rng.uniform(size=n) < sl / (sl + sr)
  beta = lambda s: s * np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))  # noqa: E731
  return np.where(left, -beta(sl) * g, beta(sr) * g)


@pytest.mark.parametrize("alpha,sl,sr", [(2.0, 1.0, 1.0), (0.8, 0.3, 0.6), (1.5, 2.0, 1.2)])
def test_aggd_fit_recovers_parameters(alpha, sl, sr):
  x = _aggd_samples(np.random.default_rng(0), 400_000, alpha, sl, sr)
  a, l, r = N.aggd_fit(x)
  assert a == pytest.approx(alpha, rel=0.03)
  assert l == pytest.approx(sl, rel=0.01) and r == pytest.approx(sr, rel=0.01)


def test_feature_layout_and_gaussian_window():
  w = N.gaussian_window()
  assert w.shape == (7, 7) and w.sum() == pytest.approx(1.0) and w[3, 3] == w.max()
  rng = np.random.default_rng(1)
  y = ndimage.gaussian_filter(rng.uniform(0, 255, (200, 300)), 1.0)
  f = N.niqe_features(y)
  assert f.shape == (2 * 3, 36)  # floor(200/96) x floor(300/96) blocks, 18 features x 2 scales
  # The first block's scale-1 features are those of its own MSCN block.
  d, _ = N.mscn(y[:192, :288])
  np.testing.assert_allclose(f[0, :18], N.block_features(d[:96, :96]))
  with pytest.raises(ValueError, match="smaller than one 96x96 block"):
    N.niqe_features(y[:90])


@pytest.fixture(scope="module")
def model():
  from jaxvision.data import photos
  ys = [N.luminance(photos.photo(n) / 255.0)
        for n in ("astronaut", "rocket", "motorcycle_left", "flower")]
  return N.fit_pristine(ys), ys


def test_a_model_fit_on_the_photos_ranks_blur_and_noise_worse(model):
  from jaxvision.data import photos
  m, _ = model
  assert m["mu"].shape == (36,) and m["cov"].shape == (36, 36)
  rng = np.random.default_rng(0)
  for name in ("chelsea", "coffee"):
    y = N.luminance(photos.photo(name) / 255.0)
    clean = N.niqe(y, m)
    assert clean < N.niqe(ndimage.gaussian_filter(y, 2.0), m)
    assert clean < N.niqe(np.clip(y + rng.normal(0, 20, y.shape), 0, 255), m)


def test_pristine_files(tmp_path):
  from scipy.io import savemat
  mu, cov = np.arange(36.0), np.eye(36)
  np.savez(tmp_path / "basicsr.npz", mu_pris_param=mu[None], cov_pris_param=cov,
           gaussian_window=N.gaussian_window())
  savemat(tmp_path / "modelparameters.mat", {"mu_prisparam": mu[None], "cov_prisparam": cov})
  for f in ("basicsr.npz", "modelparameters.mat"):
    m = N.load_pristine(str(tmp_path / f))
    np.testing.assert_array_equal(m["mu"], mu)
    np.testing.assert_array_equal(m["cov"], cov)
  np.savez(tmp_path / "bad.npz", mu=mu[:5], cov=cov)
  with pytest.raises(ConfigError, match="36-vector mean"):
    N.load_pristine(str(tmp_path / "bad.npz"))
  with pytest.raises(ConfigError, match="does not exist"):
    N.load_pristine(str(tmp_path / "none.npz"))


def test_loop_evaluator_crops_padding_and_skips_masked_rows(model, tmp_path):
  from jaxvision.evaluators.image_quality import Y_OFFSET, Y_WEIGHTS
  m, _ = model
  np.savez(tmp_path / "m.npz", mu=m["mu"], cov=m["cov"])
  rng = np.random.default_rng(2)
  img = ndimage.gaussian_filter(rng.uniform(size=(120, 150, 3)), (1.5, 1.5, 0))
  batch = np.zeros((3, 200, 200, 3))
  batch[0, :120, :150] = img
  batch[2] = np.nan  # a padded row: never read
  ev = protocol.make("niqe", model=str(tmp_path / "m.npz"))
  ev.update({"pred": batch, "hw": np.asarray([[120, 150], [200, 200], [1, 1]])},
            np.asarray([1, 0, 0]))
  y = np.round(img * 255) / 255 @ np.asarray(Y_WEIGHTS) + Y_OFFSET
  assert ev.result()["niqe"] == pytest.approx(N.niqe(y, m), rel=1e-9)


def test_cli_fits_and_scores(tmp_path, capsys):
  from PIL import Image
  rng = np.random.default_rng(3)
  (tmp_path / "pristine").mkdir()
  for i in range(2):
    img = ndimage.gaussian_filter(rng.uniform(0, 255, (200, 210, 3)), (1, 1, 0))
    Image.fromarray(img.astype(np.uint8)).save(tmp_path / "pristine" / f"{i}.png")
  out = str(tmp_path / "m.npz")
  assert N.main(["--fit", str(tmp_path / "pristine"), "--out", out]) == 0
  assert N.main(["--score", str(tmp_path / "pristine" / "0.png"), "--model", out]) == 0
  assert "NIQE " in capsys.readouterr().out
  assert N.main(["--fit", str(tmp_path / "none"), "--out", out]) == 2
  assert "not a folder of images" in capsys.readouterr().err
