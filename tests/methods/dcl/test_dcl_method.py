"""DCL through the core loop: configs, start-up errors, smoke train + eval + exact resume."""
import os

import jax
import numpy as np
import pytest

import jaxvision.methods.dcl  # noqa: F401  (registers "dcl", "dcl_faces", "dcl_net")
from jaxvision.core import loop


def _leaves(tree):
  key = lambda x: jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
  return [np.asarray(jax.random.key_data(x) if key(x) else x) for x in jax.tree.leaves(tree)]


def test_dcl_config_variants(load_config):
  c = load_config("dcl", "ffpp_c23")
  assert (c.models.student.name, c.models.student.kwargs.backbone) == ("dcl_net",
                                                                       "tf_efficientnet_b4")
  assert not c.models.key_encoder.trainable
  assert (c.dcl.queue_size, c.dcl.hard_keys, c.dcl.momentum, c.dcl.temperature) == (
      32768, 5, 0.999, 0.07)
  assert (c.optims.student.name, c.optims.student.lr, c.batch_size, c.num_epochs) == (
      "adam", 2e-4, 32, 30.0)
  assert c.dataset.compression == "c23" and load_config("dcl", "ffpp_c40").dataset.compression == "c40"
  g = load_config("dcl", "gid_df")
  assert "Deepfakes" not in g.dataset.methods and g.dataset.eval_methods == ("Deepfakes",)
  d = load_config("dcl", "demo")
  assert d.dataset.name == "dcl_faces" and d.dataset.test_variants == ("mouth",)
  assert d.models.student.kwargs.embed_channels == d.models.key_encoder.kwargs.embed_channels == 8
  assert c.models.student.kwargs.embed_channels == 1  # the official squeeze
  assert (d.dcl.ce_weight, d.dcl.inter_weight, d.dcl.intra_weight) == (1.0, 1.0, 0.1)
  assert (c.dcl.ce_weight, c.dcl.inter_weight, c.dcl.intra_weight) == (0.5, 0.5, 0.05)
  with pytest.raises(ValueError, match="variant"):
    load_config("dcl", "ffpp_c99")


def test_startup_errors(load_config, tmp_path):
  c = load_config("dcl", "smoke")
  c.progress = False
  c.dcl.queue_size = 60  # not a multiple of the batch 16
  with pytest.raises(ValueError, match="queue size 60 is not divisible by the global batch 16"):
    loop.train(c, str(tmp_path / "a"))
  c = load_config("dcl", "smoke")
  c.progress = False
  c.models.student.kwargs.embed_channels = 4  # the key encoder left at 1
  with pytest.raises(ValueError, match="key_encoder .* must be the same network"):
    loop.train(c, str(tmp_path / "k"))
  c = load_config("dcl", "smoke")
  c.dataset.data_dir = str(tmp_path / "nothing")
  c.dataset.name = "ffpp"
  with pytest.raises(Exception, match="is not a folder"):
    loop.train(c, str(tmp_path / "b"))


def test_dcl_smoke_train_eval_resume_exact(load_config, tmp_path):
  """An interrupted run resumed from its checkpoint ends in the same state (encoders, queues)
  as an uninterrupted one; the forgery evaluator reports frame- and video-level metrics.
  (The resumed run reuses the interrupted Trainer's compiled step: the restart restores
  everything from the checkpoint on disk; process restarts are covered by the core tests.)"""
  c = load_config("dcl", "smoke")
  c.progress = False
  full = loop.Trainer(c, str(tmp_path / "full"))
  s_full = full.run()
  resumed = loop.Trainer(c, str(tmp_path / "resumed"))
  with pytest.raises(loop.Preempted):
    resumed.run(stop_at_step=2)
  resumed.init_state = lambda *a, **k: pytest.fail("the second run started afresh")
  s_res = resumed.run()  # restores step 2 from disk and trains on to the end
  a = _leaves((full.state["models"], full.state["extras"]))
  b = _leaves((resumed.state["models"], resumed.state["extras"]))
  assert len(a) == len(b) > 10
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  f = s_full["final"]
  assert set(f) >= {"auc", "eer", "acc", "video_auc", "video_eer", "video_acc"}
  assert f["auc"] == pytest.approx(s_res["final"]["auc"])
  mem = full.state["extras"]["memory"]
  assert c.steps == 4 and s_full["steps"] == 4
  assert int(mem["ptr_fake"]) == (4 * 1 * 8) % 64  # 4 steps x 1 hard key x 8 shards
  assert s_full["embedding_dim"] == 4  # 64 px -> 2 x 2 feature map
  # roc.png of the final evaluation in each run's workdir.
  for t, s in ((full, s_full), (resumed, s_res)):
    png = os.path.join(t.workdir, "roc.png")
    assert s["roc_png"] == {"eval": png}
    with open(png, "rb") as fh:
      assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
