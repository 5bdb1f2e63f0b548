"""MATLAB-style bicubic imresize: hand-computed kernel weights, closed forms, a naive loop."""
import math

import jax
import numpy as np
import pytest

from jaxvision.ops import (bicubic_degrade, check_lr_hr, cubic, imresize, imresize_jax, modcrop,
                           resize_weights)


def test_cubic_kernel_values():
  # Keys a = -0.5 at hand-computed points.
  t = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, -0.5])
  want = [1.0, 0.8671875, 0.5625, 0.2265625, 0.0, -0.0703125, -0.0625, -0.0234375, 0.0, 0.0,
          0.5625]
  np.testing.assert_array_equal(cubic(t), want)


def test_x2_downscale_weights_by_hand():
  # Antialiased ×1/2: h(t) = ½·cubic(t/2), width 8. Output i samples u = 2i − ½, so the taps sit at
  # offsets ±0.5, ±1.5, ±2.5, ±3.5 with weights ½·cubic(0.25, 0.75, 1.25, 1.75) =
  # (111, 29, −9, −3)/256, which already sum to 1.
  w = resize_weights(16, 8)
  assert w.shape == (8, 16)
  interior = np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256
  np.testing.assert_array_equal(w[3, 3:11], interior)
  assert np.count_nonzero(w[3]) == 8
  # Row 0 (u = 1.5): taps at 1-based −2..5 mirror onto 3, 2, 1 (symmetric, edge repeated).
  np.testing.assert_array_equal(w[0, :5], np.array([111 + 29, 111 - 9, 29 - 3, -9, -3]) / 256)
  np.testing.assert_array_equal(w[-1], w[0][::-1])
  np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-15)


def test_x4_downscale_interior_weights():
  # ×1/4: width 16, u = 4i − 1.5, offsets ±0.5..±7.5, weights ¼·cubic(d/4), normalised.
  # Row 8 (i = 9): u = 34.5, so the 16 taps are 1-based pixels 27..42 (0-based 26..41).
  w = resize_weights(64, 16)
  d = np.arange(7.5, -8.0, -1.0)
  raw = 0.25 * cubic(d / 4)
  np.testing.assert_allclose(w[8, 26:42], raw / raw.sum(), atol=1e-15)
  assert np.count_nonzero(w[8]) == 16


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_constant_stays_constant(scale):
  x = np.full((2, 24, 36, 3), 0.37, np.float64)
  y = imresize(x, scale)
  assert y.shape == (2, math.ceil(24 * scale - 1e-9), math.ceil(36 * scale - 1e-9), 3)
  np.testing.assert_allclose(y, 0.37, atol=1e-14)
  u8 = imresize(np.full((24, 36, 3), 200, np.uint8), scale)
  assert u8.dtype == np.uint8 and np.all(u8 == 200)


def test_linear_ramp_x2_down_and_up():
  n = 32
  ramp = np.tile(np.arange(1, n + 1, dtype=np.float64)[:, None], (1, 8))  # x_j = j along H
  down = imresize(ramp, 0.5)
  assert down.shape == (16, 4)
  i = np.arange(1, 17)
  # Interior outputs (all taps in range, symmetric weights) land exactly on u = 2i − ½.
  np.testing.assert_allclose(down[2:-2, 0], 2 * i[2:-2] - 0.5, atol=1e-12)
  # Border output 1 by hand: taps 1..5 with weights (140, 102, 26, −9, −3)/256.
  assert down[0, 0] == pytest.approx((140 * 1 + 102 * 2 + 26 * 3 - 9 * 4 - 3 * 5) / 256)
  # Keys' cubic reproduces linear functions: ×2 upscaling samples u = i/2 + 1/4 exactly.
  up = imresize(ramp, 2.0)
  j = np.arange(1, 2 * n + 1)
  np.testing.assert_allclose(up[4:-4, 0], (j / 2 + 0.25)[4:-4], atol=1e-12)


