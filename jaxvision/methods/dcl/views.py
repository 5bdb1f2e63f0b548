"""DCL data view generation (dcl.md §2.2), batched and vectorised in JAX (run it inside the jitted
step on the step's key).

    q, k, q_mask = make_views(key, images, masks, ViewConfig(size=299))

images: [B, H, W, 3] uint8 or float in [0, 1]; masks: [B, H, W] in [0, 1] (all zero for reals).
Per sample: a shared horizontal flip (p 0.5) of image and mask; then two independent draws of
the train transform (rotate +-30, cutout 1 hole p 0.1, random resized crop scale (0.5, 1)
p 0.5, resize, flip p 0.5 twice, gray p 0.1, Gaussian noise p 0.1, one of {brightness/contrast,
fancy PCA, hue/saturation/value} p 0.7, 3x3 Gaussian blur p 0.05, normalise (x - 0.5) / 0.5);
then with p 0.5 both views become v + SRM(v); finally RandomPatch (3x3 tiles, one of 40 fixed
permutations) on q and its mask. The geometric part of each view is one affine warp (bilinear,
reflect-101 borders). Deviations from albumentations 0.5.1: cutout is placed in output
coordinates, the HSV jitter is a YIQ hue rotation + saturation scale + value shift, fancy PCA
uses the fixed ImageNet RGB eigenbasis. With
`align_mask` (default) q's mask gets q's warp; `align_mask=False` is the official behaviour
(the mask sees only the shared flip and the tile permutation).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

# RandomPatch: 30 fixed shuffles + 10 identities (official datasets/utils/random_patch.py);
# output tile t takes input tile PERMUTATIONS[j][t]; tile n covers rows (n % 3), cols (n // 3).
PERMUTATIONS = np.array(
    [[7, 2, 0, 1, 5, 6, 3, 4, 8], [0, 1, 2, 3, 4, 5, 6, 8, 7], [1, 0, 3, 2, 6, 4, 8, 7, 5],
     [2, 3, 1, 0, 7, 8, 4, 5, 6], [3, 4, 5, 6, 8, 0, 7, 1, 2], [4, 5, 6, 8, 0, 7, 1, 2, 3],
     [5, 6, 8, 7, 1, 2, 0, 3, 4], [6, 8, 7, 4, 2, 3, 5, 0, 1], [8, 7, 4, 5, 3, 1, 2, 6, 0],
     [0, 1, 2, 3, 8, 7, 5, 6, 4], [1, 0, 4, 6, 2, 5, 8, 7, 3], [2, 3, 5, 4, 7, 1, 0, 8, 6],
     [3, 2, 6, 5, 1, 4, 7, 0, 8], [4, 5, 8, 7, 0, 6, 2, 3, 1], [5, 4, 7, 1, 6, 8, 3, 2, 0],
     [8, 6, 0, 2, 4, 3, 1, 5, 7], [6, 7, 3, 8, 5, 0, 4, 1, 2], [7, 8, 1, 0, 3, 2, 6, 4, 5],
     [0, 1, 2, 4, 3, 7, 6, 5, 8], [1, 0, 3, 2, 4, 6, 7, 8, 5], [2, 3, 0, 1, 5, 4, 8, 6, 7],
     [3, 2, 1, 0, 6, 8, 5, 7, 4], [4, 5, 6, 7, 8, 3, 1, 2, 0], [5, 4, 8, 3, 7, 0, 2, 1, 6],
     [6, 8, 7, 5, 0, 1, 3, 4, 2], [7, 6, 5, 8, 1, 2, 4, 0, 3], [8, 7, 4, 6, 2, 5, 0, 3, 1],
     [0, 1, 2, 5, 4, 7, 8, 3, 6], [1, 0, 3, 2, 5, 8, 6, 4, 7], [2, 3, 0, 1, 6, 5, 4, 7, 8]]
    + [list(range(9))] * 10, np.int32)

# SRM high-pass kernels (output channel o sums K_o over the 3 input channels).
_SRM = np.zeros((3, 5, 5), np.float32)
_SRM[0, 2, 1:4] = np.array([1, -2, 1]) / 2
_SRM[1, 1:4, 1:4] = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4
_SRM[2] = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                    [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]) / 12
SRM_KERNELS = _SRM

# Fancy PCA on the fixed ImageNet RGB basis (AlexNet); albumentations estimates it per image.
_PCA_VALS = np.array([0.2175, 0.0188, 0.0045], np.float32)
_PCA_VECS = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                      [-0.5836, -0.6948, 0.4203]], np.float32)
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                np.float32)
_YIQ_INV = np.linalg.inv(_YIQ).astype(np.float32)
_g = np.exp(-np.array([-1.0, 0.0, 1.0]) ** 2 / (2 * 0.8 ** 2))  # cv2 sigma for ksize 3
_BLUR = np.broadcast_to((np.outer(_g, _g) / np.outer(_g, _g).sum())[:, :, None, None],
                        (3, 3, 1, 3)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ViewConfig:
  """Probabilities and ranges of the DCL view transform (official defaults); size: output
  side; patch_grid 0 disables RandomPatch; srm_prob 0 disables SRM."""
  size: int = 299
  raw_flip_prob: float = 0.5
  rotate_limit: float = 30.0
  cutout_prob: float = 0.1
  cutout_frac: float = 25 / 299
  crop_prob: float = 0.5
  crop_scale: tuple[float, float] = (0.5, 1.0)
  flip_prob: float = 0.5
  gray_prob: float = 0.1
  noise_prob: float = 0.1
  noise_var: tuple[float, float] = (10.0, 50.0)  # on the 0..255 scale
  color_prob: float = 0.7
  blur_prob: float = 0.05
  srm_prob: float = 0.5
  patch_grid: int = 3
  align_mask: bool = True
  mean: float = 0.5
  std: float = 0.5


def to_unit(images: jax.Array) -> jax.Array:
  """uint8 -> float32 in [0, 1]; floats pass through as float32."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)


