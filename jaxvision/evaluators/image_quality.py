"""Super-resolution PSNR / SSIM (jnp, jit-safe), BasicSR / EDSR conventions.

Source: docs/papers decloss.md §2.2a, §4, §5; definitions as in BasicSR
`calculate_psnr` / `calculate_ssim` (test_y_channel=True, crop_border=scale):
  0. Inputs are divided by `data_range` (the value of white): None means 255
     for integer dtypes (uint8 PNG values) and 1.0 for floats. Concrete
     (non-traced) inputs are checked: values above 2·data_range (e.g. 0..255
     floats with data_range=1) raise a ValueError naming the fix.
  1. The SR output and HR target (float [0, 1], NHWC RGB) are clipped to
     [0, 1] and quantised to uint8 (round(x·255)); `quantize=False` skips it.
  2. Y channel (BT.601, ITU-R studio swing), in 0..255 units:
       Y = 65.481 R + 128.553 G + 24.966 B + 16   (R, G, B in [0, 1]),
     so white -> 235. Not rounded. `y_channel=False` uses RGB·255.
  3. `crop_border` pixels are removed on every side (the usual choice is the
     SR scale).
  4. PSNR = 10·log10(255² / MSE), the MSE over all remaining pixels and
     channels of one image; MSE = 0 gives `max_db` (a cap instead of +inf);
     a NaN/inf pixel gives NaN (never the cap).
  5. SSIM (Wang et al. 2004): 11x11 Gaussian window, σ = 1.5, 'valid'
     filtering, K1 = 0.01, K2 = 0.03, L = 255, mean of the SSIM map; for RGB
     the mean over channels. Equals skimage `structural_similarity(...,
     gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
     data_range=255)` on the same (cropped) arrays.
Per-image values `[B]`; a dataset score is the mean over images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import MeanAccumulator, check_mask, is_traced, to_numpy

Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


def quantize_uint8(x: jax.Array) -> jax.Array:
  """x: float in [0, 1] -> clip, round(x·255)/255 (the uint8 PNG values)."""
  return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0) / 255.0


def rgb_to_y(x: jax.Array) -> jax.Array:
  """x: [..., 3] RGB in [0, 1] -> Y [..., 1] in [0, 1] (BT.601, 16..235)/255."""
  if x.shape[-1] != 3:
    raise ValueError(f"rgb_to_y needs 3 RGB channels last, got shape {x.shape}")
  w = jnp.asarray(Y_WEIGHTS, jnp.float32)
  return ((x.astype(jnp.float32) @ w + Y_OFFSET) / 255.0)[..., None]


def resolve_data_range(x, data_range) -> float:
  """data_range, or the default for x's dtype (255 for integers, 1.0 for floats)."""
  if data_range is not None:
    if not float(data_range) > 0:
      raise ValueError(f"data_range must be > 0 (the value of white), got {data_range}")
    return float(data_range)
  dt = np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
  if dt == np.bool_:
    raise ValueError("images must be numeric, got a bool array")
  return 255.0 if np.issubdtype(dt, np.integer) else 1.0


def check_range(x, data_range, name: str = "images") -> None:
  """Raises if concrete images exceed 2·data_range (wrong scale); tracers pass.

  NaN pixels are not an error here (they give an honest NaN score).
  """
  if is_traced(x):
    return
  a = np.asarray(jax.device_get(x) if isinstance(x, jax.Array) else x)
  if a.size == 0:
    return
  if a.dtype.kind not in "iub":
    a = a.astype(np.float64)
  finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
  if finite.size == 0:
    return
  hi, lo = float(finite.max()), float(finite.min())
  if hi > 2 * data_range or lo < -data_range:
    guess = ("0..255 (pass data_range=255 or divide by 255)" if hi <= 2 * 255 else
             f"0..{hi:.4g} (pass data_range=<the value of white>)")
    raise ValueError(f"{name} have values in [{lo:.4g}, {hi:.4g}] but data_range="
                     f"{data_range:g}; they look like {guess}")


def _prepare(pred, target, crop_border, y_channel, quantize, data_range=None):
  if pred.shape != target.shape or pred.ndim != 4:
    raise ValueError(f"pred and target must both be [B, H, W, C]; got {pred.shape} "
                     f"and {target.shape}")
  r_p, r_t = resolve_data_range(pred, data_range), resolve_data_range(target, data_range)
  if r_p != r_t:
    raise ValueError(f"pred ({pred.dtype}) and target ({target.dtype}) have different "
                     f"default data ranges ({r_p:g} vs {r_t:g}); pass data_range explicitly "
                     "or give both the same dtype")
  check_range(pred, r_p, "pred images")
  check_range(target, r_t, "target images")
  pred = jnp.asarray(pred).astype(jnp.float32) / r_p
  target = jnp.asarray(target).astype(jnp.float32) / r_t
  if quantize:
    pred, target = quantize_uint8(pred), quantize_uint8(target)
  if y_channel:
    pred, target = rgb_to_y(pred), rgb_to_y(target)
  if crop_border:
    c = int(crop_border)
    if 2 * c >= min(pred.shape[1:3]):
      raise ValueError(f"crop_border={c} removes the whole {pred.shape[1:3]} image")
    pred = pred[:, c:-c, c:-c]
    target = target[:, c:-c, c:-c]
  return pred * 255.0, target * 255.0


