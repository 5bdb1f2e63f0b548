"""DCL datasets: the offline demo (`dcl_faces`: procedural fakes of lfw_subset) and
user-prepared face-forgery frame folders (`ffpp`, and `forgery_frames` for cross-dataset tests).

Records: {"image": uint8 [S, S, 3], "label": int32 (1 fake), "mask": float32 [S, S] (train),
"video_id": int32}.

FF++ layout under `config.dataset.data_dir` (faces already cropped, e.g. with DSFD):
  splits/{train,val,test}.json          official 720/140/140 lists of [target, source] ids
  original_sequences/youtube/<comp>/faces/<video>/*.png
  manipulated_sequences/<method>/<comp>/faces/<target>_<source>/*.png
  manipulated_sequences/<method>/masks/faces/<target>_<source>/*.png   (same frame names)
`forgery_frames` (Celeb-DF v2, DFDC-P, DFD, WildDeepfake, ...): `data_dir/<list>` with lines
"<label 0|1> <frame folder relative to data_dir>" (one video per line).
"""
from __future__ import annotations

import json
import os

import numpy as np

from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
from jaxvision.data.base import ArrayRecords, Dataset, DataNotReadyError
from jaxvision.methods.dcl import fakes

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")


def _ds_get(config, key, default):
  d = config.dataset
  return d[key] if key in d else default


