"""NIQE (Mittal, Soundararajan, Bovik 2013), MATLAB `computequality.m` step for step (host numpy).

    model = load_pristine("niqe_pris_params.npz")     # BasicSR's file, or modelparameters.mat
    model = fit_pristine(list_of_y_images)            # or fit your own from pristine images
    q = niqe(y, model)                                # y: [H, W] luminance 0..255; lower = better

Per scale (the image, then MATLAB `imresize(., 0.5)` bicubic): MSCN coefficients
(I - mu) / (sigma + 1) with a 7x7 Gaussian (sigma 7/6, 'replicate' borders); per block of
96 / scale px (the image cropped to whole blocks): the AGGD fit of the coefficients
(alpha, mean of the two sigmas^2) and of their products with the 4 neighbours (circular shifts
[0 1], [1 0], [1 1], [-1 1] within the block; alpha, mean, sigma_l^2, sigma_r^2) = 18 features,
36 over both scales. The image's MVG (mean, covariance over blocks) is compared with the
pristine model: sqrt((mu_p - mu_d)^T pinv((C_p + C_d) / 2) (mu_p - mu_d)).

The published model (fit on 125 pristine photos) does not ship with this package: pass its file
(`load_pristine`), or fit one (`fit_pristine`, with Mittal's sharpness selection of blocks).
PI (Blau et al. 2018) = ((10 - Ma) + NIQE) / 2 also needs Ma et al.'s trained regression
forests, which are not available: PI is not implemented.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.special import gamma as _gamma

from jaxvision.core.errors import ConfigError
from jaxvision.evaluators import base

BLOCK = 96
SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
_GAM = np.arange(0.2, 10.0 + 1e-9, 0.001)
_R_GAM = _gamma(2.0 / _GAM) ** 2 / (_gamma(1.0 / _GAM) * _gamma(3.0 / _GAM))


def luminance(rgb01) -> np.ndarray:
  """RGB [..., 3] in [0, 1] -> BT.601 Y in 16..235 (0..255 scale), float64 (as BasicSR)."""
  from jaxvision.evaluators.image_quality import Y_OFFSET, Y_WEIGHTS  # pylint: disable=import-outside-toplevel
  return np.asarray(rgb01, np.float64) @ np.asarray(Y_WEIGHTS, np.float64) + Y_OFFSET


def gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
  """MATLAB fspecial('gaussian', size, sigma), normalised to sum 1."""
  r = np.arange(size) - (size - 1) / 2
  g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
  return g / g.sum()


def aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
  """Asymmetric generalised Gaussian fit by moment matching (estimateaggdparam.m):
  (alpha, sigma_left, sigma_right); alpha on MATLAB's grid 0.2:0.001:10."""
  x = np.asarray(x, np.float64).ravel()
  left, right = x[x < 0], x[x > 0]
  sl = math.sqrt(np.mean(left ** 2)) if left.size else 0.0
  sr = math.sqrt(np.mean(right ** 2)) if right.size else 0.0
  g = sl / sr if sr > 0 else np.inf
  rhat = np.mean(np.abs(x)) ** 2 / np.mean(x ** 2)
  rnorm = rhat * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
  return float(_GAM[np.argmin((_R_GAM - rnorm) ** 2)]), sl, sr


def block_features(d: np.ndarray) -> np.ndarray:
  """The 18 features of one block of MSCN coefficients (computefeature.m)."""
  a, sl, sr = aggd_fit(d)
  feat = [a, (sl ** 2 + sr ** 2) / 2]
  for s in SHIFTS:
    a, sl, sr = aggd_fit(d * np.roll(d, s, axis=(0, 1)))
    const = math.sqrt(_gamma(1 / a)) / math.sqrt(_gamma(3 / a))
    mean = (sr - sl) * (_gamma(2 / a) / _gamma(1 / a)) * const
    feat += [a, mean, sl ** 2, sr ** 2]
  return np.asarray(feat)


