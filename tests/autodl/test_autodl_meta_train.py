"""Offline meta-training (jaxvision.autodl.meta_train): the glyph source tasks, the
torchvision-layout export round trip, the written weights loading into the solution's nets
(heads re-initialised for the task), reuse, the demo wiring and the option errors."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

pytest.importorskip("lightgbm")

from jaxvision import models  # noqa: E402
from jaxvision.autodl import config, demo, meta_train  # noqa: E402
from jaxvision.autodl.solution import meta_learner, nets, pretrained  # noqa: E402
from jaxvision.models import torch_import  # noqa: E402


def test_glyph_sources_cover_every_letter_in_every_face():
  faces = meta_train.fonts()
  assert len(faces) >= 20 and len(meta_train.LETTERS) == 52
  rng = np.random.default_rng(0)
  for f in faces:  # every face draws all 52 letters (a missing glyph would be blank)
    for ch in meta_train.LETTERS:
      img = meta_train.render_glyph(ch, f, rng)
      assert img.shape == (32, 32) and 0 <= img.min() and img.max() <= 1 and img.max() > 0.5
  xs, y = meta_train.glyphs(60, seed=3)
  assert len(xs) == 60 and y.min() >= 0 and y.max() < 52
  assert {x.shape for x in xs} == {(8, 8, 1), (16, 16, 1), (32, 32, 1)}
  assert all(x.max() > 0 for x in xs)
  xs2, y2 = meta_train.glyphs(60, seed=3)
  np.testing.assert_array_equal(y, y2)
  np.testing.assert_array_equal(xs[7], xs2[7])
  clips, yv = meta_train.moving_glyphs(5, seed=1)
  for c in clips:  # one 8x8 letter, the same ink in every frame, moving in a straight line
    assert c.shape == (8, 16, 16, 1)
    ink = c[..., 0].sum(axis=(1, 2))
    np.testing.assert_allclose(ink, ink[0], rtol=1e-6)
    rows = [np.argwhere(f[..., 0] > 0)[:, 0].min() for f in c]
    assert len(set(np.diff(rows))) <= 2  # linear motion, rounded


def test_export_state_dict_round_trip():
  a = models.build("resnet18", 5, rngs=nnx.Rngs(0), width_multiplier=0.125)
  b = models.build("resnet18", 5, rngs=nnx.Rngs(1), width_multiplier=0.125)
  sd = torch_import.export_state_dict(a)
  assert sd["conv1.weight"].shape == (8, 3, 7, 7) and sd["fc.weight"].shape == (5, 64)
  torch_import.load_torch_checkpoint(b, sd, naming="torchvision", strict=True)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 32, 32, 3)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
  v = nets.VideoNet(4, rngs=nnx.Rngs(0), width_multiplier=0.125, blocks=(1, 1, 1, 1),
                    fc_bias=True)
  sd = torch_import.export_state_dict(v)
  assert sd["stem.0.weight"].shape == (8, 3, 3, 7, 7)
  assert pretrained.mc3_arch(sd) == ([8, 8, 16, 32, 64], (1, 1, 1, 1))
  w = nets.VideoNet(4, rngs=nnx.Rngs(5), width_multiplier=0.125, blocks=(1, 1, 1, 1),
                    fc_bias=True)
  assert pretrained.load_mc3_18(w, sd) == "head loaded"
  xv = jnp.asarray(np.random.default_rng(1).standard_normal((1, 4, 16, 16, 3)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(v(xv)), np.asarray(w(xv)))


def test_meta_train_weights_load_reuse_and_demo_wiring(tmp_path):
  c = config.get_config("smoke")
  c.datasets, c.time_budget, c.ablations = "wine", 4.0, "random_init"
  c.meta_train, c.meta_dir = True, str(tmp_path / "meta")
  c.meta_image_steps, c.meta_video_steps = 3, 2
  c.solution.video.width_multiplier = 0.125
  sol = config.solution_overrides(c)
  rec = meta_train.meta_train(c.meta_dir, sol, image_steps=3, video_steps=2, n_image=40,
                              n_video=20)
  assert rec["image_width_multiplier"] == 0.125 and rec["video_blocks"] == [1, 1, 1, 1]
  assert 0 <= rec["image"]["heldout_accuracy"] <= 1
  on_disk = json.load(open(os.path.join(c.meta_dir, meta_train.META_FILE)))
  assert on_disk["image_steps"] == 3 and "no digits" in on_disk["sources"]["image"]
  paths = meta_train.solution_paths(c.meta_dir)
  sd = torch_import.read_state_dict(paths["image"]["pretrained"])
  assert sd["fc.weight"].shape[0] == 52
  # into a 10-class task: the trunk loads, the 52-letter head does not
  net = models.build("resnet18", 10, rngs=nnx.Rngs(3), width_multiplier=0.125)
  assert pretrained.load_resnet18(net, paths["image"]["pretrained"]).startswith(
      "head random init")
  np.testing.assert_array_equal(np.asarray(net.conv1.kernel.get_value()),
                                np.transpose(sd["conv1.weight"], (2, 3, 1, 0)))
  opts = meta_learner.options({k: dict(sol.get(k, {}), **paths[k]) for k in paths})
  w = meta_learner.weights(opts)
  assert w["resnet18"].endswith("image_resnet18.npz") and w["mc3_18"].endswith("video_mc3.npz")
  opts["random_init"] = True  # ablation (a)
  assert set(meta_learner.weights(opts).values()) == {"random init (random_init ablation)"}
  opts["random_init"], opts["no_warmstart"] = False, True  # (a) widened
  assert set(meta_learner.weights(opts).values()) == {"random init (no_warmstart ablation)"}
  with pytest.raises(ValueError, match="set solution.image.width_multiplier=0.125$"):
    meta_learner.options(dict(paths, image=dict(paths["image"], width_multiplier=0.25)))
  # the demo reuses the weights (same options and steps) and states them
  logs = []
  s = demo.run_demo(c, str(tmp_path / "demo"), log=logs.append)
  assert any("reusing" in str(m) for m in logs)
  assert s["weights"]["resnet18"] == f"weights file {paths['image']['pretrained']}"
  assert s["meta_train"]["image_steps"] == 3
  assert not s["participants"]["full"]["datasets"]["wine"]["failures"]
  assert not s["participants"]["random_init"]["datasets"]["wine"]["failures"]
  c.solution.image.pretrained = paths["image"]["pretrained"]
  with pytest.raises(ValueError, match="config.meta_train=False"):
    config.check(c)
