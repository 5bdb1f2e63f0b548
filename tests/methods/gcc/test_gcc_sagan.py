"""GCC's SAGAN task (gcc.task='noise'): MACs without the spectral-norm convs (the official thop
artifact the 0.016 G budget is in) by hand, the recipe, the faces demo data, and sagan_celeba,smoke
trained through sparsity -> prune transition -> GCC with exact resume (one compiled run)."""
import numpy as np
import pytest
from flax import nnx

import jaxvision.methods  # noqa: F401  (registers "gcc" and its datasets)
from jaxvision.config_lib import load_config_file
from jaxvision.methods.gcc import data as gdata
from jaxvision.methods.gcc import pruning
from jaxvision.models import gan
from resume_check import assert_resumes_exactly, smoke_run

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


def _config(arg):
  return load_config_file(str(REPO / "configs" / "gcc.py"), arg)


def test_macs_without_spectral_norm_convs_by_hand():
  g = nnx.eval_shape(lambda: gan.SAGANGenerator(3, rngs=nnx.Rngs(0), ngf=4, z_dim=8))
  # widths [32, 16, 8, 4]: attn1 (8 ch) at 16x16, attn2 (4 ch) at 32x32, last ConvT 4 -> 3 at 64x64
  last = 64 * 64 * 3 * 4 * 16 + 64 * 64 * 3            # output-based + bias (thop legacy)
  attn = lambda c, hw: 2 * (hw * (c // 8 or 1) * c + hw * (c // 8 or 1)) + hw * c * c + hw * c  # noqa
  want = last + attn(8, 16 * 16) + attn(4, 32 * 32)
  assert pruning.count_macs(g, None, (1, 1, 8), exclude_spectral_norm=True) == want == 852_480
  assert pruning.count_macs(g, None, (1, 1, 8)) > 2 * want          # the SN convs dominate
  big = nnx.eval_shape(lambda: gan.SAGANGenerator(3, rngs=nnx.Rngs(0), ngf=64))
  assert round(pruning.count_macs(big, None, (1, 1, 128), exclude_spectral_norm=True) / 1e6) == 23


def test_sagan_recipe_and_faces_data():
  c = _config("sagan_celeba")
  g = c.gcc
  assert (g.task, g.loss_type, g.kd_metric, g.d_half, g.prune_mode) == (
      "noise", "hinge", "rmse", False, "scale")
  assert g.macs_exclude_spectral_norm and g.target_macs == 0.016e9 and g.arch_lr_step_epochs == 0
  assert (c.optims.generator.lr, c.optims.discriminator.lr, c.optims.generator.b1) == (1e-4, 4e-4, 0)
  assert c.models.discriminator.kwargs.threshold == 0.1 and c.batch_size == 128
  assert c.dataset.name == "celeba_gan" and c.models.generator.kwargs.ngf == 48
  ds = gdata.faces_gan(_config("sagan_celeba,smoke"))
  r = ds.eval[3]
  assert r["image"].shape == (64, 64, 3) and int(r["index"]) == 3
  assert ds.info.num_train + ds.info.num_eval == 100                  # the 100 lfw faces


def test_faces_edges_pairs_are_canny_of_the_same_face_and_flip_together():
  """The Pix2Pix demo data: edges -> face on the 75 / 25 lfw faces of faces_gan."""
  from skimage.feature import canny

  from jaxvision.data.base import Pipeline
  c = _config("pix2pix_cityscapes,demo")
  assert c.dataset.name == "faces_edges"
  ds = gdata.faces_edges(c)
  faces = gdata.faces_gan(c)
  assert (ds.info.num_train, ds.info.num_eval) == (75, 25)
  r = ds.eval[7]
  np.testing.assert_array_equal(r["target"], faces.eval[7]["image"])
  want = canny(r["target"][..., 0] / 255.0, sigma=1.5)
  np.testing.assert_array_equal(r["image"], np.repeat(want[..., None], 3, -1) * 255)
  # pp flips image and target together (a flipped face's edges are the flipped edges)
  flips = set()
  pipe = Pipeline(ds, 25, seed=0, num_threads=1)
  for step in range(4):
    b = pipe.train_batch(step)
    for j in range(25):
      rec = ds.train[pipe._index(step * 25 + j)]
      tgt = np.round((b["target"][j] + 1) * 127.5).astype(np.uint8)
      f = not np.array_equal(tgt, rec["target"])
      np.testing.assert_array_equal(tgt, rec["target"][:, ::-1] if f else rec["target"])
      edge = np.round((b["image"][j] + 1) * 127.5).astype(np.uint8)
      np.testing.assert_array_equal(edge, rec["image"][:, ::-1] if f else rec["image"])
      flips.add(f)
  assert flips == {False, True}


def _smoke():
  return _config("sagan_celeba,smoke")


@pytest.fixture(scope="module")
def sagan_run(tmp_path_factory):
  return smoke_run(_smoke(), tmp_path_factory, "gcc_sagan")[:3]


@pytest.mark.slow
def test_smoke_prunes_sagan_g_and_reports_both_mac_counts(sagan_run):
  t, s, c = sagan_run
  g = s["gcc"]
  assert s["steps"] == 5 and g["task"] == "noise"
  w = g["student_widths"]
  assert t.meta["widths"]["generator"] == w and len(w) == 4 and all(1 <= v for v in w)
  assert g["prune"]["macs"] == g["student"]["thop_conv_without_spectral_norm"]
  assert abs(g["prune"]["macs"] - c.gcc.target_macs) <= c.gcc.prune_tolerance
  assert g["prune"]["full_macs"] == 852_480 == g["teacher"]["thop_conv_without_spectral_norm"]
  assert g["student"]["thop_conv"] > g["student"]["thop_conv_without_spectral_norm"]
  assert [r["channels"] for r in g["gates"]] == [4, 8, 16, 32]
  assert set(s["final"]) == {"student/pixel_fid", "teacher/pixel_fid"}
  assert all(np.isfinite(v) and v > 0 for v in s["final"].values())


@pytest.mark.slow
def test_sagan_resume_across_the_prune_transition_is_exact(sagan_run, tmp_path):
  t, _, c = sagan_run
  assert_resumes_exactly(_smoke, t, c.gcc.sparsity_steps + 1, tmp_path)
