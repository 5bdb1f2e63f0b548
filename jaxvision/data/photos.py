"""Real colour photos that ship inside scikit-image and scikit-learn (offline), and views of
them for super-resolution, image-to-image GANs and matting; faces from scikit-image.

The `photos` source: the bundled colour photographs that load with no network (checked with
scikit-image 0.26.0 and scikit-learn 1.9.1), uint8 RGB:

  ======================  ===========  =====  ===============================
  name                    H x W        split  loader
  ======================  ===========  =====  ===============================
  astronaut               512 x 512    train  skimage.data.astronaut()
  rocket                  427 x 640    train  skimage.data.rocket()
  hubble_deep_field       872 x 1000   train  skimage.data.hubble_deep_field()
  retina                  1411 x 1411  train  skimage.data.retina()
  immunohistochemistry    512 x 512    train  skimage.data.immunohistochemistry()
  motorcycle_left         500 x 741    train  skimage.data.stereo_motorcycle()[0]
  motorcycle_right        500 x 741    train  skimage.data.stereo_motorcycle()[1]
  flower                  427 x 640    train  sklearn load_sample_images() flower.jpg
  chelsea (the cat)       300 x 451    test   skimage.data.chelsea()
  coffee                  400 x 600    test   skimage.data.coffee()
  china                   427 x 640    test   sklearn load_sample_images() china.jpg
  ======================  ===========  =====  ===============================

The split is fixed and by photo (the two stereo motorcycle views share the train split). Not
used: colorwheel and logo (synthetic graphics), camera/moon/coins... (grey), and brain,
eagle, lily, skin, kidney, cells3d... (need a download through pooch; they fail offline).

Registered datasets (`config.dataset.name`), all real photos; labels are derived:
  photos_sr       {hr} crops; the pp makes `lr` = MATLAB bicubic imresize(hr, 1/scale)
                  (`bicubic_down`); eval = the 3 test photos at native size (modcropped).
  photos_edges    {image: Canny edge map of the photo (procedural), 3 channels, 0/255;
                  target: the photo}, 64x64 crops, values in [-1, 1] after pp.
  photos_matting  procedural composites: fg crop of one photo, bg crop of another, a soft
                  alpha of smooth random blobs (procedural, blurred), trimap 0/128/255 from
                  erosion/dilation of the alpha; image = round(bg + alpha*(fg - bg)).
  faces           scikit-image lfw_subset: 100 LFW faces (label 1) + 100 non-faces (label 0),
                  25x25 grey, real labels; fixed stratified split 150/50.
"""
from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np

from jaxvision.core.errors import ConfigError
from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
from jaxvision.data import pp
from jaxvision.data.base import ArrayRecords, Dataset
from jaxvision.data.pp import PPError

TRAIN_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
                "motorcycle_left", "motorcycle_right", "flower")
TEST_PHOTOS = ("chelsea", "coffee", "china")


# ------------------------------------------------------------------ source
@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
  """One bundled photo, uint8 [H, W, 3] (read-only). Names: TRAIN_PHOTOS + TEST_PHOTOS."""
  if name not in TRAIN_PHOTOS + TEST_PHOTOS:
    raise ValueError(f"unknown photo '{name}'; photos: {', '.join(TRAIN_PHOTOS + TEST_PHOTOS)}")
  if name in ("china", "flower"):
    from sklearn.datasets import load_sample_image
    x = load_sample_image(f"{name}.jpg")
  else:
    import skimage.data
    if name.startswith("motorcycle_"):
      x = skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1]
    else:
      x = getattr(skimage.data, name)()
  x = np.ascontiguousarray(np.asarray(x, np.uint8)[..., :3])
  x.setflags(write=False)
  return x


def photos(split: str = "train") -> list[np.ndarray]:
  """The photos of a split ('train' or 'test'), uint8 [H, W, 3] each."""
  if split not in ("train", "test"):
    raise ValueError(f"photos split must be 'train' or 'test', got '{split}'")
  return [photo(n) for n in (TRAIN_PHOTOS if split == "train" else TEST_PHOTOS)]


