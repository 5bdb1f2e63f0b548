"""GCC's CycleGAN task (gcc.task='unpaired'): cycle / identity L1 closed forms, the unpaired data
(synthetic demo and the horse2zebra records), FID over unequal test domains, the paper config's
hard-coded pruned cfgs (2.398 G / 2.708 G), and cyclegan_horse2zebra,smoke trained through
sparsity -> prune transition (both generators) -> GCC with exact resume (one compiled run shared
by the assertions)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxvision.methods  # noqa: F401  (registers "gcc" and its datasets)
from jaxvision.config_lib import load_config_file
from jaxvision.core import evaluation, loop, roles
from jaxvision.evaluators import gan
from jaxvision.methods.gcc import data as gdata
from jaxvision.methods.gcc import gan_losses
from jaxvision.methods.gcc import method as gm
from resume_check import assert_resumes_exactly, smoke_run

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]
# spec §2.2: the official hard-coded cfgs, 2.398 G / 2.708 G thop-legacy MACs at 256x256
G_A = [24, 48, 86, 72, 86, 47, 86, 44, 86, 43, 86, 43, 86, 29, 86, 30, 86, 37, 86, 36, 86, 48, 24]
G_B = [24, 48, 96, 91, 96, 73, 96, 62, 96, 61, 96, 74, 96, 54, 96, 51, 96, 58, 96, 81, 96, 48, 24]


def _config(arg):
  return load_config_file(str(REPO / "configs" / "gcc.py"), arg)


def test_cycle_and_identity_losses_closed_forms():
  real = jnp.array([[0.0, 1.0], [-1.0, 0.5]])
  rec = jnp.array([[0.5, 1.0], [0.0, 0.0]])          # |diff| = 0.5, 0, 1, 0.5 -> mean 0.5
  assert float(gan_losses.cycle_loss(rec, real, 10.0)) == pytest.approx(5.0)
  assert float(gan_losses.identity_loss(rec, real, 10.0, 0.5)) == pytest.approx(2.5)  # 0.5*10*0.5
  assert float(gan_losses.cycle_loss(real, real, 10.0)) == 0.0
  rec2 = rec.at[0, 1].set(2.0)                         # no tie at |0|: d/dr = 10/4 sign(r - x)
  g = jax.grad(lambda r: gan_losses.cycle_loss(r, real, 10.0))(rec2)
  np.testing.assert_allclose(np.asarray(g), 10.0 / 4 * np.sign(np.asarray(rec2 - real)))
  # lsgan on p == 1 for the G and the real D term, p == 0 for the fake D term: all 0
  assert float(gan_losses.g_loss(jnp.ones(3), "lsgan")) == 0.0
  assert float(gan_losses.d_loss(jnp.ones(3), jnp.zeros(3), "lsgan")) == 0.0


@pytest.mark.parametrize("dkd_grad", [False, True])
def test_teacher_d_feature_kd_is_detached_unless_flagged(dkd_grad):
  """cyclegan_dkd_grad=False (the code): the teacher-D feature terms add the same value but no
  gradient to the fake; True: d/dfake of lambda_c * MSE(2 * fake, t) = lambda_c * 4 (fake - t/2)
  / n (the G feature term, identity adapter, is the same either way)."""
  from jaxvision.methods.gcc import unpaired
  fake = jnp.array([[[[0.5, -1.0]]]])                    # [1, 1, 1, 2]
  g_feat, t_g, t_d = jnp.ones((1, 1, 1, 2)), jnp.zeros((1, 1, 1, 2)), jnp.ones((1, 1, 1, 2))

  def loss(f):
    return unpaired.direction_kd([g_feat], f, [t_g, t_d], adapters=lambda fs: fs,
                                 d_features=lambda x: [2.0 * x], dkd_grad=dkd_grad,
                                 lambda_content=3.0, lambda_gram=0.0, metric="mse")[0]

  want_val = 3.0 * (1.0 + np.mean((2 * np.asarray(fake) - 1.0) ** 2))
  assert float(loss(fake)) == pytest.approx(want_val)
  g = np.asarray(jax.grad(loss)(fake))
  want = 3.0 * 2 * (2 * np.asarray(fake) - 1.0) * 2 / 2 if dkd_grad else np.zeros_like(g)
  np.testing.assert_allclose(g, want, rtol=1e-6)


def test_unpaired_records_and_synthetic_demo_data():
  a = [{"image": np.full((4, 4, 3), i, np.uint8)} for i in range(3)]
  b = [np.full((4, 4, 3), 100 + i, np.uint8) for i in range(5)]
  ev = gdata.UnpairedRecords(a, b, eval=True)
  assert len(ev) == 5
  r = ev[4]
  assert r["A"][0, 0, 0] == 1 and r["B"][0, 0, 0] == 104 and not r["a_valid"] and r["b_valid"]
  tr = gdata.UnpairedRecords(a, b, size=6, seed=0)
  bs = sorted(int(tr[i]["B"][0, 0, 0]) for i in range(5))
  assert bs == [100, 101, 102, 103, 104] and tr[0]["A"].shape == (6, 6, 3)
  x = np.random.default_rng(0).integers(0, 256, (2, 3, 3, 3)).astype(np.uint8)
  y = gdata.synthetic_b(x)
  np.testing.assert_array_equal(y[..., 0], 255 - x[..., 1])
  np.testing.assert_array_equal(255 - y[..., [2, 0, 1]], x)          # invertible
  c = _config("cyclegan_horse2zebra,smoke")
  ds = gdata.photos_unpaired(c)
  rec = ds.eval[0]
  np.testing.assert_array_equal(rec["target"], gdata.synthetic_b(rec["A"]))
  t = ds.train.take(np.arange(2))
  assert t["A"].shape == t["B"].shape == (2, 16, 16, 3)
  assert not np.array_equal(gdata.synthetic_b(t["A"]), t["B"])       # unpaired windows


def test_horse2zebra_dataset_from_tfds_sources(monkeypatch):
  """The tfds splits (mocked: 3 horses / 5 zebras of 8x8) -> load 10, random 8 crops; eval
  rows = max(nA, nB) with validity flags; the pp strings run."""
  from jaxvision.data import pp as pp_lib
  from jaxvision.data import tfds_sources
  sizes = {"trainA": 3, "trainB": 5, "testA": 2, "testB": 3}
  calls = []

  def fake_source(name, split, data_dir, download):
    calls.append((name, split))
    return [{"image": np.full((8, 8, 3), 10 * i, np.uint8), "label": 0}
            for i in range(sizes[split])]

  monkeypatch.setattr(tfds_sources, "load_source", fake_source)
  c = _config("cyclegan_horse2zebra")
  c.dataset.update(load_size=10, crop_size=8)
  ds = gdata.horse2zebra(c)
  assert {n for n, _ in calls} == {"cycle_gan/horse2zebra"} and len(calls) == 4
  assert (ds.info.num_train, ds.info.num_eval) == (5, 3)
  assert ds.train[4]["A"].shape == (10, 10, 3)
  ev = [ds.eval[i] for i in range(3)]
  assert [bool(r["a_valid"]) for r in ev] == [True, True, False]
  assert all(bool(r["b_valid"]) for r in ev)
  batch = pp_lib.parse(ds.pp_train)(
      {k: np.stack([ds.train[i][k] for i in range(4)]) for k in ("A", "B")},
      np.random.default_rng(0))
  assert batch["A"].shape == (4, 8, 8, 3) and batch["A"].dtype == np.float32
  assert -1.0 <= batch["B"].min() and batch["B"].max() <= 1.0


def test_fid_counts_only_valid_fake_and_real_rows():
  def feats(x):
    x = np.asarray(x, np.float64)
    return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)

  rng = np.random.default_rng(0)
  ev = evaluation.make("gan_fid", features_fn=feats, kid=False, keys={"real": "real"})
  fake, real = (rng.uniform(size=(2, 5, 6, 6, 3)).astype(np.float32) for _ in range(2))
  fv = [np.ones(5, bool), np.array([1, 1, 0, 0, 0], bool)]           # 7 fakes (like 120 horses)
  rv = [np.ones(5, bool), np.array([1, 1, 1, 1, 0], bool)]           # 9 reals (140 zebras)
  mask = [np.ones(5), np.array([1, 1, 1, 1, 0.0])]                    # last row: batch padding
  for k in range(2):
    ev.update({"pred": fake[k], "real": real[k], "fake_valid": fv[k], "real_valid": rv[k]},
              mask[k])
  q = np.round(np.concatenate([fake[0], fake[1][:2]]) * 255) / 255
  want = gan.fid_from_features(feats(np.concatenate([real[0], real[1][:4]])), feats(q))
  assert ev.result()["fid"] == pytest.approx(want, rel=1e-9)


def test_paper_config_uses_the_hard_coded_cfgs(tmp_path):
  c = _config("cyclegan_horse2zebra")
  g = c.gcc
  assert (g.task, g.loss_type, g.kd_metric, g.pool_size) == ("unpaired", "lsgan", "mse", 50)
  assert (g.lambda_cycle, g.lambda_identity, g.lambda_content, g.lambda_gram) == (10, 0.5, .01, 10)
  assert not g.cyclegan_dkd_grad and g.sparsity_epochs == 0 and g.gcc_epochs == 200
  assert c.models.teacher_d.kwargs.norm == "instance" and c.models.discriminator.kwargs.gates
  assert c.models.generator_b.optim == "generator" and c.models.teacher_g_b.kwargs.ngf == 64
  assert not dict(_config("cyclegan_horse2zebra_pretrain").gcc.fixed_widths)
  c.dataset.name = "photos_unpaired"   # the tfds data is not needed to prune
  ctx, _ = loop.build_context(c, str(tmp_path))
  assert [s.name for s in gm.stages(ctx)] == ["sparsity", "gcc"]
  for role, cfg, anchor in (("generator", G_A, 2.398e9), ("generator_b", G_B, 2.708e9)):
    proto = nnx.eval_shape(lambda r=role: roles.build_model(ctx, {}, nnx.Rngs(0), r))
    assert proto.widths[:3] == [24, 48, 96]                    # the ngf-24 prototype
    res = gm._prune(ctx, {"models": {role: roles.model_state(proto)}}, {}, role)
    assert res.widths == cfg and abs(res.macs - anchor) < 1e6
    assert round(res.full_macs / 1e7) == 292                   # 2.92 G prototype


def _smoke():
  return _config("cyclegan_horse2zebra,smoke")


@pytest.fixture(scope="module")
def cyc_run(tmp_path_factory):
  return smoke_run(_smoke(), tmp_path_factory, "gcc_cyc")


@pytest.mark.slow
def test_smoke_prunes_both_generators_evaluates_and_reports(cyc_run):
  t, s, c, d = cyc_run
  g = s["gcc"]
  assert s["steps"] == c.gcc.sparsity_steps + c.gcc.gcc_steps == 5 and g["task"] == "unpaired"
  for sfx, role in (("", "generator"), ("_b", "generator_b")):
    w = g[f"student{sfx}_widths"]
    assert t.meta["widths"][role] == w and len(w) == 11 and w[:3] == [4, 8, 16]
    rec = g["prune"] if role == "generator" else g["prune"]["generator_b"]
    assert rec["macs"] == g[f"student{sfx}"]["thop_conv"] and rec["full_macs"] == 530_944
    assert abs(rec["macs"] - c.gcc.target_macs) <= c.gcc.prune_tolerance and not rec["fixed_cfg"]
    assert [r["channels"] for r in g[f"gates{sfx}"]] == [4, 8, 16]
  assert set(s["final"]) == {f"{r}/{m}" for r in ("student", "teacher") for m in ("psnr", "ssim")}
  assert all(np.isfinite(v) for v in s["final"].values())
  assert set(s["stages"]) == {"sparsity", "gcc"}
  assert "logged only" in g["d_feature_kd"]
  # pools were re-initialised at the transition and hold 3 (pool_size) fakes after 3 steps
  E = t.state["extras"]
  for k in ("pool_a", "pool_b", "teacher_pool_a", "teacher_pool_b"):
    assert int(E[k]["count"]) == 3 and np.abs(np.asarray(E[k]["images"])).max() <= 1.0
    assert np.asarray(E[k]["images"]).std() > 0
  # the arch step moved both students' alphas (and only below 1 after clipping)
  for r in ("discriminator", "discriminator_b"):
    a = np.concatenate([np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(
        t.state["models"][r]["params"]) if "alpha" in jax.tree_util.keystr(p)])
    assert (a != 1.0).any() and a.max() <= 1.0 + 1e-3
  # grids: 2 eval tiles x input | teacher | student | target (16x16 + 2-px borders)
  from PIL import Image
  assert g["grids"] == [os.path.join(d, "grids", n) for n in ("gcc_5.png", "sparsity_2.png")]
  assert all(np.asarray(Image.open(p)).shape == (2 * 20, 4 * 20, 3) for p in g["grids"])


@pytest.mark.slow
def test_resume_across_the_prune_transition_is_exact(cyc_run, tmp_path):
  t, _, c, _ = cyc_run
  resumed = assert_resumes_exactly(_smoke, t, c.gcc.sparsity_steps + 1, tmp_path)
  assert resumed.meta["widths"] == t.meta["widths"]
