"""Embedded photo/face datasets (jaxvision.data.photos): aligned joint crops, LR = bicubic-down
of HR, determinism from (seed, step), variable-size eval equal to a per-image loop."""
import ml_collections
import numpy as np
import pytest

from jaxvision.core.errors import ConfigError
from jaxvision.core.registry import DATASETS
from jaxvision.data import photos as P  # noqa: F401  (registers the datasets)
from jaxvision.data import pp
from jaxvision.data.base import Pipeline
from jaxvision.data.pp import PPError
from jaxvision.ops.imresize import imresize


def _cfg(name, **kw):
  return ml_collections.ConfigDict({"dataset": {"name": name, **kw}})


def _build(name, **kw):
  return DATASETS.get(name)(_cfg(name, **kw))


def _u8(x):  # back from to_float
  return np.round(np.asarray(x) * 255).astype(np.uint8)


def _hits(src, crop):
  """[(y, x, flipped)] of the windows of src [H, W, C] equal to crop (flipped left-right or not)."""
  h, w = crop.shape[:2]
  return [(y, x, f) for f in (False, True) for y in range(src.shape[0] - h + 1)
          for x in range(src.shape[1] - w + 1)
          if np.array_equal(src[y:y + h, x:x + w][:, ::-1] if f else src[y:y + h, x:x + w], crop)]


def _locate(src, crop):
  hits = _hits(src, crop)
  assert len(hits) == 1, hits[:3]
  return hits[0]


def test_photo_source_split_is_fixed_and_by_photo():
  assert set(P.TRAIN_PHOTOS).isdisjoint(P.TEST_PHOTOS)
  assert len(P.TRAIN_PHOTOS) == 8 and P.TEST_PHOTOS == ("chelsea", "coffee", "china")
  test = P.photos("test")
  assert [t.shape for t in test] == [(300, 451, 3), (400, 600, 3), (427, 640, 3)]
  assert all(t.dtype == np.uint8 and t.std() > 20 for t in test)
  with pytest.raises(ValueError, match="unknown photo 'eagle'"):
    P.photo("eagle")


@pytest.fixture(scope="module")
def sr3():
  return _build("photos_sr", scale=3, patch=24, num_train=64)


def test_sr_train_lr_is_bicubic_down_of_the_hr_crop(sr3):
  assert sr3.info["scale"] == 3 and sr3.info.shape("lr") == (8, 8, 3)
  assert sr3.info.shape("hr") == (24, 24, 3) and sr3.info["num_eval"] == 3
  b = Pipeline(sr3, 8, seed=1, num_threads=1).train_batch(2)
  assert b["hr"].shape == (8, 24, 24, 3) and b["lr"].shape == (8, 8, 8, 3)
  hr = _u8(b["hr"])
  np.testing.assert_array_equal(b["hr"], hr.astype(np.float32) * np.float32(1 / 255))
  np.testing.assert_array_equal(_u8(b["lr"]), imresize(hr, 1 / 3))  # MATLAB bicubic, uint8
  for i in range(8):  # the HR patch is a real window (maybe flipped/transposed) of its record
    rec = sr3.train[int(Pipeline(sr3, 8, seed=1)._index(2 * 8 + i))]["hr"]
    views = [hr[i], hr[i][::-1], hr[i].swapaxes(0, 1), hr[i].swapaxes(0, 1)[::-1]]
    assert any(_hits(rec, v) for v in views)