def canny_edges(grey: np.ndarray, sigma: float) -> np.ndarray:
  """Canny edges (skimage.feature.canny) of a grey image [H, W] in [0, 1] as uint8
  [H, W, 3] in {0, 255}."""
  from skimage.feature import canny
  e = canny(grey, sigma=sigma)
  return np.repeat((e.astype(np.uint8) * 255)[..., None], 3, axis=-1)


@functools.lru_cache(maxsize=None)
def edge_map(name: str, sigma: float = 2.0) -> np.ndarray:
  """canny_edges of the grey photo (read-only)."""
  from skimage.color import rgb2gray
  out = canny_edges(rgb2gray(photo(name)), sigma)
  out.setflags(write=False)
  return out


# ----------------------------------------------------------------- records
class PhotoCrops:
  """Fixed random-access crops of whole images: record i is the size x size window at
  (photo pid[i], y[i], x[i]) of every key, so paired keys (e.g. edges and photo) align.

  Args:
    images: {key: [image per photo]} (all keys same H, W per photo).
    size: crop side.
    n: number of records.
    seed: fixes the windows (photos drawn uniformly, positions uniformly inside each).
  """

  def __init__(self, images: Mapping[str, Sequence[np.ndarray]], size: int, n: int, seed: int = 0):
    self.images = {k: list(v) for k, v in images.items()}
    first = next(iter(self.images.values()))
    hw = np.asarray([im.shape[:2] for im in first])
    if (hw < size).any():
      raise ValueError(f"PhotoCrops: crop {size} is larger than a photo {hw.min(0).tolist()}")
    rng = np.random.default_rng((seed, 31))
    self.pid = rng.integers(0, len(first), n)
    self.ys = rng.integers(0, hw[self.pid, 0] - size + 1)
    self.xs = rng.integers(0, hw[self.pid, 1] - size + 1)
    self.size = size

  def __len__(self):
    return len(self.pid)

  def __getitem__(self, i):
    i = int(i)
    p, y, x, s = self.pid[i], self.ys[i], self.xs[i], self.size
    return {k: v[p][y:y + s, x:x + s] for k, v in self.images.items()}

  def take(self, idx) -> dict:
    """The batch of records idx: one slice per record into preallocated arrays."""
    idx = np.asarray(idx)
    s = self.size
    out = {}
    for k, v in self.images.items():
      arr = np.empty((len(idx), s, s) + v[0].shape[2:], v[0].dtype)
      for j, i in enumerate(idx):
        y, x = self.ys[i], self.xs[i]
        arr[j] = v[self.pid[i]][y:y + s, x:x + s]
      out[k] = arr
    return out


def tile_crops(images: Sequence[np.ndarray], size: int) -> np.ndarray:
  """Non-overlapping size x size tiles of each image (row-major), stacked [N, size, size, C]."""
  tiles = [im[y:y + size, x:x + size] for im in images
           for y in range(0, im.shape[0] - size + 1, size)
           for x in range(0, im.shape[1] - size + 1, size)]
  return np.stack(tiles)


class ListRecords(list):
  """A list of record dicts (variable-size examples)."""


def _cfg(config, key, default):
  ds = config.dataset
  v = ds.get(key, default) if hasattr(ds, "get") else getattr(ds, key, default)
  return default if v is None else v


# ---------------------------------------------------------------------- SR
_BLAS = []


def _one_blas_thread():
  """Limits OpenBLAS/MKL to one thread while a pp op runs: imresize's small matrix products are
  20-70x slower with BLAS threads competing with pipeline threads on a busy host."""
  import contextlib
  if not _BLAS:
    try:
      import threadpoolctl
      _BLAS.append(threadpoolctl.ThreadpoolController())
    except Exception:  # noqa: BLE001  (threadpoolctl is optional: a plain context then)
      _BLAS.append(None)
  return _BLAS[0].limit(limits=1, user_api="blas") if _BLAS[0] else contextlib.nullcontext()


