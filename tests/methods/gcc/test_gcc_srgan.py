"""GCC's SRGAN task (srgan_x4,smoke on the embedded photos, x4): sparsity stage -> prune
transition -> GCC stage, PSNR/SSIM of student and teacher through the evaluator library, PNG
grids at every stage end, exact resume across the prune transition (one compiled run shared by
the assertions), and the grid layout."""
import json
import os

import jax
import numpy as np
import pytest

import jaxvision.methods  # noqa: F401  (registers "gcc" and the photos datasets)
from jaxvision.config_lib import load_config_file
from jaxvision.core import loop
from jaxvision.methods.gcc import method as gm
from resume_check import assert_resumes_exactly, smoke_run

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


def _smoke():
  return load_config_file(str(REPO / "configs" / "gcc.py"), "srgan_x4,smoke")


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
  return smoke_run(_smoke(), tmp_path_factory, "gcc_sr")


@pytest.mark.slow
def test_sr_smoke_prunes_srresnet_evaluates_and_reports(sr_run):
  t, s, c, d = sr_run
  g = s["gcc"]
  assert s["steps"] == c.gcc.sparsity_steps + c.gcc.gcc_steps == 5
  assert g["task"] == "sr" and "random" in g["perceptual"]
  # pruned inner widths of the 2 blocks, trunk width kept; the MACs the search reported
  w = g["student_widths"]
  assert len(w) == 3 and w[0] == 4 and all(1 <= v <= 4 for v in w[1:])
  assert t.meta["widths"]["generator"] == w
  assert g["prune"]["macs"] == g["student"]["thop_conv"] <= g["prune"]["full_macs"] == 1_297_664
  assert abs(g["student"]["thop_conv"] - c.gcc.target_macs) <= c.gcc.prune_tolerance
  assert g["teacher"]["thop_conv"] == 3_053_056 > g["student"]["thop_conv"]
  assert [r["channels"] for r in g["gates"]] == [4, 4, 8, 8]
  # PSNR/SSIM (Y, border 4) of student and teacher after each stage and at the GCC start
  assert set(s["final"]) == {f"sr/{r}/{m}" for r in ("student", "teacher")
                             for m in ("psnr", "ssim")}
  assert all(np.isfinite(v) for v in s["final"].values())
  assert set(s["stages"]) == {"sparsity", "gcc"} and set(s["stages"]["gcc"]) == {"start", "end"}
  with open(os.path.join(d, "summary.json")) as f:
    assert json.load(f)["gcc"]["grids"] == g["grids"]


@pytest.mark.slow
def test_sr_grids_written_at_each_stage_end(sr_run):
  from PIL import Image
  _, s, c, d = sr_run
  want = [os.path.join(d, "grids", n) for n in ("gcc_5.png", "sparsity_2.png")]
  assert s["gcc"]["grids"] == want
  for p in want:
    a = np.asarray(Image.open(p))
    # 3 eval crops (32x32 HR) as rows: input (8x8 LR, repeated x4) | teacher | student | target
    assert a.shape == (3 * 36, 4 * 36, 3)
    target = a[2:34, 3 * 36 + 2:3 * 36 + 34]
    lr_tile = a[2:34, 2:34]
    assert (lr_tile[::4, ::4] == lr_tile[3::4, 3::4]).all()  # pixel repetition of the LR input
    assert target.std() > 0


@pytest.mark.slow
def test_sr_resume_across_the_prune_transition_is_exact(sr_run, tmp_path):
  t, _, c, _ = sr_run
  resumed = assert_resumes_exactly(_smoke, t, c.gcc.sparsity_steps + 1, tmp_path)
  assert resumed.meta["widths"] == t.meta["widths"]


def test_grid_image_layout():
  rng = np.random.default_rng(0)
  outs = {"input": rng.uniform(size=(2, 4, 4, 3)), "teacher": rng.uniform(size=(2, 8, 8, 3)),
          "pred": rng.uniform(-1, 2, size=(2, 8, 8, 3)), "target": rng.uniform(size=(2, 8, 8, 3))}
  g = gm.grid_image(outs)
  assert g.shape == (2 * 12, 4 * 12, 3)
  outs = {k: v.astype(np.float32) for k, v in outs.items()}
  g = gm.grid_image(outs)
  np.testing.assert_array_equal(g[14:22, 2:10], np.repeat(np.repeat(outs["input"][1], 2, 0), 2, 1))
  np.testing.assert_array_equal(g[2:10, 26:34], np.clip(outs["pred"][0], 0, 1))
  np.testing.assert_array_equal(g[14:22, 38:46], outs["target"][1])
  assert (g[0:2] == 1.0).all() and (g[:, 10:14] == 1.0).all()   # white 2-px borders


def test_sr_bad_input_fails_at_start_up(tmp_path):
  from jaxvision.core.errors import ConfigError
  c = _smoke()
  c.gcc.perceptual_weights = str(tmp_path / "missing_vgg19.pth")
  with pytest.raises(ConfigError, match="perceptual_weights=.* does not exist"):
    gm.stages(loop.build_context(c, str(tmp_path / "a"))[0])
  c = _smoke()
  c.dataset.name = "photos_edges"
  with pytest.raises(ConfigError, match="needs batches with \\('lr', 'hr'\\)"):
    gm.stages(loop.build_context(c, str(tmp_path / "b"))[0])
  c = _smoke()
  c.models.teacher_g.kwargs.scale = 2
  with pytest.raises(ConfigError, match="teacher scale 2 .* differ"):
    gm.stages(loop.build_context(c, str(tmp_path / "c"))[0])


def test_vgg_weights_loaded_by_prepare_survive_the_prune_transition(tmp_path):
  """gcc.perceptual_weights (torchvision vgg19 state_dict) -> the frozen extractor in extras;
  the transition re-initialises the roles but keeps it. relu1_1 keeps the file tiny."""
  torch = pytest.importorskip("torch")
  c = _smoke()
  c.gcc.perceptual_layer = "relu1_1"
  w, b = torch.randn(64, 3, 3, 3), torch.randn(64)
  path = tmp_path / "vgg19.pth"
  torch.save({"features.0.weight": w, "features.0.bias": b}, str(path))
  c.gcc.perceptual_weights = str(path)
  ctx, _ = loop.build_context(c, str(tmp_path / "run"))
  assert "VGG-19 relu1_1" in gm._perceptual_desc(c.gcc)
  state = gm.prepare(ctx, gm.init(ctx, jax.random.key(0), {}), {})
  kernel = lambda st: np.asarray(st["extras"]["perceptual"]["convs"][0]["kernel"][...])  # noqa
  np.testing.assert_array_equal(kernel(state), w.numpy().transpose(2, 3, 1, 0))
  new, meta = gm.transition(ctx, jax.device_get(state), {"stage": 0}, gm.stages(ctx)[1])
  np.testing.assert_array_equal(kernel(new), kernel(state))
  assert meta["widths"]["generator"] == [4, 1, 1]   # tied gammas (init 1): >= 1 channel kept
  assert any((np.asarray(u) != np.asarray(v)).any() for u, v in zip(
      jax.tree.leaves(new["models"]["teacher_g"]), jax.tree.leaves(state["models"]["teacher_g"])))
  assert os.path.exists(tmp_path / "run" / "grids" / "sparsity_0.png")
