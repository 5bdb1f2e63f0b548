"""Procedural fake faces for the DCL demo: self-blended / swapped / mouth-replaced faces made from
scikit-image's `lfw_subset` (100 grey 25x25 LFW faces; offline), with the blend mask as the
forgery mask.

    faces = lfw_faces(size=64)                               # [100, 64, 64] float in [0, 1]
    ds = make_split(faces, ids=range(70), variants=("sbi", "swap"), copies=2, seed=0)
    ds["image"] [N, 64, 64, 3] uint8, ds["mask"] [N, 64, 64] float32, ds["label"] [N] (1 fake),
    ds["video_id"] [N] (one "video" per (face, variant) group), ds["variant"] [N] (-1 real)

Blending variants (`VARIANTS`; hold one out of training for a cross-manipulation test):
  sbi   - self-blended: the face blended with a transformed copy of itself (rescale 0.94-1.06,
          shift, brightness/contrast, blur or sharpen) through a soft elliptical face mask;
  swap  - another face of the same split, mean/std matched inside the mask, soft ellipse;
  mouth - the lower-face box of another face pasted with a nearly hard-edged rectangle
          (a local, NeuralTextures-like edit).
Blend masks are mask * ratio, ratio drawn from (0.5, 0.75, 1, 1, 1) as in SBI; masks are zero
for real images. All randomness comes from a numpy Generator seeded by `seed`.
"""
from __future__ import annotations

import functools

import numpy as np

VARIANTS = ("sbi", "swap", "mouth")


@functools.lru_cache(maxsize=4)
def lfw_faces(size: int = 64) -> np.ndarray:
  """The 100 faces of skimage.data.lfw_subset, bicubic-resized: float32 [100, size, size]."""
  try:
    from skimage import data, transform  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("the DCL demo data needs scikit-image: pip install scikit-image") from e
  faces = data.lfw_subset()[:100]
  out = np.stack([transform.resize(f, (size, size), order=3, anti_aliasing=False) for f in faces])
  return np.clip(out, 0, 1).astype(np.float32)


def _gauss_blur(x: np.ndarray, sigma: float) -> np.ndarray:
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  if sigma <= 0:
    return x
  return ndimage.gaussian_filter(x, sigma=(0,) * (x.ndim - 2) + (sigma, sigma))


def _grid(n: int, s: int):
  c = (np.arange(s, dtype=np.float32) + 0.5) / s
  return np.broadcast_to(c[:, None], (n, s, s)), np.broadcast_to(c[None, :], (n, s, s))


def ellipse_masks(rng: np.random.Generator, n: int, s: int, soft: float = 0.06,
                  scale: float = 1.0) -> np.ndarray:
  """Soft elliptical face-region masks [n, s, s] in [0, 1] (random centre, radii, edge)."""
  yy, xx = _grid(n, s)
  cy = 0.55 + rng.uniform(-0.05, 0.05, (n, 1, 1))
  cx = 0.5 + rng.uniform(-0.04, 0.04, (n, 1, 1))
  ry = scale * rng.uniform(0.28, 0.38, (n, 1, 1))
  rx = scale * rng.uniform(0.22, 0.30, (n, 1, 1))
  m = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.float32)
  sig = soft * s * rng.uniform(0.5, 1.5, n)
  return np.stack([_gauss_blur(mi, si) for mi, si in zip(m, sig)]).clip(0, 1)


def box_masks(rng: np.random.Generator, n: int, s: int) -> np.ndarray:
  """Mouth-region rectangles [n, s, s], nearly hard edges."""
  yy, xx = _grid(n, s)
  y0 = rng.uniform(0.62, 0.70, (n, 1, 1))
  h = rng.uniform(0.16, 0.24, (n, 1, 1))
  x0 = rng.uniform(0.28, 0.36, (n, 1, 1))
  w = rng.uniform(0.30, 0.40, (n, 1, 1))
  m = ((yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)).astype(np.float32)
  return np.stack([_gauss_blur(mi, 0.5) for mi in m]).clip(0, 1)