@pp.register("bicubic_down")
def bicubic_down(scale: int, src: str = "hr", dst: str = "lr") -> pp.Op:
  """batch[dst] = MATLAB bicubic imresize(batch[src], 1/scale) (antialiased; uint8 stays uint8,
  rounded like MATLAB). H and W of `src` must be multiples of `scale` (variable sizes allowed)."""
  from jaxvision.ops.imresize import imresize
  if int(scale) != scale or scale < 1:
    raise PPError(f"pp op bicubic_down({scale!r}): scale must be a positive integer")
  scale = int(scale)

  def down(x, i=None):
    x = np.asarray(x)
    h, w = x.shape[-3:-1] if x.ndim >= 3 else x.shape
    if h % scale or w % scale:
      where = "" if i is None else f" example {i}"
      raise PPError(f"pp op bicubic_down({scale}): '{src}'{where} is {h}x{w}, not a multiple of "
                    f"{scale}; crop it to a multiple first (random_crop / modcrop)")
    with _one_blas_thread():
      return imresize(x, 1.0 / scale)

  def fn(batch, rng):
    out = dict(batch)
    x = pp._get(batch, src, "bicubic_down")
    if isinstance(x, list):
      out[dst] = [down(v, i) for i, v in enumerate(x)]
    else:
      x = np.asarray(x)
      if x.ndim != 4:
        raise PPError(f"pp op bicubic_down: '{src}' has shape {x.shape}; it needs [B, H, W, C]")
      out[dst] = down(x) if len(x) else x[:, ::scale, ::scale]
    return out
  return fn


def _check_choice(name, key, v, choices):
  if v not in choices:
    raise ConfigError(f"{name}: config.dataset.{key}={v!r}; use one of {list(choices)}")


@DATASETS.register("photos_sr")
def photos_sr(config) -> Dataset:
  """SR pairs from the photos. config.dataset: scale (2; 2/3/4), patch (HR patch side, 48; a
  multiple of scale), crop (side of the stored train crops, 2*patch), num_train (4000),
  data_seed (0).

  Train records {hr: uint8 crop}; pp: random patch, flips/transpose, `bicubic_down`, to_float.
  Eval records {hr: a whole test photo modcropped to the scale}; the eval pp pads each batch
  to its largest photo (`pad_to_max`, writing lr_hw / hr_hw with the true sizes).
  """
  scale = int(_cfg(config, "scale", 2))
  _check_choice("photos_sr", "scale", scale, (2, 3, 4))
  patch = int(_cfg(config, "patch", 48))
  if patch % scale:
    raise ConfigError(f"photos_sr: config.dataset.patch={patch} is not a multiple of scale "
                      f"{scale}; use e.g. {patch - patch % scale}")
  crop = int(_cfg(config, "crop", 2 * patch))
  if crop < patch:
    raise ConfigError(f"photos_sr: config.dataset.crop={crop} < patch={patch}; use crop >= patch")
  n = int(_cfg(config, "num_train", 4000))
  train = PhotoCrops({"hr": photos("train")}, crop, n, int(_cfg(config, "data_seed", 0)))
  from jaxvision.ops.imresize import modcrop
  evals = ListRecords({"hr": modcrop(p, scale)} for p in photos("test"))
  both = "keys=('lr', 'hr')"
  pp_train = (f"random_crop({patch}, keys=('hr',))|flip_lr(keys=('hr',))|flip_ud(keys=('hr',))|"
              f"transpose(keys=('hr',))|bicubic_down({scale})|to_float({both})")
  pp_eval = f"bicubic_down({scale})|to_float({both})|pad_to_max({both})"
  lp = patch // scale
  info = DataInfo("photos_sr", len(train), len(evals), scale=scale, patch=patch,
                  features={"lr": ((lp, lp, 3), "float32"), "hr": ((patch, patch, 3), "float32")},
                  eval_features={"lr": ((None, None, 3), "float32"),
                                 "hr": ((None, None, 3), "float32"),
                                 "lr_hw": ((2,), "int32"), "hr_hw": ((2,), "int32")},
                  photos_train=TRAIN_PHOTOS, photos_eval=TEST_PHOTOS)
  return Dataset(info, train, evals, pp_train, pp_eval)


