"""LFPNet method on the core loop: the :smoke config trained (8 fake devices, data parallel),
evaluated against the 0.5 baseline and resumed exactly; trimap generation and composition by
hand; the Composition-1k folder source and start-up errors."""
import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

import jaxvision.methods.lfpnet  # noqa: F401  (registers "lfpnet", "comp1k_folder")
from jaxvision.core import loop
from jaxvision.core.errors import ConfigError
from jaxvision.core.registry import DATASETS, METHODS
from jaxvision.data.base import DataNotReadyError
from jaxvision.evaluators.matting import MattingEvaluator
from jaxvision.methods.lfpnet import method as M

CONFIG = str(pathlib.Path(__file__).resolve().parents[3] / "configs" / "lfpnet.py")


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def _smoke():
  from jaxvision.config_lib import load_config_file
  c = load_config_file(CONFIG, "smoke")
  c.progress = False
  return c


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  c = _smoke()
  full_dir = tmp_path_factory.mktemp("full")
  full = loop.Trainer(c, str(full_dir))
  s_full = full.run()
  res_dir = tmp_path_factory.mktemp("resumed")
  with pytest.raises(loop.Preempted):
    loop.train(c, str(res_dir), stop_at_step=1)
  resumed = loop.Trainer(c, str(res_dir))
  s_res = resumed.run()
  return dict(c=c, full=full, s_full=s_full, resumed=resumed, s_res=s_res, full_dir=full_dir)


def test_smoke_trains_evaluates_and_resumes_exactly(runs):
  s, c = runs["s_full"], runs["c"]
  assert s["steps"] == c.steps and s["devices"] == 8
  assert set(s["lfpnet"]) == set(s["baselines"]["half"]) == {"sad", "mse", "grad", "conn"}
  for row in (s["lfpnet"], s["baselines"]["half"]):
    assert all(np.isfinite(v) and v >= 0 for v in row.values())
  assert s["ratio_vs"]["half_sad"] == pytest.approx(
      s["lfpnet"]["sad"] / s["baselines"]["half"]["sad"])
  assert s["final"]["matting/sad"] == s["lfpnet"]["sad"]
  # Exact resume: the state after preemption at step 1 + resume equals the uninterrupted run.
  for a, b in zip(_leaves(runs["full"].state), _leaves(runs["resumed"].state)):
    np.testing.assert_array_equal(a, b)
  assert runs["s_res"]["lfpnet"] == s["lfpnet"]
  rows = [json.loads(l) for l in (runs["full_dir"] / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in rows if "train/loss" in r]
  assert len(train) == c.steps and all(np.isfinite(r["train/loss"]) for r in train)
  for k in ("l_alpha", "l_comp", "l_lap", "l_grad", "l_fb", "l_context", "unknown_frac"):
    assert f"train/{k}" in train[0]
  assert all(0 < r["train/unknown_frac"] < 1 for r in train)
  assert (runs["full_dir"] / "panels.png").exists()
  assert int(runs["full"].state["step"]) == c.steps
  assert set(runs["full"].state["opt"]) == {"matting"}


def test_half_baseline_equals_the_evaluator_on_host(runs):
  """`half_baseline/*` = the matting evaluator on 0.5-in-unknown mattes (uint8-truncated)."""
  data = M._eval_set(runs["c"])
  t = data["trimap"][..., 0]
  p = np.where(t == 128, np.floor(0.5 * 255) / 255, (t == 255).astype(np.float64))
  ev = MattingEvaluator()
  ev.update(p, data["alpha"][..., 0] / 255.0, t)
  want = ev.result()
  got = runs["s_full"]["baselines"]["half"]
  for k in got:
    assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-9)


def test_trimap_by_hand():
  a = np.zeros((1, 7, 7), np.float32)
  a[0, :, 4:] = 1.0
  a[0, :, 3] = 0.4  # one fractional column
  t0 = np.asarray(M.trimap_from_alpha(jnp.asarray(a), jnp.array([0]), jnp.array([0]), (0, 2)))
  want0 = np.where(a[0] == 1, 255, np.where(a[0] == 0, 0, 128))
  np.testing.assert_array_equal(t0[0], want0)
  # radius 1 (3x3): fg loses column 4, bg loses column 2; outside the image counts as inside.
  t1 = np.asarray(M.trimap_from_alpha(jnp.asarray(a), jnp.array([1]), jnp.array([1]), (0, 2)))
  want1 = np.full((7, 7), 128)
  want1[:, :2], want1[:, 5:] = 0, 255
  np.testing.assert_array_equal(t1[0], want1)
  # fg radius 2, bg radius 0, per example.
  t2 = np.asarray(M.trimap_from_alpha(jnp.asarray(a), jnp.array([2]), jnp.array([0]), (0, 2)))
  want2 = np.full((7, 7), 128)
  want2[:, :3], want2[:, 6:] = 0, 255
  np.testing.assert_array_equal(t2[0], want2)