def srm(x: jax.Array) -> jax.Array:
  """SRM residuals: x [B, H, W, 3] -> [B, H, W, 3], 5x5 conv, zero padding 2, no bias.

  Every output channel applies its kernel to all 3 input channels alike, so the conv runs on
  the channel sum (1 -> 3 channels; the same value as the 3 -> 3 conv, a third of the work)."""
  k = jnp.asarray(SRM_KERNELS.transpose(1, 2, 0)[:, :, None, :])   # [5, 5, 1, 3]
  xs = x.astype(jnp.float32).sum(-1, keepdims=True)
  return jax.lax.conv_general_dilated(xs, k, (1, 1), ((2, 2), (2, 2)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def random_patch(x: jax.Array, perm: jax.Array, grid: int = 3) -> jax.Array:
  """Tile shuffle: x [B, S, S, ...] with per-sample perm [B, grid^2]: output tile t = input
  tile perm[t]; tile n covers rows (n % grid) * w and cols (n // grid) * w, w = S // grid; the
  border beyond grid * w is unchanged."""
  b, s = x.shape[0], x.shape[1]
  w = s // grid
  core = x[:, :grid * w, :grid * w]
  rest = core.shape[3:]
  t = core.reshape(b, grid, w, grid, w, *rest)            # [B, row tile, w, col tile, w, ...]
  t = jnp.moveaxis(t, 3, 1)                               # [B, col, row, w, w, ...]
  t = t.reshape(b, grid * grid, w, w, *rest)              # n = col * grid + row
  idx = perm.reshape(b, grid * grid, *([1] * (t.ndim - 2)))
  t = jnp.take_along_axis(t, idx, axis=1)
  t = jnp.moveaxis(t.reshape(b, grid, grid, w, w, *rest), 1, 3)
  return x.at[:, :grid * w, :grid * w].set(t.reshape(core.shape))


def _mirror(i: jax.Array, n: int) -> jax.Array:
  """Integer indices reflected into [0, n) without repeating the edge (reflect-101)."""
  if n == 1:
    return jnp.zeros_like(i)
  i = jnp.abs(i) % (2 * (n - 1))
  return jnp.where(i >= n, 2 * (n - 1) - i, i)


def _warp(img: jax.Array, mat: jax.Array, size: int) -> jax.Array:
  """Bilinear sample img [H, W, C] at A @ [y, x, 1] for the output grid (normalised [-1, 1]
  coordinates, pixel centres), reflect-101 borders (= map_coordinates order 1, mode "mirror";
  one gather per corner for all channels). mat: [2, 3]. Returns [size, size, C]."""
  h, w = img.shape[:2]
  c = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size * 2 - 1
  yy, xx = jnp.meshgrid(c, c, indexing="ij")
  src = jnp.einsum("ij,jhw->ihw", mat, jnp.stack([yy, xx, jnp.ones_like(yy)]))
  py = (src[0] + 1) / 2 * h - 0.5
  px = (src[1] + 1) / 2 * w - 0.5
  y0, x0 = jnp.floor(py), jnp.floor(px)
  wy, wx = (py - y0)[..., None], (px - x0)[..., None]
  y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
  flat = img.reshape(h * w, -1)
  at = lambda y, x: flat[_mirror(y, h) * w + _mirror(x, w)]
  top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
  bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
  return top * (1 - wy) + bottom * wy


def _lerp(u, lo, hi):
  return lo + (hi - lo) * u


def _affine(u: jax.Array, cfg: ViewConfig) -> jax.Array:
  """One view's output->input map [2, 3] (flip, random resized crop, rotation) from 8 uniforms."""
  flip = (u[0] < cfg.flip_prob) ^ (u[1] < cfg.flip_prob)
  sx = jnp.where(flip, -1.0, 1.0)
  area = _lerp(u[3], *cfg.crop_scale)
  ratio = jnp.exp(_lerp(u[4], math.log(3 / 4), math.log(4 / 3)))
  do_crop = u[2] < cfg.crop_prob
  ch = jnp.where(do_crop, jnp.minimum(jnp.sqrt(area / ratio), 1.0), 1.0)  # half-extent fractions
  cw = jnp.where(do_crop, jnp.minimum(jnp.sqrt(area * ratio), 1.0), 1.0)
  cy, cx = _lerp(u[5], -1, 1) * (1 - ch), _lerp(u[6], -1, 1) * (1 - cw)
  th = _lerp(u[7], -cfg.rotate_limit, cfg.rotate_limit) * math.pi / 180
  crop = jnp.array([[ch, 0.0, cy], [0.0, cw * sx, cx], [0.0, 0.0, 1.0]])
  rot = jnp.array([[jnp.cos(th), -jnp.sin(th), 0.0], [jnp.sin(th), jnp.cos(th), 0.0],
                   [0.0, 0.0, 1.0]])
  return (rot @ crop)[:2]


def _cutout(u: jax.Array, x: jax.Array, cfg: ViewConfig) -> jax.Array:
  """One hole (side cutout_frac * S) with probability cutout_prob, from 3 uniforms."""
  s = x.shape[0]
  side = max(1, int(round(cfg.cutout_frac * s)))
  y0 = jnp.floor(u[0] * (s - side + 1))
  x0 = jnp.floor(u[1] * (s - side + 1))
  r = jnp.arange(s)
  hole = ((r[:, None] >= y0) & (r[:, None] < y0 + side) & (r[None] >= x0) & (r[None] < x0 + side))
  return jnp.where((u[2] < cfg.cutout_prob) & hole[..., None], 0.0, x)


def _color(u: jax.Array, noise: tuple, x: jax.Array, cfg: ViewConfig) -> jax.Array:
  """Photometric part of one view on x [S, S, 3] in [0, 1], from 13 uniforms and standard
  normals `noise` = (pixel noise [S, S, 3], fancy-PCA weights [3])."""
  noise, pca_w = noise
  gray = x @ jnp.array([0.299, 0.587, 0.114])
  x = jnp.where(u[0] < cfg.gray_prob, gray[..., None] * jnp.ones(3), x)
  sd = jnp.sqrt(_lerp(u[1], *cfg.noise_var)) / 255
  x = jnp.clip(jnp.where(u[2] < cfg.noise_prob, x + sd * noise, x), 0, 1)
  # one of: brightness/contrast (limits 0.2), fancy PCA (alpha 0.1), hue/sat/value.
  bc = x * (1 + _lerp(u[3], -0.2, 0.2)) + _lerp(u[4], -0.2, 0.2)
  pca = x + _PCA_VECS @ (pca_w * 0.1 * _PCA_VALS)
  hue = _lerp(u[5], -20, 20) * 2 * math.pi / 180
  sat = 1 + _lerp(u[6], -30, 30) / 255
  c, s_ = jnp.cos(hue) * sat, jnp.sin(hue) * sat
  rot = jnp.array([[1.0, 0.0, 0.0], [0.0, c, -s_], [0.0, s_, c]])
  hsv = x @ (_YIQ_INV @ rot @ _YIQ).T + _lerp(u[7], -20, 20) / 255
  which = jnp.floor(u[8] * 3)
  jit = jnp.where(which == 0, bc, jnp.where(which == 1, pca, hsv))
  x = jnp.clip(jnp.where(u[9] < cfg.color_prob, jit, x), 0, 1)
  xp = jnp.pad(x, ((1, 1), (1, 1), (0, 0)), mode="reflect")[None]
  blurred = jax.lax.conv_general_dilated(xp, _BLUR, (1, 1), "VALID", feature_group_count=3,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  return jnp.where(u[10] < cfg.blur_prob, blurred, x)


def _one_view(u, noise, img, mask, cfg: ViewConfig):
  mat = _affine(u[:8], cfg)
  warped = _warp(jnp.concatenate([img, mask[..., None]], -1), mat, cfg.size)  # image + mask
  out = _color(u[11:], noise, _cutout(u[8:11], warped[..., :3], cfg), cfg)
  return (out - cfg.mean) / cfg.std, warped[..., 3]


def make_views(key: jax.Array, images: jax.Array, masks: jax.Array | None = None,
               cfg: ViewConfig = ViewConfig()) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Two DCL views per image. images: [B, H, W, 3]; masks: [B, H, W] or None (zeros).

  Returns (q [B, S, S, 3], k [B, S, S, 3], q_mask [B, S, S]) with S = cfg.size; q and k are
  normalised float32, q_mask is in [0, 1] and follows q's tile permutation.
  """
  x = to_unit(images)
  b, h, w = x.shape[:3]
  if masks is None:
    masks = jnp.zeros((b, h, w), jnp.float32)
  if masks.shape != (b, h, w):
    raise ValueError(f"masks must be [B, H, W] = {(b, h, w)} like the images; got {masks.shape}.")
  masks = masks.astype(jnp.float32)
  # One XLA RngBitGenerator key for all draws: threefry per draw costs seconds of compile and
  # run time on CPU for the per-pixel noise.
  rbg = jax.random.wrap_key_data(jax.random.bits(key, (4,), jnp.uint32), impl="rbg")
  k_u, k_n, k_patch, k_pca = jax.random.split(rbg, 4)
  u = jax.random.uniform(k_u, (2, b, 24))             # per view and sample
  noise = (jax.random.normal(k_n, (2, b, cfg.size, cfg.size, 3)),
           jax.random.normal(k_pca, (2, b, 3)))
  flip = u[0, :, 22] < cfg.raw_flip_prob
  x = jnp.where(flip[:, None, None, None], x[:, :, ::-1], x)
  masks = jnp.where(flip[:, None, None], masks[:, :, ::-1], masks)
  view = jax.vmap(lambda uu, nn, i, m: _one_view(uu, nn, i, m, cfg))
  q, q_mask = view(u[0], (noise[0][0], noise[1][0]), x, masks)
  k, _ = view(u[1], (noise[0][1], noise[1][1]), x, masks)
  if not cfg.align_mask:  # official: the mask is only resized, not warped
    q_mask = jax.image.resize(masks, (b, cfg.size, cfg.size), "linear")
  use_srm = (u[0, :, 23] < cfg.srm_prob)[:, None, None, None]
  q = jnp.where(use_srm, q + srm(q), q)
  k = jnp.where(use_srm, k + srm(k), k)
  if cfg.patch_grid:
    if cfg.patch_grid != 3:
      raise ValueError(f"patch_grid must be 3 (the official permutation table) or 0, got "
                       f"{cfg.patch_grid}.")
    perm = jnp.asarray(PERMUTATIONS)[jax.random.randint(k_patch, (b,), 0, len(PERMUTATIONS))]
    q, q_mask = random_patch(q, perm), random_patch(q_mask, perm)
  return q, k, jnp.clip(q_mask, 0, 1)