def mscn(y: np.ndarray, window: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(MSCN coefficients, local sigma) of [H, W] with 'replicate' borders."""
  w = gaussian_window() if window is None else window
  mu = ndimage.correlate(y, w, mode="nearest")
  sigma = np.sqrt(np.abs(ndimage.correlate(y * y, w, mode="nearest") - mu * mu))
  return (y - mu) / (sigma + 1.0), sigma


def _check(y: np.ndarray, block: int) -> np.ndarray:
  y = np.asarray(y, np.float64)
  if y.ndim != 2:
    raise ValueError(f"niqe: expected a [H, W] luminance image (0..255), got shape {y.shape}; "
                     "convert RGB with image_quality.rgb_to_y first")
  if min(y.shape) < block:
    raise ValueError(f"niqe: the image {y.shape[0]}x{y.shape[1]} is smaller than one "
                     f"{block}x{block} block")
  return y


def niqe_features(y: np.ndarray, block: int = BLOCK, *, with_sharpness: bool = False):
  """[n_blocks, 36] features of a luminance image (0..255), blocks in row-major order; with
  `with_sharpness` also each block's mean local sigma at scale 1 (Mittal's block selection)."""
  y = _check(y, block)
  from jaxvision.ops.imresize import imresize  # pylint: disable=import-outside-toplevel
  nh, nw = y.shape[0] // block, y.shape[1] // block
  im = y[:nh * block, :nw * block]
  feats, sharp = [], None
  for scale in (1, 2):
    d, sigma = mscn(im)
    b = block // scale
    feats.append(np.stack([block_features(d[i * b:(i + 1) * b, j * b:(j + 1) * b])
                           for i in range(nh) for j in range(nw)]))
    if scale == 1:
      sharp = np.asarray([sigma[i * b:(i + 1) * b, j * b:(j + 1) * b].mean()
                          for i in range(nh) for j in range(nw)])
      im = imresize(im, 0.5)
  f = np.concatenate(feats, 1)
  return (f, sharp) if with_sharpness else f


def _mvg(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  mu = np.nanmean(f, 0)
  ok = f[~np.isnan(f).any(1)]
  cov = np.cov(ok, rowvar=False) if len(ok) > 1 else np.zeros((f.shape[1], f.shape[1]))
  return mu, cov


def fit_pristine(images: Sequence[np.ndarray], block: int = BLOCK,
                 sharpness: float = 0.75) -> dict:
  """Pristine MVG model {'mu': [36], 'cov': [36, 36]} from luminance images (0..255), keeping
  the blocks whose mean local sigma exceeds `sharpness` x the image's sharpest block (Mittal's
  selection; 0 keeps all)."""
  rows = []
  for y in images:
    f, s = niqe_features(y, block, with_sharpness=True)
    rows.append(f[s > sharpness * s.max()] if sharpness > 0 and s.max() > 0 else f)
  mu, cov = _mvg(np.concatenate(rows, 0))
  return {"mu": mu, "cov": cov}


def load_pristine(path: str) -> dict:
  """The pristine model from BasicSR's niqe_pris_params.npz (mu_pris_param, cov_pris_param) or
  the authors' modelparameters.mat (mu_prisparam, cov_prisparam), or an .npz with mu / cov."""
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise ConfigError(f"NIQE pristine model {path} does not exist: pass BasicSR's "
                      "niqe_pris_params.npz or the authors' modelparameters.mat")
  if path.endswith(".mat"):
    from scipy.io import loadmat  # pylint: disable=import-outside-toplevel
    z = loadmat(path)
  else:
    z = dict(np.load(path))
  for mk, ck in (("mu_pris_param", "cov_pris_param"), ("mu_prisparam", "cov_prisparam"),
                 ("mu", "cov")):
    if mk in z and ck in z:
      mu, cov = np.asarray(z[mk], np.float64).ravel(), np.asarray(z[ck], np.float64)
      if mu.shape != (36,) or cov.shape != (36, 36):
        break
      return {"mu": mu, "cov": cov}
  raise ConfigError(f"NIQE pristine model {path}: needs a 36-vector mean and a 36x36 "
                    "covariance (keys mu_pris_param/cov_pris_param or mu_prisparam/cov_prisparam)")


def niqe(y: np.ndarray, model: dict, block: int = BLOCK) -> float:
  """NIQE of a luminance image (0..255) against the pristine `model`; lower is better."""
  mu, cov = _mvg(niqe_features(y, block))
  d = model["mu"] - mu
  return float(np.sqrt(d @ np.linalg.pinv((model["cov"] + cov) / 2) @ d))


class NiqeEvaluator:
  """Mean NIQE over images [B, H, W, 3] in [0, 1] (RGB -> Y 0..255 as BasicSR, uint8-rounded),
  each cropped to its true size `hw` [B, 2] and by `border` px per side. model = "": off (no
  input read, empty result), so configs can carry it until a pristine model is given."""

  def __init__(self, model: str = "", border: int = 0, block: int = BLOCK):
    self.model = load_pristine(model) if model else None
    self.border, self.block = int(border), int(block)
    self.acc = base.MeanAccumulator()

  def update(self, images=None, hw=None, *, mask):
    if self.model is None:
      return
    x = np.round(np.clip(np.asarray(images, np.float64), 0, 1) * 255.0) / 255.0
    vals = np.zeros(len(x))
    for i in np.nonzero(np.asarray(mask) > 0)[0]:
      h, w = (int(v) for v in (hw[i] if hw is not None else x.shape[1:3]))
      b = self.border
      y = luminance(x[i, b:h - b, b:w - b])
      vals[i] = niqe(y, self.model, self.block)
    self.acc.update({"niqe": vals}, mask)

  def result(self):
    return self.acc.result() if self.model is not None else {}



def _read_y(path: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as im:
    return luminance(np.asarray(im.convert("RGB"), np.float64) / 255.0)


def main(argv=None) -> int:
  """`python -m jaxvision.evaluators.niqe --fit DIR|embedded --out model.npz`: fits a pristine
  model (the published one needs the authors' file); `--score IMAGE --model model.npz` scores."""
  import argparse  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--fit", default="", help="folder of pristine images, or 'embedded' (the "
                  "package's embedded training photos)")
  ap.add_argument("--out", default="", help="where --fit writes the model (.npz)")
  ap.add_argument("--score", nargs="*", default=[], help="images to score with --model")
  ap.add_argument("--model", default="", help="pristine model file")
  ap.add_argument("--sharpness", type=float, default=0.75)
  a = ap.parse_args(argv)
  try:
    if a.fit:
      if not a.out:
        raise ConfigError("--fit needs --out model.npz")
      if a.fit == "embedded":
        from jaxvision.data import photos  # pylint: disable=import-outside-toplevel
        ys = [luminance(p / 255.0) for p in photos.photos("train")]
      else:
        d = os.path.expanduser(a.fit)
        if not os.path.isdir(d):
          raise ConfigError(f"--fit {d}: not a folder of images")
        ys = [_read_y(os.path.join(d, n)) for n in sorted(os.listdir(d))
              if n.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"))]
        if not ys:
          raise ConfigError(f"--fit {d}: no images")
      m = fit_pristine(ys, sharpness=a.sharpness)
      np.savez(a.out, mu=m["mu"], cov=m["cov"])
      print(f"wrote {a.out} (fit on {len(ys)} images)")
    if a.score:
      m = load_pristine(a.model)
      for p in a.score:
        print(f"{p}\tNIQE {niqe(_read_y(p), m):.4f}")
  except (ConfigError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