def test_trimap_matches_scipy_erosion_and_keeps_fractions_unknown():
  rng = np.random.default_rng(0)
  a = (rng.uniform(size=(3, 24, 24)) > 0.5).astype(np.float32)
  a = ndimage.gaussian_filter(a, (0, 1.5, 1.5))
  a = np.where(a > 0.8, 1.0, np.where(a < 0.2, 0.0, a)).astype(np.float32)
  rf, rb = np.array([0, 1, 3]), np.array([2, 0, 1])
  t = np.asarray(M.trimap_from_alpha(jnp.asarray(a), jnp.asarray(rf), jnp.asarray(rb), (0, 3)))
  assert set(np.unique(t)) <= {0, 128, 255} and t.dtype == np.uint8
  for i in range(3):
    def ero(m, r):
      return ndimage.binary_erosion(m, np.ones((2 * r + 1,) * 2, bool), border_value=1) if r else m

    want = np.full(a[i].shape, 128)
    want[ero(a[i] >= 1 - 1e-3, rf[i])] = 255
    want[ero(a[i] <= 1e-3, rb[i])] = 0
    np.testing.assert_array_equal(t[i], want)
    frac = (a[i] > 1e-3) & (a[i] < 1 - 1e-3)
    assert frac.any() and (t[i][frac] == 128).all()


