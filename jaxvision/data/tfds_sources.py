"""tfds datasets read with `tfds.data_source` (ArrayRecord, random access, no TensorFlow).

The data must be prepared in `config.dataset.data_dir` (array_record format)
beforehand; nothing is downloaded unless `config.dataset.download=True`. A
missing dataset fails at once with the command that prepares it.
"""
from __future__ import annotations

import functools
import os

from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
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
    src = tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=download)
    if len(src):
      src[0], src[len(src) - 1]  # noqa: B018  (garbage shards fail here, at start-up)
    return src
  except (AssertionError, NotImplementedError, FileNotFoundError) as e:
    raise DataNotReadyError(f"dataset '{tfds_name}' in {data_dir} cannot be read as "
                            f"array_record ({type(e).__name__}); " + _prepare_hint(tfds_name, data_dir)) from e
  except Exception as e:  # noqa: BLE001  (array_record/protobuf raise many types on bad shards)
    raise DataNotReadyError(f"dataset '{tfds_name}' in {data_dir} has unreadable shards "
                            f"({type(e).__name__}: {str(e)[:120]}); delete {data_dir}/{tfds_name} "
                            f"and prepare it again: " + _prepare_hint(tfds_name, data_dir)) from e


_PP = {
    "cifar": ("to_float|pad_crop(4)|flip_lr|normalize('cifar10')", "to_float|normalize('cifar10')"),
    "imagenet": ("decode|inception_crop(224)|flip_lr|to_float|normalize('imagenet')",
                 "decode|resize_center_crop(256, 224)|to_float|normalize('imagenet')"),
}


class _Keep:
  """tfds records reduced to the keys the pipeline uses (drops string ids)."""

  def __init__(self, source, keys=("image", "label")):
    self.source, self.keys = source, keys

  def __len__(self):
    return len(self.source)

  def __getitem__(self, i):
    ex = self.source[int(i)]
    return {k: ex[k] for k in self.keys}


def _make(name, config) -> Dataset:
  tfds_name, k, tr, ev, size = _SPECS[name]
  c = config.dataset
  train = load_source(tfds_name, c.get("train_split", tr) or tr, c.data_dir, bool(c.download))
  evals = load_source(tfds_name, c.get("eval_split", ev) or ev, c.data_dir, bool(c.download))
  pp_train, pp_eval = _PP["imagenet" if name == "imagenet2012" else "cifar"]
  info = DataInfo(name, len(train), len(evals), num_classes=k,
                  features={"image": ((size, size, 3), "float32"), "label": ((), "int32")})
  return Dataset(info, _Keep(train), _Keep(evals), pp_train if bool(c.augment) else pp_eval,
                 pp_eval)


for _name in _SPECS:
  DATASETS.register(_name, functools.partial(_make, _name))
