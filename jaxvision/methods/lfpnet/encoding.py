"""LFPNet input encoding and trimap handling (host-side numpy; spec lfpnet.md §2.1, §4).

    x, raw = encode(image_u8, trimap_u8)      # x: [H, W, 12] float32, raw: [H, W, 3] in [0, 1]

Channels of x: 0-2 ImageNet-normalised RGB, 3-5 one-hot trimap (bg = 0, unknown = 128, fg = 255),
6-11 Gaussian distance encodings exp(-d_k^2 / (2 sigma^2)) for k = bg then fg and
sigma = 0.02, 0.08, 0.16 x 320 px, d_k = exact Euclidean distance to the nearest pixel of class k
(all zeros when class k is absent from the patch).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
SIGMAS = (0.02 * 320, 0.08 * 320, 0.16 * 320)
TRIMAP_VALUES = (0, 128, 255)


def check_trimap(trimap: np.ndarray, *, nearest: bool = False, flag: str = "nearest=True"
                 ) -> np.ndarray:
  """Returns the trimap as uint8 with values in {0, 128, 255}.

  Other values raise one ValueError that names them, unless `nearest` maps each to the nearest of
  0 / 128 / 255 (ties go to the lower value). `flag` names the option in the message.
  """
  t = np.asarray(trimap)
  if t.ndim == 3 and t.shape[-1] in (1, 3, 4):
    t = t[..., 0]
  if t.ndim != 2:
    raise ValueError(f"trimap must be [H, W] (grayscale), got shape {np.shape(trimap)}.")
  vals = np.unique(t)
  bad = [v for v in vals.tolist() if v not in TRIMAP_VALUES]
  if bad:
    if not nearest:
      shown = ", ".join(str(v) for v in bad[:12]) + (", ..." if len(bad) > 12 else "")
      n = int(np.isin(t, bad).sum())
      raise ValueError(f"trimap has values other than 0/128/255: {shown} ({n} pixels); pass "
                       f"{flag} to map each value to the nearest of 0/128/255.")
    ref = np.array(TRIMAP_VALUES, np.float64)
    t = ref[np.argmin(np.abs(t.astype(np.float64)[..., None] - ref), -1)]
  return t.astype(np.uint8)


def trimap_onehot(trimap: np.ndarray) -> np.ndarray:
  """[H, W] uint8 -> [H, W, 3] float32 (bg, unknown, fg); other values are in no channel."""
  t = np.asarray(trimap)
  return np.stack([t == 0, t == 128, t == 255], -1).astype(np.float32)


def distance_encoding(trimap: np.ndarray, sigmas: Sequence[float] = SIGMAS) -> np.ndarray:
  """[H, W] trimap -> [H, W, 2 * len(sigmas)] float32: bg then fg, each over sigmas."""
  t = np.asarray(trimap)
  out = np.zeros(t.shape + (2 * len(sigmas),), np.float32)
  for k, cls in enumerate((0, 255)):
    mask = t == cls
    if not mask.any():
      continue
    d2 = ndimage.distance_transform_edt(~mask).astype(np.float64) ** 2
    for j, s in enumerate(sigmas):
      out[..., k * len(sigmas) + j] = np.exp(-d2 / (2 * s * s))
  return out


def encode(image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """image [H, W, 3] uint8 RGB, trimap [H, W] -> (x [H, W, 12] float32, raw [H, W, 3] float32)."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"image must be [H, W, 3] RGB, got shape {image.shape}.")
  if image.shape[:2] != np.shape(trimap)[:2]:
    raise ValueError(f"image {image.shape[:2]} and trimap {np.shape(trimap)[:2]} sizes differ.")
  raw = image.astype(np.float32) / 255.0
  norm = (raw - IMAGENET_MEAN) / IMAGENET_STD
  x = np.concatenate([norm, trimap_onehot(trimap), distance_encoding(trimap)], -1)
  return x.astype(np.float32), raw


