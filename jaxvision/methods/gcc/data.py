"""GCC datasets: Pix2Pix pairs from folders, CycleGAN horse2zebra from tfds, a synthetic
unpaired demo on the embedded photos.

Pix2Pix paired datasets from user-prepared folders (the official `datasets/<name>` layout).

    <data_dir>/<name>/train/*.jpg, <data_dir>/<name>/val/*.jpg   each image = A | B side by side

`cityscapes_pix2pix` (direction BtoA: input = the label map B, target = the photo A) and
`edges2shoes` (AtoB: input = edges A, target = shoe B). Records {image, target} uint8 at
`config.dataset.load_size` (default 286; the official resize before the random 256 crop) for
training and `eval_load_size` (default crop_size 256, the official test's load_size: no crop)
for val; pp: joint random crop + flip, both scaled to [-1, 1]. Cityscapes mIoU (evaluator
`drn_miou`): with `dataset.table_path` (GCC's prepare_cityscapes_dataset.py --table_path, lines
`<val stem> gtFine/val/<city>/<x>_gtFine_trainIds.png ...`) and `dataset.cityscapes_dir` (the
folder holding gtFine/, trainIds from get_trainIds.py), val records carry `label`, the
full-resolution trainId map [1024, 2048] uint8. Nothing is downloaded: a missing folder or
file stops at start-up with what prepares it.

Unpaired (CycleGAN, records {A, B}; gcc.task='unpaired'):
  horse2zebra      tfds `cycle_gan/horse2zebra` (trainA 1067 horses / trainB 1334 zebras; testA
                   120 / testB 140), prepared in config.dataset.data_dir. Train record i = (A[i %
                   nA], B[perm(i) % nB]) at load_size 286 (a fixed random pairing: the loop
                   reshuffles the records every epoch, the pair of record i stays; the official
                   loader draws a fresh B each time); pp: independent random 256 crops and flips
                   of A and B. Eval: max(nA, nB) rows, A[i % nA], B[i % nB], with a_valid =
                   i < nA and b_valid = i < nB (FID counts 120 fakes against 140 zebras).
  photos_unpaired  SYNTHETIC demo on the embedded photos (jaxvision.data.photos): domain A =
                   crops of the photos, domain B = crops (at other windows) of the same photos
                   under the fixed colour transform `synthetic_b` (inverted colours with the
                   channels rolled, 255 - x[..., [1, 2, 0]]; invertible, so cycle-consistent).
                   Eval: tiles of the 3 test photos with target = synthetic_b(A), the ground
                   truth of A -> B (PSNR/SSIM possible).
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

  def __init__(self, folder: str, direction: str, load_size: int,
               labels: dict[str, str] | None = None):
    self.files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                        if f.lower().endswith(_EXT))
    self.direction, self.load_size, self.labels = direction, load_size, labels
    if labels is not None:
      missing = [f for f in self.files if _stem(f) not in labels]
      if missing:
        raise DataNotReadyError(f"the Cityscapes table has no label for {len(missing)} val "
                                f"images (e.g. {os.path.basename(missing[0])}); regenerate it "
                                "with GCC's prepare_cityscapes_dataset.py --table_path")

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
    out = {"image": src, "target": dst}
    if self.labels is not None:
      out["label"] = np.asarray(Image.open(self.labels[_stem(self.files[int(i)])]), np.uint8)
    return out


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def cityscapes_labels(table_path: str, cityscapes_dir: str) -> dict[str, str]:
  """{val image stem: trainId PNG path} from GCC's table (first column = the stem, second =
  the gtFine path relative to cityscapes_dir); matched by name, not by sorted position."""
  if not os.path.isfile(table_path):
    raise DataNotReadyError(f"dataset.table_path={table_path!r} does not exist; write it with "
                            "GCC's `datasets/prepare_cityscapes_dataset.py --table_path`")
  out = {}
  with open(table_path) as f:
    for n, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      if len(parts) < 2 or "trainIds" not in parts[1]:
        raise DataNotReadyError(f"{table_path}:{n}: expected '<stem> gtFine/.../"
                                f"*_gtFine_trainIds.png ...', got {line.strip()!r}")
      out[parts[0]] = os.path.join(cityscapes_dir, parts[1])
  if out and not os.path.isfile(next(iter(out.values()))):
    raise DataNotReadyError(f"{next(iter(out.values()))} does not exist; set "
                            "dataset.cityscapes_dir to the folder holding gtFine/ and make the "
                            "trainId maps with cityscapesscripts' createTrainIdLabelImgs")
  return out


def aligned(name: str, config) -> Dataset:
  folder_name, direction = _PAIRS[name]
  c = config.dataset
  root = os.path.join(os.path.expanduser(c.data_dir or "."), folder_name)
  for split in ("train", "val"):
    d = os.path.join(root, split)
    if not os.path.isdir(d) or not any(f.lower().endswith(_EXT) for f in os.listdir(d)):
      raise DataNotReadyError(
          f"dataset '{name}': no images in {d}; download the official pix2pix set once "
          f"(`bash datasets/download_pix2pix_dataset.sh {folder_name}` from the pix2pix/CycleGAN "
          f"repository) and pass --config.dataset.data_dir=<the folder that holds {folder_name}/>")
  crop = int(c.get("crop_size", 256))
  labels = None
  if name == "cityscapes_pix2pix" and c.get("table_path", ""):
    labels = cityscapes_labels(os.path.expanduser(c.table_path),
                               os.path.expanduser(c.get("cityscapes_dir", "") or "."))
  splits = {"train": AlignedFolder(os.path.join(root, "train"), direction,
                                   int(c.get("load_size", 286))),
            "val": AlignedFolder(os.path.join(root, "val"), direction,
                                 int(c.get("eval_load_size", crop)), labels)}
  both = "keys=('image', 'target')"
  post = f"to_float({both})|normalize('half', {both})"
  feats = {"image": ((crop, crop, 3), "float32"), "target": ((crop, crop, 3), "float32")}
  if labels is not None:
    feats["label"] = ((1024, 2048), "uint8")
  info = DataInfo(name, len(splits["train"]), len(splits["val"]), value_range=(-1.0, 1.0),
                  features=feats)
  return Dataset(info, splits["train"], splits["val"],
                 f"random_crop({crop}, {both})|flip_lr({both})|{post}",
                 f"center_crop({crop}, {both})|{post}")


for _name in _PAIRS:
  DATASETS.register(_name, functools.partial(aligned, _name))


# ------------------------------------------------------------------------ unpaired (CycleGAN)
UNPAIRED_KEYS = "keys=('A', 'B')"


def _unpaired_pp(crop: int | None) -> tuple[str, str]:
  post = f"to_float({UNPAIRED_KEYS})|normalize('half', {UNPAIRED_KEYS})"
  if crop is None:
    return post, post
  # one random draw per op: separate ops give A and B independent crops / flips (unpaired)
  aug = "|".join(f"random_crop({crop}, keys=('{k}',))|flip_lr(keys=('{k}',))" for k in "AB")
  return f"{aug}|{post}", post


class UnpairedRecords:
  """Record i = {A: a[i % nA], B: b[perm[i] % nB]} (uint8, resized to `size` when given);
  eval=True: no permutation and + a_valid / b_valid (i < nA, i < nB)."""

  def __init__(self, a, b, *, size: int | None = None, seed: int = 0, eval: bool = False):
    self.a, self.b, self.size, self.eval = a, b, size, eval
    self.n = max(len(a), len(b))
    self.perm = (np.arange(self.n) if eval
                 else np.random.default_rng((seed, 41)).permutation(self.n))

  def __len__(self):
    return self.n

  def _image(self, src, j):
    im = src[int(j)]
    im = np.asarray(im["image"] if isinstance(im, dict) else im, np.uint8)
    if self.size and im.shape[:2] != (self.size, self.size):
      from PIL import Image
      im = np.asarray(Image.fromarray(im).resize((self.size, self.size), Image.BICUBIC))
    return im

  def __getitem__(self, i):
    i = int(i)
    if not 0 <= i < self.n:
      raise IndexError(i)
    out = {"A": self._image(self.a, i % len(self.a)),
           "B": self._image(self.b, self.perm[i] % len(self.b))}
    if self.eval:
      out.update(a_valid=np.bool_(i < len(self.a)), b_valid=np.bool_(i < len(self.b)))
    return out


@DATASETS.register("horse2zebra")
def horse2zebra(config) -> Dataset:
  """tfds cycle_gan/horse2zebra (see module). config.dataset: data_dir, download, load_size
  (286), crop_size (256), data_seed."""
  from jaxvision.data.tfds_sources import load_source
  c = config.dataset
  src = {s: load_source("cycle_gan/horse2zebra", s, c.get("data_dir", ""),
                        bool(c.get("download", False)))
         for s in ("trainA", "trainB", "testA", "testB")}
  crop = int(c.get("crop_size", 256))
  train = UnpairedRecords(src["trainA"], src["trainB"], size=int(c.get("load_size", 286)),
                          seed=int(c.get("data_seed", 0)))
  evals = UnpairedRecords(src["testA"], src["testB"], size=crop, eval=True)
  pp_train, pp_eval = _unpaired_pp(crop)
  feats = {"A": ((crop, crop, 3), "float32"), "B": ((crop, crop, 3), "float32")}
  info = DataInfo("horse2zebra", len(train), len(evals), value_range=(-1.0, 1.0), features=feats,
                  eval_features={**feats, "a_valid": ((), "bool"), "b_valid": ((), "bool")},
                  num_eval_a=len(src["testA"]), num_eval_b=len(src["testB"]))
  return Dataset(info, train, evals, pp_train, pp_eval)


def synthetic_b(x: np.ndarray) -> np.ndarray:
  """The demo's domain-B transform of uint8 images [..., 3]: 255 - x[..., [1, 2, 0]]."""
  x = np.asarray(x, np.uint8)
  return (255 - x[..., [1, 2, 0]]).astype(np.uint8)


