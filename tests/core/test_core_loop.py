"""The one training loop: train/eval/checkpoint, exact resume, re-sharded restore,
no recompiles, stages with structure-changing transitions, NaN guard."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.core import loop
from jaxvision.core.method import Method, Stage
from jaxvision.core.registry import METHODS
from jaxvision.core import checkpoint, roles
from jaxvision.core.sharding import path_str


def _smoke(load_config, **overrides):
  c = load_config("classify", "smoke")
  for k, v in overrides.items():
    node = c
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = v
  return c


def _params(state):
  return [np.asarray(x) for x in jax.tree.leaves(state["models"])]


def test_smoke_trains_evaluates_checkpoints(load_config, tmp_path):
  assert jax.device_count() == 8
  trainer = loop.Trainer(_smoke(load_config), str(tmp_path))
  summary = trainer.run()
  assert summary["steps"] == 6 and summary["devices"] == 8
  assert set(summary["final"]) >= {"top1", "top5", "loss"}
  assert 0.0 <= summary["final"]["top1"] <= 1.0
  with open(tmp_path / "summary.json") as f:
    assert json.load(f)["config"]["method"] == "classify"
  lines = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [l["step"] for l in lines if "train/loss" in l] == [2, 4, 6]
  assert any("eval/top1" in l for l in lines)  # eval_every=4 and stage end
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3", "6"]
  assert os.listdir(tmp_path / "tb")
  # No recompilation across steps: one trace of the train step.
  assert list(trainer.trace_counts.values()) == [1]
  # Params are replicated and the batch was split over the 8 devices.
  leaf = jax.tree.leaves(trainer.state["models"])[0]
  assert len(leaf.sharding.device_set) == 8


def test_resume_is_exact(load_config, tmp_path):
  full = loop.Trainer(_smoke(load_config), str(tmp_path / "full"))
  full.run()
  with pytest.raises(loop.Preempted):
    loop.train(_smoke(load_config), str(tmp_path / "cut"), stop_at_step=4)
  resumed = loop.Trainer(_smoke(load_config), str(tmp_path / "cut"))
  summary = resumed.run()
  assert summary["steps"] == 6
  for a, b in zip(_params(full.state), _params(resumed.state)):
    np.testing.assert_array_equal(a, b)


def test_restore_on_smaller_mesh(load_config, tmp_path):
  first = loop.Trainer(_smoke(load_config), str(tmp_path))  # 8 devices, ends at step 6
  first.run()
  t = loop.Trainer(_smoke(load_config, **{"mesh.shape": (4,)}), str(tmp_path))
  assert t.mesh.devices.size == 4
  summary = t.run()  # restores step 6 onto 4 devices; nothing left to train
  assert summary["steps"] == 6
  leaf = jax.tree.leaves(t.state["models"])[0]
  assert len(leaf.sharding.device_set) == 4
  for a, b in zip(_params(first.state), _params(t.state)):
    np.testing.assert_array_equal(a, b)
  assert summary["final"] == pytest.approx(first.meta["evals"]["train"]["end"], rel=1e-5)


def test_resume_with_changed_config_is_refused(load_config, tmp_path):
  loop.train(_smoke(load_config), str(tmp_path))
  from jaxvision.config_lib import ConfigError
  with pytest.raises(ConfigError, match="batch_size"):
    loop.train(_smoke(load_config, batch_size=32), str(tmp_path))


def test_eval_with_padding_equals_direct_computation(load_config, tmp_path):
  c = _smoke(load_config, **{"dataset.num_eval": 37, "eval_batch_size": 16, "steps": 2})
  t = loop.Trainer(c, str(tmp_path))
  t.run()
  res = t.evaluate(t.state, t.meta, jax.tree.map(lambda x: x.sharding, t.state))
  ev = t.dataset.eval
  x = np.stack([ev[i]["image"] for i in range(len(ev))])
  y = np.stack([ev[i]["label"] for i in range(len(ev))])
  model = roles.merge(roles.graphdef(t.ctx, t.meta), jax.device_get(t.state["models"]["student"]))
  logits = np.asarray(model(jnp.asarray(x), train=False))
  assert res["top1"] == pytest.approx(float(np.mean(logits.argmax(-1) == y)), abs=1e-6)


def test_fsdp_sharding_trains(load_config, tmp_path):
  c = _smoke(load_config, **{"sharding.params": "fsdp", "models.student.kwargs": {"width_multiplier": 4.0}})
  t = loop.Trainer(c, str(tmp_path))
  t.run()
  specs = {str(x.sharding.spec) for x in jax.tree.leaves(t.state["models"])}
  assert any("data" in s for s in specs)


def test_nan_guard_keeps_last_good_checkpoint(load_config, tmp_path):
  c = _smoke(load_config, **{"optims.student.lr": 1e30, "log_every": 1, "checkpoint_every": 1})
  with pytest.raises(loop.TrainingDivergedError, match="last good checkpoint"):
    loop.train(c, str(tmp_path))
  steps = sorted(int(s) for s in os.listdir(tmp_path / "checkpoints") if s.isdigit())
  assert steps, "the steps before divergence were checkpointed"
  # every kept checkpoint holds finite parameters
  import orbax.checkpoint as ocp
  from jaxvision.core.checkpoint import Checkpointer
  ck = Checkpointer(str(tmp_path))
  raw = ck.manager.restore(steps[-1], args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
  ck.close()
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(raw))


# ---------------------------------------------------------------- stages
def _two_stage_method():
  """Stage 'wide' on cnn_small, then a transition that keeps the first half of
  every conv's filters (a structure change), then stage 'narrow'."""

  def stages(ctx):
    return [Stage("wide", 3), Stage("narrow", 3)]

  def init(ctx, rng, meta):
    return roles.init_state(ctx, rng, meta, {"student": roles.make_tx(ctx, "student", 6)})

  def train_step(ctx, meta, stage):
    return roles.make_train_step(roles.graphdef(ctx, meta), roles.make_tx(ctx, "student", 6))

  def predict_fns(ctx, meta, stage):
    return {"classify": roles.classify_predict(roles.graphdef(ctx, meta))}

  def transition(ctx, state, meta, nxt):
    old = roles.merge(roles.graphdef(ctx, meta), state["models"]["student"])
    widths = [w // 2 for w in old.widths]
    new_meta = {"widths": {"student": widths}}
    new = roles.build_model(ctx, new_meta, nnx.Rngs(0))
    cin = None
    for i, w in enumerate(widths):
      k = old.convs[i].kernel[...]
      k = k[..., :w] if cin is None else k[:, :, :cin, :w]
      new.convs[i].kernel[...] = k
      for name in ("scale", "bias", "mean", "var"):
        getattr(new.bns[i], name)[...] = getattr(old.bns[i], name)[...][:w]
      cin = w
    new.fc.kernel[...] = old.fc.kernel[...][:cin]
    new.fc.bias[...] = old.fc.bias[...]
    ms = roles.model_state(new)
    tx = roles.make_tx(ctx, "student", 6)
    out = {"step": state["step"], "models": {"student": ms}, "opt": {"student": tx.init(ms["params"])},
           "extras": {}}
    return out, new_meta

  return Method("two_stage_test", init=init, train_step=train_step, predict_fns=predict_fns,
                stages=stages, transition=transition)


if "two_stage_test" not in METHODS:
  METHODS.register("two_stage_test", _two_stage_method())


def test_stages_transition_and_resume(load_config, tmp_path):
  c = _smoke(load_config, method="two_stage_test", checkpoint_every=0)
  full = loop.Trainer(c, str(tmp_path / "full"))
  s = full.run()
  assert s["steps"] == 6
  assert set(s["stages"]) == {"wide", "narrow"}
  assert set(s["stages"]["narrow"]) == {"start", "end"}
  assert full.meta["widths"]["student"] == [w // 2 for w in roles.build_model(
      full.ctx, {}, nnx.Rngs(0)).widths]
  # interrupted in the second stage, after the transition, then resumed
  with pytest.raises(loop.Preempted):
    loop.train(c, str(tmp_path / "cut"), stop_at_step=5)
  resumed = loop.Trainer(c, str(tmp_path / "cut"))
  resumed.run()
  assert resumed.meta["widths"] == full.meta["widths"]
  for a, b in zip(_params(full.state), _params(resumed.state)):
    np.testing.assert_array_equal(a, b)


