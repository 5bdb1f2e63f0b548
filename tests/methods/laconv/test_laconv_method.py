"""LaConv on the loop: config variants, loss/predict helpers, smoke train + exact resume."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxvision.methods.laconv  # noqa: F401  (registers the method, model, datasets)
from jaxvision.core import checkpoint, loop, roles
from jaxvision.core.registry import DATASETS
from jaxvision.methods.laconv import method as M
from jaxvision.methods.laconv.model import LaConvVL


def test_config_variants(load_config):
  for arg, task, ds in [(None, "rec", "refcoco"), ("refcoco+_res", "res", "refcoco"),
                        ("vqa2", "vqa", "vqa_v2"), ("vqa2,demo", "vqa", "laconv_scenes"),
                        ("refcocog,smoke", "rec", "laconv_scenes")]:
    c = load_config("laconv", arg)
    assert (c.laconv.task, c.dataset.name) == (task, ds)
    assert c.evals.eval.predict == task
  c = load_config("laconv")
  assert c.optims.model.b2 == 0.98 and c.laconv.grad_clip == 0.15 and c.num_epochs == 40.0
  assert c.dataset.ref_name == "refcoco"
  assert load_config("laconv", "refcoco+").dataset.ref_name == "refcoco+"


def test_soft_scores_mcan_and_linear():
  gt = jnp.array([[0, 0, 0, 0, 1, 1, 2, 3, 3, 3], [5] * 9 + [0]])  # id 5 = unknown (A = 5)
  s = np.asarray(M.soft_scores(gt, 5))
  np.testing.assert_allclose(s[0], [1.0, 0.6, 0.3, 0.9, 0.0])
  np.testing.assert_allclose(s[1], [0.3, 0, 0, 0, 0])
  np.testing.assert_allclose(np.asarray(M.soft_scores(gt, 5, "linear"))[0], [1, 2 / 3, 1 / 3, 1, 0],
                             rtol=1e-6)
  with pytest.raises(ValueError, match="vqa_score"):
    M.soft_scores(gt, 5, "other")


def test_flip_swaps_left_right_and_mirrors_boxes():
  img = jnp.arange(2 * 4 * 8 * 1, dtype=jnp.float32).reshape(2, 4, 8, 1)
  batch = {"image": img, "mask": img[..., 0], "box": jnp.array([[2.0, 1, 2, 2]] * 2),
           "tokens": jnp.array([[3, 7, 8, 0]] * 2)}
  key = jax.random.key(0)
  f = np.asarray(jax.random.bernoulli(key, 0.5, (2,)))
  out = M.flip_batch(batch, key, (7, 8))
  for i in range(2):
    if f[i]:
      np.testing.assert_array_equal(out["image"][i], img[i, :, ::-1])
      np.testing.assert_array_equal(out["box"][i], [6.0, 1, 2, 2])
      np.testing.assert_array_equal(out["tokens"][i], [3, 8, 7, 0])
    else:
      np.testing.assert_array_equal(out["tokens"][i], [3, 7, 8, 0])
  out2 = M.flip_batch(batch, jax.random.key(1), (-1, -1))  # no 'left'/'right' in the vocab
  np.testing.assert_array_equal(out2["tokens"], batch["tokens"])


def test_mask_iou_box_and_unletterbox():
  logits = jnp.full((2, 4, 4), -1.0).at[0, 1:3, 1:4].set(1.0)
  gt = jnp.zeros((2, 4, 4)).at[0, 1:3, 2:4].set(1.0)
  np.testing.assert_allclose(np.asarray(M._mask_iou(logits, gt)), [4 / 6, 0.0])
  np.testing.assert_array_equal(np.asarray(M._mask_box(logits > 0)), [[1, 1, 4, 3], [0, 0, 0, 0]])
  lb = jnp.array([[0.5, 10.0, 0.0]])
  np.testing.assert_allclose(np.asarray(M._unletterbox(jnp.array([[20.0, 5, 30, 15]]), lb)),
                             [[20, 10, 40, 30]])


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


@pytest.mark.slow
def test_rec_smoke_train_eval_resume_exact(load_config, tmp_path):
  """Interrupted + resumed == uninterrupted (models, EMA, extras); REC metrics reported.
  (The resumed run reuses the interrupted Trainer's compiled step: the restart restores
  everything from the checkpoint on disk; process restarts are covered by the core tests.)"""
  c = load_config("laconv", "smoke")
  c.progress = False
  assert (c.steps, c.checkpoint_every) == (4, 2)
  full = loop.Trainer(c, str(tmp_path / "full"))
  s_full = full.run()
  resumed = loop.Trainer(c, str(tmp_path / "resumed"))
  with pytest.raises(loop.Preempted):
    resumed.run(stop_at_step=2)
  resumed.init_state = lambda *a, **k: pytest.fail("the second run started afresh")
  s_res = resumed.run()  # restores step 2 from disk and trains on to the end
  a = _leaves((full.state["models"], full.state["extras"]))
  b = _leaves((resumed.state["models"], resumed.state["extras"]))
  assert len(a) == len(b) > 50
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  f = s_full["final"]
  assert set(f) >= {"accuracy", "miou"} and 0.0 <= f["accuracy"] <= 100.0
  assert f["miou"] == pytest.approx(s_res["final"]["miou"])
  assert s_full["embedding"].startswith("random") and s_full["task"] == "rec"
  assert s_full["vocab_size"] > 10
  # The EMA copy moved towards the trained weights but is not equal to them.
  ema = _leaves(full.state["extras"]["ema"]["params"])
  raw = _leaves(full.state["models"]["model"]["params"])
  assert any(not np.array_equal(e, r) for e, r in zip(ema, raw))

  # The REC run initialises a VQA model (the VQA demo's grounding pre-training): REC and VQA
  # scenes share one vocabulary, and every leaf but the VQA head (init.skip) comes from REC.
  cv = load_config("laconv", "vqa2,smoke")
  assert DATASETS.get("laconv_scenes")(cv).info.vocab == full.ctx.data.vocab
  # More training scenes keep the vocabulary of the first `vocab_scenes` (the VQA demo trains
  # on 16000 scenes from a 4000-scene REC run); without it the word frequencies reorder ids.
  cv.dataset.num_train = 96
  assert DATASETS.get("laconv_scenes")(cv).info.vocab != full.ctx.data.vocab
  cv.dataset.vocab_scenes = 64
  assert DATASETS.get("laconv_scenes")(cv).info.vocab == full.ctx.data.vocab
  demo_v = load_config("laconv", "vqa2,demo")
  assert (demo_v.dataset.vocab_scenes, load_config("laconv", "demo").dataset.num_train) == (
      4000, 4000)
  assert tuple(demo_v.models.model.init.skip) == ("visual/head",)
  kw = dict(c.models.model.kwargs, head="vqa", vocab_size=s_full["vocab_size"])
  kw.pop("width_multiplier", None)
  vqa = nnx.eval_shape(lambda: roles.model_state(LaConvVL(16, rngs=nnx.Rngs(0), **kw)))
  got = checkpoint.load_model_state(str(tmp_path / "full"), vqa, "model", skip=["visual/head"])
  rec = full.state["models"]["model"]
  n = {"kept": 0, "loaded": 0}
  for coll in ("params", "rest"):
    want = dict(rec[coll].flat_state())
    for name, have in got[coll].flat_state():
      path = "/".join(map(str, name))
      if path.startswith("visual/head/"):
        assert isinstance(have.get_value(), jax.ShapeDtypeStruct)  # kept: not in the REC net
        n["kept"] += 1
      else:
        np.testing.assert_array_equal(have.get_value(), want[name].get_value())
        n["loaded"] += 1
  assert n["kept"] >= 6 and n["loaded"] > 50


def _write_refcoco(root):
  from PIL import Image
  (root / "anns").mkdir(parents=True)
  (root / "images" / "train2014").mkdir(parents=True)
  (root / "masks" / "refcoco").mkdir(parents=True)
  Image.fromarray(np.zeros((50, 100, 3), np.uint8)).save(
      root / "images" / "train2014" / "COCO_train2014_000000000007.jpg")
  m = np.zeros((50, 100), np.uint8)
  m[10:20, 20:40] = 1
  np.save(root / "masks" / "refcoco" / "3.npy", m)
  item = {"iid": 7, "bbox": [20, 10, 20, 10], "mask_id": 3,
          "refs": ["the left box", "a very long expression with many many words in it ok"]}
  outside = {"iid": 7, "bbox": [150, 10, 20, 10], "mask_id": 3, "refs": ["gone"]}
  (root / "anns" / "refcoco.json").write_text(
      __import__("json").dumps({"train": [item, outside], "val": [item]}))


def test_refcoco_loader_letterbox_invalid_boxes_and_truncation(load_config, tmp_path):
  from jaxvision.core.registry import DATASETS
  from jaxvision.data.base import DataNotReadyError
  c = load_config("laconv", "refcoco_res")
  c.dataset.size, c.laconv.max_tokens = 64, 6
  c.dataset.data_dir = str(tmp_path / "missing")
  with pytest.raises(DataNotReadyError, match="data_dir"):
    DATASETS.get("refcoco")(c)
  _write_refcoco(tmp_path / "d")
  c.dataset.data_dir = str(tmp_path / "d")
  ds = DATASETS.get("refcoco")(c)
  assert len(ds.train) == 3 and len(ds.eval) == 2 and ds.info.truncated == 1
  r = ds.train[0]  # 100x50 -> scale 0.64, 64x32 canvas rows 16..48
  np.testing.assert_allclose(r["lb"], [0.64, 0, 16])
  np.testing.assert_allclose(r["box"], [19.2, 25.6, 12.8, 6.4], rtol=1e-5)  # cxcywh canvas
  np.testing.assert_allclose(r["orig_box"], [20, 10, 40, 20])
  assert r["valid"] == 1.0 and ds.train[2]["valid"] == 0.0
  assert r["mask"].shape == (64, 64) and r["mask"][25, 19] == 1 and r["mask"][5, 5] == 0
  assert r["image"][0, 0, 0] == 127 and r["tokens"].shape == (6,)
  # official_vocab: ids by first occurrence over all splits (the imported embedding's rows)
  c.laconv.official_vocab = True
  ds = DATASETS.get("refcoco")(c)
  assert ds.info.vocab == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, **{w: 3 + i for i, w in enumerate(
      "the left box a very long expression with many words in it ok gone".split())}}
  np.testing.assert_array_equal(ds.train[0]["tokens"], [3, 4, 5, 0, 0, 0])


def test_vqa_loader_maps_unknown_answers(load_config, tmp_path):
  import json
  from PIL import Image
  from jaxvision.core.registry import DATASETS
  (tmp_path / "vqa").mkdir()
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
  rows = [{"image": "a.png", "question": "How many dogs?", "answer_type": "number",
           "answers": ["two"] * 4 + ["3"] * 3 + ["purple cow"] * 3}]
  for s in ("train", "val"):
    (tmp_path / "vqa" / f"{s}.json").write_text(json.dumps(rows))
  (tmp_path / "vqa" / "answers.json").write_text(json.dumps(["yes", "2", "3"]))
  c = load_config("laconv", "vqa2")
  c.dataset.data_dir, c.dataset.size = str(tmp_path), 32
  ds = DATASETS.get("vqa_v2")(c)
  r = ds.eval[0]
  np.testing.assert_array_equal(r["gt_answers"], [1] * 4 + [2] * 3 + [3] * 3)  # 'two' -> '2'
  assert r["answer_type"] == 1 and ds.info.num_classes == 3
  np.testing.assert_allclose(np.asarray(M.soft_scores(r["gt_answers"][None], 3))[0], [0, 1, .9])
  ev = M.LaconvVqa(answers_file=str(tmp_path / "vqa" / "answers.json"))
  ev.reset()
  ev.update({"answer": np.array([1]), "gt_answers": r["gt_answers"][None],
             "answer_type": np.array([1])}, np.ones(1))
  assert ev.result()["accuracy"] == pytest.approx(100.0)
