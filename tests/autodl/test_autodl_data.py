"""AutoDL format: parser round trips (dense, sparse, PNG exact; JPEG close), metadata
API, bad input, and domain inference on the five tiny metadata sets (spec §11.4, §11.6)."""
import os

import numpy as np
import pytest

from jaxvision.autodl import data, demo_data
from jaxvision.autodl.solution import model_selector


def _roundtrip(tmp_path, xs, ys, fmt, **kw):
  d = str(tmp_path / fmt)
  data.write_dataset(d, "toy", (xs, ys), (xs[:2], ys[:2]), fmt=fmt, **kw)
  got = list(data.read_split(d, "train").get_dataset())
  return d, got


def test_dense_and_sparse_roundtrip_exact(tmp_path):
  rng = np.random.default_rng(0)
  xs = [rng.standard_normal((3, 2, 5, 2)).astype(np.float32) for _ in range(5)]
  ys = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]]
  ys[0, 2] = 0.5  # label scores survive too
  d, got = _roundtrip(tmp_path, xs, ys, "dense")
  for (x, y), x0, y0 in zip(got, xs, ys):
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
  xs_sparse = [x * (np.abs(x) > 1.0) for x in xs]
  _, got = _roundtrip(tmp_path, xs_sparse, ys, "sparse")
  for (x, _), x0 in zip(got, xs_sparse):
    np.testing.assert_array_equal(x, x0)
  # the test split carries no labels; the solution file holds them in record order
  test = list(data.read_split(d, "test"))
  assert all(not y.any() for _, y in test)
  np.testing.assert_array_equal(data.load_solution(d), ys[:2])
  md = data.read_split(d, "train").get_metadata()
  assert md.get_tensor_shape() == (3, 2, 5, 2) and md.size() == 5 and md.get_output_size() == 4
  assert not md.is_compressed() and not md.is_sparse()


def test_png_exact_jpeg_close_variable_size(tmp_path):
  rng = np.random.default_rng(1)
  # variable H, W across examples (metadata -1), values on the 8-bit grid: PNG is exact
  xs = [np.round(rng.random((2, 6 + i, 9 - i, 3)) * 255) / 255 for i in range(4)]
  ys = np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
  d, got = _roundtrip(tmp_path, xs, ys, "png")
  for (x, _), x0 in zip(got, xs):
    np.testing.assert_array_equal(x, x0.astype(np.float32))
  md = data.read_split(d, "train").get_metadata()
  assert md.get_matrix_size() == (-1, -1) and md.is_compressed() and md.get_num_channels() == 3
  # smooth grey frames through JPEG: mean abs error < 0.05
  g = np.linspace(0, 1, 16)
  smooth = [np.broadcast_to((np.add.outer(g, g) / 2)[None, :, :, None] * (0.5 + 0.1 * i),
                            (1, 16, 16, 1)).copy() for i in range(4)]
  _, got = _roundtrip(tmp_path, smooth, ys, "jpeg")
  for (x, _), x0 in zip(got, smooth):
    assert x.shape == (1, 16, 16, 1) and np.abs(x - x0).mean() < 0.05


def test_metadata_text_roundtrip_and_maps(tmp_path):
  md = data.make_metadata(sample_count=7, output_dim=3, sequence_size=-1, row_count=1,
                          col_count=1, num_channels=1, label_names=["a", "b", "c"],
                          channel_to_index_map={"hello": 0, "world": 1})
  p = tmp_path / "metadata.textproto"
  p.write_text(md.to_text())
  back = data.AutoDLMetadata(str(p))
  assert back.get_label_to_index_map() == {"a": 0, "b": 1, "c": 2}
  assert back.get_channel_to_index_map() == {"hello": 0, "world": 1}
  assert back.get_tensor_shape() == (-1, 1, 1, 1) and back.size() == 7


def test_bad_inputs_fail_clearly(tmp_path):
  with pytest.raises(data.AutoDLFormatError, match="exactly one"):
    data.find_data_dir(str(tmp_path))
  xs = [np.zeros((1, 2, 3, 1), np.float32)] * 3
  ys = np.eye(2, dtype=np.float32)[[0, 1, 0]]
  d = str(tmp_path / "ds")
  data.write_dataset(d, "bad", (xs, ys), (xs, ys))
  # tensors whose size disagrees with the metadata
  meta = os.path.join(d, "bad.data", "train", "metadata.textproto")
  text = open(meta).read().replace("col_count: 3", "col_count: 4")
  open(meta, "w").write(text)
  with pytest.raises(data.AutoDLFormatError, match="metadata says"):
    list(data.read_split(d, "train"))
  os.remove(meta)
  with pytest.raises(data.AutoDLFormatError, match="missing metadata"):
    data.read_split(d, "train")
  os.remove(os.path.join(d, "bad.solution"))
  with pytest.raises(data.AutoDLFormatError, match="missing solution"):
    data.load_solution(d)


@pytest.mark.parametrize("modality", demo_data.TINY)
def test_domain_inference_on_tiny_sets(tmp_path_factory, modality):
  d = demo_data.make_tiny_autodl(str(tmp_path_factory.mktemp("tiny")), modality)
  md = data.read_split(d, "train").get_metadata()
  assert model_selector.infer_domain(md) == modality.split("_")[0]
  x, y = next(iter(data.read_split(d, "train")))
  assert x.ndim == 4 and y.shape == (md.get_output_size(),) and y.sum() >= 1