def test_composition_and_patch_geometry():
  s, b = 16, 3
  rng = np.random.default_rng(1)
  alpha = jnp.asarray(rng.uniform(size=(b, 2 * s, 2 * s, 1)), jnp.float32)
  fg, bg = (jnp.asarray(rng.uniform(size=(b, 2 * s, 2 * s, 3)), jnp.float32) for _ in range(2))
  assert float(M.composite(jnp.float32(0.25), 1.0, 0.2)) == pytest.approx(0.4)
  batch = {"alpha": alpha, "fg": fg, "bg": bg}
  # bg_swap_prob=1: every background is the next example's, composited on the fly.
  out = jax.jit(functools.partial(M.make_training_batch, inner=s, radii=(0, 2),
                                  bg_swap_prob=1.0))(batch, jax.random.key(0))
  assert out["x"].shape == (b, s, s, 12) and out["x_ctx"].shape == (b, 2 * s, 2 * s, 12)
  c = slice(s // 2, 3 * s // 2)
  bg2 = jnp.roll(bg, 1, 0)
  np.testing.assert_allclose(out["raw"], (alpha * fg + (1 - alpha) * bg2)[:, c, c], atol=1e-6)
  np.testing.assert_array_equal(out["bg"], bg2[:, c, c])
  np.testing.assert_array_equal(out["alpha"], alpha[:, c, c])
  np.testing.assert_array_equal(out["onehot"], out["onehot_ctx"][:, c, c])  # same trimap
  np.testing.assert_allclose(out["x_ctx"][..., :3][:, c, c], out["x"][..., :3], atol=1e-6)
  # Eval geometry: tile 0 = the image as one tile, context = the image padded by S/2
  # (replicate, trimap 0), exactly the host-side untiled reference.
  from jaxvision.methods.lfpnet import inference

  def stub(x, xc, raw, train):
    assert not train and xc.shape[1:] == (64, 64, 12)
    m = xc[:, 16:48, 16:48, :3].mean(-1, keepdims=True) + 0.1 * x[..., 6:7]
    return jnp.concatenate([m, raw, raw], -1)
  rng = np.random.default_rng(2)
  img8 = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  tri = rng.choice(np.array([0, 128, 255], np.uint8), size=(2, 32, 32))
  # (each eval_alpha under one jit: one compiled program instead of one per eager op)
  got = jax.jit(lambda i, t: M.eval_alpha(stub, i, t))(jnp.asarray(img8, jnp.float32) / 255,
                                                       jnp.asarray(tri))
  corner = lambda x, xc, raw, train: jnp.broadcast_to(xc[:, :1, :1, 3:4], x.shape[:3] + (1,))
  unknown = jnp.full((2, 32, 32), 128, jnp.uint8)
  assert (np.asarray(jax.jit(lambda i, t: M.eval_alpha(corner, i, t))(
      jnp.asarray(img8, jnp.float32) / 255, unknown)) == 1.0).all()  # the context's padding
  # is background (one-hot channel 0)
  for k in range(2):
    want = inference.predict_alpha_untiled(lambda x, xc, raw: stub(x, xc, raw, False), img8[k],
                                           tri[k])
    np.testing.assert_allclose(np.asarray(got[k]), want, atol=1e-5)


def test_start_up_errors(tmp_path):
  c = _smoke()
  c.dataset.image_size = 48
  ctx, _ = loop.build_context(c, str(tmp_path))
  with pytest.raises(ConfigError, match="image_size=64"):
    M.validate(ctx)
  from jaxvision.config_lib import load_config_file
  full = load_config_file(CONFIG)
  with pytest.raises(ConfigError, match="set config.dataset.fg_folder"):
    DATASETS.get("comp1k_folder")(full)
  full.dataset.fg_folder = str(tmp_path / "missing")
  with pytest.raises(DataNotReadyError, match="does not exist"):
    DATASETS.get("comp1k_folder")(full)
  assert METHODS.get("lfpnet").name == "lfpnet"


def test_comp1k_folder_records(tmp_path):
  from PIL import Image
  rng = np.random.default_rng(0)
  dirs = {k: tmp_path / k for k in ("fg", "alpha", "bg", "merged", "talpha", "trimap")}
  for d in dirs.values():
    d.mkdir()
  for i in range(2):
    a = np.zeros((40, 50), np.uint8)
    a[:, 25:] = 255
    a[:, 24] = 100
    Image.fromarray(a).save(dirs["alpha"] / f"f{i}.png")
    rgb = lambda h, w: Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8))  # noqa: E731
    rgb(40, 50).save(dirs["fg"] / f"f{i}.png")
    rgb(20, 30).save(dirs["bg"] / f"b{i}.jpg")
    rgb(30, 60).save(dirs["merged"] / f"t{i}.png")
    Image.fromarray(np.tile(a, (1, 2))[:30, :60]).save(dirs["talpha"] / f"t{i}.png")
    Image.fromarray(np.full((30, 60), 128, np.uint8)).save(dirs["trimap"] / f"t{i}.png")
  from jaxvision.config_lib import load_config_file
  c = load_config_file(CONFIG)
  c.dataset.update(fg_folder=str(dirs["fg"]), alpha_folder=str(dirs["alpha"]),
                   bg_folder=str(dirs["bg"]), test_merged=str(dirs["merged"]),
                   test_alpha=str(dirs["talpha"]), test_trimap=str(dirs["trimap"]),
                   image_size=64, eval_size=64, num_train=6)
  with pytest.raises(DataNotReadyError, match="same file names"):
    (dirs["trimap"] / "t1.png").rename(dirs["trimap"] / "x1.png")
    DATASETS.get("comp1k_folder")(c)
  (dirs["trimap"] / "x1.png").rename(dirs["trimap"] / "t1.png")
  ds = DATASETS.get("comp1k_folder")(c)
  r = ds.train[3]
  assert r["image"].shape == (64, 64, 3) and r["alpha"].shape == (64, 64, 1)
  assert 0 < r["alpha"][32, 32, 0] < 255  # the crop is centred on an unknown pixel
  e = ds.eval[0]
  assert e["image"].shape == (64, 64, 3) and e["alpha"].shape == (64, 64, 1)
  assert (e["trimap"][30:] == 0).all() and (e["trimap"][:, 60:] == 0).all()
  assert (e["trimap"][:30, :60] == 128).all()
  # The alphamatting.com layout as the eval set (training downloads, with ground truth).
  am = tmp_path / "am"
  for sub in ("input_training_lowres", "gt_training_lowres", "trimap_training_lowres/Trimap1",
              "trimap_training_lowres/Trimap2"):
    (am / sub).mkdir(parents=True)
  for i in range(3):
    Image.fromarray(rng.integers(0, 256, (20, 25, 3), np.uint8)).save(
        am / "input_training_lowres" / f"GT0{i}.png")
    Image.fromarray(np.full((20, 25), 60 * i, np.uint8)).save(
        am / "gt_training_lowres" / f"GT0{i}.png")
    for t, v in (("Trimap1", 128), ("Trimap2", 255)):
      Image.fromarray(np.full((20, 25), v, np.uint8)).save(
          am / "trimap_training_lowres" / t / f"GT0{i}.png")
  c.dataset.update(test_layout="alphamatting", alphamatting_dir=str(am),
                   alphamatting_trimap="Trimap2", test_merged="")
  e = DATASETS.get("comp1k_folder")(c).eval[2]
  assert e["image"].shape == (64, 64, 3) and (e["alpha"][:20, :25] == 120).all()
  assert (e["trimap"][:20, :25] == 255).all() and (e["trimap"][20:] == 0).all()
  c.dataset.alphamatting_trimap = "User"
  with pytest.raises(ConfigError, match=r"'User' is not one of \['Trimap1', 'Trimap2'\]"):
    DATASETS.get("comp1k_folder")(c)
  (am / "gt_training_lowres" / "GT01.png").unlink()
  c.dataset.alphamatting_trimap = "Trimap1"
  with pytest.raises(DataNotReadyError, match="same file names"):
    DATASETS.get("comp1k_folder")(c)


def test_prepare_starts_the_head_inside_the_clamp(runs, tmp_path):
  c = _smoke()
  c.lfpnet.head_bias_init = 0.5
  ctx, _ = loop.build_context(c, str(tmp_path))
  # The trained smoke state (its head biases moved away from 0.5) stands in for a fresh init:
  # prepare() only rewrites the head bias, whatever the other parameters hold.
  st = jax.device_get(runs["full"].state)
  bias = lambda s: np.asarray(s["models"]["matting"]["params"]["head3"]["bias"].get_value())
  assert (bias(st) != 0.5).any()
  st2 = M.prepare(ctx, st, {})
  assert jax.tree.structure(st2) == jax.tree.structure(st)
  np.testing.assert_array_equal(bias(st2), np.full(7, 0.5, np.float32))
  c.lfpnet.head_bias_init = -1.0
  st3 = M.prepare(ctx, st, {})
  np.testing.assert_array_equal(bias(st3), bias(st))
