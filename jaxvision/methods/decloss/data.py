"""User-prepared SR image folders (DIV2K and the standard test sets), LR made on the fly.

Registered datasets (config.dataset.*):
  sr_folder        train: random HR crops of `train_folder` (e.g. DIV2K_train_HR, read lazily
                   with PIL, `num_train` windows fixed by `data_seed`); eval: the whole images
                   of `folder` (e.g. DIV2K_valid_HR), modcropped to `scale`. The pp makes
                   `lr` with the MATLAB bicubic (`bicubic_down`), as photos_sr does.
  sr_test_set5, sr_test_set14, sr_test_b100, sr_test_urban100, sr_test_manga109
                   eval-only: the HR images of `<test_root>/<Set5|Set14|B100|Urban100|
                   Manga109>` (use them in `config.evals.<name>.dataset`).
Bad input fails at start-up with one line: a missing folder, an empty one, or a file that is
not an image (png/jpg/jpeg/bmp/tif/tiff; hidden files are skipped).
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
TEST_SETS = {"set5": "Set5", "set14": "Set14", "b100": "B100", "urban100": "Urban100",
             "manga109": "Manga109"}


def list_images(folder: str, what: str) -> list[str]:
  """Sorted image paths of `folder`; one-line errors for a missing/empty folder or a non-image."""
  if not folder:
    raise ConfigError(f"{what}: set config.dataset.{what} to a folder of HR images")
  d = os.path.expanduser(folder)
  if not os.path.isdir(d):
    raise DataNotReadyError(f"{what}: folder {d} does not exist; put the HR images there")
  names = sorted(n for n in os.listdir(d) if not n.startswith("."))
  bad = [n for n in names if not n.lower().endswith(IMAGE_EXTS)
         or not os.path.isfile(os.path.join(d, n))]
  if bad:
    raise DataNotReadyError(f"{what}: {os.path.join(d, bad[0])} is not an image "
                            f"({len(bad)} such entries; allowed: {', '.join(IMAGE_EXTS)}); "
                            "remove them from the folder")
  if not names:
    raise DataNotReadyError(f"{what}: folder {d} holds no images")
  return [os.path.join(d, n) for n in names]


@functools.lru_cache(maxsize=16)
def read_rgb(path: str) -> np.ndarray:
  """uint8 [H, W, 3] (grey and RGBA converted to RGB)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"))


def _image_size(path: str) -> tuple[int, int]:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as im:
    w, h = im.size
  return h, w


class FolderCrops:
  """`n` fixed random windows of `size` over the images of a folder, read lazily: {hr}."""

  def __init__(self, paths, size: int, n: int, seed: int = 0):
    self.paths = list(paths)
    hw = np.asarray([_image_size(p) for p in self.paths])
    small = [p for p, s in zip(self.paths, hw) if min(s) < size]
    if small:
      raise DataNotReadyError(f"{small[0]} is smaller than the {size}-pixel HR crop")
    rng = np.random.default_rng((seed, 37))
    self.pid = rng.integers(0, len(self.paths), n)
    self.ys = rng.integers(0, hw[self.pid, 0] - size + 1)
    self.xs = rng.integers(0, hw[self.pid, 1] - size + 1)
    self.size = size

  def __len__(self):
    return len(self.pid)

  def __getitem__(self, i):
    i, s = int(i), self.size
    img = read_rgb(self.paths[self.pid[i]])
    return {"hr": img[self.ys[i]:self.ys[i] + s, self.xs[i]:self.xs[i] + s]}


class FolderImages:
  """Whole images of a folder, modcropped to the scale: {hr} (variable sizes)."""

  def __init__(self, paths, scale: int):
    self.paths, self.scale = list(paths), int(scale)

  def __len__(self):
    return len(self.paths)

  def __getitem__(self, i):
    from jaxvision.ops.imresize import modcrop  # pylint: disable=import-outside-toplevel
    return {"hr": modcrop(read_rgb(self.paths[int(i)]), self.scale)}


def _get(config, key, default):
  v = config.dataset.get(key, default)
  return default if v is None else v


def _pp(scale: int, patch: int) -> tuple[str, str]:
  both = "keys=('lr', 'hr')"
  train = (f"random_crop({patch}, keys=('hr',))|flip_lr(keys=('hr',))|flip_ud(keys=('hr',))|"
           f"transpose(keys=('hr',))|bicubic_down({scale})|to_float({both})")
  return train, f"bicubic_down({scale})|to_float({both})|pad_to_max({both})"


def _info(name, n_train, n_eval, scale, patch, **extra):
  lp = patch // scale
  return DataInfo(name, n_train, n_eval, scale=scale, patch=patch,
                  features={"lr": ((lp, lp, 3), "float32"), "hr": ((patch, patch, 3), "float32")},
                  eval_features={"lr": ((None, None, 3), "float32"),
                                 "hr": ((None, None, 3), "float32"),
                                 "lr_hw": ((2,), "int32"), "hr_hw": ((2,), "int32")}, **extra)


@DATASETS.register("sr_folder")
def sr_folder(config) -> Dataset:
  scale = int(_get(config, "scale", 4))
  patch = int(_get(config, "patch", 192))
  if patch % scale:
    raise ConfigError(f"sr_folder: config.dataset.patch={patch} is not a multiple of scale {scale}")
  train_paths = list_images(_get(config, "train_folder", ""), "train_folder")
  eval_paths = list_images(_get(config, "folder", ""), "folder")
  crop = int(_get(config, "crop", 2 * patch))
  train = FolderCrops(train_paths, crop, int(_get(config, "num_train", 32000)),
                      int(_get(config, "data_seed", 0)))
  pp_train, pp_eval = _pp(scale, patch)
  return Dataset(_info("sr_folder", len(train), len(eval_paths), scale, patch),
                 train, FolderImages(eval_paths, scale), pp_train, pp_eval)


def _test_set(key: str, config) -> Dataset:
  scale = int(_get(config, "scale", 4))
  root = _get(config, "test_root", "")
  if not root:
    raise ConfigError(f"sr_test_{key}: set config.dataset.test_root to the folder holding "
                      f"{'/, '.join(TEST_SETS.values())}/ (HR images)")
  paths = list_images(os.path.join(root, TEST_SETS[key]), f"test_root/{TEST_SETS[key]}")
  imgs = FolderImages(paths, scale)
  patch = int(_get(config, "patch", 192))
  _, pp_eval = _pp(scale, patch)
  return Dataset(_info(f"sr_test_{key}", 0, len(paths), scale, patch), imgs, imgs, pp_eval,
                 pp_eval)


for _k in TEST_SETS:
  DATASETS.register(f"sr_test_{_k}", functools.partial(_test_set, _k))
