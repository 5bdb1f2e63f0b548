"""Adobe Composition-1k as user-prepared folders (spec lfpnet.md §4-5).

Registered dataset `comp1k_folder` (config.dataset.*):
  fg_folder, alpha_folder   the 431 training foregrounds and their alphas (same file names)
  bg_folder                 training backgrounds (COCO); each record draws one, resized to cover
                            the foreground
  test_merged, test_alpha, test_trimap
                            Composition-1k test: composites, true alphas, official trimaps
                            (same file names)
  image_size (1024)         the context crop side 2S of training
  eval_size (2048)          every test image is padded (image replicated, trimap and alpha 0, so
                            padding is never scored) to this side, a multiple of 32
  num_train (43100), data_seed (0)

  test_layout ("comp1k")    "alphamatting": evaluate instead on the alphamatting.com training
                            set (27 images with public ground truth; the test set's ground truth
                            is not public, so its alphas are made by the predict CLI's
                            --alphamatting and uploaded):
  alphamatting_dir          root of the unzipped downloads, holding
                              input_training_lowres/GT01.png ...
                              trimap_training_lowres/<trimap set>/GT01.png ...
                              gt_training_lowres/GT01.png ...
  alphamatting_trimap       the trimap set (subfolder), "Trimap1" (default) or "Trimap2"

Train record i: foreground i mod #fg, background drawn by (data_seed, i), a 2S window centred on
a random unknown pixel (0 < alpha < 1) of the foreground, padded past the border by replication
(uint8 image / alpha / fg / bg, plus a trimap from erosion with a random radius for
`lfpnet.data_trimap`). A missing or empty folder, mismatched names or a test image larger than
eval_size stop the run at start-up with one line.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from jaxvision.core.errors import ConfigError
from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
from jaxvision.data.base import DataNotReadyError, Dataset

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
FOLDERS = ("fg_folder", "alpha_folder", "bg_folder", "test_merged", "test_alpha", "test_trimap")
TRAIN_FOLDERS = FOLDERS[:3]
# alphamatting.com downloads: (images, trimap sets, ground truth) folders per split.
ALPHAMATTING = {"training": ("input_training_lowres", "trimap_training_lowres",
                             "gt_training_lowres"),
                "test": ("input_lowres", "trimap_lowres", None)}


def list_images(folder: str, key: str) -> list[str]:
  """Sorted image file names of `folder` (config.dataset.<key>); one-line errors."""
  if not folder:
    raise ConfigError(f"comp1k_folder: set config.dataset.{key} (Composition-1k folders: "
                      f"{', '.join(FOLDERS)})")
  d = os.path.expanduser(folder)
  if not os.path.isdir(d):
    raise DataNotReadyError(f"comp1k_folder: config.dataset.{key}={d} does not exist; put the "
                            "Composition-1k images there")
  names = sorted(n for n in os.listdir(d) if not n.startswith(".")
                 and n.lower().endswith(IMAGE_EXTS))
  if not names:
    raise DataNotReadyError(f"comp1k_folder: config.dataset.{key}={d} holds no images")
  return names


def alphamatting_sets(root: str, split: str = "test") -> dict[str, list[tuple[str, str]]]:
  """{trimap set: [(image path, trimap path)]} of an alphamatting.com download at `root`
  (layout in the module doc; `split` "training" or "test"). Every trimap set is a subfolder of
  the trimap folder; each needs a trimap for every image. One-line errors."""
  img_dir, tri_dir, _ = (os.path.join(os.path.expanduser(root), f) if f else None
                         for f in ALPHAMATTING[split])
  for d in (img_dir, tri_dir):
    if not os.path.isdir(d):
      raise DataNotReadyError(f"alphamatting: {d} does not exist; unzip the alphamatting.com "
                              f"{split} downloads ({', '.join(f for f in ALPHAMATTING[split] if f)}"
                              f") into {root}")
  names = list_images(img_dir, "alphamatting_dir")
  sets = sorted(n for n in os.listdir(tri_dir) if os.path.isdir(os.path.join(tri_dir, n)))
  if not sets:
    raise DataNotReadyError(f"alphamatting: {tri_dir} has no trimap-set subfolders (Trimap1, ...)")
  out = {}
  for t in sets:
    tri_names = list_images(os.path.join(tri_dir, t), "alphamatting_dir")
    _same_names(names, tri_names, os.path.basename(img_dir), f"{os.path.basename(tri_dir)}/{t}",
                who="alphamatting")
    by_stem = {os.path.splitext(n)[0]: n for n in tri_names}
    out[t] = [(os.path.join(img_dir, n), os.path.join(tri_dir, t, by_stem[os.path.splitext(n)[0]]))
              for n in names]
  return out


def _alphamatting_eval(config) -> list[list[str]]:
  """[merged, alpha, trimap] path lists of the alphamatting.com training set (with ground truth)."""
  root = str(_get(config, "alphamatting_dir", ""))
  if not root:
    raise ConfigError("comp1k_folder: test_layout='alphamatting' needs "
                      "config.dataset.alphamatting_dir (the unzipped alphamatting.com downloads)")
  sets = alphamatting_sets(root, "training")
  t = str(_get(config, "alphamatting_trimap", "Trimap1"))
  if t not in sets:
    raise ConfigError(f"comp1k_folder: alphamatting_trimap={t!r} is not one of {sorted(sets)}")
  gt_dir = os.path.join(os.path.expanduser(root), ALPHAMATTING["training"][2])
  gt = list_images(gt_dir, "alphamatting_dir")
  _same_names([os.path.basename(p) for p, _ in sets[t]], gt, ALPHAMATTING["training"][0],
              ALPHAMATTING["training"][2], who="alphamatting")
  by_stem = {os.path.splitext(n)[0]: n for n in gt}
  return [[p for p, _ in sets[t]],
          [os.path.join(gt_dir, by_stem[os.path.splitext(os.path.basename(p))[0]])
           for p, _ in sets[t]],
          [q for _, q in sets[t]]]


def _same_names(a: list[str], b: list[str], ka: str, kb: str, who: str = "comp1k_folder") -> None:
  stem = lambda n: os.path.splitext(n)[0]  # noqa: E731
  sa, sb = {stem(n) for n in a}, {stem(n) for n in b}
  if sa != sb:
    miss = sorted(sa ^ sb)[0]
    raise DataNotReadyError(f"{who}: {ka} and {kb} must hold the same file names "
                            f"(e.g. {miss!r} is in one only)")


@functools.lru_cache(maxsize=64)
def _read(path: str, mode: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as im:
    return np.asarray(im.convert(mode))


def _size(path: str) -> tuple[int, int]:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as im:
    w, h = im.size
  return h, w


def _cover(bg: np.ndarray, h: int, w: int) -> np.ndarray:
  """Background resized (bilinear) so it covers [h, w], then top-left cropped."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  bh, bw = bg.shape[:2]
  s = max(h / bh, w / bw)
  if s > 1:
    bg = np.asarray(Image.fromarray(bg).resize((int(np.ceil(bw * s)), int(np.ceil(bh * s))),
                                               Image.BILINEAR))
  return bg[:h, :w]