class _TwoCrops:
  """Record i = {A: crop i of `a`, B: crop i of `b`} (two PhotoCrops at independent windows)."""

  def __init__(self, a, b):
    self.a, self.b = a, b

  def __len__(self):
    return len(self.a)

  def __getitem__(self, i):
    return {**self.a[i], **self.b[i]}

  def take(self, idx) -> dict:
    return {**self.a.take(idx), **self.b.take(idx)}


@DATASETS.register("photos_unpaired")
def photos_unpaired(config) -> Dataset:
  """SYNTHETIC unpaired demo (see module). config.dataset: image_size (32), jitter (4; train
  records are image_size + jitter), num_train (2000), num_eval (0 = every test tile; else that
  many evenly spaced tiles), data_seed (0)."""
  from jaxvision.data import photos as ph
  from jaxvision.data.base import ArrayRecords
  c = config.dataset
  size, jitter = int(c.get("image_size", 32)), int(c.get("jitter", 4))
  n, seed = int(c.get("num_train", 2000)), int(c.get("data_seed", 0))
  train_b = [synthetic_b(p) for p in ph.photos("train")]
  train = _TwoCrops(ph.PhotoCrops({"A": ph.photos("train")}, size + jitter, n, seed),
                    ph.PhotoCrops({"B": train_b}, size + jitter, n, seed + 1))
  tiles = ph.tile_crops(ph.photos("test"), size)
  k = int(c.get("num_eval", 0))
  if 0 < k < len(tiles):
    tiles = tiles[np.linspace(0, len(tiles) - 1, k).round().astype(int)]
  tb = synthetic_b(tiles)
  evals = ArrayRecords(A=tiles, B=tb, target=tb)
  keys = "keys=('A', 'B', 'target')"
  pp_train, _ = _unpaired_pp(size)
  pp_eval = f"to_float({keys})|normalize('half', {keys})"
  feats = {"A": ((size, size, 3), "float32"), "B": ((size, size, 3), "float32")}
  info = DataInfo("photos_unpaired", len(train), len(evals), value_range=(-1.0, 1.0),
                  features=feats, eval_features={**feats, "target": ((size, size, 3), "float32")},
                  synthetic="B = 255 - A[..., [1, 2, 0]] (fixed colour transform)")
  return Dataset(info, train, evals, pp_train, pp_eval)


