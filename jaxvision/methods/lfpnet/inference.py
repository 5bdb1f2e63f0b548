"""Full-resolution LFPNet inference: tiles, tent blending, dihedral TTA (spec lfpnet.md §2.7).

    alpha_u8 = predict_alpha(apply_fn, image_u8, trimap_u8, tile=1024, tta="8")

`apply_fn(x [N,S,S,12], x_ctx [N,2S,2S,12], raw [N,S,S,3]) -> [N,S,S,C]` returns alpha in channel 0
(e.g. a jitted `LFPNet.__call__`; see `model_apply_fn`). Tiles of side S = `tile` step by S/2 over
the image padded as the official eval.py (image: replicate, trimap: 0; centred); the context of a
tile is the 2S window with the same centre. Each tile's transforms run in one batch with the other
tiles of its chunk; predictions are composed with the trimap (alpha * [unknown] + [fg]), mapped back
by the exact inverse transform, averaged over the transforms, then blended with the tent weight
(min(x, y, S-1-x, S-1-y) + 1) / (S/2 + 1). Tiles whose inner patch has no unknown pixel are not run:
their composed alpha is the trimap's fg mask whatever the model says, so skipping is exact.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.methods.lfpnet.encoding import check_trimap, encode, encode_jax, trimap_onehot

# (vertical flip, number of counter-clockwise quarter turns) in eval(TTA).py order:
# {vflip, none} x {rot90 cw, rot180, rot90 ccw, none}; the transform flips first, then rotates.
TRANSFORMS = tuple((f, k) for f in (True, False) for k in (3, 2, 1, 0))
TTA_MODES = {"none": ((False, 0),), "official": ((True, 3),), "8": TRANSFORMS}


def apply_transform(x, t: tuple[bool, int], axes: tuple[int, int] = (1, 2)):
  """Dihedral transform t = (vflip, k ccw quarter turns) of x over `axes` (rows, cols)."""
  flip, k = t
  if flip:
    x = jnp.flip(x, axes[0]) if isinstance(x, jax.Array) else np.flip(x, axes[0])
  return (jnp.rot90 if isinstance(x, jax.Array) else np.rot90)(x, k, axes=axes)


def invert_transform(x, t: tuple[bool, int], axes: tuple[int, int] = (1, 2)):
  """Exact inverse of `apply_transform(., t, axes)`."""
  flip, k = t
  x = (jnp.rot90 if isinstance(x, jax.Array) else np.rot90)(x, -k, axes=axes)
  if flip:
    x = jnp.flip(x, axes[0]) if isinstance(x, jax.Array) else np.flip(x, axes[0])
  return x


def tent_weight(tile: int) -> np.ndarray:
  """[tile, tile] blending weight (min(x, y, S-1-x, S-1-y) + 1) / (S/2 + 1)."""
  r = np.arange(tile)
  d = np.minimum(r, tile - 1 - r)
  return ((np.minimum(d[:, None], d[None, :]) + 1) / (tile // 2 + 1)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class TileGrid:
  """Tiling of an [h, w] image: n_h x n_w tiles of side `tile`, stride tile/2, padded image of
  [ph, pw] = n * tile/2 + tile/2, original at offset (top, left)."""
  h: int
  w: int
  tile: int
  n_h: int
  n_w: int
  top: int
  left: int

  @property
  def ph(self) -> int:
    return self.n_h * (self.tile // 2) + self.tile // 2

  @property
  def pw(self) -> int:
    return self.n_w * (self.tile // 2) + self.tile // 2

  def origins(self) -> list[tuple[int, int]]:
    """Top-left corners of the inner tiles in padded coordinates (row-major)."""
    s = self.tile // 2
    return [(s * i, s * j) for i in range(self.n_h) for j in range(self.n_w)]


def tile_grid(h: int, w: int, tile: int) -> TileGrid:
  if tile % 32:
    raise ValueError(f"tile must be a multiple of 32, got {tile}.")
  s = tile // 2
  n_h, n_w = max(1, (h - 1 - s) // s + 1), max(1, (w - 1 - s) // s + 1)
  ph, pw = n_h * s + s, n_w * s + s
  return TileGrid(h, w, tile, n_h, n_w, (ph - h) // 2, (pw - w) // 2)


def pad_for_tiles(image: np.ndarray, trimap: np.ndarray, grid: TileGrid):
  """Context source: image replicate-padded, trimap 0-padded, to [ph + S, pw + S] (the padded
  image plus S/2 on every side). Padded coordinate p is context-source coordinate p + S/2."""
  s = grid.tile // 2
  pads = ((grid.top + s, grid.ph - grid.h - grid.top + s),
          (grid.left + s, grid.pw - grid.w - grid.left + s))
  img = np.pad(image, pads + ((0, 0),), mode="edge")
  tri = np.pad(trimap, pads, mode="constant", constant_values=0)
  return img, tri


def model_apply_fn(model) -> Callable:
  """Jitted `(x, x_ctx, raw) -> out` for an nnx LFPNet (graph split once)."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  graphdef, state = nnx.split(model)

  @jax.jit
  def f(state, x, x_ctx, raw):
    return nnx.merge(graphdef, state)(x, x_ctx, raw)

  return lambda x, x_ctx, raw: f(state, x, x_ctx, raw)


