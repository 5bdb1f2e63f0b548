"""GCC's Pix2Pix folders: A|B split and direction, the official test load size, and Cityscapes
trainId labels matched to the val images by name through GCC's table (for drn_miou)."""
import numpy as np
import pytest
from PIL import Image

import jaxvision.methods.gcc  # noqa: F401  (registers the GCC datasets)
from jaxvision.core.registry import DATASETS
from jaxvision.data.base import DataNotReadyError

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


def _write(root, stems):
  for split in ("train", "val"):
    (root / "cityscapes" / split).mkdir(parents=True)
    for k, s in enumerate(stems):
      ab = np.zeros((64, 128, 3), np.uint8)
      ab[:, :64] = 10 * k + 1      # A = photo
      ab[:, 64:] = 200             # B = label map
      Image.fromarray(ab).save(root / "cityscapes" / split / f"{s}.png")


def test_cityscapes_val_labels_by_name_and_test_load_size(load_config, tmp_path):
  stems = ["1", "10", "2"]                     # sorted file order: 1, 10, 2
  _write(tmp_path, stems)
  gt = tmp_path / "cs" / "gtFine" / "val" / "x"
  gt.mkdir(parents=True)
  lines = []
  for s in ("1", "2", "10"):                   # the table's order differs from the files'
    Image.fromarray(np.full((4, 8), int(s), np.uint8)).save(gt / f"{s}_gtFine_trainIds.png")
    lines.append(f"{s} gtFine/val/x/{s}_gtFine_trainIds.png leftImg8bit/val/x/{s}.png")
  table = tmp_path / "table.txt"
  table.write_text("\n".join(lines) + "\n")
  c = load_config("gcc", "pix2pix_cityscapes")
  c.dataset.data_dir = str(tmp_path)
  ds = DATASETS.get("cityscapes_pix2pix")(c)
  assert "label" not in ds.info.features and "label" not in ds.eval[0]   # no table: no labels
  c.dataset.update(table_path=str(table), cityscapes_dir=str(tmp_path / "cs"))
  ds = DATASETS.get("cityscapes_pix2pix")(c)
  assert ds.info.features["label"] == ((1024, 2048), "uint8")
  for i, s in enumerate(["1", "10", "2"]):
    r = ds.eval[i]
    assert r["label"].shape == (4, 8) and np.all(r["label"] == int(s))
    assert r["image"].shape == (256, 256, 3) and np.all(r["image"] == 200)    # BtoA: input = B
    assert np.all(np.abs(r["target"].astype(int) - (10 * i + 1)) <= 1)
  assert ds.train[0]["image"].shape == (286, 286, 3) and "label" not in ds.train[0]
  table.write_text(lines[0] + "\n")
  with pytest.raises(DataNotReadyError, match="no label for 2 val images"):
    DATASETS.get("cityscapes_pix2pix")(c)
  c.dataset.table_path = str(tmp_path / "nope.txt")
  with pytest.raises(DataNotReadyError, match="prepare_cityscapes_dataset.py --table_path"):
    DATASETS.get("cityscapes_pix2pix")(c)
