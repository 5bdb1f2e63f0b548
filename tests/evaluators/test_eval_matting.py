"""SAD / MSE / Grad / Conn on hand-computed cases (lfpnet.md §8.9)."""
import math

import numpy as np
import pytest
from scipy import ndimage

from jaxvision.evaluators import matting


def _case(seed=0, n=32):
  rng = np.random.default_rng(seed)
  g = ndimage.gaussian_filter(rng.random((n, n)), 3)
  g = (g - g.min()) / (g.max() - g.min())
  p = np.clip(g + rng.normal(0, 0.1, g.shape), 0, 1)
  t = np.full((n, n), 128, np.uint8)
  t[:4] = 0
  t[-4:] = 255
  return np.round(p * 255) / 255, np.round(g * 255) / 255, t


def test_identical_mattes_zero():
  p, g, t = _case()
  assert matting.matting_metrics(g, g, t) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_sad_mse_hand_case():
  n = 7
  g = np.zeros((10, 10))
  p = np.zeros((10, 10))
  t = np.zeros((10, 10), np.uint8)
  t.flat[:n] = 128
  p.flat[:n] = 1.0
  p.flat[50] = 1.0  # an error outside U does not count
  assert matting.sad(p, g, t) == pytest.approx(n / 1000)
  assert matting.mse(p, g, t) == pytest.approx(1.0)
  region = t == 128
  assert matting.sad(p, g, region=region) == pytest.approx(n / 1000)


def test_grad_filter():
  h = matting.gauss_gradient_filter(1.4)
  assert h.shape == (9, 9)
  assert np.sum(h ** 2) == pytest.approx(1.0)
  x = np.arange(-4, 5)
  gs = np.exp(-x ** 2 / (2 * 1.4 ** 2))
  ref = np.outer(gs, -x * gs)
  np.testing.assert_allclose(h, ref / np.linalg.norm(ref))
  # a horizontal ramp: away from the border |∇α| = |Σ h_x(i, j)·x_j/39|, constant
  a = np.tile(np.linspace(0, 1, 40), (40, 1))
  gm = matting.gradient_magnitude(a)
  inner = gm[10:-10, 10:-10]
  expect = abs(np.sum(h * (x[None, :] / 39.0)))
  np.testing.assert_allclose(inner, expect, rtol=1e-10)


def test_grad_against_direct_2d_filter():
  p, g, t = _case(1)
  h = matting.gauss_gradient_filter(1.4)

  def mag(a):
    gx = ndimage.convolve(a, h, mode="nearest")
    gy = ndimage.convolve(a, h.T, mode="nearest")
    return np.sqrt(gx ** 2 + gy ** 2)

  ref = ((mag(p) - mag(g)) ** 2)[t == 128].sum() / 1000
  assert matting.grad(p, g, t) == pytest.approx(ref, rel=1e-10)


def _conn_reference(p, g, t, step=0.1):
  """A direct transcription of the DIM MATLAB loop (pure Python BFS)."""
  h, w = p.shape
  n = int(round(1 / step))
  ts = [i / n for i in range(n + 1)]  # MATLAB 0:0.1:1 gives exactly 0.1, ..., 1.0
  l_map = -np.ones_like(p)
  for i in range(1, len(ts)):
    m = (p >= ts[i]) & (g >= ts[i])
    seen = np.zeros_like(m)
    best = []
    for sy in range(h):
      for sx in range(w):
        if m[sy, sx] and not seen[sy, sx]:
          comp, stack = [], [(sy, sx)]
          seen[sy, sx] = True
          while stack:
            y, x = stack.pop()
            comp.append((y, x))
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
              yy, xx = y + dy, x + dx
              if 0 <= yy < h and 0 <= xx < w and m[yy, xx] and not seen[yy, xx]:
                seen[yy, xx] = True
                stack.append((yy, xx))
          if len(comp) > len(best):
            best = comp
    omega = np.zeros_like(m)
    for y, x in best:
      omega[y, x] = True
    l_map[(l_map == -1) & ~omega] = ts[i - 1]
  l_map[l_map == -1] = 1
  dp, dg = p - l_map, g - l_map
  phi_p = 1 - dp * (dp >= 0.15)
  phi_g = 1 - dg * (dg >= 0.15)
  return np.abs(phi_p - phi_g)[t == 128].sum() / 1000


def test_conn_against_reference_loop():
  for seed in range(3):
    p, g, t = _case(seed, n=24)
    assert matting.conn(p, g, t) == pytest.approx(_conn_reference(p, g, t), abs=1e-12)


def test_conn_hand_case():
  # g = 1 everywhere; p = 0.5 on an isolated pixel, 1 elsewhere.
  # For the pixel: it leaves Ω at t=0.6 -> l = 0.5; d_p = 0 -> φ_p = 1;
  # d_g = 0.5 >= 0.15 -> φ_g = 0.5. Every other pixel: l = 1, φ = 1.
  g = np.ones((5, 5))
  p = np.ones((5, 5))
  p[2, 2] = 0.5
  t = np.full((5, 5), 128, np.uint8)
  assert matting.conn(p, g, t) == pytest.approx(0.5 / 1000)
  # An isolated pixel of 1 (4-connectivity: diagonal contact does not join)
  # in the prediction; g = 0.6 there. It is not in the largest component
  # from t = 0.1 on, so l = 0: φ_p = 1 − 1 = 0, φ_g = 1 − 0.6 = 0.4.
  g = np.zeros((6, 6)); g[:, :3] = 1.0; g[4, 4] = 0.6
  p = g.copy(); p[4, 4] = 1.0; p[3, 3] = 0.0
  t = np.zeros((6, 6), np.uint8); t[4, 4] = 128
  assert matting.conn(p, g, t) == pytest.approx(0.4 / 1000)


