"""CLR-RNF through the one training loop: configs, prune-only demo, smoke resume."""
import json
import os

import pytest

import jaxvision.methods.clr_rnf  # noqa: F401  (registers "clr_rnf")
from jaxvision.config_lib import ConfigError
from jaxvision.core import loop
from jaxvision.core.registry import METHODS


def test_registered_and_config_variants(load_config):
  assert METHODS.get("clr_rnf").name == "clr_rnf"
  want = {"vgg16": 0.86, "resnet56": 0.56, "resnet110": 0.69, "googlenet": 0.91,
          "resnet50_020": 0.20, "resnet50_044": 0.44, "resnet50_044_cos": 0.44,
          "resnet50_052": 0.52}
  for variant, pr in want.items():
    c = load_config("clr_rnf", variant)
    assert c.method == "clr_rnf" and c.clr_rnf.pr_target == pr
    if variant.startswith("resnet50"):
      assert c.models.student.name == "resnet50" and c.dataset.name == "imagenet2012"
      assert c.clr_rnf.inherit_bn and c.optims.student.lr == 0.1 and c.num_epochs == 90
      assert c.optims.student.schedule == ("cosine" if variant.endswith("cos") else "multistep")
    else:
      assert c.models.student.name == variant and c.optims.student.weight_decay == 5e-3
      assert c.num_epochs == 150 and tuple(c.optims.student.milestones_epochs) == (50, 100)
  assert not load_config("clr_rnf", "vgg16").clr_rnf.inherit_bn
  with pytest.raises(ConfigError):
    load_config("clr_rnf", "resnet18")


def test_bad_option_fails_clearly(load_config):
  from jaxvision.methods.clr_rnf import prune_options
  c = load_config("clr_rnf", "smoke")
  c.clr_rnf.selection = "kmeans"
  with pytest.raises(ValueError, match="selection"):
    prune_options(c)


def test_demo_prune_only_reports(load_config, tmp_path):
  c = load_config("clr_rnf", "demo")  # shortened: 1/8 width, 4 dense steps, no fine-tuning
  c.models.student.kwargs.width_multiplier = 0.125
  c.clr_rnf.dense_steps = 4
  c.steps = 0  # fine-tuning steps 0: prune and report only
  c.batch_size, c.eval_batch_size = 32, 120
  s = loop.train(c, str(tmp_path))
  acc = s["accuracy"]
  assert set(acc) == {"before_pruning", "after_pruning", "after_finetune"}
  assert acc["after_finetune"] == acc["after_pruning"] and "top1" in acc["before_pruning"]
  assert 0 < s["flops_after"] < s["flops_before"] and 0 < s["params_after"] < s["params_before"]
  assert s["flops_reduction"] == pytest.approx(1 - s["flops_after"] / s["flops_before"])
  assert len(s["widths"]) == 13 and s["dense_widths"] == [8, 8, 16, 16, 32, 32, 32] + [64] * 6
  for i, w in enumerate(s["widths"]):
    kept = s["kept_indices"][f"convs/{i}"]
    assert len(kept) == w and kept == sorted(kept) and max(kept) < s["dense_widths"][i]
    assert s["layers"][f"convs/{i}"]["after"] == w
  assert os.path.getsize(tmp_path / "clr_rnf_widths.png") > 1000
  with open(tmp_path / "summary.json") as f:
    assert json.load(f)["widths"] == s["widths"]


def test_smoke_resumes_after_transition(load_config, tmp_path):
  c = load_config("clr_rnf", "smoke")
  with pytest.raises(loop.Preempted):
    loop.train(c, str(tmp_path), stop_at_step=5)  # dense 4 steps, prune, 1 fine-tune step
  s = loop.train(c, str(tmp_path))
  assert s["steps"] == 8 and s["widths"] != s["dense_widths"]
  assert s["final"] and (tmp_path / "summary.json").exists()
  assert any((tmp_path / "checkpoints").iterdir())
  assert set(s["stages"]) == {"dense", "finetune"}
  assert {"start", "end"} <= set(s["stages"]["finetune"])
  for unit, kept in s["kept_indices"].items():
    assert len(kept) == s["layers"][unit]["after"]


def test_bad_options_fail_at_start(load_config, tmp_path):
  c = load_config("clr_rnf", "smoke")
  c.clr_rnf.ranking = "global"
  with pytest.raises(ValueError, match="ranking"):
    loop.train(c, str(tmp_path / "a"))
  c = load_config("clr_rnf", "smoke")
  c.models.student.name = "mobilenet_v2"
  with pytest.raises(ValueError, match="no pruning rules"):
    loop.train(c, str(tmp_path / "b"))
