"""Roles in the core: a two-role GAN step (D then G), a frozen EMA role, typed stages with a
stage-aware eval, a wall-clock-budgeted stage, exact resume, and start-up errors."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from jaxvision import config_lib
from jaxvision.core import loop, roles
from jaxvision.core.config import ConfigError
from jaxvision.core.method import Method, Stage
from jaxvision.core.registry import METHODS, UnknownNameError
from jaxvision.models import register_model


class _TinyGen(nnx.Module):
  """conv3x3(3->c)+ReLU -> conv3x3(c->3): image -> image. x: [B, H, W, 3]."""
  default_input_shape = (8, 8, 3)

  def __init__(self, num_classes, *, rngs, widths=None, width_multiplier=1.0, dtype="float32"):
    c = (widths or self.default_widths())[0]
    self.widths = [c]
    self.c1 = nnx.Conv(3, c, (3, 3), rngs=rngs)
    self.c2 = nnx.Conv(c, 3, (3, 3), rngs=rngs)

  @staticmethod
  def default_widths(**kw):
    return [4]

  def __call__(self, x, train=False):
    return x + self.c2(nnx.relu(self.c1(x)))


register_model("test_tiny_gen", _TinyGen)


def _d_loss(gen_gdef):
  def loss(model, batch, rng, state):
    fake = jax.lax.stop_gradient(roles.merge(gen_gdef, state["models"]["generator"])(
        batch["image"]))
    real = model(batch["image"], train=True)[:, 0]
    fake_s = model(fake + 0.5, train=True)[:, 0]
    l = jnp.mean(jax.nn.relu(1 - real)) + jnp.mean(jax.nn.relu(1 + fake_s))  # hinge
    return l, {"real": jnp.mean(real)}
  return loss


def _g_loss(d_gdef):
  def loss(model, batch, rng, state):
    fake = model(batch["image"]) + 0.5
    d = roles.merge(d_gdef, state["models"]["discriminator"])
    return -jnp.mean(d(fake, train=True)[:, 0]), {}
  return loss


def _init(ctx, rng, meta):
  n = 10
  return roles.init_state(ctx, rng, meta, {
      "generator": roles.make_tx(ctx, "generator", n),
      "discriminator": roles.make_tx(ctx, "discriminator", n), "ema": None})


def _train_step(ctx, meta, stage):
  gg, dg = roles.graphdef(ctx, meta, "generator"), roles.graphdef(ctx, meta, "discriminator")
  step = roles.make_multi_step([
      ("discriminator", dg, roles.make_tx(ctx, "discriminator", 10), _d_loss(gg)),
      ("generator", gg, roles.make_tx(ctx, "generator", 10), _g_loss(dg))])

  def fn(state, batch, rng):
    state, m = step(state, batch, rng)
    return roles.ema_update(state, "ema", "generator", 0.9), m
  return fn


def _predict_fns(ctx, meta, stage):
  gg = roles.graphdef(ctx, meta, "generator")
  marker = 1.0 if stage.kind == "finetune" else 0.0

  def translate(state, batch):
    out = roles.merge(gg, state["models"]["ema"])(batch["image"])
    err = jnp.mean((out - batch["image"]) ** 2, axis=(1, 2, 3))
    return {"err": err, "stage_kind": jnp.full(err.shape, marker)}
  return {"translate": translate}


def _stages(ctx):
  if ctx.config.get("budget", 0.0):
    return [Stage("anytime", kind="anytime", seconds=float(ctx.config.budget))]
  return [Stage("warmup", steps=2), Stage("gan", steps=4, kind="finetune")]


METHODS.register("test_toy_gan", Method(name="test_toy_gan", init=_init, train_step=_train_step,
                                        predict_fns=_predict_fns, stages=_stages))


def _config(**over):
  c = config_lib.base_config()
  c.method = "test_toy_gan"
  c.models = ml_collections.ConfigDict({
      "generator": config_lib.model_block("test_tiny_gen"),
      "discriminator": config_lib.model_block("cnn_small", num_classes=1, width_multiplier=0.25),
      "ema": config_lib.model_block("test_tiny_gen", trainable=False)})
  c.optims = ml_collections.ConfigDict({
      "generator": config_lib.optim_block(name="adam", lr=1e-2, schedule="constant"),
      "discriminator": config_lib.optim_block(name="adam", lr=1e-2, schedule="constant",
                                              weight_decay=0.0)})
  c.evals.eval = config_lib.eval_block(predict="translate", evaluators={"mean": {}})
  c.dataset.update(name="synthetic", num_train=64, num_eval=16, image_size=8)
  c.batch_size, c.eval_batch_size = 8, 8
  c.log_every, c.checkpoint_every, c.progress = 1, 3, False
  c.budget = 0.0
  for k, v in over.items():
    config_lib.set_path(c, k, v)
  return c


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
  t = loop.Trainer(_config(), str(tmp_path_factory.mktemp("full")))
  return t, t.run()


def test_gan_roles_train_and_frozen_role_has_no_optimizer(full_run):
  t, summary = full_run
  assert summary["steps"] == 6
  assert set(t.state["opt"]) == {"generator", "discriminator"}  # frozen EMA: no opt state
  assert set(t.state["models"]) == {"generator", "discriminator", "ema"}
  # the EMA role moved away from its init towards the generator but is not equal to it
  g, e = _leaves(t.state["models"]["generator"]), _leaves(t.state["models"]["ema"])
  assert any(not np.allclose(a, b) for a, b in zip(g, e))
  # stage-aware eval: the predict function knew the stage kind
  assert summary["stages"]["warmup"]["end"]["stage_kind"] == 0.0
  assert summary["stages"]["gan"]["end"]["stage_kind"] == 1.0
  times = [r["time_s"] for r in summary["curve"]]
  assert times == sorted(times) and len(times) >= 3


def test_gan_resume_is_exact(full_run, tmp_path):
  t, _ = full_run
  with pytest.raises(loop.Preempted):
    loop.train(_config(), str(tmp_path), stop_at_step=3)
  resumed = loop.Trainer(_config(), str(tmp_path))
  resumed.run()
  for a, b in zip(_leaves(t.state), _leaves(resumed.state)):
    np.testing.assert_array_equal(a, b)


def test_multi_step_order_and_ema_formula():
  """D is updated before G and G's loss sees the updated D; EMA follows m*t + (1-m)*s."""
  state = {"step": jnp.zeros((), jnp.int32),
           "models": {"a": {"params": {"w": jnp.ones(3)}, "rest": {}},
                      "b": {"params": {"w": jnp.full(3, 2.0)}, "rest": {}}}, "opt": {}}
  new = roles.ema_update(state, "a", "b", 0.75)
  np.testing.assert_allclose(new["models"]["a"]["params"]["w"], 0.75 * 1 + 0.25 * 2)
  np.testing.assert_array_equal(new["models"]["b"]["params"]["w"], 2.0)


