"""OptG method through the core loop: smoke + resume (masks in checkpoints), demo, export."""
import json
import os

import jax
import numpy as np
import pytest

import jaxvision.methods.optg  # noqa: F401  (registers "optg")
from jaxvision.core import loop
from jaxvision.methods.optg import evaluate
from jaxvision.sparsity import topk


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def test_optg_config_variants(load_config):
  c = load_config("optg", "resnet50_98")
  assert (c.models.student.name, c.optg.target, c.num_epochs, c.optims.student.lr) == ("resnet50", 0.98, 100.0, 0.1)
  assert c.optims.student.label_smoothing == 0.1 and c.optims.student.warmup_epochs == 5.0
  c = load_config("optg", "mobilenet_v1_80")
  assert (c.num_epochs, c.optims.student.lr, c.optims.student.weight_decay) == (180.0, 0.05, 4e-5)
  assert load_config("optg", "resnet50_965").optg.target == 0.965
  c = load_config("optg", "vgg16_90")
  assert (c.models.student.name, c.dataset.name, c.num_epochs) == ("vgg16", "cifar10", 160.0)
  with pytest.raises(ValueError, match="variant"):
    load_config("optg", "resnet50_97")


def test_optg_smoke_resume_keeps_masks_and_scores(load_config, tmp_path):
  """Interrupted + resumed run ends in the same state (masks, scores) as an uninterrupted one."""
  c = load_config("optg", "smoke")
  c.progress = False
  full = loop.Trainer(c, str(tmp_path / "full"))
  s_full = full.run()
  with pytest.raises(loop.Preempted):
    loop.train(c, str(tmp_path / "resumed"), stop_at_step=3)
  resumed = loop.Trainer(c, str(tmp_path / "resumed"))
  s_res = resumed.run()
  for key in ("masks", "scores"):
    a, b = _leaves(full.state["extras"][key]), _leaves(resumed.state["extras"][key])
    assert len(a) == 4
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x, y)
  n = s_full["masked_params"]
  assert s_full["kept_params"] == topk.keep_count(n, 0.8) == s_res["kept_params"]
  assert s_full["sparsity"] == pytest.approx(1 - topk.keep_count(n, 0.8) / n)
  assert s_full["final"]["top1"] == pytest.approx(s_res["final"]["top1"])
  wd = tmp_path / "full"
  assert any((wd / "checkpoints").iterdir())
  for f in ("summary.json", "layer_sparsity.png", "sparsity_vs_step.png", "export/meta.json"):
    assert (wd / f).exists(), f
  summ = json.loads((wd / "summary.json").read_text())
  assert set(summ["layer_sparsity"]) == {"convs/0/kernel", "convs/1/kernel", "convs/2/kernel",
                                         "fc/kernel"}
  assert summ["flops_sparse"] < summ["flops_dense"] and summ["params_sparse"] < summ["params_dense"]
  rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().splitlines()]
  assert any("train/sparsity" in r for r in rows)
  # The export of a synthetic-data run is scored on that run's eval set (same size and seed).
  res = evaluate.evaluate(str(wd / "export"), batch_size=32)
  assert res["num_examples"] == c.dataset.num_eval
  assert res["top1"] == pytest.approx(s_full["final"]["top1"], abs=1e-6)


@pytest.mark.slow
def test_optg_demo_shortened_and_export_evaluates(load_config, tmp_path):
  c = load_config("optg", "demo")
  c.batch_size, c.steps = 64, 44  # 2 epochs of 22 steps: the last refresh is at the 90% target
  c.progress = False
  c.checkpoint_every = 0
  s = loop.train(c, str(tmp_path))
  n = s["masked_params"]
  assert s["kept_params"] == topk.keep_count(n, 0.9)
  assert 0.0 <= s["final"]["top1"] <= 1.0
  res = evaluate.evaluate(s["export"], batch_size=120)
  # The export alone (masks applied, no sparsity code) reproduces the run's eval.
  assert res["top1"] == pytest.approx(s["final"]["top1"], abs=1e-6)
  assert res["sparsity"] == pytest.approx(s["weight_sparsity"], abs=1e-6)
  assert res["num_examples"] > 0
