"""PNG panels of images for run artifacts (matting panels, GAN grids, SR crops).

    img = panel_rows([[image, trimap, pred, target], ...])   # floats in [0, 1]
    save_png(os.path.join(workdir, "panels.png"), img)
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def as_rgb(a) -> np.ndarray:
  """[H, W], [H, W, 1] or [H, W, >= 3] -> [H, W, 3] float32 clipped to [0, 1]."""
  a = np.asarray(a, np.float32)
  if a.ndim == 2:
    a = a[..., None]
  a = np.repeat(a, 3, -1) if a.shape[-1] == 1 else a[..., :3]
  return np.clip(a, 0.0, 1.0)


def panel_rows(rows: Sequence[Sequence[np.ndarray]], pad: int = 2,
               fill: float = 1.0) -> np.ndarray:
  """Rows of tiles (each [H, W], [H, W, 1] or [H, W, 3] in [0, 1]; tiles of one row share H)
  -> one [H_total, W_total, 3] float image, every tile framed by `pad` px of `fill`; rows
  narrower than the widest are padded on the right."""
  if not rows or not all(len(r) for r in rows):
    raise ValueError("panel_rows needs at least one tile per row")
  lines = [np.concatenate([np.pad(as_rgb(t), ((pad, pad), (pad, pad), (0, 0)),
                                  constant_values=fill) for t in r], 1) for r in rows]
  w = max(l.shape[1] for l in lines)
  lines = [np.pad(l, ((0, 0), (0, w - l.shape[1]), (0, 0)), constant_values=fill) for l in lines]
  return np.concatenate(lines, 0)


def save_png(path: str, img) -> str:
  """Writes an image in [0, 1] ([H, W] or [H, W, C]) as 8-bit PNG (rounded); makes the folder."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  a = np.asarray(img, np.float32)
  Image.fromarray((np.clip(a, 0.0, 1.0) * 255.0).round().astype(np.uint8)).save(path)
  return path