def test_budgeted_stage_stops_at_its_budget_with_timestamped_evals(tmp_path):
  budget = 3.0
  c = _config(budget=budget, **{"evals.eval.every_seconds": 0.5})
  t = loop.Trainer(c, str(tmp_path))
  s = t.run()
  assert s["steps"] >= 1
  # the stage ran until its clock passed the budget, and not one step longer
  assert t.meta["budget_last_step_start"]["anytime"] < budget <= t.meta["stage_seconds"][0]
  times = [r["time_s"] for r in s["curve"]]
  assert len(times) >= 2 and times == sorted(times)


def test_changed_role_structure_refuses_resume(tmp_path):
  loop.train(_config(**{"checkpoint_every": 0}), str(tmp_path))
  c = _config(**{"models.generator.kwargs": {"width_multiplier": 0.5}})
  with pytest.raises(ConfigError, match="models"):
    loop.Trainer(c, str(tmp_path)).run()


@pytest.mark.parametrize("key,value,err,match", [
    ("models.generator.optim", "genrator", ConfigError, "no block 'genrator'"),
    ("optims.generator.name", "sgdd", ConfigError, "sgdd"),
    ("models.discriminator.name", "nope_model", UnknownNameError, "nope_model"),
    ("evals.eval.evaluators", {"psnr": {}}, UnknownNameError, "psnr"),
])
def test_bad_names_fail_at_start_up(tmp_path, key, value, err, match):
  with pytest.raises(err, match=match):
    loop.Trainer(_config(**{key: value}), str(tmp_path))


def test_missing_output_key_fails_at_start_up(tmp_path):
  c = _config(**{"evals.eval.evaluators": {"psnr_ssim": {}}})
  with pytest.raises(ConfigError, match="pred"):
    loop.Trainer(c, str(tmp_path)).run()