def _window(x: np.ndarray, cy: int, cx: int, side: int) -> np.ndarray:
  """side x side window centred at (cy, cx), edge-replicated past the borders."""
  h, w = x.shape[:2]
  y0, x0 = cy - side // 2, cx - side // 2
  pads = ((max(0, -y0), max(0, y0 + side - h)), (max(0, -x0), max(0, x0 + side - w)))
  xp = np.pad(x, pads + ((0, 0),) * (x.ndim - 2), mode="edge")
  y0, x0 = y0 + pads[0][0], x0 + pads[1][0]
  return xp[y0:y0 + side, x0:x0 + side]


class Comp1kTrain:
  """Training composites (module doc); record i is a pure function of (data_seed, i)."""

  def __init__(self, fg_dir, alpha_dir, bg_dir, fg_names, alpha_names, bg_names, side: int,
               n: int, seed: int = 0):
    self.fg = [os.path.join(fg_dir, f) for f in fg_names]
    self.alpha = [os.path.join(alpha_dir, f) for f in alpha_names]
    self.bg = [os.path.join(bg_dir, f) for f in bg_names]
    self.side, self.n, self.seed = int(side), int(n), int(seed)

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    from jaxvision.data import photos  # pylint: disable=import-outside-toplevel
    i = int(i)
    rng = np.random.default_rng((self.seed, 53, i))
    j = i % len(self.fg)
    fg, alpha = _read(self.fg[j], "RGB"), _read(self.alpha[j], "L")
    if fg.shape[:2] != alpha.shape:
      raise DataNotReadyError(f"comp1k_folder: {self.fg[j]} and {self.alpha[j]} sizes differ")
    bg = _cover(_read(self.bg[int(rng.integers(len(self.bg)))], "RGB"), *alpha.shape)
    ys, xs = np.nonzero((alpha > 0) & (alpha < 255))
    if len(ys):
      k = int(rng.integers(len(ys)))
      cy, cx = int(ys[k]), int(xs[k])
    else:
      cy, cx = alpha.shape[0] // 2, alpha.shape[1] // 2
    a = _window(alpha[..., None], cy, cx, self.side)
    f, b = _window(fg, cy, cx, self.side), _window(bg, cy, cx, self.side)
    tri = photos.trimap_from_alpha(a, int(rng.integers(1, 16)))
    return {"image": photos.composite(a, f, b), "alpha": a, "fg": f, "bg": b, "trimap": tri}


