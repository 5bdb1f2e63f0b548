"""Box utilities for LaConvNet REC (pure jnp unless noted): formats, IoU/GIoU, letterbox.

Formats: 'cxcywh' (centre x, centre y, width, height) as the head predicts, 'xyxy' corners.
Coordinates are continuous pixels (no +1 convention), as the evaluator `evaluators/rec.py`.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

EPS = 1e-9


def cxcywh_to_xyxy(b):
  """[..., 4] cxcywh -> [..., 4] xyxy (jnp or np)."""
  xp = jnp if not isinstance(b, np.ndarray) else np
  return xp.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], axis=-1)


def xyxy_to_cxcywh(b):
  """[..., 4] xyxy -> [..., 4] cxcywh (jnp or np)."""
  xp = jnp if not isinstance(b, np.ndarray) else np
  return xp.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def _corners(b, fmt):
  if fmt == "cxcywh":
    b = cxcywh_to_xyxy(b)
  elif fmt != "xyxy":
    raise ValueError(f"box format must be 'cxcywh' or 'xyxy', got {fmt!r}.")
  return b


def _iou_parts(a, b, fmt: str):
  """(corners a, corners b, IoU, union) of boxes a, b: [..., 4]."""
  a, b = _corners(jnp.asarray(a, jnp.float32), fmt), _corners(jnp.asarray(b, jnp.float32), fmt)
  tl = jnp.maximum(a[..., :2], b[..., :2])
  br = jnp.minimum(a[..., 2:], b[..., 2:])
  inter = jnp.prod(jnp.clip(br - tl, 0.0), axis=-1)
  area_a = jnp.prod(jnp.clip(a[..., 2:] - a[..., :2], 0.0), axis=-1)
  area_b = jnp.prod(jnp.clip(b[..., 2:] - b[..., :2], 0.0), axis=-1)
  union = area_a + area_b - inter
  return a, b, jnp.where(union > 0, inter / jnp.maximum(union, EPS), 0.0), union


def box_iou(a, b, fmt: str = "cxcywh"):
  """Elementwise (broadcast) IoU of boxes a, b: [..., 4] -> [...]. Empty unions give 0."""
  return _iou_parts(a, b, fmt)[2]


def box_giou(a, b, fmt: str = "cxcywh"):
  """Elementwise generalised IoU: IoU - |C \\ (A u B)| / |C| with C the enclosing box."""
  a, b, iou, union = _iou_parts(a, b, fmt)
  c = jnp.prod(jnp.maximum(a[..., 2:], b[..., 2:]) - jnp.minimum(a[..., :2], b[..., :2]), axis=-1)
  return iou - jnp.where(c > 0, (c - union) / jnp.maximum(c, EPS), 0.0)


def clip_boxes_xyxy(b: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
  """numpy: clips [N, 4] xyxy boxes to the image; returns (clipped, valid) where valid means a
  positive area remains (boxes fully outside the image are invalid, not a crash)."""
  b = np.asarray(b, np.float64).copy()
  b[:, 0::2] = np.clip(b[:, 0::2], 0, w)
  b[:, 1::2] = np.clip(b[:, 1::2], 0, h)
  valid = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
  return b, valid


@dataclasses.dataclass(frozen=True)
class Letterbox:
  """Resize the long side to `size` keeping aspect, centre-pad (official input transform).

  scale: new/old; left, top: padding offsets in the `size` x `size` canvas.
  """
  scale: float
  left: int
  top: int
  new_w: int
  new_h: int

  @classmethod
  def of(cls, h: int, w: int, size: int) -> "Letterbox":
    s = size / max(h, w)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    return cls(s, (size - nw) // 2, (size - nh) // 2, nw, nh)

  def apply_image(self, img: np.ndarray, size: int, fill: int = 127) -> np.ndarray:
    """numpy uint8 [H, W, 3] -> [size, size, 3] (PIL bilinear resize, pad value `fill`)."""
    from PIL import Image  # noqa: PLC0415
    r = np.asarray(Image.fromarray(np.asarray(img, np.uint8)).resize((self.new_w, self.new_h),
                                                                     Image.BILINEAR))
    out = np.full((size, size, r.shape[-1]), fill, np.uint8)
    out[self.top:self.top + self.new_h, self.left:self.left + self.new_w] = r
    return out

  def to_canvas(self, b_xyxy):
    """Original-pixel xyxy -> letterboxed-canvas xyxy."""
    off = np.array([self.left, self.top, self.left, self.top], np.float64)
    return np.asarray(b_xyxy, np.float64) * self.scale + off

  def to_original(self, b_xyxy):
    """Canvas xyxy -> original-pixel xyxy (the inverse of `to_canvas`)."""
    off = np.array([self.left, self.top, self.left, self.top], np.float64)
    return (np.asarray(b_xyxy, np.float64) - off) / self.scale
