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
Every blend source also gets its own processing (`_source_artifacts`: blur, unsharp masking,
noise or 2x down-up sampling, plus pixel noise of sd 0.06-0.12 and a brightness shift), so the
blended region differs in texture from the rest of the face in every variant, the held-out one
included (SBI's source-target mismatch; without it a tiny net learns nothing in a few hundred
steps from these smooth 25 px faces). Every frame, real or the base of a fake, is a fresh
`jitter` of its face (small affine, brightness/contrast), so the 70 training reals cannot be
memorised. Blend masks are mask * ratio, ratio drawn from (0.5, 0.75, 1, 1, 1) as in SBI;
masks are zero for real images. All randomness comes from a numpy Generator seeded by `seed`.
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


def _source_artifacts(rng: np.random.Generator, src: np.ndarray) -> np.ndarray:
  """The blending source's own processing (SBI's source-target mismatch): one of Gaussian blur
  (sigma 1-1.8), unsharp masking (amount 1-2), pixel noise (sd 0.03-0.06) or 2x down-up
  sampling per face, then pixel noise (sd 0.06-0.12) and a signed brightness shift of
  0.04-0.10. Applied in every variant, so the blended region always differs in texture from
  the surrounding face. src: [n, s, s] in [0, 1] -> the same shape."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  n, s, _ = src.shape
  kind = rng.integers(0, 4, n)
  sig = rng.uniform(1.0, 1.8, n)
  amt = rng.uniform(1.0, 2.0, n)
  sd = rng.uniform(0.03, 0.06, n)
  out = np.empty_like(src)
  for i in range(n):
    x = src[i]
    if kind[i] == 0:
      x = ndimage.gaussian_filter(x, sig[i])
    elif kind[i] == 1:
      x = x + amt[i] * (x - ndimage.gaussian_filter(x, 1.0))
    elif kind[i] == 2:
      x = x + sd[i] * rng.standard_normal(x.shape).astype(np.float32)
    else:
      x = ndimage.zoom(ndimage.zoom(x, 0.5, order=1), s / (s // 2), order=0)[:s, :s]
    out[i] = x
  out = out + rng.uniform(0.06, 0.12, (n, 1, 1)) * rng.standard_normal(out.shape)
  shift = rng.uniform(0.04, 0.10, (n, 1, 1)) * rng.choice(np.array([-1.0, 1.0]), (n, 1, 1))
  return (out + shift).clip(0, 1).astype(np.float32)


def jitter(rng: np.random.Generator, faces: np.ndarray) -> np.ndarray:
  """A new "frame" of each face [n, s, s] -> [n, s, s]: small affine (scale 0.92-1.08, shift
  4 %, rotation 8 deg) and brightness/contrast. Reals and the faces that fakes are made from
  both get it, so the 70 training reals cannot be memorised as fixed images."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  n, s, _ = faces.shape
  out = np.empty_like(faces)
  c = np.array([(s - 1) / 2] * 2)
  for i in range(n):
    z, th = rng.uniform(0.92, 1.08), np.deg2rad(rng.uniform(-8, 8))
    a = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) / z
    off = c - a @ c + rng.uniform(-0.04, 0.04, 2) * s
    x = ndimage.affine_transform(faces[i], a, offset=off, order=1, mode="nearest")
    out[i] = x
  out = out * rng.uniform(0.9, 1.1, (n, 1, 1)) + rng.uniform(-0.05, 0.05, (n, 1, 1))
  return out.clip(0, 1).astype(np.float32)


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
  src = _source_artifacts(rng, src)
  mask = mask * rng.choice(np.array([0.5, 0.75, 1.0, 1.0, 1.0], np.float32), (n, 1, 1))
  return (src * mask + faces * (1 - mask)).astype(np.float32), mask.astype(np.float32)


def make_split(faces: np.ndarray, ids, variants=VARIANTS, copies: int = 1,
               seed: int = 0, real_copies: int | None = None) -> dict[str, np.ndarray]:
  """Reals and fakes of the faces `ids` (donors come from the same ids).

  Each face gives `real_copies` real frames (default `copies`; each a `jitter` of the face)
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
    imgs.append(jitter(rng, base))
    masks.append(np.zeros_like(base))
    labels.append(np.zeros(n, np.int32))
    vids.append(ids * (nv + 1))
    var.append(np.full(n, -1, np.int32))
  for v in variants:
    vi = VARIANTS.index(v) if v in VARIANTS else -1
    for c in range(copies):
      shift = rng.integers(1, n, n)
      frame = jitter(rng, base)
      donors = frame[(np.arange(n) + shift) % n]
      fake, m = blend(rng, frame, donors, v)
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