def test_sr_eval_variable_size_padded_batch_equals_per_image_loop(sr3):
  pipe = Pipeline(sr3, 8, seed=0, num_threads=1)
  batch = pipe.eval_batch(0, 4)  # 3 photos + 1 padding row
  np.testing.assert_array_equal(batch["_valid"], [1, 1, 1, 0])
  assert batch["hr"].shape == (4, 426, 639, 3) and batch["lr"].shape == (4, 142, 213, 3)
  np.testing.assert_array_equal(batch["hr_hw"][:3], [[300, 450], [399, 600], [426, 639]])
  np.testing.assert_array_equal(batch["lr_hw"], batch["hr_hw"] // 3)
  fn = pp.parse(sr3.pp_eval)
  for i in range(3):
    one = pp.finalize(fn(pipe_gather(sr3, i), np.random.default_rng(0)))  # a batch of one
    for k in ("lr", "hr"):
      h, w = batch[f"{k}_hw"][i]
      np.testing.assert_array_equal(batch[k][i, :h, :w], one[k][0])
      assert not batch[k][i, h:].any() and not batch[k][i, :, w:].any()


def pipe_gather(ds, i):
  from jaxvision.data.base import gather
  return gather(ds.eval, np.array([i]))


def test_batches_are_a_pure_function_of_seed_and_step(sr3):
  a, b = Pipeline(sr3, 6, seed=4, num_threads=1), Pipeline(sr3, 6, seed=4, num_threads=2)
  x, y = a.train_batch(7), b.train_batch(7)
  for k in x:
    np.testing.assert_array_equal(x[k], y[k])
  assert not np.array_equal(a.train_batch(8)["hr"], x["hr"])
  assert not np.array_equal(Pipeline(sr3, 6, seed=5).train_batch(7)["hr"], x["hr"])
  resumed = next(b.train_iter(7, 9))  # threaded iterator from step 7 == the step-7 batch
  np.testing.assert_array_equal(resumed["lr"], x["lr"])


@pytest.fixture(scope="module")
def matting():
  return _build("photos_matting", image_size=32, record_size=40, eval_size=48, num_train=24,
                num_eval=4)


def test_matting_records_are_consistent_and_deterministic(matting):
  assert matting.info.shape("trimap") == (32, 32, 1) and matting.info["num_train"] == 24
  r = matting.train[5]
  again = P.MattingRecords(P.photos("train"), 40, 24, 0)[5]
  for k in ("image", "alpha", "fg", "bg", "trimap"):
    np.testing.assert_array_equal(r[k], again[k])
  assert not np.array_equal(r["alpha"], matting.train[6]["alpha"])
  np.testing.assert_array_equal(r["image"], P.composite(r["alpha"], r["fg"], r["bg"]))
  for i in range(len(matting.train)):
    t = matting.train[i]["trimap"]
    assert set(np.unique(t)) <= {0, 128, 255} and (t == 128).any() and t[20, 20, 0] == 128


def test_matting_joint_crop_and_flip_keep_five_keys_aligned(matting):
  pipe = Pipeline(matting, 8, seed=3, num_threads=1)
  b = pipe.train_batch(1)
  assert b["trimap"].dtype == np.uint8 and b["alpha"].dtype == np.float32
  img, alpha, fg, bg = (_u8(b[k]) for k in ("image", "alpha", "fg", "bg"))
  np.testing.assert_array_equal(img, P.composite(alpha, fg, bg))
  t = b["trimap"]
  assert (t == 128).reshape(8, -1).any(1).all()  # every crop keeps unknown pixels
  assert (alpha[t == 255] == 255).all() and (alpha[t == 0] == 0).all()
  flips = set()
  for i in range(8):
    rec = matting.train[int(pipe._index(8 + i))]
    y, x, f = _locate(rec["image"], img[i])
    flips.add(f)
    for k, v in (("image", img), ("fg", fg), ("bg", bg), ("trimap", t), ("alpha", alpha)):
      win = rec[k][y:y + 32, x:x + 32]
      np.testing.assert_array_equal(v[i], win[:, ::-1] if f else win)
  assert flips == {False, True}


def test_edges_pairs_align_and_eval_tiles():
  ds = _build("photos_edges", image_size=16, jitter=4, num_train=16)
  assert ds.info.shape("image") == (16, 16, 3) and ds.info["value_range"] == (-1.0, 1.0)
  assert ds.info["num_eval"] == 18 * 28 + 25 * 37 + 26 * 40
  b = Pipeline(ds, 4, seed=0, num_threads=1).train_batch(0)
  assert set(np.unique(b["image"])) <= {-1.0, 1.0}
  rec = ds.train[int(Pipeline(ds, 4, seed=0)._index(0))]
  tgt = np.round((b["target"][0] + 1) * 127.5).astype(np.uint8)
  edge = np.round((b["image"][0] + 1) * 127.5).astype(np.uint8)
  y, x, f = _locate(rec["target"], tgt)
  win = rec["image"][y:y + 16, x:x + 16]
  np.testing.assert_array_equal(edge, win[:, ::-1] if f else win)
  pid, ry, rx = ds.train.pid[0], ds.train.ys[0], ds.train.xs[0]
  np.testing.assert_array_equal(ds.train[0]["image"],
                                P.edge_map(P.TRAIN_PHOTOS[pid])[ry:ry + 20, rx:rx + 20])
  first = ds.eval[0]
  np.testing.assert_array_equal(first["target"], P.photo("chelsea")[:16, :16])


def test_faces_split_labels_and_info():
  ds = _build("faces")
  assert ds.info["num_classes"] == 2 and ds.info.shape("image") == (32, 32, 3)
  ytr, yte = ds.train.arrays["label"], ds.eval.arrays["label"]
  assert (len(ytr), len(yte)) == (150, 50) and ytr.sum() == 75 and yte.sum() == 25
  xtr, _, xte, _ = P.faces_arrays(25, 1)
  assert xtr.shape == (150, 25, 25, 1) and len({x.tobytes() for x in np.concatenate([xtr, xte])}) == 200
  b = Pipeline(ds, 10, seed=0, num_threads=1).train_batch(0)
  assert b["image"].shape == (10, 32, 32, 3) and abs(float(b["image"].mean())) < 1


def test_bad_config_and_pp_fail_with_one_line():
  with pytest.raises(ConfigError, match=r"config.dataset.scale=5; use one of \[2, 3, 4\]"):
    _build("photos_sr", scale=5)
  with pytest.raises(ConfigError, match="patch=50 is not a multiple of scale 4"):
    _build("photos_sr", scale=4, patch=50)
  with pytest.raises(PPError) as e:
    pp.check("bicubic_down(4)", {"hr": np.zeros((1, 10, 12, 3), np.uint8)})
  assert "bicubic_down(4)" in str(e.value) and "'hr'" in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(PPError, match="'bicubic_down' needs key 'hr'"):
    pp.check("bicubic_down(2)", {"image": np.zeros((1, 4, 4, 3), np.uint8)})
