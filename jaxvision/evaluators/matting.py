"""Matting errors SAD / MSE / Grad / Conn (host-side numpy/scipy).

Source: lfpnet.md §5, i.e. the DIM (Xu et al. 2017) MATLAB evaluation code
(`compute_sad_loss`, `compute_mse_loss`, `compute_gradient_loss`,
`compute_connectivity_error`) with the Rhemann et al. 2009 definitions.
α_p (prediction) and α_g (ground truth) are float mattes in [0, 1] of shape
[H, W] (pass uint8 mattes through `/ 255`; LFPNet writes truncated uint8).
U = {trimap == 128} is the unknown region (trimap uint8 0/128/255, or pass a
boolean `region` mask instead). A trimap with other values (e.g. 127/129 from
JPEG compression) or without any 128 raises a ValueError saying so; a
non-finite prediction gives NaN for every metric.

  SAD  = Σ_U |α_p − α_g| / 1000
  MSE  = Σ_U (α_p − α_g)² / |U|            (papers print MSE × 1e3)
  Grad = Σ_U (‖∇α_p‖ − ‖∇α_g‖)² / 1000, each matte first rescaled to its own
         min..max (MATLAB `mat2gray`, as `compute_gradient_loss` does; a
         constant matte has zero gradient), ∇ = first-order Gaussian-derivative
         filters, σ = 1.4, half size ⌈σ√(−2 ln(√(2π)σ·0.01))⌉ = 4 (9x9),
         h_x(i, j) = g(i)·g'(j) scaled to unit L2 norm, h_y = h_xᵀ, 'nearest'
         (replicate) padding.
  Conn = Σ_U |φ_p − φ_g| / 1000 with step 0.1: for t_i = i/10 exactly
         (the doubles nearest 0.1, ..., 1.0, as MATLAB's 0:0.1:1, so α = 153/255
         passes t_6 = 0.6), i = 1..10,
         Ω_i = largest 4-connected component of {α_p ≥ t_i} ∩ {α_g ≥ t_i};
         l(x) = t_{i−1} at the first i with x ∉ Ω_i (l = 1 if never);
         φ = 1 − d·[d ≥ 0.15], d = α − l.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import MeanAccumulator, to_numpy

UNKNOWN = 128


def _inputs(pred, target, trimap=None, region=None):
  p = to_numpy(pred).astype(np.float64)
  g = to_numpy(target).astype(np.float64)
  if p.ndim != 2 or p.shape != g.shape:
    raise ValueError(f"pred and target must be [H, W] mattes of the same shape, got "
                     f"{p.shape} and {g.shape} (squeeze the channel axis)")
  if p.min(initial=0) < 0 or p.max(initial=0) > 1 or g.min(initial=0) < 0 or g.max(initial=0) > 1:
    raise ValueError("mattes must be in [0, 1]; divide uint8 mattes by 255")
  if (trimap is None) == (region is None):
    raise ValueError("pass exactly one of trimap (0/128/255) or region (bool [H, W])")
  if region is None:
    t = to_numpy(trimap)
    if t.shape != p.shape:
      raise ValueError(f"trimap shape {t.shape} != matte shape {p.shape}")
    check_trimap(t)
    region = t == UNKNOWN
  region = to_numpy(region).astype(bool)
  if region.shape != p.shape:
    raise ValueError(f"region shape {region.shape} != matte shape {p.shape}")
  return p, g, region


def check_trimap(t) -> None:
  """Raises ValueError unless the trimap holds only 0/128/255 and some 128."""
  t = to_numpy(t)
  vals = np.unique(t)
  stray = vals[~np.isin(vals, (0, UNKNOWN, 255))]
  if stray.size:
    hint = ("a [0, 1] trimap must be scaled to 0/128/255" if float(vals.max()) <= 1 else
            "a JPEG-compressed or resized trimap gives values like 127/129: use the PNG "
            "trimap (or round it to 0/128/255 yourself)")
    raise ValueError(f"trimap must hold only 0/128/255, found also {stray[:6].tolist()}"
                     f"{' ...' if stray.size > 6 else ''}; {hint}")
  if not np.any(t == UNKNOWN):
    raise ValueError("trimap has no unknown pixels (value 128), so every matting error would "
                     "be 0; pass the right trimap, or region= for a custom mask")


def _nan_if_nonfinite(fn):
  def wrapped(p, g, u, **kw):
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
      return float("nan")
    return fn(p, g, u, **kw)
  wrapped.__name__ = fn.__name__
  return wrapped


@_nan_if_nonfinite
def _sad(p, g, u):
  return float((np.abs(p - g) * u).sum() / 1000.0)


@_nan_if_nonfinite
def _mse(p, g, u):
  n = int(np.count_nonzero(u))
  d = p - g
  return float((d * d * u).sum() / n) if n else 0.0


def sad(pred, target, trimap=None, *, region=None) -> float:
  """SAD = Σ_U |α_p − α_g| / 1000 (module doc). pred, target: [H, W] in [0, 1]."""
  return _sad(*_inputs(pred, target, trimap, region))


def mse(pred, target, trimap=None, *, region=None) -> float:
  """MSE = mean_U (α_p − α_g)² (not ×1e3; 0 for an empty U). [H, W] in [0, 1]."""
  return _mse(*_inputs(pred, target, trimap, region))


def gauss_gradient_kernels(sigma: float = 1.4, epsilon: float = 0.01):
  """(g [n], dg [n], norm): separable factors of the DIM Grad filter.

  h_x = outer(g, dg) / norm is the 9x9 (σ=1.4) x-derivative filter with unit
  L2 norm; h_y = h_xᵀ. g(x) = exp(−x²/2σ²)/(σ√2π), dg(x) = −x·g(x)/σ².
  """
  half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
  x = np.arange(-half, half + 1, dtype=np.float64)
  g = np.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
  dg = -x * g / sigma ** 2
  norm = np.sqrt(np.sum(np.outer(g, dg) ** 2))
  return g, dg, norm


def gauss_gradient_filter(sigma: float = 1.4) -> np.ndarray:
  """The full h_x filter [9, 9] (unit L2 norm); h_y is its transpose."""
  g, dg, norm = gauss_gradient_kernels(sigma)
  return np.outer(g, dg) / norm


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
  """‖∇α‖ with the DIM filters (MATLAB imfilter 'replicate', 'conv').

  Separable: gx = (smooth along y) ∘ (derivative along x), gy the
  transpose. The y passes run on a transposed copy (contiguous rows are
  ~4x faster in scipy.ndimage).
  """
  g, dg, norm = gauss_gradient_kernels(sigma)
  a = np.asarray(alpha, np.float64)
  # convolve (not correlate), as MATLAB's 'conv'; only the sign of dg differs.
  ax_g = ndimage.convolve1d(a, g, axis=1, mode="nearest")
  ax_d = ndimage.convolve1d(a, dg, axis=1, mode="nearest")
  gx = ndimage.convolve1d(np.ascontiguousarray(ax_d.T), g, axis=1, mode="nearest")
  gy = ndimage.convolve1d(np.ascontiguousarray(ax_g.T), dg, axis=1, mode="nearest")
  return (np.sqrt(gx * gx + gy * gy) / norm).T


def _bbox(u: np.ndarray, margin: int):
  rows, cols = np.flatnonzero(u.any(1)), np.flatnonzero(u.any(0))
  if rows.size == 0:
    return None
  return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
          slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))


def mat2gray(a: np.ndarray) -> np.ndarray:
  """MATLAB `mat2gray(A)`: (A − min A) / (max A − min A); a constant A is
  returned clipped to [0, 1] (as MATLAB; its gradient is 0 either way)."""
  a = np.asarray(a, np.float64)
  if a.size == 0:
    return a
  lo, hi = float(a.min()), float(a.max())
  if hi == lo:
    return np.clip(a, 0.0, 1.0)
  return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


@_nan_if_nonfinite
def _grad(p, g, u, sigma=1.4, rescale=True):
  if rescale:  # on the whole matte, before the crop below
    p, g = mat2gray(p), mat2gray(g)
  half = (gauss_gradient_kernels(sigma)[0].size - 1) // 2
  box = _bbox(u, half)  # exact: outputs on U only read inputs within `half`
  if box is None:
    return 0.0
  p, g, u = p[box], g[box], u[box]
  d = gradient_magnitude(p, sigma) - gradient_magnitude(g, sigma)
  return float((d * d * u).sum() / 1000.0)


def grad(pred, target, trimap=None, *, region=None, sigma: float = 1.4,
         rescale: bool = True) -> float:
  """Grad = Σ_U (‖∇α_p‖ − ‖∇α_g‖)² / 1000 (module doc). [H, W] in [0, 1].

  rescale=True (DIM MATLAB) applies `mat2gray` to each matte first; False
  uses the mattes as given (the α/255 variant of some Python ports).
  Only the bounding box of U plus the filter half size is filtered, which
  gives the same values on U (the crop keeps every input they read, and the
  image border still gets 'nearest' padding).
  """
  return _grad(*_inputs(pred, target, trimap, region), sigma=sigma, rescale=rescale)


_FOUR = ndimage.generate_binary_structure(2, 1)


def _largest_component(mask: np.ndarray) -> np.ndarray:
  """Largest 4-connected component of a bool mask (lowest label on ties)."""
  out = np.zeros_like(mask)
  box = _bbox(mask, 0)
  if box is None:
    return out
  sub = mask[box]
  lab = np.empty(sub.shape, np.intp)
  n = ndimage.label(sub, structure=_FOUR, output=lab)
  sizes = np.bincount(lab.ravel(), minlength=n + 1)
  sizes[0] = 0
  out[box] = lab == int(np.argmax(sizes))
  return out


def conn_thresholds(step: float = 0.1) -> np.ndarray:
  """MATLAB 0:step:1 as exact decimals: i/n for n = round(1/step) (0.6, not
  np.arange's 0.6000000000000001). step must divide 1."""
  n = int(round(1.0 / step))
  if n < 1 or abs(n * step - 1.0) > 1e-9:
    raise ValueError(f"Conn step must divide 1 (e.g. 0.1, 0.05), got {step}")
  return np.arange(n + 1, dtype=np.float64) / n


@_nan_if_nonfinite
def _conn(p, g, u, step=0.1, theta=0.15):
  thresholds = conn_thresholds(step)
  both = np.minimum(p, g)  # {p >= t} ∩ {g >= t} == {min(p, g) >= t}
  # survived[x] = number of leading thresholds t_1..t_k with x in Ω_i, so
  # l(x) = t_k (the threshold before the first miss), or 1 if never missed.
  alive = np.ones(p.shape, bool)
  survived = np.zeros(p.shape, np.int16)
  for i in range(1, len(thresholds)):
    alive &= _largest_component(both >= thresholds[i])
    survived += alive
  levels = thresholds.copy()
  levels[len(thresholds) - 1] = 1.0  # never left: l = 1
  l_map = levels[survived]
  pd = p - l_map
  gd = g - l_map
  phi_p = 1 - pd * (pd >= theta)
  phi_g = 1 - gd * (gd >= theta)
  return float((np.abs(phi_p - phi_g) * u).sum() / 1000.0)


def conn(pred, target, trimap=None, *, region=None, step: float = 0.1,
         theta: float = 0.15) -> float:
  """Conn (connectivity error) / 1000, step 0.1, θ = 0.15 (module doc)."""
  return _conn(*_inputs(pred, target, trimap, region), step=step, theta=theta)


def matting_metrics(pred, target, trimap=None, *, region=None) -> dict[str, float]:
  """All four: {'sad', 'mse', 'grad', 'conn'} (MSE not scaled); inputs are
  validated and converted once."""
  p, g, u = _inputs(pred, target, trimap, region)
  return {"sad": _sad(p, g, u), "mse": _mse(p, g, u), "grad": _grad(p, g, u),
          "conn": _conn(p, g, u)}


@EVALUATORS.register("matting")
class MattingEvaluator:
  """Mean per-image SAD / MSE / Grad / Conn (Composition-1k style averages).

  `update(pred [B,H,W] or [B,H,W,1], target, trimap, mask [B] | None)` with
  mattes in [0, 1] (`uint8=True`: uint8 mattes, divided by 255). `result()`
  -> {'sad', 'mse', 'mse_x1e3', 'grad', 'conn'}, each the mean over images.
  """

  def __init__(self, uint8: bool = False):
    self.uint8 = uint8
    self.acc = MeanAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, pred, target, trimap, mask=None):
    p, g, t = (to_numpy(a) for a in (pred, target, trimap))
    if p.ndim == 4:
      p, g, t = p[..., 0], g[..., 0], t[..., 0]
    if self.uint8:
      p, g = p / 255.0, g / 255.0
    m = np.ones(len(p), bool) if mask is None else to_numpy(mask).astype(bool)
    vals = {k: np.zeros(len(p)) for k in ("sad", "mse", "grad", "conn")}
    for i in np.flatnonzero(m):
      for k, v in matting_metrics(p[i], g[i], t[i]).items():
        vals[k][i] = v
    vals["mse_x1e3"] = vals["mse"] * 1e3
    self.acc.update(vals, m)

  def result(self) -> dict[str, float]:
    return self.acc.result()
