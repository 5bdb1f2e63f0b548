"""MATLAB-compatible bicubic `imresize` (antialiased), the LR maker of the SR literature.

MATLAB's `imresize(img, scale, 'bicubic')` (default antialiasing on), per axis:
  * cubic kernel, a = -0.5 (Keys): k(t) = 1.5|t|³ − 2.5|t|² + 1 on |t| ≤ 1,
    −0.5|t|³ + 2.5|t|² − 4|t| + 2 on 1 < |t| ≤ 2, 0 beyond;
  * downscaling (s < 1) stretches it for antialiasing: h(t) = s·k(s·t), width 4/s;
  * output pixel i (1-based) samples the input at u = i/s + ½(1 − 1/s); taps are
    j = floor(u − width/2) + 0..ceil(width)+1, weights h(u − j) normalised to sum 1;
  * out-of-range taps are mirrored symmetrically (edge pixel repeated: 0 → 1, −1 → 2);
  * output length ceil(in·s); a given output size sets s = out/in for that axis.
Both axes are resized (H first, then W, MATLAB's order for equal scales), each as one
matmul with a precomputed dense [out, in] weight matrix (cached per (in, out, s)).
uint8 input is rounded back to uint8 after each axis, as MATLAB does.

    lr = imresize(hr, 1 / 4)                  # hr: [H, W, C] or [B, H, W, C]
    up = imresize_jax(lr, output_shape=(H, W))  # jnp, jit-safe (static shapes)
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np


def cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
  """Keys cubic convolution kernel (MATLAB `cubic`, a = -0.5). t: any shape."""
  t = np.abs(np.asarray(t, np.float64))
  t2, t3 = t * t, t * t * t
  inner = (a + 2) * t3 - (a + 3) * t2 + 1
  outer = a * t3 - 5 * a * t2 + 8 * a * t - 4 * a
  return np.where(t <= 1, inner, np.where(t <= 2, outer, 0.0))


def _check_len(n: int, what: str) -> int:
  if int(n) != n or n < 1:
    raise ValueError(f"imresize: {what} must be a positive integer, got {n!r}.")
  return int(n)


@functools.lru_cache(maxsize=256)
def _weights_cached(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
  width = 4.0
  if scale < 1 and antialias:
    kernel = lambda t: scale * cubic(scale * t)  # noqa: E731
    width = 4.0 / scale
  else:
    kernel = cubic
  i = np.arange(1, out_len + 1, dtype=np.float64)
  u = i / scale + 0.5 * (1.0 - 1.0 / scale)
  left = np.floor(u - width / 2.0)
  taps = int(math.ceil(width)) + 2
  idx = left[:, None] + np.arange(taps)[None, :]        # [out, taps], 1-based
  w = kernel(u[:, None] - idx)
  w = w / np.sum(w, axis=1, keepdims=True)
  # Symmetric mirror of out-of-range taps (MATLAB: aux = [1:n, n:-1:1]).
  period = 2 * in_len
  m = np.mod(idx.astype(np.int64) - 1, period)
  src = np.where(m < in_len, m, period - 1 - m)           # 0-based source index
  mat = np.zeros((out_len, in_len), np.float64)
  np.add.at(mat, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
  mat.setflags(write=False)
  return mat


def resize_weights(in_len: int, out_len: int, scale: float | None = None, *,
                   antialias: bool = True) -> np.ndarray:
  """The [out_len, in_len] float64 matrix W with resized = W @ x along one axis.

  scale defaults to out_len / in_len (MATLAB's rule when an output size is given).
  """
  in_len = _check_len(in_len, "input length")
  out_len = _check_len(out_len, "output length")
  scale = out_len / in_len if scale is None else float(scale)
  if not scale > 0:
    raise ValueError(f"imresize: scale must be > 0, got {scale}.")
  return _weights_cached(in_len, out_len, scale, bool(antialias))


def _plan(hw: Sequence[int], scale, output_shape) -> tuple[tuple[int, int], tuple[float, float]]:
  """Output (h, w) and per-axis scales from a scalar/pair `scale` or an `output_shape`."""
  if (scale is None) == (output_shape is None):
    raise ValueError("imresize: pass exactly one of scale (e.g. 1/4) or output_shape=(h, w).")
  if output_shape is not None:
    oh, ow = (int(v) for v in output_shape)
    return (oh, ow), (oh / hw[0], ow / hw[1])
  sh, sw = (scale, scale) if np.isscalar(scale) else tuple(scale)
  sh, sw = float(sh), float(sw)
  if not (sh > 0 and sw > 0):
    raise ValueError(f"imresize: scale must be > 0, got {scale}.")
  # ceil with a tolerance so 1/3 * 96 -> 32, not 33 (float noise).
  out = tuple(int(math.ceil(n * s - 1e-9)) for n, s in zip(hw, (sh, sw)))
  return out, (sh, sw)


def imresize(x: np.ndarray, scale: float | Sequence[float] | None = None, *,
             output_shape: Sequence[int] | None = None, antialias: bool = True) -> np.ndarray:
  """MATLAB `imresize(x, scale, 'bicubic')` in numpy (see module doc).

  Args:
    x: [H, W], [H, W, C] or [B, H, W, C]; float (any range) or uint8.
    scale: a factor (1/4 for ×4 downscaling) or a (sh, sw) pair.
    output_shape: (h, w) instead of scale.
    antialias: MATLAB's default True (only affects downscaling).
  Returns:
    the resized array, same rank; float64 input stays float64, other floats come back as
    float32, uint8 comes back as uint8 (rounded and clipped after each axis, like MATLAB).
  """
  x = np.asarray(x)
  if x.ndim not in (2, 3, 4):
    raise ValueError(f"imresize: expected [H, W], [H, W, C] or [B, H, W, C], got shape "
                     f"{x.shape}.")
  h_ax = 1 if x.ndim == 4 else 0
  (oh, ow), (sh, sw) = _plan(x.shape[h_ax:h_ax + 2], scale, output_shape)
  is_u8 = x.dtype == np.uint8
  out_dtype = np.float64 if x.dtype == np.float64 else (np.uint8 if is_u8 else np.float32)
  work = np.float64 if out_dtype == np.float64 or is_u8 else np.float32
  y = x.astype(work, copy=False)
  for axis, n_out, s in ((h_ax, oh, sh), (h_ax + 1, ow, sw)):
    mat = resize_weights(y.shape[axis], n_out, s, antialias=antialias).astype(work, copy=False)
    y = np.moveaxis(np.tensordot(mat, y, axes=([1], [axis])), 0, axis)
    if is_u8:
      y = np.clip(np.round(y), 0, 255)
  return y.astype(out_dtype, copy=False)


def imresize_jax(x, scale: float | Sequence[float] | None = None, *,
                 output_shape: Sequence[int] | None = None, antialias: bool = True,
                 precision=None):
  """`imresize` in jnp for use inside jit (float only; shapes are static).

  x: [B, H, W, C] or [H, W, C] float. Weights are float32 constants; the contraction runs at
  `precision` (default HIGHEST so results match numpy to ~1e-6).
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  if x.ndim not in (3, 4):
    raise ValueError(f"imresize_jax: expected [H, W, C] or [B, H, W, C], got {x.shape}.")
  if precision is None:
    precision = jax.lax.Precision.HIGHEST
  h_ax = x.ndim - 3
  (oh, ow), (sh, sw) = _plan(x.shape[h_ax:h_ax + 2], scale, output_shape)
  dt = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
  wh = jnp.asarray(resize_weights(x.shape[h_ax], oh, sh, antialias=antialias), dt)
  ww = jnp.asarray(resize_weights(x.shape[h_ax + 1], ow, sw, antialias=antialias), dt)
  x = x.astype(dt)
  if x.ndim == 4:
    y = jnp.einsum("oh,bhwc->bowc", wh, x, precision=precision)
    return jnp.einsum("pw,bowc->bopc", ww, y, precision=precision)
  y = jnp.einsum("oh,hwc->owc", wh, x, precision=precision)
  return jnp.einsum("pw,owc->opc", ww, y, precision=precision)


def modcrop(x: np.ndarray, scale: int) -> np.ndarray:
  """Crops H, W of [..., H, W, C] (or [H, W]) down to multiples of `scale` (top-left kept)."""
  x = np.asarray(x)
  h_ax = 0 if x.ndim == 2 else x.ndim - 3
  h, w = x.shape[h_ax], x.shape[h_ax + 1]
  sl = [slice(None)] * x.ndim
  sl[h_ax], sl[h_ax + 1] = slice(0, h - h % scale), slice(0, w - w % scale)
  return x[tuple(sl)]


def bicubic_degrade(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
  """(HR modcropped to the scale, its MATLAB-bicubic ×1/scale LR). hr: [..., H, W, C]."""
  scale = int(scale)
  if scale < 1:
    raise ValueError(f"bicubic_degrade: scale must be a positive int, got {scale}.")
  hr = modcrop(hr, scale)
  return hr, imresize(hr, 1.0 / scale)


def check_lr_hr(lr_shape: Sequence[int], hr_shape: Sequence[int], scale: int) -> None:
  """Raises a one-line ValueError unless HR (h, w) == LR (h, w) · scale ([..., H, W, C])."""
  lh, lw = lr_shape[-3], lr_shape[-2]
  hh, hw = hr_shape[-3], hr_shape[-2]
  if (hh, hw) != (lh * scale, lw * scale):
    raise ValueError(f"LR {lh}x{lw} and HR {hh}x{hw} do not match scale x{scale} (HR must be "
                     f"{lh * scale}x{lw * scale}); modcrop the HR and remake the LR with "
                     "jaxvision.ops.bicubic_degrade.")