def _naive_resize_axis0(x, out_len, scale):
  """Per-output-pixel loop of MATLAB's `contributions` + symmetric padding (1-based maths)."""
  n = x.shape[0]
  aa = scale < 1
  width = 4 / scale if aa else 4.0
  out = np.zeros((out_len,) + x.shape[1:])
  aux = list(range(1, n + 1)) + list(range(n, 0, -1))
  for i in range(1, out_len + 1):
    u = i / scale + 0.5 * (1 - 1 / scale)
    left = math.floor(u - width / 2)
    taps = [left + p for p in range(int(math.ceil(width)) + 2)]
    ws = []
    for j in taps:
      t = u - j
      ws.append(scale * float(cubic(scale * t)) if aa else float(cubic(t)))
    tot = sum(ws)
    acc = 0.0
    for j, w in zip(taps, ws):
      src = aux[(j - 1) % (2 * n)] - 1
      acc = acc + (w / tot) * x[src]
    out[i - 1] = acc
  return out


@pytest.mark.parametrize("scale,hw", [(1 / 2, (10, 14)), (1 / 3, (9, 12)), (1 / 4, (12, 8)),
                                      (3, (5, 4)), (2, (3, 7))])
def test_matches_naive_loop_and_batches(scale, hw):
  rng = np.random.default_rng(0)
  x = rng.random((2,) + hw + (3,))
  oh, ow = (math.ceil(v * scale - 1e-9) for v in hw)
  want = [np.swapaxes(_naive_resize_axis0(np.swapaxes(_naive_resize_axis0(im, oh, scale), 0, 1),
                                          ow, scale), 0, 1) for im in x]
  got = imresize(x, scale)
  np.testing.assert_allclose(got, np.stack(want), atol=1e-12)
  np.testing.assert_allclose(imresize(x[1], scale), want[1], atol=1e-12)   # one image [H, W, C]
  np.testing.assert_allclose(imresize(x[1, ..., 0], scale), want[1][..., 0], atol=1e-12)
  gj = jax.jit(lambda v: imresize_jax(v, scale))(x.astype(np.float32))
  np.testing.assert_allclose(np.asarray(gj), got, atol=2e-6)


def test_uint8_rounds_and_float32_dtype():
  rng = np.random.default_rng(1)
  u8 = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
  y = imresize(u8, 0.25)
  assert y.dtype == np.uint8 and y.shape == (4, 4, 3)
  # MATLAB rounds back to uint8 after each axis.
  h = np.clip(np.round(np.tensordot(resize_weights(16, 4), u8.astype(np.float64), (1, 0))), 0,
              255)
  w = np.clip(np.round(np.einsum("pw,hwc->hpc", resize_weights(16, 4), h)), 0, 255)
  np.testing.assert_array_equal(y, w.astype(np.uint8))
  assert imresize(u8.astype(np.float32) / 255, 0.5).dtype == np.float32


def test_output_shape_modcrop_degrade_and_errors():
  x = np.random.default_rng(2).random((1, 50, 38, 3)).astype(np.float32)
  assert imresize(x, output_shape=(20, 10)).shape == (1, 20, 10, 3)
  assert modcrop(x, 4).shape == (1, 48, 36, 3)
  hr, lr = bicubic_degrade(x, 4)
  assert hr.shape == (1, 48, 36, 3) and lr.shape == (1, 12, 9, 3)
  check_lr_hr(lr.shape, hr.shape, 4)
  with pytest.raises(ValueError, match="do not match scale x4"):
    check_lr_hr(lr.shape, x.shape, 4)
  with pytest.raises(ValueError, match="exactly one of"):
    imresize(x, 0.5, output_shape=(2, 2))
  with pytest.raises(ValueError, match="scale must be > 0"):
    imresize(x, -1.0)
  with pytest.raises(ValueError, match="expected"):
    imresize(np.zeros((2, 2, 2, 2, 2)), 0.5)
