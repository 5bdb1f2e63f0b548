"""PSNR / SSIM on Y with border crop, against hand values and skimage."""
import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

import jax.numpy as jnp
from jaxvision.evaluators import image_quality as iq


def _img(seed=0, shape=(2, 40, 48, 3)):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_y_of_white_and_black():
  np.testing.assert_allclose(iq.rgb_to_y(jnp.ones((1, 3)))[0, 0], 235 / 255, rtol=1e-6)
  np.testing.assert_allclose(iq.rgb_to_y(jnp.zeros((1, 3)))[0, 0], 16 / 255, rtol=1e-6)


def test_identical_images_perfect():
  x = _img()
  np.testing.assert_array_equal(iq.psnr(x, x, crop_border=4), [100.0, 100.0])
  np.testing.assert_allclose(iq.ssim(x, x, crop_border=4), [1.0, 1.0], atol=1e-6)


def test_psnr_constant_offset():
  # a uniform error of 1/255 on Y: MSE = 1 (in 0..255 units) -> 20 log10(255)
  y = np.full((1, 16, 16, 1), 100 / 255, np.float32)
  got = iq.psnr(y + 1 / 255, y, y_channel=False, quantize=False)
  np.testing.assert_allclose(got, 20 * np.log10(255.0), rtol=1e-5)
  # a constant offset of d grey levels on all RGB channels shifts Y by 219/255·d
  x = np.full((1, 16, 16, 3), 0.5, np.float32)
  got = iq.psnr(x + 2 / 255, x, y_channel=True, quantize=False)
  np.testing.assert_allclose(got, 10 * np.log10(255 ** 2 / (2 * 219 / 255) ** 2), rtol=1e-5)


def test_psnr_crop_and_quantize():
  x = _img(1, (1, 20, 20, 3))
  y = x.copy()
  y[:, :4] = 1 - y[:, :4]  # damage only the border
  assert float(iq.psnr(y, x, crop_border=4)[0]) == 100.0
  assert float(iq.psnr(y, x, crop_border=0)[0]) < 30
  # quantisation: an error below half a grey level vanishes
  np.testing.assert_array_equal(iq.psnr(x * 0 + 0.5 + 0.4 / 255, x * 0 + 0.5), [100.0])
  with pytest.raises(ValueError, match="crop_border"):
    iq.psnr(x, x, crop_border=10)


def test_psnr_matches_numpy_reference():
  a, b = _img(2), _img(3)
  qa, qb = np.round(a * 255) / 255, np.round(b * 255) / 255
  w = np.array([65.481, 128.553, 24.966])
  ya, yb = qa @ w + 16, qb @ w + 16
  ya, yb = ya[:, 3:-3, 3:-3], yb[:, 3:-3, 3:-3]
  ref = 10 * np.log10(255 ** 2 / ((ya - yb) ** 2).mean(axis=(1, 2)))
  np.testing.assert_allclose(iq.psnr(a, b, crop_border=3), ref, rtol=1e-5)


@pytest.mark.parametrize("y_channel", [True, False])
def test_ssim_matches_skimage(y_channel):
  hr = data.astronaut()[100:164, 200:280].astype(np.float32) / 255
  rng = np.random.default_rng(0)
  sr = np.clip(hr + rng.normal(0, 0.05, hr.shape), 0, 1).astype(np.float32)
  got = float(iq.ssim(sr[None], hr[None], crop_border=4, y_channel=y_channel)[0])
  qs, qh = np.round(sr * 255) / 255, np.round(hr * 255) / 255
  if y_channel:
    w = np.array([65.481, 128.553, 24.966])
    a, b = qs @ w + 16, qh @ w + 16
    ch = None
  else:
    a, b = qs * 255, qh * 255
    ch = -1
  a, b = a[4:-4, 4:-4], b[4:-4, 4:-4]
  ref = structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True,
                              sigma=1.5, use_sample_covariance=False, data_range=255,
                              channel_axis=ch)
  assert got == pytest.approx(ref, abs=2e-5)
  assert 0 < got < 1


def test_evaluator_mask():
  a, b = _img(4), _img(5)
  ev = iq.PsnrSsimEvaluator(scale=2)
  ev.update(np.concatenate([a, b[:1]]), np.concatenate([b, a[:1]]), mask=np.array([1, 1, 0]))
  r = ev.result()
  assert r["psnr"] == pytest.approx(float(np.mean(iq.psnr(a, b, crop_border=2))), rel=1e-6)
