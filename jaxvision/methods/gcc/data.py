"""Pix2Pix paired datasets from user-prepared folders (the official `datasets/<name>` layout).

    <data_dir>/<name>/train/*.jpg, <data_dir>/<name>/val/*.jpg   each image = A | B side by side

`cityscapes_pix2pix` (direction BtoA: input = the label map B, target = the photo A) and
`edges2shoes` (AtoB: input = edges A, target = shoe B). Records {image, target} uint8 at
`config.dataset.load_size` (default 286; the official resize before the random 256 crop);
pp: joint random crop + flip, both scaled to [-1, 1]. Nothing is downloaded: a missing folder
stops at start-up with the command that prepares it.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
from jaxvision.data.base import DataNotReadyError, Dataset

_PAIRS = {"cityscapes_pix2pix": ("cityscapes", "BtoA"), "edges2shoes": ("edges2shoes", "AtoB")}
_EXT = (".jpg", ".jpeg", ".png")


class AlignedFolder:
  """Random-access A|B pair records of one split folder."""

  def __init__(self, folder: str, direction: str, load_size: int):
    self.files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                        if f.lower().endswith(_EXT))
    self.direction, self.load_size = direction, load_size

  def __len__(self):
    return len(self.files)

  def __getitem__(self, i):
    from PIL import Image
    ab = Image.open(self.files[int(i)]).convert("RGB")
    w, h = ab.size
    a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
    size = (self.load_size, self.load_size)
    a = np.asarray(a.resize(size, Image.BICUBIC))
    b = np.asarray(b.resize(size, Image.BICUBIC))
    src, dst = (b, a) if self.direction == "BtoA" else (a, b)
    return {"image": src, "target": dst}


def aligned(name: str, config) -> Dataset:
  folder_name, direction = _PAIRS[name]
  c = config.dataset
  root = os.path.join(os.path.expanduser(c.data_dir or "."), folder_name)
  splits = {}
  for split in ("train", "val"):
    d = os.path.join(root, split)
    if not os.path.isdir(d) or not any(f.lower().endswith(_EXT) for f in os.listdir(d)):
      raise DataNotReadyError(
          f"dataset '{name}': no images in {d}; download the official pix2pix set once "
          f"(`bash datasets/download_pix2pix_dataset.sh {folder_name}` from the pix2pix/CycleGAN "
          f"repository) and pass --config.dataset.data_dir=<the folder that holds {folder_name}/>")
    splits[split] = AlignedFolder(d, direction, int(c.get("load_size", 286)))
  crop = int(c.get("crop_size", 256))
  both = "keys=('image', 'target')"
  post = f"to_float({both})|normalize('half', {both})"
  info = DataInfo(name, len(splits["train"]), len(splits["val"]), value_range=(-1.0, 1.0),
                  features={"image": ((crop, crop, 3), "float32"),
                            "target": ((crop, crop, 3), "float32")})
  return Dataset(info, splits["train"], splits["val"],
                 f"random_crop({crop}, {both})|flip_lr({both})|{post}",
                 f"center_crop({crop}, {both})|{post}")


for _name in _PAIRS:
  DATASETS.register(_name, functools.partial(aligned, _name))
