"""Per-image SR metrics on zero-padded batches (photos_sr eval pads to the largest photo).

All functions take sr, hr: [B, H, W, 3] in [0, 1] (zero-padded) and hr_hw: [B, 2] int (the
true sizes) and return float32 [B]. On unpadded images they equal the evaluator library's
definitions (`jaxvision.evaluators.image_quality`: BT.601 Y, uint8 quantisation, border crop
= scale, SSIM 11x11 Gaussian σ 1.5 'valid'); the padding and the border never count.

* psnr_y / ssim_y: as in BasicSR/EDSR.
* hf_ratio: Σ band(SR)² / Σ band(HR)², band = Y − up_s(down_s(Y)) (MATLAB bicubic): the
  energy above the LR's Nyquist band that the SR restores; < 1 means over-smoothed, 1 the
  HR's (pixels within 4·scale of the border left out).
* lpips_proxy: LPIPS's formula (unit-normalise channels, squared difference, spatial mean, sum
  over layers, uniform weights) on a fixed random-init 5-layer conv net (seeded). Not the
  calibrated LPIPS: no AlexNet/linear weights ship offline. Lower is better.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.evaluators.image_quality import gaussian_window, quantize_uint8, rgb_to_y

_HP = jax.lax.Precision.HIGHEST


def valid_mask(hr_hw: jax.Array, shape: tuple[int, int], border: int) -> jax.Array:
  """[B, H, W] float mask of pixels inside the true image minus `border` on every side."""
  i = jnp.arange(shape[0])[None, :, None]
  j = jnp.arange(shape[1])[None, None, :]
  h = hr_hw[:, 0][:, None, None]
  w = hr_hw[:, 1][:, None, None]
  return ((i >= border) & (i < h - border) & (j >= border) & (j < w - border)).astype(
      jnp.float32)


def _y255(x: jax.Array) -> jax.Array:
  return rgb_to_y(quantize_uint8(x.astype(jnp.float32)))[..., 0] * 255.0


def psnr_y(sr, hr, hr_hw, border: int, max_db: float = 100.0) -> jax.Array:
  m = valid_mask(hr_hw, sr.shape[1:3], border)
  d = (_y255(sr) - _y255(hr)) ** 2
  mse = jnp.sum(d * m, axis=(1, 2)) / jnp.maximum(jnp.sum(m, axis=(1, 2)), 1.0)
  val = 10.0 * jnp.log10(255.0 ** 2 / jnp.maximum(mse, 1e-30))
  return jnp.where(mse > 0, jnp.minimum(val, max_db), max_db)


def _filt(x: jax.Array, g: jax.Array) -> jax.Array:
  """Separable 'valid' filter of [B, H, W]."""
  k = g.shape[0]
  x = x[..., None]
  dn = ("NHWC", "HWIO", "NHWC")
  x = jax.lax.conv_general_dilated(x, g.reshape(k, 1, 1, 1), (1, 1), "VALID",
                                   dimension_numbers=dn, precision=_HP)
  x = jax.lax.conv_general_dilated(x, g.reshape(1, k, 1, 1), (1, 1), "VALID",
                                   dimension_numbers=dn, precision=_HP)
  return x[..., 0]


def ssim_y(sr, hr, hr_hw, border: int, win: int = 11, sigma: float = 1.5) -> jax.Array:
  """Mean SSIM over the windows that lie inside the cropped true image."""
  p, t = _y255(sr), _y255(hr)
  g = jnp.asarray(gaussian_window(win, sigma), jnp.float32)
  c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
  sh = 0.5 * (jnp.mean(p, axis=(1, 2), keepdims=True) + jnp.mean(t, axis=(1, 2), keepdims=True))
  ps, ts = p - sh, t - sh
  mp, mt = _filt(ps, g), _filt(ts, g)
  vp = _filt(ps * ps, g) - mp * mp
  vt = _filt(ts * ts, g) - mt * mt
  cov = _filt(ps * ts, g) - mp * mt
  mu_p, mu_t = mp + sh, mt + sh
  smap = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1) * (vp + vt + c2))
  # window with top-left (i, j) covers i..i+win-1: inside iff border <= i, i+win-1 < h-border.
  m = valid_mask(hr_hw - (win - 1), smap.shape[1:3], border)
  return jnp.sum(smap * m, axis=(1, 2)) / jnp.maximum(jnp.sum(m, axis=(1, 2)), 1.0)


def hf_band(x: jax.Array, scale: int) -> jax.Array:
  """The band the LR lost: Y − up(down(Y)) with the MATLAB bicubic, [B, H, W] (0..255 units)."""
  from jaxvision.losses.decloss import bicubic_down_up  # pylint: disable=import-outside-toplevel
  y = _y255(x)[..., None]
  return (y - bicubic_down_up(y, scale))[..., 0]


def hf_ratio(sr, hr, hr_hw, scale: int) -> jax.Array:
  """Σ band(SR)² / Σ band(HR)² with band = Y − up_s(down_s(Y)): the share of the HR's
  above-LR-Nyquist energy the SR restores (1 = as much as the HR, 0 = bicubic-smooth). Pixels
  within 4·scale of the true border are left out (the bicubic kernels' reach), so zero padding
  does not change the value."""
  m = valid_mask(hr_hw, sr.shape[1:3], 4 * int(scale))
  e_sr = jnp.sum(hf_band(sr, scale) ** 2 * m, axis=(1, 2))
  e_hr = jnp.sum(hf_band(hr, scale) ** 2 * m, axis=(1, 2))
  return e_sr / jnp.maximum(e_hr, 1e-12)


@functools.lru_cache(maxsize=4)
def proxy_net_weights(seed: int = 1234, widths=(32, 64, 128, 128, 128)) -> tuple:
  """Fixed random conv weights (He-normal, HWIO) of the LPIPS-proxy net; stride 2 after the
  first layer."""
  rng = np.random.default_rng(seed)
  ws, cin = [], 3
  for w in widths:
    ws.append((rng.standard_normal((3, 3, cin, w)) * np.sqrt(2.0 / (9 * cin))).astype(np.float32))
    cin = w
  return tuple(ws)


def lpips_proxy(sr, hr, hr_hw, border: int = 0, seed: int = 1234) -> jax.Array:
  """LPIPS-style distance on fixed random features (see module doc); [B].

  Convs use explicit 1-pixel zero padding and every activation outside the true image is zeroed,
  so a zero-padded batch gives the same values as the unpadded images.
  """
  ws = proxy_net_weights(seed)
  b = sr.shape[0]
  hw = jnp.concatenate([hr_hw, hr_hw], 0)
  x = jnp.concatenate([sr, hr], 0).astype(jnp.float32) * 2.0 - 1.0
  x = x * valid_mask(hw, x.shape[1:3], 0)[..., None]
  total = jnp.zeros((b,), jnp.float32)
  crop = border
  for li, w in enumerate(ws):
    s = 1 if li == 0 else 2
    x = jax.nn.relu(jax.lax.conv_general_dilated(
        x, jnp.asarray(w), (s, s), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=_HP))
    if s == 2:
      hw, crop = (hw + 1) // 2, (crop + 1) // 2
    x = x * valid_mask(hw, x.shape[1:3], 0)[..., None]
    m = valid_mask(hw[:b], x.shape[1:3], crop)[..., None]
    n = x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-10)
    d = jnp.sum((n[:b] - n[b:]) ** 2, axis=-1, keepdims=True)
    total = total + jnp.sum(d * m, axis=(1, 2, 3)) / jnp.maximum(jnp.sum(m, axis=(1, 2, 3)), 1.0)
  return total


def sr_metrics(sr, hr, hr_hw, scale: int, seed: int = 1234) -> dict:
  """All four per-image metrics: {'psnr', 'ssim', 'hf_ratio', 'lpips_proxy'} [B] each."""
  return {"psnr": psnr_y(sr, hr, hr_hw, scale), "ssim": ssim_y(sr, hr, hr_hw, scale),
          "hf_ratio": hf_ratio(sr, hr, hr_hw, scale),
          "lpips_proxy": lpips_proxy(sr, hr, hr_hw, scale, seed)}