# ------------------------------------------------------------------------------ noise (SAGAN)
class _Indexed:
  """Records {image, index} (index = the record number: the eval z of example i is fixed)."""

  def __init__(self, images, transform=None):
    self.images, self.transform = images, transform

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    i = int(i)
    im = self.images[i]
    im = np.asarray(im["image"] if isinstance(im, dict) else im, np.uint8)
    if self.transform is not None:
      im = self.transform(im)
    return {"image": im, "index": np.int32(i)}


def _celeba_64(im: np.ndarray) -> np.ndarray:
  """Centre crop 160 -> resize 64 (bilinear; the SAGAN CelebA recipe)."""
  from PIL import Image
  h, w = im.shape[:2]
  y, x = (h - 160) // 2, (w - 160) // 2
  return np.asarray(Image.fromarray(im[y:y + 160, x:x + 160]).resize((64, 64), Image.BILINEAR))


def _noise_dataset(name, train, evals, size):
  post = "to_float|normalize('half')"
  info = DataInfo(name, len(train), len(evals), value_range=(-1.0, 1.0),
                  features={"image": ((size, size, 3), "float32"), "index": ((), "int32")})
  return Dataset(info, train, evals, f"flip_lr|{post}", post)


@DATASETS.register("celeba_gan")
def celeba_gan(config) -> Dataset:
  """tfds celeb_a (aligned, 178x218) -> centre 160 crop -> 64x64, records {image, index}.
  config.dataset: data_dir, download, num_eval (0 = the whole test split; the code's FID uses
  the first 10% of its loader)."""
  from jaxvision.data.tfds_sources import load_source
  c = config.dataset
  src = {s: load_source("celeb_a", s, c.get("data_dir", ""), bool(c.get("download", False)))
         for s in ("train", "test")}
  ev = src["test"]
  k = int(c.get("num_eval", 0))
  if 0 < k < len(ev):
    ev = [ev[i] for i in range(k)]
  return _noise_dataset("celeba_gan", _Indexed(src["train"], _celeba_64),
                        _Indexed(ev, _celeba_64), 64)


