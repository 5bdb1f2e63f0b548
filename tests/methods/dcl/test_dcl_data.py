"""DCL data start-up errors (FF++ layout), frame folders, and the seeds x modes aggregation."""
import json

import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxvision.data.base import DataNotReadyError
from jaxvision.methods.dcl import data


def _cfg(root, **dataset):
  return ml_collections.ConfigDict({
      "dataset": {"data_dir": str(root), "size": 8, **dataset},
      "dcl": {"intra_weight": 0.05, "mode": "dcl"}})


def _frames(folder, n=3, value=100):
  folder.mkdir(parents=True)
  for i in range(n):
    Image.fromarray(np.full((10, 10, 3), value + i, np.uint8)).save(folder / f"{i:04d}.png")


def test_ffpp_errors_name_the_problem(tmp_path):
  with pytest.raises(DataNotReadyError, match="is not a folder"):
    data.ffpp(_cfg(tmp_path / "none"))
  with pytest.raises(DataNotReadyError, match="split file"):
    data.ffpp(_cfg(tmp_path))
  (tmp_path / "splits").mkdir()
  for s in ("train", "test"):
    (tmp_path / "splits" / f"{s}.json").write_text(json.dumps([["000", "001"]]))
  with pytest.raises(DataNotReadyError, match="names 4 videos that are not in"):
    data.ffpp(_cfg(tmp_path, methods=("Deepfakes", "FaceSwap")))
  for v in ("000", "001"):
    _frames(tmp_path / "original_sequences/youtube/c23/faces" / v)
  _frames(tmp_path / "manipulated_sequences/Deepfakes/c23/faces/000_001", value=10)
  with pytest.raises(DataNotReadyError, match="needs forgery masks"):
    data.ffpp(_cfg(tmp_path, methods=("Deepfakes",)))
  with pytest.raises(ValueError, match="unknown"):
    data.ffpp(_cfg(tmp_path, methods=("DeepFaceLab",)))
  # With masks present: a class-balanced train split with masks (thresholded at 40).
  mdir = tmp_path / "manipulated_sequences/Deepfakes/masks/faces/000_001"
  mdir.mkdir(parents=True)
  for i in range(3):
    Image.fromarray(np.full((10, 10), 30 if i == 0 else 200, np.uint8)).save(mdir / f"{i:04d}.png")
  ds = data.ffpp(_cfg(tmp_path, methods=("Deepfakes",)))
  labels = [ds.train[i]["label"] for i in range(len(ds.train))]
  assert sorted(labels) == [0, 0, 0, 1, 1, 1]
  masks = {int(ds.train[i]["mask"].max()) for i in range(len(ds.train)) if ds.train[i]["label"]}
  assert masks == {0, 1} and ds.train[0]["image"].shape == (8, 8, 3)
  assert "mask" not in ds.eval[0] and len({ds.eval[i]["video_id"] for i in range(9)}) == 3


def test_forgery_frames_list(tmp_path):
  _frames(tmp_path / "real/a", n=30)
  _frames(tmp_path / "fake/b", n=30)
  (tmp_path / "list.txt").write_text("0 real/a\n1 fake/b\n")
  ds = data.forgery_frames(_cfg(tmp_path, list_file="list.txt"))
  labels = np.array([ds.eval[i]["label"] for i in range(len(ds.eval))])
  assert (labels == 0).sum() == 25 and (labels == 1).sum() == 12  # Celeb-DF frame counts
  (tmp_path / "list.txt").write_text("0 real/a\n1 fake/missing\n")
  with pytest.raises(DataNotReadyError, match="1 missing folders"):
    data.forgery_frames(_cfg(tmp_path, list_file="list.txt"))