def psnr(pred: jax.Array, target: jax.Array, *, crop_border: int = 0,
         y_channel: bool = True, quantize: bool = True,
         max_db: float = 100.0, data_range: float | None = None) -> jax.Array:
  """PSNR per image in dB (see module doc). pred, target: [B, H, W, C] in
  [0, data_range] (default: 1.0 for floats, 255 for integer dtypes).

  Returns float32 [B]; identical images give `max_db`, a non-finite pixel NaN.
  """
  p, t = _prepare(pred, target, crop_border, y_channel, quantize, data_range)
  mse = jnp.mean((p - t) ** 2, axis=(1, 2, 3))
  val = 10.0 * jnp.log10(255.0 ** 2 / jnp.maximum(mse, 1e-30))
  out = jnp.where(mse > 0, jnp.minimum(val, max_db), max_db)
  return jnp.where(jnp.isfinite(mse), out, jnp.nan)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  """1-D normalised Gaussian [size] (cv2.getGaussianKernel / skimage)."""
  r = np.arange(size, dtype=np.float64) - (size - 1) / 2
  g = np.exp(-(r ** 2) / (2 * sigma ** 2))
  return g / g.sum()


def _filter_valid(x: jax.Array, g: jax.Array) -> jax.Array:
  """Separable 'valid' Gaussian filter per channel. x: [B, H, W, C]."""
  c = x.shape[-1]
  k = g.shape[0]
  dn = ("NHWC", "HWIO", "NHWC")
  kh = jnp.tile(g.reshape(k, 1, 1, 1), (1, 1, 1, c))
  kw = jnp.tile(g.reshape(1, k, 1, 1), (1, 1, 1, c))
  hp = jax.lax.Precision.HIGHEST
  x = jax.lax.conv_general_dilated(x, kh, (1, 1), "VALID", dimension_numbers=dn,
                                   feature_group_count=c, precision=hp)
  return jax.lax.conv_general_dilated(x, kw, (1, 1), "VALID", dimension_numbers=dn,
                                      feature_group_count=c, precision=hp)


def ssim(pred: jax.Array, target: jax.Array, *, crop_border: int = 0,
         y_channel: bool = True, quantize: bool = True, win_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
         data_range: float | None = None) -> jax.Array:
  """SSIM per image (see module doc). pred, target: [B, H, W, C] in
  [0, data_range] (default: 1.0 for floats, 255 for integer dtypes).

  Returns float32 [B]; identical images give 1, a non-finite pixel NaN.
  """
  p, t = _prepare(pred, target, crop_border, y_channel, quantize, data_range)
  if min(p.shape[1:3]) < win_size:
    raise ValueError(f"images {p.shape[1:3]} (after crop) are smaller than the "
                     f"{win_size}x{win_size} SSIM window")
  g = jnp.asarray(gaussian_window(win_size, sigma), jnp.float32)
  c1 = (k1 * 255.0) ** 2
  c2 = (k2 * 255.0) ** 2
  mu_p = _filter_valid(p, g)
  mu_t = _filter_valid(t, g)
  # Second moments about a per-image shift: fewer float32 cancellations.
  sh = 0.5 * (jnp.mean(p, axis=(1, 2, 3), keepdims=True)
              + jnp.mean(t, axis=(1, 2, 3), keepdims=True))
  ps, ts = p - sh, t - sh
  mps, mts = mu_p - sh, mu_t - sh
  var_p = _filter_valid(ps * ps, g) - mps * mps
  var_t = _filter_valid(ts * ts, g) - mts * mts
  cov = _filter_valid(ps * ts, g) - mps * mts
  num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
  den = (mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2)
  return jnp.mean(num / den, axis=(1, 2, 3))


@EVALUATORS.register("psnr_ssim")
class PsnrSsimEvaluator:
  """Mean per-image PSNR / SSIM over padded, possibly multi-host batches.

  Args: scale (= crop_border), y_channel (False: RGB), quantize, max_db,
  data_range (None: 1.0 for floats, 255 for integer dtypes).
  `update(pred [B,H,W,C], target [B,H,W,C], mask [B] | None)`; the value
  range of the real rows is checked on the host; `result()` -> {'psnr', 'ssim'}.
  """

  def __init__(self, scale: int = 4, y_channel: bool = True, quantize: bool = True,
               max_db: float = 100.0, data_range: float | None = None):
    kw = dict(crop_border=scale, y_channel=y_channel, quantize=quantize, data_range=data_range)
    self.data_range = data_range
    self._fn = jax.jit(lambda p, t: {"psnr": psnr(p, t, max_db=max_db, **kw),
                                     "ssim": ssim(p, t, **kw)})
    self.acc = MeanAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, pred, target, mask=None):
    p, t = to_numpy(pred), to_numpy(target)
    m = check_mask(mask, p.shape[0]) if p.ndim else None
    for x, name in ((p, "pred images"), (t, "target images")):
      check_range(x[m] if m is not None else x, resolve_data_range(x, self.data_range), name)
    self.acc.update(self._fn(jnp.asarray(p), jnp.asarray(t)), mask)

  def result(self) -> dict[str, float]:
    return self.acc.result()