@DATASETS.register("faces_gan")
def faces_gan(config) -> Dataset:
  """Demo: the real faces of scikit-image's lfw_subset (label 1 of jaxvision.data.photos.faces:
  75 train / 25 test after its fixed split), grey 25x25 replicated to 3 channels and resized
  bilinearly to 64x64; records {image, index}."""
  from jaxvision.data.photos import faces_arrays
  xtr, ytr, xte, yte = faces_arrays(64, 3)
  return _noise_dataset("faces_gan", _Indexed(xtr[ytr == 1]), _Indexed(xte[yte == 1]), 64)


@DATASETS.register("faces_edges")
def faces_edges(config) -> Dataset:
  """Demo: edges -> face on the real faces of scikit-image's lfw_subset (the 75 train / 25 test
  faces of `faces_gan`, grey 25x25 resized bilinearly to image_size and replicated to 3
  channels). Records {image: Canny edges of the face (skimage.feature.canny, sigma
  config.dataset.canny_sigma, default 1.5; uint8 0/255), target: the face}; pp: joint
  flip (train), both scaled to [-1, 1]. A narrow domain, as edges2shoes is: the face's layout
  follows from its edges, its brightness does not."""
  from jaxvision.data.base import ArrayRecords
  from jaxvision.data.photos import canny_edges, faces_arrays
  size = int(config.dataset.get("image_size", 64))
  sigma = float(config.dataset.get("canny_sigma", 1.5))
  xtr, ytr, xte, yte = faces_arrays(size, 3)

  def records(x):
    return ArrayRecords(image=np.stack([canny_edges(im[..., 0] / 255.0, sigma) for im in x]),
                        target=x)

  both = "keys=('image', 'target')"
  post = f"to_float({both})|normalize('half', {both})"
  info = DataInfo("faces_edges", int((ytr == 1).sum()), int((yte == 1).sum()),
                  value_range=(-1.0, 1.0),
                  features={"image": ((size, size, 3), "float32"),
                            "target": ((size, size, 3), "float32")})
  return Dataset(info, records(xtr[ytr == 1]), records(xte[yte == 1]), f"flip_lr({both})|{post}",
                 post)