def test_init_from_orbax_checkpoint(load_config, tmp_path):
  c1 = _smoke(load_config)
  first = loop.Trainer(c1, str(tmp_path / f"a{c1.seed}"))
  s1 = first.run()
  c = _smoke(load_config, steps=0)
  c.models.student.init.checkpoint = str(tmp_path / "a{seed}")  # '{seed}' -> config.seed
  second = loop.Trainer(c, str(tmp_path / "b"))
  s2 = second.run()
  assert s2["final"] == s1["final"]
  for a, b in zip(jax.tree.leaves(first.state["models"]), jax.tree.leaves(second.state["models"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # init.skip: a layer path (without the params/rest collection) keeps the target's values
  # in both collections; every other leaf is loaded.
  trained = jax.device_get(first.state["models"]["student"])
  target = jax.tree.map(np.zeros_like, trained)
  flat = [(path_str(p).split("/", 1)[1], v)
          for p, v in jax.tree_util.tree_flatten_with_path(trained)[0]]
  layer = [k for k, _ in flat][-1].rsplit("/", 1)[0]  # the last layer, e.g. the classifier
  ckpt = str(tmp_path / f"a{c1.seed}")
  got = jax.tree.leaves(checkpoint.load_model_state(ckpt, target, "student", skip=[layer]))
  kept = [k for k, _ in flat if k.startswith(layer + "/")]
  assert 0 < len(kept) < len(flat)
  for (k, want), have in zip(flat, got):
    np.testing.assert_array_equal(np.asarray(have), 0 if k in kept else np.asarray(want))
  with pytest.raises(ValueError, match="init.skip prefixes"):
    checkpoint.load_model_state(ckpt, target, "student", skip=["no_such_layer"])