def make_trimap(alpha: np.ndarray, rng: np.random.Generator, k_range: tuple[int, int] = (1, 30),
                eps: float = 1e-3) -> np.ndarray:
  """Trimap from a ground-truth alpha by random erosion of the fg / bg regions (FBA-style).

  alpha: [H, W] float in [0, 1]. Pixels with alpha >= 1 - eps (fg) and <= eps (bg) are eroded with
  square kernels of random side in k_range (independent for fg and bg); everything else is
  unknown (128). Every pixel with eps < alpha < 1 - eps is unknown. Returns [H, W] uint8.
  """
  a = np.asarray(alpha, np.float32)
  fg, bg = a >= 1 - eps, a <= eps
  kf, kb = (int(rng.integers(k_range[0], k_range[1] + 1)) for _ in range(2))
  fg = ndimage.binary_erosion(fg, np.ones((kf, kf), bool), border_value=1) if kf > 1 else fg
  bg = ndimage.binary_erosion(bg, np.ones((kb, kb), bool), border_value=1) if kb > 1 else bg
  t = np.full(a.shape, 128, np.uint8)
  t[fg] = 255
  t[bg] = 0
  return t


def squared_edt_jax(mask, max_elems: int = 1 << 24):
  """Exact squared Euclidean distance to the nearest True pixel, in jnp (jit-able, for encoding
  inside a training step). mask: [B, H, W] bool -> [B, H, W] float32; +inf-like (1e30) where
  the image has no True pixel. Separable brute force: O(H W (H + W)) per image; when one pass
  would hold more than `max_elems` floats it runs row by row (lax.map), so memory stays
  O(B W^2 + B H W) at any size."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  b, h, w = mask.shape
  big = jnp.float32(1e30)
  xs = jnp.arange(w, dtype=jnp.float32)
  ys = jnp.arange(h, dtype=jnp.float32)
  dx2 = (xs[:, None] - xs[None, :]) ** 2  # [x, x']
  small = b * h * w * max(h, w) <= max_elems
  # g[b, y, x] = min_x' (x - x')^2 over True pixels of row y.
  if small:
    g = jnp.min(jnp.where(mask[:, :, None, :], dx2, big), axis=-1)
  else:
    g = jax.lax.map(lambda row: jnp.min(jnp.where(row[:, None, :], dx2, big), axis=-1),
                    jnp.moveaxis(mask, 1, 0))  # [h, b, w]
    g = jnp.moveaxis(g, 0, 1)
  # d[b, y, x] = min_y' (y - y')^2 + g[b, y', x].
  if small:
    return jnp.min((ys[:, None, None] - ys[None, :, None]) ** 2 + g[:, None, :, :], axis=2)
  d = jax.lax.map(lambda y: jnp.min((y - ys)[None, :, None] ** 2 + g, axis=1), ys)  # [h, b, w]
  return jnp.moveaxis(d, 0, 1)


def encode_jax(image, trimap):
  """Batched `encode` in jnp. image: [B, H, W, 3] floats in [0, 1] (raw RGB); trimap:
  [B, H, W] (or [..., 1]) with 0 / 128 / 255. Returns x [B, H, W, 12] float32."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  t = trimap[..., 0] if trimap.ndim == 4 else trimap
  onehot = jnp.stack([t == 0, t == 128, t == 255], -1).astype(jnp.float32)
  chans = []
  for k in (0, 2):
    m = onehot[..., k] > 0
    d2 = squared_edt_jax(m)
    present = jnp.any(m, axis=(1, 2))[:, None, None]
    for s in SIGMAS:
      chans.append(jnp.where(present, jnp.exp(-d2 / (2 * s * s)), 0.0))
  norm = (image.astype(jnp.float32) - IMAGENET_MEAN) / IMAGENET_STD
  return jnp.concatenate([norm, onehot, jnp.stack(chans, -1)], -1)
