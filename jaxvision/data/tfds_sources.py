"""tfds datasets read with `tfds.data_source` (ArrayRecord, random access, no TensorFlow).

The data must be prepared in `config.dataset.data_dir` (array_record format)
beforehand; nothing is downloaded unless `config.dataset.download=True`. A
missing dataset fails at once with the command that prepares it.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
from jaxvision.data import ops
from jaxvision.data.base import DataNotReadyError, Dataset

# name -> (tfds name, classes, train split, eval split, image size)
_SPECS = {
    "cifar10": ("cifar10", 10, "train", "test", 32),
    "cifar100": ("cifar100", 100, "train", "test", 32),
    "imagenet2012": ("imagenet2012", 1000, "train", "validation", 224),
}


def _prepare_hint(tfds_name: str, data_dir: str) -> str:
  return (f"prepare it once with network access and TensorFlow (pip install tensorflow-cpu; "
          f"only this step needs it): `python -c \"import tensorflow_datasets as tfds; "
          f"tfds.builder('{tfds_name}', data_dir='{data_dir}', file_format='array_record')"
          f".download_and_prepare()\"` (ImageNet needs the manual tar files in "
          f"{data_dir}/downloads/manual), then pass --config.dataset.data_dir={data_dir}")


def load_source(tfds_name: str, split: str, data_dir: str, download: bool):
  """Returns a random-access tfds data source, or raises DataNotReadyError quickly."""
  import tensorflow_datasets as tfds
  data_dir = os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))
  if not download and not os.path.isdir(os.path.join(data_dir, tfds_name)):
    raise DataNotReadyError(f"dataset '{tfds_name}' is not prepared in {data_dir}; "
                            + _prepare_hint(tfds_name, data_dir))
  try:
    return tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=download)
  except (AssertionError, NotImplementedError, FileNotFoundError) as e:
    raise DataNotReadyError(f"dataset '{tfds_name}' in {data_dir} cannot be read as "
                            f"array_record ({type(e).__name__}); " + _prepare_hint(tfds_name, data_dir)) from e


def _cifar_preprocess(ex, rng, train, augment=True):
  img = ops.to_float(ops.decode_image(ex["image"]))
  if train and augment and rng is not None:
    img = ops.random_flip(ops.pad_crop(img, 4, rng), rng)
  return {"image": ops.normalize(img, ops.CIFAR_MEAN, ops.CIFAR_STD), "label": np.int32(ex["label"])}


def _imagenet_preprocess(ex, rng, train, augment=True):
  img = ops.decode_image(ex["image"])
  if train and augment and rng is not None:
    img = ops.random_flip(ops.inception_crop(img, 224, rng), rng)
  else:
    img = ops.resize_center_crop(img, 256, 224)
  img = ops.to_float(img)
  return {"image": ops.normalize(img, ops.IMAGENET_MEAN, ops.IMAGENET_STD), "label": np.int32(ex["label"])}


def _make(name, config) -> Dataset:
  tfds_name, k, tr, ev, size = _SPECS[name]
  c = config.dataset
  train = load_source(tfds_name, c.get("train_split", tr) or tr, c.data_dir, bool(c.download))
  evals = load_source(tfds_name, c.get("eval_split", ev) or ev, c.data_dir, bool(c.download))
  prep = _imagenet_preprocess if name == "imagenet2012" else _cifar_preprocess
  info = DataInfo(name, k, (size, size, 3), len(train), len(evals))
  return Dataset(info, train, evals, functools.partial(prep, augment=bool(c.augment)))


for _name in _SPECS:
  DATASETS.register(_name, functools.partial(_make, _name))
