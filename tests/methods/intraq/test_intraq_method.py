"""IntraQ synthesis and fine-tuning on the spec §8 tiny teacher, and the demo config end to end."""
import functools
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvision import losses, quant
from jaxvision.core import roles
from jaxvision.methods import intraq
from jaxvision.methods.intraq import synthesis
from tiny_models import TinyBNCNN as Tiny

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _teacher():
  m = Tiny(nnx.Rngs(0))
  for i in range(20):  # populate BN running statistics from random batches
    x = 0.5 + 2.0 * jax.random.normal(jax.random.key(100 + i), (16, 8, 8, 3))
    m(x, train=True)
  gdef, params, rest = roles.split(m)
  return m, gdef, {"params": params, "rest": rest}


def _bns(gdef, ts, x):
  return losses.bn_stats_loss(synthesis.teacher_forward(gdef, ts, x, "fc")[1])


def _run(cfg, gdef, ts, seed=0):
  ex = synthesis.init_extras(jax.random.key(seed), 1, 16, (8, 8, 3), 10, 16, cfg)
  bns = jax.jit(functools.partial(_bns, gdef))
  bns0 = float(bns(ts, ex["images"][0]))
  out = synthesis.synthesize(cfg, gdef, ts, ex, jax.random.key(seed + 1))
  return bns0, float(bns(ts, out["images"][0])), out


def test_synthesis_lowers_bn_statistics_loss():
  _, gdef, ts = _teacher()
  base = dict(iters=30, lr=0.1, plateau_patience=50, label_loss="soft", eps_soft=0.6,
              lambda_l=0.05, lambda_u=0.8, feature_layer="fc")
  b0, b1, out = _run(synthesis.SynthConfig(lor=False, **base), gdef, ts)
  assert b1 < 0.5 * b0, (b0, b1)
  # after the batch, its teacher features joined the class centres
  assert float(out["centres"]["count"].sum()) == 16.0
  b0, b1, _ = _run(synthesis.SynthConfig(lor=True, **base), gdef, ts)
  assert b1 < b0, (b0, b1)


def test_bns_only_variant_labels_are_teacher_predictions():
  _, gdef, ts = _teacher()
  cfg = synthesis.SynthConfig(iters=3, lr=0.1, lor=False, mdc=False, label_loss="none",
                              feature_layer="fc")
  _, _, out = _run(cfg, gdef, ts)
  logits, _, _ = synthesis.teacher_forward(gdef, ts, out["images"][0], "fc")
  np.testing.assert_array_equal(np.asarray(out["labels"][0]), np.asarray(jnp.argmax(logits, -1)))
  assert set(out["history"]) == {"loss", "lr", "bns"}


def test_plateau_schedule_cuts_lr():
  cfg = synthesis.SynthConfig(lr=0.5, plateau_patience=2, plateau_factor=0.1)
  st = synthesis.init_plateau(cfg)
  lrs = []
  for loss in [1.0, 1.0, 1.0, 1.0, 0.5]:
    st = synthesis.plateau_update(cfg, st, jnp.float32(loss))
    lrs.append(float(st["lr"]))
  np.testing.assert_allclose(lrs, [0.5, 0.5, 0.5, 0.05, 0.05], rtol=1e-6)


def test_finetune_kd_ce_decreases_and_bn_stats_frozen():
  teacher, tgdef, ts = _teacher()
  student = nnx.clone(teacher)
  x = 0.5 + 2.0 * jax.random.normal(jax.random.key(7), (8, 8, 8, 3))
  quant.quantize_model(student, quant.uniform_rules(4), sample_input=x[:1])
  quant.calibrate(student, [x])
  gdef, params, rest = roles.split(student)
  tx = optax.sgd(0.01, momentum=0.9, nesterov=True)
  loss_fn = functools.partial(intraq.kd_ce_loss, alpha=20.0, temperature=20.0, ce_weight=1.0)
  step = jax.jit(roles.make_train_step(gdef, tx, loss_fn, role="student"))
  state = {"step": jnp.zeros((), jnp.int32),
           "models": {"student": {"params": params, "rest": rest}},
           "opt": {"student": tx.init(params)}, "extras": {}}
  t_logits = teacher(x, train=False)
  batch = {"image": x, "label": jnp.argmax(t_logits, -1), "teacher_logits": t_logits}
  loss_hist = []
  for i in range(20):
    state, m = step(state, batch, jax.random.key(i))
    loss_hist.append(float(m["loss"]))
  assert loss_hist[-1] < loss_hist[0]
  after = state["models"]["student"]["rest"]
  for a, b in zip(jax.tree.leaves(rest), jax.tree.leaves(after)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # BN stats and ranges frozen


def _load_config(arg):
  spec = importlib.util.spec_from_file_location("intraq_cfg", os.path.join(ROOT, "configs",
                                                                         "intraq.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def test_config_variants_build():
  c = _load_config("resnet18_w5a5")
  assert c.models.teacher.name == "resnet18" and c.intraq.quant.w_bits == 5
  assert c.intraq.synthesis.eps_soft == 1.0 and c.intraq.synthesis.lambda_u == 2.0
  c = _load_config("mobilenet_v1_w4a4_paper")
  assert c.intraq.synthesis.lambda_l == 0.05
  c = _load_config("cifar100_w3a3")
  assert (c.dataset.name, c.intraq.quant.a_bits, c.intraq.synthesis.eps_soft) == ("cifar100", 3, 0.6)
  assert c.models.teacher.kwargs.shortcut == "B"


def test_demo_config_runs_shortened_without_reading_training_data(tmp_path, monkeypatch):
  import jaxvision.data.base as base
  from jaxvision.core import loop
  c = _load_config("demo")
  c.progress = False
  c.models.teacher.name = "cnn_small"  # the demo pipeline on a smaller model (CI time)
  c.models.teacher.kwargs = {"width_multiplier": 0.25}
  c.intraq.pretrain.steps = 2
  c.intraq.synthesis.update(num_batches=2, batch_size=16, iters=2)
  c.intraq.calib.update(steps=1, batch_size=8)
  c.intraq.finetune.update(steps=2, batch_size=8)
  c.batch_size, c.eval_batch_size = 16, 120
  c.checkpoint_every = 100
  reads = []
  orig = base.Pipeline.train_batch

  def guarded(self, step):
    reads.append(step)
    if step >= c.intraq.pretrain.steps:  # only the FP pretraining stage may read data
      raise AssertionError(f"training data read at step {step} (after pretraining)")
    return orig(self, step)

  monkeypatch.setattr(base.Pipeline, "train_batch", guarded)
  s = loop.train(c, str(tmp_path))
  assert sorted(set(reads)) == [0, 1]
  iq = s["intraq"]
  for k in ("fp_top1", "ptq_top1", "bns_only_top1", "intraq_top1"):
    assert 0.0 <= iq[k] <= 1.0
  sz = iq["model_size_bits"]
  assert sz["quantized"] < sz["fp32"] / 4
  assert os.path.exists(tmp_path / "intraq_images_intraq.png")
  assert os.path.exists(tmp_path / "intraq_images_bns.png")
  saved = json.load(open(tmp_path / "summary.json"))
  assert saved["intraq"]["main_variant"] == "intraq"
  stages = [k for k in saved["stages"]]
  assert "finetune_intraq" in stages and "calibrate_bns" in stages
