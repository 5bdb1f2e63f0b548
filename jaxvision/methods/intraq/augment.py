"""Differentiable random-resized-crop + flip, vectorised over the batch (IntraQ's LOR).

Box sampling follows torchvision `RandomResizedCrop.get_params` (10 tries, then a
centre-crop fallback); the crop is resized bilinearly (align_corners=False, half-pixel
centres, no antialias) with two separable interpolation matrices per image:
out[n] = R_y[n] @ x[n] @ R_x[n]^T, so the gradient w.r.t. the pixels is the transpose.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def sample_boxes(rng: jax.Array, n: int, height: int, width: int, scale=(0.5, 1.0),
                 ratio=(3.0 / 4.0, 4.0 / 3.0), tries: int = 10) -> jax.Array:
  """Crop boxes [n, 4] int32 (top, left, h, w), torchvision's distribution."""
  area = float(height * width)
  k1, k2, k3, k4 = jax.random.split(rng, 4)
  ta = area * jax.random.uniform(k1, (n, tries), minval=scale[0], maxval=scale[1])
  logr = jax.random.uniform(k2, (n, tries), minval=math.log(ratio[0]), maxval=math.log(ratio[1]))
  ar = jnp.exp(logr)
  w = jnp.round(jnp.sqrt(ta * ar)).astype(jnp.int32)
  h = jnp.round(jnp.sqrt(ta / ar)).astype(jnp.int32)
  ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = jnp.argmax(ok, axis=1)
  any_ok = jnp.any(ok, axis=1)
  h = jnp.take_along_axis(h, first[:, None], 1)[:, 0]
  w = jnp.take_along_axis(w, first[:, None], 1)[:, 0]
  # centre-crop fallback
  in_ratio = width / height
  if in_ratio < ratio[0]:
    fw, fh = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    fh, fw = height, int(round(height * ratio[1]))
  else:
    fw, fh = width, height
  h = jnp.where(any_ok, h, fh)
  w = jnp.where(any_ok, w, fw)
  top = jnp.floor(jax.random.uniform(k3, (n,)) * (height - h + 1)).astype(jnp.int32)
  left = jnp.floor(jax.random.uniform(k4, (n,)) * (width - w + 1)).astype(jnp.int32)
  top = jnp.where(any_ok, top, (height - h) // 2)
  left = jnp.where(any_ok, left, (width - w) // 2)
  return jnp.stack([top, left, h, w], axis=1)


def _interp_matrix(start: jax.Array, size: jax.Array, out: int, full: int) -> jax.Array:
  """[n, out, full] bilinear weights mapping a crop [start, start+size) to `out` samples."""
  dst = jnp.arange(out, dtype=jnp.float32)
  sizef = size.astype(jnp.float32)[:, None]
  src = jnp.maximum((dst[None] + 0.5) * sizef / out - 0.5, 0.0)
  i0 = jnp.floor(src)
  lam = src - i0
  i0 = i0.astype(jnp.int32)
  i1 = jnp.minimum(i0 + 1, size[:, None] - 1)
  cols = jnp.arange(full)
  s = start[:, None, None]
  m = ((cols == s + i0[..., None]) * (1.0 - lam)[..., None]
       + (cols == s + i1[..., None]) * lam[..., None])
  return m.astype(jnp.float32)


def crop_resize(x: jax.Array, boxes: jax.Array, flip: jax.Array | None = None) -> jax.Array:
  """Crops boxes [n, 4] (top, left, h, w) of x [n, H, W, C], resizes to H x W, flips.

  flip: [n] bool (horizontal flip of the output) or None. Differentiable in x.
  """
  n, hh, ww, _ = x.shape
  ry = _interp_matrix(boxes[:, 0], boxes[:, 2], hh, hh)
  rx = _interp_matrix(boxes[:, 1], boxes[:, 3], ww, ww)
  if flip is not None:
    rx = jnp.where(flip[:, None, None], rx[:, ::-1, :], rx)
  out = jnp.einsum("nyh,nhwc->nywc", ry, x.astype(jnp.float32))
  out = jnp.einsum("nxw,nywc->nyxc", rx, out)
  return out.astype(x.dtype)


def random_resized_crop_flip(rng: jax.Array, x: jax.Array, min_scale: float = 0.5,
                             flip: bool = True) -> jax.Array:
  """RRC(scale in [min_scale, 1], ratio in [3/4, 4/3]) + HFlip(p=0.5), per image. x: [N,H,W,C]."""
  k1, k2 = jax.random.split(rng)
  n, h, w, _ = x.shape
  boxes = sample_boxes(k1, n, h, w, scale=(min_scale, 1.0))
  flips = jax.random.bernoulli(k2, 0.5, (n,)) if flip else None
  return crop_resize(x, boxes, flips)