# ------------------------------------------------------------------- edges
@DATASETS.register("photos_edges")
def photos_edges(config) -> Dataset:
  """Edges -> photo pairs (pix2pix-style). config.dataset: image_size (64), jitter (8: train
  records are image_size + jitter and the pp crops randomly), num_train (4000), data_seed (0),
  canny_sigma (2.0).

  Records {image: Canny edge map (uint8 0/255, 3 channels), target: the photo (uint8)}; after
  pp both are float32 in [-1, 1]. Eval: non-overlapping image_size tiles of the test photos.
  """
  size = int(_cfg(config, "image_size", 64))
  jitter = int(_cfg(config, "jitter", 8))
  sigma = float(_cfg(config, "canny_sigma", 2.0))
  n = int(_cfg(config, "num_train", 4000))
  seed = int(_cfg(config, "data_seed", 0))
  train = PhotoCrops({"image": [edge_map(k, sigma) for k in TRAIN_PHOTOS],
                      "target": photos("train")}, size + jitter, n, seed)
  evals = ArrayRecords(image=tile_crops([edge_map(k, sigma) for k in TEST_PHOTOS], size),
                       target=tile_crops(photos("test"), size))
  both = "keys=('image', 'target')"
  post = f"to_float({both})|normalize('half', {both})"
  pp_train = f"random_crop({size}, {both})|flip_lr({both})|{post}"
  info = DataInfo("photos_edges", len(train), len(evals), value_range=(-1.0, 1.0),
                  features={"image": ((size, size, 3), "float32"),
                            "target": ((size, size, 3), "float32")})
  return Dataset(info, train, evals, pp_train, post)