class Comp1kTest:
  """Test images padded to eval_size: {image, alpha, trimap} uint8."""

  def __init__(self, merged, alpha, trimap, size: int):
    self.paths = list(zip(merged, alpha, trimap))
    self.size = int(size)

  def __len__(self):
    return len(self.paths)

  def __getitem__(self, i):
    pm, pa, pt = self.paths[int(i)]
    img, a, t = _read(pm, "RGB"), _read(pa, "L"), _read(pt, "L")
    h, w = t.shape
    pads = ((0, self.size - h), (0, self.size - w))
    return {"image": np.pad(img, pads + ((0, 0),), mode="edge"),
            "alpha": np.pad(a, pads)[..., None], "trimap": np.pad(t, pads)[..., None]}


def _get(config, key, default):
  v = config.dataset.get(key, default)
  return default if v is None else v


@DATASETS.register("comp1k_folder")
def comp1k_folder(config) -> Dataset:
  side = int(_get(config, "image_size", 1024))
  esize = int(_get(config, "eval_size", 2048))
  if side % 32 or esize % 32:
    raise ConfigError(f"comp1k_folder: image_size={side} and eval_size={esize} must be "
                      "multiples of 32")
  layout = str(_get(config, "test_layout", "comp1k"))
  if layout not in ("comp1k", "alphamatting"):
    raise ConfigError(f"comp1k_folder: test_layout={layout!r}; use 'comp1k' or 'alphamatting'")
  keys = FOLDERS if layout == "comp1k" else TRAIN_FOLDERS
  d = {k: os.path.expanduser(str(_get(config, k, ""))) for k in keys}
  names = {k: list_images(_get(config, k, ""), k) for k in keys}
  _same_names(names["fg_folder"], names["alpha_folder"], "fg_folder", "alpha_folder")
  if layout == "comp1k":
    for k in ("test_alpha", "test_trimap"):
      _same_names(names["test_merged"], names[k], "test_merged", k)
    test = [[os.path.join(d[k], n) for n in names[k]]
            for k in ("test_merged", "test_alpha", "test_trimap")]
  else:
    test = _alphamatting_eval(config)
  big = [p for p in test[0] if max(_size(p)) > esize]
  if big:
    raise DataNotReadyError(f"comp1k_folder: {big[0]} is larger than eval_size={esize} "
                            f"({len(big)} such images); raise config.dataset.eval_size")
  train = Comp1kTrain(d["fg_folder"], d["alpha_folder"], d["bg_folder"], names["fg_folder"],
                      names["alpha_folder"], names["bg_folder"], side,
                      int(_get(config, "num_train", 43100)), int(_get(config, "data_seed", 0)))
  keys = "keys=('image', 'alpha', 'fg', 'bg', 'trimap')"
  pp_train = f"flip_lr({keys})|to_float(keys=('image', 'alpha', 'fg', 'bg'))"
  pp_eval = "to_float(keys=('image', 'alpha'))"
  f = lambda s, ks: {k: ((s, s, 1 if k in ("alpha", "trimap") else 3),  # noqa: E731
                         "uint8" if k == "trimap" else "float32") for k in ks}
  info = DataInfo("comp1k_folder", len(train), len(test[0]),
                  features=f(side, ("image", "alpha", "fg", "bg", "trimap")),
                  eval_features=f(esize, ("image", "alpha", "trimap")))
  return Dataset(info, train, Comp1kTest(*test, esize), pp_train, pp_eval)