def test_conn_threshold_0_6_includes_alpha_153():
  # MATLAB: 153/255 == 0.6 passes t = 0.6 (0:0.1:1 holds 0.6 exactly). One pixel
  # with g = 153/255, p = 1 in a field of 1s: it leaves Ω first at t = 0.7, so
  # l = 0.6; d_p = 0.4 >= 0.15 -> φ_p = 0.6; d_g = 0 -> φ_g = 1; Conn = 0.4/1000.
  # (With np.arange's 0.6000000000000001 it would leave at 0.6: l = 0.5, 0.5/1000.)
  assert matting.conn_thresholds(0.1)[6] == 0.6
  assert matting.conn_thresholds(0.1).tolist() == [i / 10 for i in range(11)]
  g = np.ones((3, 3))
  g[1, 1] = 153 / 255
  p = np.ones((3, 3))
  t = np.full((3, 3), 128, np.uint8)
  assert matting.conn(p, g, t) == pytest.approx(0.4 / 1000, abs=1e-15)
  with pytest.raises(ValueError, match="divide 1"):
    matting.conn(p, g, t, step=0.3)


def test_grad_rescales_each_matte_like_mat2gray():
  # pred: a horizontal ramp from 0.25 to 0.75 (does not span 0..1); target:
  # constant 0.5 (zero gradient). mat2gray maps pred to the 0..1 ramp x_j/39, whose
  # gradient magnitude away from the border is |Σ_ij h_ij·j| / 39 (h: unit-norm
  # filter, j the column offset), so Grad = |U|·(that)²/1000. Dividing by 255
  # only (no rescale) gives half the gradient, a quarter of the value.
  w = 40
  ramp = np.tile(np.linspace(0.0, 1.0, w), (w, 1))
  pred = 0.25 + 0.5 * ramp
  target = np.full((w, w), 0.5)
  t = np.zeros((w, w), np.uint8)
  t[10:30, 10:30] = 128
  h = matting.gauss_gradient_filter(1.4)
  x = np.arange(-4, 5)
  amp = abs(np.sum(h * x[None, :])) / (w - 1)
  expect = 400 * amp ** 2 / 1000
  assert matting.grad(pred, target, t) == pytest.approx(expect, rel=1e-9)
  assert matting.grad(pred, target, t, rescale=False) == pytest.approx(expect / 4, rel=1e-9)
  # mat2gray: own min..max -> 0..1; a constant matte stays (clipped), gradient 0
  np.testing.assert_allclose(matting.mat2gray(pred), ramp, atol=1e-15)
  np.testing.assert_array_equal(matting.mat2gray(target), target)
  # the rescale uses the whole matte's range, not just the U crop
  pred2 = pred.copy()
  pred2[0, 0] = 0.0  # outside U and the filter reach: widens the range only
  scale = (0.75 - 0.25) / 0.75
  assert matting.grad(pred2, target, t) == pytest.approx(expect * scale ** 2, rel=1e-9)


def test_bad_trimaps_and_nonfinite_pred():
  g = np.zeros((4, 4))
  jpeg = np.full((4, 4), 127, np.uint8)
  jpeg[0] = 0
  with pytest.raises(ValueError, match="127.*JPEG"):
    matting.sad(g, g, jpeg)
  with pytest.raises(ValueError, match="no unknown pixels"):
    matting.matting_metrics(g, g, np.where(jpeg == 127, 255, 0).astype(np.uint8))
  with pytest.raises(ValueError, match="129"):
    matting.MattingEvaluator().update(g[None], g[None], np.full((1, 4, 4), 129))
  t = np.full((4, 4), 128, np.uint8)
  nan = g.copy()
  nan[0, 0] = np.nan
  r = matting.matting_metrics(nan, g, t)
  assert all(np.isnan(v) for v in r.values()), r


def test_bad_inputs():
  with pytest.raises(ValueError, match="255"):
    matting.sad(np.full((4, 4), 200.0), np.zeros((4, 4)), np.full((4, 4), 128))
  with pytest.raises(ValueError, match="exactly one"):
    matting.sad(np.zeros((4, 4)), np.zeros((4, 4)))


def test_evaluator_uint8_and_mask():
  p, g, t = _case(2, 16)
  ev = matting.MattingEvaluator(uint8=True)
  pu, gu = np.round(p * 255), np.round(g * 255)
  ev.update(np.stack([pu, gu]), np.stack([gu, pu * 0]), np.stack([t, t]), mask=np.array([1, 0]))
  r = ev.result()
  assert r["sad"] == pytest.approx(matting.sad(p, g, t))
  assert r["mse_x1e3"] == pytest.approx(1e3 * matting.mse(p, g, t))
  assert math.isfinite(r["conn"])