# ----------------------------------------------------------------- matting
def composite(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
  """uint8 image = round(bg + a * (fg - bg)), a = alpha / 255 in float32. alpha [..., H, W, 1]
  uint8, fg/bg [..., H, W, C] uint8."""
  fg, bg = np.asarray(fg), np.asarray(bg)
  a = np.asarray(alpha).astype(np.float32)
  if a.shape[-1] != fg.shape[-1]:  # contiguous channels: long inner loops below
    a = np.repeat(a, fg.shape[-1], axis=-1)
  a *= np.float32(1 / 255)
  b = bg.astype(np.float32)
  img = fg.astype(np.float32)
  img -= b
  img *= a
  img += b
  np.rint(img, out=img)
  np.clip(img, 0, 255, out=img)
  return img.astype(np.uint8)


def trimap_from_alpha(alpha: np.ndarray, radius: int) -> np.ndarray:
  """uint8 trimap [H, W, 1]: 255 where alpha is 255 on the whole (2r+1)^2 window (eroded
  foreground), 0 where alpha is 0 on it (eroded background), 128 elsewhere (the dilated
  transition band)."""
  from scipy import ndimage
  a = np.asarray(alpha)[..., 0]
  k = 2 * int(radius) + 1
  fg = ndimage.minimum_filter(a, size=k, mode="nearest") == 255
  bg = ndimage.maximum_filter(a, size=k, mode="nearest") == 0
  t = np.full(a.shape, 128, np.uint8)
  t[fg], t[bg] = 255, 0
  return t[..., None]


@functools.lru_cache(maxsize=8)
def _grid(size: int):
  g = np.arange(size, dtype=np.float32) / np.float32(size)
  return g[:, None], g[None, :]  # broadcasting [size, 1], [1, size]


def soft_alpha(rng: np.random.Generator, size: int) -> np.ndarray:
  """A procedural soft matte uint8 [size, size, 1]: a blob (radius 15-30% of the side, wavy
  outline) whose outline passes through the centre pixel, plus 0-3 small blobs kept away from
  the centre, Gaussian-blurred (sigma 1-3 px). So the centre pixel is always unknown
  (0 < alpha < 255): every crop of at least half the side contains unknown pixels."""
  from scipy import ndimage
  yy, xx = _grid(size)
  c = (size // 2) / size  # the centre pixel
  r0 = rng.uniform(0.15, 0.30)
  k, ph = rng.integers(2, 6), rng.uniform(0, 2 * np.pi)
  wob = lambda t: 1 + 0.15 * np.sin(k * t + ph)  # noqa: E731
  phi = rng.uniform(0, 2 * np.pi)  # direction from the centre to the blob's middle
  d = r0 * wob(phi + np.pi)  # the outline point at angle phi + pi is the centre pixel
  by, bx = np.float32(c + d * np.sin(phi)), np.float32(c + d * np.cos(phi))
  dy, dx = yy - by, xx - bx
  mask = np.hypot(dy, dx) < np.float32(r0) * wob(np.arctan2(dy, dx)).astype(np.float32)
  for _ in range(rng.integers(0, 4)):
    cy, cx = rng.uniform(0.05, 0.95, 2).astype(np.float32)
    ry, rx = rng.uniform(0.03, 0.10, 2).astype(np.float32)
    if np.hypot(cy - c, cx - c) > max(ry, rx) + 0.08:  # keep the centre's outline
      mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
  soft = ndimage.gaussian_filter(mask.astype(np.float32), rng.uniform(1.0, 3.0), mode="nearest")
  return np.clip(np.round(soft * 255), 0, 255).astype(np.uint8)[..., None]


@functools.lru_cache(maxsize=8)
def matte_bank(size: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """`count` procedural mattes: (alpha, trimap), uint8 [count, size, size, 1] each; matte j is
  soft_alpha(default_rng((seed, 19, j))) and its trimap with radius in [2, size/16]."""
  alphas = np.empty((count, size, size, 1), np.uint8)
  trimaps = np.empty_like(alphas)
  for j in range(count):
    rng = np.random.default_rng((seed, 19, j))
    alphas[j] = soft_alpha(rng, size)
    trimaps[j] = trimap_from_alpha(alphas[j], int(rng.integers(2, max(3, size // 16 + 1))))
  alphas.setflags(write=False)
  trimaps.setflags(write=False)
  return alphas, trimaps


class MattingRecords:
  """Procedural matting composites over real photos; record i is a pure function of (seed, i).

  Record i: fg = size x size crop of photo a[i], bg = crop of another photo b[i], alpha and
  trimap = matte m[i] of matte_bank(size, num_mattes, seed), image = composite(alpha, fg, bg).
  All uint8; alpha and trimap are [H, W, 1]. The draws are fixed at construction, the mattes
  are made on first use, and `take` builds a batch with slices and one vectorised composite.
  """

  def __init__(self, images: Sequence[np.ndarray], size: int, n: int, seed: int = 0,
               num_mattes: int = 500):
    if len(images) < 2:
      raise ValueError("MattingRecords needs at least two photos (foreground and background)")
    if any(min(im.shape[:2]) < size for im in images):
      raise ValueError(f"MattingRecords: size {size} is larger than a photo")
    self.images, self.size, self.n, self.seed = list(images), int(size), int(n), int(seed)
    self.num_mattes = max(1, min(int(num_mattes), self.n))
    rng = np.random.default_rng((self.seed, 17))
    P = len(self.images)
    self.a = rng.integers(0, P, self.n)
    self.b = (self.a + rng.integers(1, P, self.n)) % P  # a different photo
    hw = np.asarray([im.shape[:2] for im in self.images])
    self.pos = np.stack([rng.integers(0, hw[p, d] - size + 1) for p in (self.a, self.b)
                         for d in (0, 1)], 1)  # [n, 4]: fg y, fg x, bg y, bg x
    self.m = rng.integers(0, self.num_mattes, self.n)

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    i = int(i)
    if not 0 <= i < self.n:
      raise IndexError(i)
    return {k: v[0] for k, v in self.take(np.array([i])).items()}

  def take(self, idx) -> dict:
    idx = np.asarray(idx, np.int64).reshape(-1)
    s = self.size
    alphas, trimaps = matte_bank(s, self.num_mattes, self.seed)
    fg = np.empty((len(idx), s, s, 3), np.uint8)
    bg = np.empty_like(fg)
    for j, i in enumerate(idx):
      fy, fx, by, bx = self.pos[i]
      fg[j] = self.images[self.a[i]][fy:fy + s, fx:fx + s]
      bg[j] = self.images[self.b[i]][by:by + s, bx:bx + s]
    alpha, trimap = alphas[self.m[idx]], trimaps[self.m[idx]]
    return {"image": composite(alpha, fg, bg), "alpha": alpha, "fg": fg, "bg": bg,
            "trimap": trimap}


MATTING_KEYS = "keys=('image', 'alpha', 'fg', 'bg', 'trimap')"


@DATASETS.register("photos_matting")
def photos_matting(config) -> Dataset:
  """Matting composites. config.dataset: image_size (64, the train crop), record_size
  (image_size * 5 // 4), eval_size (128), num_train (4000), num_eval (32), data_seed (0).

  Train: records of record_size, pp = one random crop and flip for image/alpha/fg/bg/trimap,
  then to_float for image/alpha/fg/bg (trimap stays uint8 0/128/255). Eval: eval_size
  composites of the test photos (no crop).
  """
  size = int(_cfg(config, "image_size", 64))
  rsize = int(_cfg(config, "record_size", size * 5 // 4))
  esize = int(_cfg(config, "eval_size", 128))
  seed = int(_cfg(config, "data_seed", 0))
  if rsize < size:
    raise ConfigError(f"photos_matting: record_size={rsize} < image_size={size}; use record_size "
                      f">= image_size")
  train = MattingRecords(photos("train"), rsize, int(_cfg(config, "num_train", 4000)), seed)
  evals = MattingRecords(photos("test"), esize, int(_cfg(config, "num_eval", 32)), seed + 1)
  post = "to_float(keys=('image', 'alpha', 'fg', 'bg'))"
  pp_train = f"random_crop({size}, {MATTING_KEYS})|flip_lr({MATTING_KEYS})|{post}"
  feats = lambda s: {"image": ((s, s, 3), "float32"), "alpha": ((s, s, 1), "float32"),  # noqa: E731
                     "fg": ((s, s, 3), "float32"), "bg": ((s, s, 3), "float32"),
                     "trimap": ((s, s, 1), "uint8")}
  info = DataInfo("photos_matting", len(train), len(evals), features=feats(size),
                  eval_features=feats(esize))
  return Dataset(info, train, evals, pp_train, post)


# ------------------------------------------------------------------- faces
@functools.lru_cache(maxsize=4)
def faces_arrays(size: int = 32, channels: int = 3):
  """lfw_subset -> (x_train, y_train, x_test, y_test): uint8 [N, size, size, channels], int32.

  Labels: 1 = face (the first 100 images), 0 = non-face. Split: stratified 150/50, fixed seed.
  """
  from PIL import Image
  from skimage.data import lfw_subset
  from sklearn.model_selection import train_test_split
  x = np.clip(np.round(np.asarray(lfw_subset()) * 255), 0, 255).astype(np.uint8)  # [200, 25, 25]
  if size != x.shape[1]:
    x = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in x])
  x = np.repeat(x[..., None], channels, axis=-1)
  y = np.array([1] * 100 + [0] * 100, np.int32)
  xtr, xte, ytr, yte = train_test_split(x, y, test_size=50, random_state=0, stratify=y)
  return xtr, ytr, xte, yte


@DATASETS.register("faces")
def faces(config) -> Dataset:
  """Face / non-face classification on scikit-image's lfw_subset (real images, real labels).
  config.dataset: image_size (32, bilinear from 25), channels (3; grey replicated), augment."""
  size, ch = int(_cfg(config, "image_size", 32)), int(_cfg(config, "channels", 3))
  xtr, ytr, xte, yte = faces_arrays(size, ch)
  norm = f"normalize(mean={(0.5,) * ch}, std={(0.5,) * ch})"
  pp_eval = f"to_float|{norm}"
  augment = bool(_cfg(config, "augment", True))
  pp_train = f"pad_crop(2)|flip_lr|to_float|{norm}" if augment else pp_eval
  info = DataInfo("faces", len(ytr), len(yte), num_classes=2,
                  features={"image": ((size, size, ch), "float32"), "label": ((), "int32")})
  return Dataset(info, ArrayRecords(image=xtr, label=ytr), ArrayRecords(image=xte, label=yte),
                 pp_train, pp_eval)