def _self_transform(rng: np.random.Generator, faces: np.ndarray) -> np.ndarray:
  """SBI source: rescale + shift (bilinear), brightness/contrast, blur or sharpen."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  n, s, _ = faces.shape
  out = np.empty_like(faces)
  for i in range(n):
    z = rng.uniform(0.94, 1.06)
    sh = rng.uniform(-0.03, 0.03, 2) * s
    c = (s - 1) / 2
    off = c - c / z - sh / z
    out[i] = ndimage.affine_transform(faces[i], np.eye(2) / z, offset=off, order=1, mode="nearest")
  out = out * rng.uniform(0.85, 1.15, (n, 1, 1)) + rng.uniform(-0.08, 0.08, (n, 1, 1))
  blur = _gauss_blur(out, 1.0)
  kind = rng.integers(0, 3, n)[:, None, None]  # 0 none, 1 blur, 2 sharpen
  out = np.where(kind == 1, blur, np.where(kind == 2, out + 0.8 * (out - blur), out))
  return out.clip(0, 1)


def _match_stats(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
  w = mask / np.maximum(mask.sum((1, 2), keepdims=True), 1e-6)
  ms, md = (src * w).sum((1, 2), keepdims=True), (dst * w).sum((1, 2), keepdims=True)
  ss = np.sqrt(((src - ms) ** 2 * w).sum((1, 2), keepdims=True)) + 1e-3
  sd = np.sqrt(((dst - md) ** 2 * w).sum((1, 2), keepdims=True)) + 1e-3
  return ((src - ms) / ss * sd + md).clip(0, 1)


def blend(rng: np.random.Generator, faces: np.ndarray, donors: np.ndarray,
          variant: str) -> tuple[np.ndarray, np.ndarray]:
  """Fakes of `faces` [n, s, s] (donor faces [n, s, s] for swap / mouth) -> (fakes, masks)."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown blending variant {variant!r}; choose from {VARIANTS}.")
  n, s, _ = faces.shape
  if variant == "sbi":
    mask, src = ellipse_masks(rng, n, s), _self_transform(rng, faces)
  elif variant == "swap":
    mask = ellipse_masks(rng, n, s, scale=0.85)
    src = _match_stats(donors, faces, mask)
  else:
    mask = box_masks(rng, n, s)
    src = _match_stats(donors, faces, mask)
  mask = mask * rng.choice(np.array([0.5, 0.75, 1.0, 1.0, 1.0], np.float32), (n, 1, 1))
  return (src * mask + faces * (1 - mask)).astype(np.float32), mask.astype(np.float32)


def make_split(faces: np.ndarray, ids, variants=VARIANTS, copies: int = 1,
               seed: int = 0, real_copies: int | None = None) -> dict[str, np.ndarray]:
  """Reals and fakes of the faces `ids` (donors come from the same ids).

  Each face gives `real_copies` real frames (default `copies`; the face, lightly jittered)
  and, per variant, `copies` fake frames; a "video" is one (face, variant) group or one
  face's reals, so video-level
  metrics average its frames. Returns uint8 images [N, s, s, 3] and the arrays of the module
  docstring.
  """
  ids = np.asarray(list(ids))
  if len(ids) < 2:
    raise ValueError("make_split needs at least 2 face ids (swap/mouth donors).")
  rng = np.random.default_rng(seed)
  base = faces[ids]
  n, s, _ = base.shape
  imgs, masks, labels, vids, var = [], [], [], [], []
  nv = len(VARIANTS)
  for c in range(copies if real_copies is None else real_copies):
    jit = (base * rng.uniform(0.92, 1.08, (n, 1, 1)) + rng.uniform(-0.04, 0.04, (n, 1, 1)))
    imgs.append(jit.clip(0, 1))
    masks.append(np.zeros_like(base))
    labels.append(np.zeros(n, np.int32))
    vids.append(ids * (nv + 1))
    var.append(np.full(n, -1, np.int32))
  for v in variants:
    vi = VARIANTS.index(v) if v in VARIANTS else -1
    for c in range(copies):
      shift = rng.integers(1, n, n)
      donors = base[(np.arange(n) + shift) % n]
      fake, m = blend(rng, base, donors, v)
      imgs.append(fake)
      masks.append(m)
      labels.append(np.ones(n, np.int32))
      vids.append(ids * (nv + 1) + 1 + vi)
      var.append(np.full(n, vi, np.int32))
  img = np.concatenate(imgs)
  img = np.repeat((img * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=-1)
  return {"image": img, "mask": np.concatenate(masks).astype(np.float32),
          "label": np.concatenate(labels), "video_id": np.concatenate(vids).astype(np.int32),
          "variant": np.concatenate(var)}