@DATASETS.register("dcl_faces")
def dcl_faces(config) -> Dataset:
  """Demo: reals and self-blended / swapped fakes of lfw_subset; eval = held-out identities
  and held-out blending variants (a small cross-manipulation test)."""
  size = int(_ds_get(config, "size", 64))
  train_v = tuple(_ds_get(config, "train_variants", ("sbi", "swap")))
  test_v = tuple(_ds_get(config, "test_variants", ("mouth",)))
  n_train_ids = int(_ds_get(config, "train_ids", 70))
  copies = int(_ds_get(config, "copies", 4))
  seed = int(_ds_get(config, "data_seed", 0))
  for v in train_v + test_v:
    if v not in fakes.VARIANTS:
      raise ValueError(f"dataset.train_variants/test_variants: unknown variant {v!r}; "
                       f"choose from {fakes.VARIANTS}.")
  faces = fakes.lfw_faces(size)
  tr = fakes.make_split(faces, range(n_train_ids), train_v, copies, seed,
                        real_copies=copies * len(train_v))
  te = fakes.make_split(faces, range(n_train_ids, len(faces)), test_v, max(1, copies // 2),
                        seed + 1, real_copies=max(1, copies // 2) * len(test_v))
  te.pop("variant"), tr.pop("variant")
  te.pop("mask")
  feats = {"image": ((size, size, 3), "uint8"), "label": ((), "int32"),
           "mask": ((size, size), "float32"), "video_id": ((), "int32")}
  info = DataInfo("dcl_faces", len(tr["label"]), len(te["label"]), feats, num_classes=2,
                  train_variants=train_v, test_variants=test_v)
  return Dataset(info, ArrayRecords(**tr), ArrayRecords(**te))


def _frames(folder: str, n: int) -> list[str]:
  names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg")))
  if not names:
    return []
  idx = np.unique(np.linspace(0, len(names) - 1, min(n, len(names))).astype(int))
  return [os.path.join(folder, names[i]) for i in idx]


class FrameRecords:
  """Lazily loaded face frames: (path, label, video id, mask path or '')."""

  def __init__(self, rows, size: int, with_mask: bool):
    self.rows, self.size, self.with_mask = rows, size, with_mask

  def __len__(self):
    return len(self.rows)

  def __getitem__(self, i):
    from PIL import Image  # pylint: disable=import-outside-toplevel
    path, label, vid, mpath = self.rows[i]
    img = Image.open(path).convert("RGB").resize((self.size, self.size), Image.BILINEAR)
    out = {"image": np.asarray(img, np.uint8), "label": np.int32(label), "video_id": np.int32(vid)}
    if self.with_mask:
      if mpath and os.path.exists(mpath):
        m = np.asarray(Image.open(mpath).convert("L").resize((self.size, self.size),
                                                             Image.BILINEAR))
        out["mask"] = (m > 40).astype(np.float32)  # official threshold 40
      else:  # reals: zeros; a fake without a mask file: ones (official)
        out["mask"] = np.full((self.size, self.size), float(label), np.float32)
    return out


def _ffpp_rows(root, split, comp, methods, real_frames, fake_frames, with_mask):
  path = os.path.join(root, "splits", f"{split}.json")
  if not os.path.exists(path):
    raise DataNotReadyError(f"FF++ split file {path} is missing; put the official "
                            "splits/{train,val,test}.json under dataset.data_dir.")
  with open(path) as f:
    pairs = json.load(f)
  rows, missing = [], []
  vid = 0
  for t, s in pairs:
    for name in (t, s):
      d = os.path.join(root, "original_sequences", "youtube", comp, "faces", name)
      if not os.path.isdir(d):
        missing.append(d)
        continue
      rows += [(p, 0, vid, "") for p in _frames(d, real_frames)]
      vid += 1
    for m in methods:
      d = os.path.join(root, "manipulated_sequences", m, comp, "faces", f"{t}_{s}")
      md = os.path.join(root, "manipulated_sequences", m, "masks", "faces", f"{t}_{s}")
      if not os.path.isdir(d):
        missing.append(d)
        continue
      if with_mask and not os.path.isdir(md):
        raise DataNotReadyError(f"Intra-ICL needs forgery masks but {md} is missing; add the "
                                "FF++ masks or set dcl.intra_weight=0 (mode no_intra).")
      rows += [(p, 1, vid, os.path.join(md, os.path.basename(p)))
               for p in _frames(d, fake_frames)]
      vid += 1
  if missing:
    raise DataNotReadyError(f"FF++ {split} split names {len(missing)} videos that are not in "
                            f"{root}, e.g. {missing[0]}; extract their face frames first.")
  return rows


def _balance(rows, seed):
  """Subsample the majority class to the minority's size (official, seed 1234)."""
  y = np.array([r[1] for r in rows])
  n = min((y == 0).sum(), (y == 1).sum())
  rng = np.random.default_rng(seed)
  keep = np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c in (0, 1)])
  return [rows[i] for i in np.sort(keep)]


@DATASETS.register("ffpp")
def ffpp(config) -> Dataset:
  """FaceForensics++ frames (dataset.compression c23|c40, dataset.methods; train: 50 frames
  per real and 16 per fake video, class-balanced; eval: dataset.eval_split, 50 per video)."""
  root = os.path.expanduser(config.dataset.data_dir)
  if not root or not os.path.isdir(root):
    raise DataNotReadyError(f"dataset.data_dir={root!r} is not a folder; prepare FF++ face "
                            "frames as described in jaxvision/methods/dcl/data.py.")
  comp = _ds_get(config, "compression", "c23")
  methods = tuple(_ds_get(config, "methods", FFPP_METHODS))
  bad = [m for m in methods if m not in FFPP_METHODS]
  if bad:
    raise ValueError(f"dataset.methods: unknown {bad}; choose from {FFPP_METHODS}.")
  size = int(_ds_get(config, "size", 299))
  with_mask = "dcl" in config and config.dcl.intra_weight > 0 and config.dcl.mode in (
      "dcl", "no_inter")
  tr = _balance(_ffpp_rows(root, "train", comp, methods, 50, 16, with_mask), 1234)
  ev = _ffpp_rows(root, _ds_get(config, "eval_split", "test"), comp,
                  tuple(_ds_get(config, "eval_methods", methods)), 50, 50, False)
  feats = {"image": ((size, size, 3), "uint8"), "label": ((), "int32"),
           "video_id": ((), "int32")}
  if with_mask:
    feats["mask"] = ((size, size), "float32")
  info = DataInfo("ffpp", len(tr), len(ev), feats, num_classes=2)
  return Dataset(info, FrameRecords(tr, size, with_mask), FrameRecords(ev, size, False))


@DATASETS.register("forgery_frames")
def forgery_frames(config) -> Dataset:
  """A test-only frame-folder list (dataset.list_file under data_dir; dataset.frames per
  video): Celeb-DF v2 (25 real / 12 fake frames in the official test), DFDC-P, DFD, WDF."""
  root = os.path.expanduser(config.dataset.data_dir)
  lst = os.path.join(root, _ds_get(config, "list_file", "test_list.txt"))
  if not os.path.exists(lst):
    raise DataNotReadyError(f"frame list {lst} is missing (lines '<label> <folder>').")
  size = int(_ds_get(config, "size", 299))
  n_real, n_fake = _ds_get(config, "frames", (25, 12))
  rows, missing = [], []
  with open(lst) as f:
    for vid, line in enumerate(l for l in f if l.strip()):
      label, rel = line.split(maxsplit=1)
      d = os.path.join(root, rel.strip())
      if not os.path.isdir(d):
        missing.append(d)
        continue
      rows += [(p, int(label), vid, "") for p in _frames(d, n_fake if int(label) else n_real)]
  if missing:
    raise DataNotReadyError(f"{lst} names {len(missing)} missing folders, e.g. {missing[0]}.")
  feats = {"image": ((size, size, 3), "uint8"), "label": ((), "int32"), "video_id": ((), "int32")}
  recs = FrameRecords(rows, size, False)
  return Dataset(DataInfo("forgery_frames", len(rows), len(rows), feats, num_classes=2), recs, recs)
