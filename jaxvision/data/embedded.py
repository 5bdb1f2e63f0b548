"""Real data that ships inside installed packages and works offline.

`digits`: scikit-learn's 1797 handwritten 8x8 digits (UCI optdigits test set),
10 classes, split 80/20 stratified with a fixed seed (1437 train / 360 test),
upsampled to 32x32 (bilinear) and replicated to 3 channels so CIFAR-shaped
models run on it unchanged.
"""
from __future__ import annotations

import functools

import numpy as np

from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
from jaxvision.data.base import ArrayRecords, Dataset
from jaxvision.data.ops import DIGITS_MEAN, DIGITS_STD  # noqa: F401  (the digits pp's statistics)

DIGITS_SIZE = 32


@functools.lru_cache(maxsize=1)
def digits_arrays(size: int = DIGITS_SIZE):
  """Returns (x_train, y_train, x_test, y_test): uint8 [N, size, size, 3], int32 [N]."""
  from PIL import Image
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split
  d = load_digits()
  imgs = (d.images / 16.0 * 255.0).round().astype(np.uint8)
  big = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in imgs])
  big = np.repeat(big[..., None], 3, axis=-1)
  y = d.target.astype(np.int32)
  xtr, xte, ytr, yte = train_test_split(big, y, test_size=0.2, random_state=0, stratify=y)
  return xtr, ytr, xte, yte


DIGITS_PP_TRAIN = "to_float|pad_crop(2)|normalize('digits')"  # small shifts; no flips
DIGITS_PP_EVAL = "to_float|normalize('digits')"


@DATASETS.register("digits")
def digits(config) -> Dataset:
  xtr, ytr, xte, yte = digits_arrays()
  augment = bool(config.dataset.augment)
  info = DataInfo("digits", len(ytr), len(yte), num_classes=10,
                  features={"image": ((DIGITS_SIZE, DIGITS_SIZE, 3), "float32"),
                            "label": ((), "int32")})
  return Dataset(info, ArrayRecords(image=xtr, label=ytr), ArrayRecords(image=xte, label=yte),
                 DIGITS_PP_TRAIN if augment else DIGITS_PP_EVAL, DIGITS_PP_EVAL)


@DATASETS.register("synthetic")
def synthetic(config) -> Dataset:
  """Learnable random data for smoke tests: class prototypes plus noise.

  config.dataset may set num_classes (10), image_size (32), num_train (512),
  num_eval (128).
  """
  c = config.dataset
  k, s = int(c.get("num_classes", 10)), int(c.get("image_size", 32))
  ntr, nev = int(c.get("num_train", 512)), int(c.get("num_eval", 128))
  rng = np.random.default_rng(1234)
  protos = rng.normal(size=(k, s, s, 3)).astype(np.float32)

  def make(n, seed):
    r = np.random.default_rng(seed)
    y = r.integers(0, k, n).astype(np.int32)
    x = protos[y] + r.normal(scale=1.0, size=(n, s, s, 3)).astype(np.float32)
    return ArrayRecords(image=x, label=y)

  info = DataInfo("synthetic", ntr, nev, num_classes=k,
                  features={"image": ((s, s, 3), "float32"), "label": ((), "int32")})
  return Dataset(info, make(ntr, 1), make(nev, 2))