def _tta_alpha(apply_fn, x, xc, raw, onehot, transforms):
  """Runs every transform of every tile in one call. x: [n,S,S,12] ... -> alpha [n,S,S]."""
  n = x.shape[0]
  tx = jnp.concatenate([apply_transform(x, t) for t in transforms], 0)
  txc = jnp.concatenate([apply_transform(xc, t) for t in transforms], 0)
  traw = jnp.concatenate([apply_transform(raw, t) for t in transforms], 0)
  toh = jnp.concatenate([apply_transform(onehot, t) for t in transforms], 0)
  out = jnp.asarray(apply_fn(tx, txc, traw))[..., :1].astype(jnp.float32)
  a = out * toh[..., 1:2] + toh[..., 2:3]
  back = [invert_transform(a[i * n:(i + 1) * n], t) for i, t in enumerate(transforms)]
  return jnp.mean(jnp.stack(back, 0), 0)[..., 0]


_tta_batch = functools.partial(jax.jit, static_argnums=(0, 5))(_tta_alpha)


def tiled_alpha(apply_fn: Callable, image, trimap, *, tile: int,
                tta: str | Sequence[tuple[bool, int]] = "none"):
  """`predict_alpha_float` for a batch, in jnp (jit-able, for in-loop evaluation).

  image: [B, H, W, 3] floats in [0, 1]; trimap: [B, H, W] uint8 (0 / 128 / 255). Same tiles,
  padding, transforms and tent blending as `predict_alpha_float`: the tiles run one after the
  other under `lax.scan` (every image of the batch at once), their w * alpha is added into an
  accumulator with dynamic slices, and the static sum of weights divides it. Every tile runs
  (a tile without unknown pixels composes to its fg mask either way, so this equals skipping it).
  Returns alpha [B, H, W] float32 with the known pixels forced.
  """
  transforms = TTA_MODES[tta] if isinstance(tta, str) else tuple(tta)
  b, h, w = trimap.shape
  grid = tile_grid(h, w, tile)
  s = tile // 2
  pads = ((0, 0), (grid.top + s, grid.ph - h - grid.top + s),
          (grid.left + s, grid.pw - w - grid.left + s))
  img_c = jnp.pad(image.astype(jnp.float32), pads + ((0, 0),), mode="edge")
  tri_c = jnp.pad(trimap.astype(jnp.uint8), pads, mode="constant")
  wt_np = tent_weight(tile)
  wt = jnp.asarray(wt_np)
  wsum = np.zeros((grid.ph, grid.pw), np.float32)
  for (r, c) in grid.origins():
    wsum[r:r + tile, c:c + tile] += wt_np

  def one(acc, origin):
    r, c = origin[0], origin[1]
    ic = jax.lax.dynamic_slice(img_c, (0, r, c, 0), (b, 2 * tile, 2 * tile, 3))
    tc = jax.lax.dynamic_slice(tri_c, (0, r, c), (b, 2 * tile, 2 * tile))
    raw, ti = ic[:, s:s + tile, s:s + tile], tc[:, s:s + tile, s:s + tile]
    x = encode_jax(raw, ti)
    a = _tta_alpha(apply_fn, x, encode_jax(ic, tc), raw, x[..., 3:6], transforms)
    cur = jax.lax.dynamic_slice(acc, (0, r, c), (b, tile, tile))
    return jax.lax.dynamic_update_slice(acc, cur + wt * a, (0, r, c)), None

  acc, _ = jax.lax.scan(one, jnp.zeros((b, grid.ph, grid.pw), jnp.float32),
                        jnp.asarray(grid.origins(), jnp.int32))
  alpha = (acc / wsum)[:, grid.top:grid.top + h, grid.left:grid.left + w]
  return jnp.where(trimap == 0, 0.0, jnp.where(trimap == 255, 1.0, alpha))


