"""SR image folders: lazy crops, modcropped eval images, one-line errors for bad folders."""
import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxvision.core.errors import ConfigError
from jaxvision.core.registry import DATASETS
from jaxvision.data.base import DataNotReadyError
from jaxvision.methods.decloss import data  # noqa: F401  (registers sr_folder, sr_test_*)


def _cfg(**kw):
  return ml_collections.ConfigDict({"dataset": {"name": "sr_folder", "scale": 4, "patch": 16,
                                                "crop": 20, "num_train": 6, **kw}})


def _write(folder, sizes):
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  imgs = []
  for i, (h, w) in enumerate(sizes):
    im = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(im).save(folder / f"{i:02d}.png")
    imgs.append(im)
  return imgs


def test_sr_folder_records(tmp_path):
  train = _write(tmp_path / "train", [(30, 41), (25, 25)])
  ev = _write(tmp_path / "val", [(27, 34)])
  ds = DATASETS.get("sr_folder")(_cfg(train_folder=str(tmp_path / "train"),
                                      folder=str(tmp_path / "val")))
  assert len(ds.train) == 6 and len(ds.eval) == 1 and ds.info.scale == 4
  for i in range(6):
    rec = ds.train[i]["hr"]
    assert rec.shape == (20, 20, 3) and rec.dtype == np.uint8
    p = ds.train.pid[i]
    y, x = ds.train.ys[i], ds.train.xs[i]
    np.testing.assert_array_equal(rec, train[p][y:y + 20, x:x + 20])
  np.testing.assert_array_equal(ds.eval[0]["hr"], ev[0][:24, :32])  # modcrop to x4
  assert "bicubic_down(4)" in ds.pp_eval


def test_bad_folders_fail_with_one_line(tmp_path):
  _write(tmp_path / "train", [(30, 30)])
  (tmp_path / "train" / "notes.txt").write_text("x")
  with pytest.raises(DataNotReadyError, match=r"notes.txt is not an image"):
    DATASETS.get("sr_folder")(_cfg(train_folder=str(tmp_path / "train"), folder="x"))
  with pytest.raises(DataNotReadyError, match="does not exist"):
    DATASETS.get("sr_folder")(_cfg(train_folder=str(tmp_path / "nope"), folder="x"))
  with pytest.raises(ConfigError, match="train_folder"):
    DATASETS.get("sr_folder")(_cfg(train_folder="", folder="x"))
  with pytest.raises(ConfigError, match="test_root"):
    DATASETS.get("sr_test_set5")(_cfg(test_root=""))
  _write(tmp_path / "tests" / "Set5", [(12, 16)])
  ds = DATASETS.get("sr_test_set5")(_cfg(test_root=str(tmp_path / "tests")))
  assert ds.eval[0]["hr"].shape == (12, 16, 3)