def predict_alpha_float(apply_fn: Callable, image: np.ndarray, trimap: np.ndarray, *,
                        tile: int = 1024, tta: str | Sequence[tuple[bool, int]] = "8",
                        batch_size: int = 4, skip_known: bool = True) -> np.ndarray:
  """Blended alpha in [0, 1] before quantisation, known pixels forced. Returns [H, W] float32.

  image: [H, W, 3] uint8 RGB; trimap: [H, W] uint8 with values 0 / 128 / 255 only.
  batch_size: tiles per model call (each call runs batch_size x len(transforms) patches; the last
  chunk is padded by repeating a tile, so one compiled shape serves the whole image).
  """
  trimap = check_trimap(trimap)
  if image.shape[:2] != trimap.shape:
    raise ValueError(f"image {image.shape[:2]} and trimap {trimap.shape} sizes differ.")
  transforms = TTA_MODES[tta] if isinstance(tta, str) else tuple(tta)
  grid = tile_grid(*trimap.shape, tile)
  img_c, tri_c = pad_for_tiles(image, trimap, grid)
  s = tile // 2
  acc = np.zeros((grid.ph, grid.pw), np.float64)
  wsum = np.zeros((grid.ph, grid.pw), np.float64)
  wt = tent_weight(tile)
  todo = []
  for (r, c) in grid.origins():
    inner_tri = tri_c[r + s:r + s + tile, c + s:c + s + tile]
    if skip_known and not (inner_tri == 128).any():
      acc[r:r + tile, c:c + tile] += wt * (inner_tri == 255)
      wsum[r:r + tile, c:c + tile] += wt
    else:
      todo.append((r, c))
  for k in range(0, len(todo), batch_size):
    chunk = todo[k:k + batch_size]
    xs, xcs, raws, ohs = [], [], [], []
    for (r, c) in chunk + [chunk[-1]] * (batch_size - len(chunk)):
      x, raw = encode(img_c[r + s:r + s + tile, c + s:c + s + tile],
                      tri_c[r + s:r + s + tile, c + s:c + s + tile])
      xc, _ = encode(img_c[r:r + 2 * tile, c:c + 2 * tile], tri_c[r:r + 2 * tile, c:c + 2 * tile])
      xs.append(x), xcs.append(xc), raws.append(raw), ohs.append(x[..., 3:6])
    a = np.asarray(_tta_batch(apply_fn, jnp.asarray(np.stack(xs)), jnp.asarray(np.stack(xcs)),
                              jnp.asarray(np.stack(raws)), jnp.asarray(np.stack(ohs)),
                              tuple(transforms)))
    for i, (r, c) in enumerate(chunk):
      acc[r:r + tile, c:c + tile] += wt * a[i]
      wsum[r:r + tile, c:c + tile] += wt
  alpha = (acc / wsum)[grid.top:grid.top + grid.h, grid.left:grid.left + grid.w]
  alpha[trimap == 0] = 0.0
  alpha[trimap == 255] = 1.0
  return alpha.astype(np.float32)


def to_uint8(alpha: np.ndarray) -> np.ndarray:
  """alpha in [0, 1] -> uint8 by clip(alpha * 255, 0, 255) and truncation (as eval.py)."""
  return np.clip(np.asarray(alpha, np.float64) * 255.0, 0, 255).astype(np.uint8)


def predict_alpha(apply_fn: Callable, image: np.ndarray, trimap: np.ndarray, **kw) -> np.ndarray:
  """`predict_alpha_float` quantised as the official eval.py: [H, W] uint8."""
  return to_uint8(predict_alpha_float(apply_fn, image, trimap, **kw))


def predict_alpha_untiled(apply_fn: Callable, image: np.ndarray, trimap: np.ndarray, *,
                          tta="none") -> np.ndarray:
  """One pass on the whole image (side a multiple of 32) with the context built by the same
  padding rules (replicate / 0, S/2 per side). Reference for tests. Returns [H, W] float32."""
  trimap = check_trimap(trimap)
  h, w = trimap.shape
  transforms = TTA_MODES[tta] if isinstance(tta, str) else tuple(tta)
  x, raw = encode(image, trimap)
  img_c = np.pad(image, ((h // 2, h // 2), (w // 2, w // 2), (0, 0)), mode="edge")
  tri_c = np.pad(trimap, ((h // 2, h // 2), (w // 2, w // 2)), mode="constant")
  xc, _ = encode(img_c, tri_c)
  a = np.asarray(_tta_batch(apply_fn, jnp.asarray(x[None]), jnp.asarray(xc[None]),
                            jnp.asarray(raw[None]), jnp.asarray(trimap_onehot(trimap)[None]),
                            tuple(transforms)))[0].copy()
  a[trimap == 0], a[trimap == 255] = 0.0, 1.0
  return a
