"""Several seeds and variants in one command: sub-workdirs, config overrides, mean ± std."""
import json

import numpy as np
import pytest

from jaxvision import config_lib
from jaxvision.core import sweep
from jaxvision.core.config import ConfigError


def test_parse_sweep():
  assert sweep.parse_sweep("optg.method=optg,gmp;optims.student.lr=0.1,0.05") == {
      "optg.method": ["optg", "gmp"], "optims.student.lr": [0.1, 0.05]}
  with pytest.raises(ConfigError, match="key=v1,v2"):
    sweep.parse_sweep("optg.method")
  rows = sweep.parse_sweep("gcc.selective_d,gcc.online_kd=(False,False),(True,False),(True,True)")
  assert rows == {("gcc.selective_d", "gcc.online_kd"): [(False, False), (True, False), (True, True)]}
  with pytest.raises(ConfigError, match="tuple of 2"):
    sweep.parse_sweep("a,b=1,2")


def test_run_aggregates_seeds_and_variants(tmp_path):
  c = config_lib.base_config()
  c.seed = 10
  c.optims.student.lr = 0.05  # not a swept value: must survive the sweep untouched
  seen = []

  def fake_train(cfg, workdir):  # a deterministic stand-in for loop.train
    seen.append((workdir, cfg.seed, cfg.optims.student.lr))
    return {"final": {"top1": cfg.seed / 100 + cfg.optims.student.lr}, "flops": 5, "steps": 3}

  out = sweep.run(c, str(tmp_path), seeds=3, sweep={"optims.student.lr": [0.1, 0.2]},
                  train_fn=fake_train)
  assert [s for _, s, _ in seen] == [10, 11, 12, 10, 11, 12]
  assert seen[0][0].endswith("lr=0.1/seed0") and seen[-1][0].endswith("lr=0.2/seed2")
  st = out["variants"]["lr=0.2"]["stats"]["top1"]
  want = np.array([0.1, 0.11, 0.12]) + 0.2
  assert st["mean"] == pytest.approx(want.mean()) and st["std"] == pytest.approx(want.std())
  assert st["n"] == 3 and out["variants"]["lr=0.1"]["stats"]["flops"]["std"] == 0.0
  assert json.load(open(tmp_path / "summary.json"))["seeds"] == [10, 11, 12]
  assert "| lr=0.1 (n=3) |" in sweep.format_table(out["variants"])
  assert c.seed == 10 and c.optims.student.lr == 0.05  # the caller's config is untouched
  rows = sweep.run(c, str(tmp_path / "rows"), sweep={("optims.student.lr", "seed"): [(0.1, 1), (0.2, 2)]},
                   train_fn=fake_train)
  assert set(rows["variants"]) == {"lr=0.1,seed=1", "lr=0.2,seed=2"}  # rows, not a product
  with pytest.raises(ConfigError, match="not in the config"):
    sweep.run(c, str(tmp_path), sweep={"optims.student.lrr": [1]}, train_fn=fake_train)


def test_paired_difference_to_a_reference_variant(tmp_path):
  c = config_lib.base_config()
  fake = lambda cfg, d: {"final": {"auc": 0.5 + cfg.optims.student.lr * (1 + cfg.seed)}}
  out = sweep.run(c, str(tmp_path), seeds=2, sweep={"optims.student.lr": [0.0, 0.1]},
                  train_fn=fake, reference="lr=0.0")
  d = out["variants"]["lr=0.1"]["vs_reference"]["auc"]
  assert d == pytest.approx({"mean": 0.15, "std": 0.05, "n": 2})
  assert "vs_reference" not in out["variants"]["lr=0.0"]
  with pytest.raises(ConfigError, match="not a variant"):
    sweep.run(c, str(tmp_path), sweep={"optims.student.lr": [0.0]}, train_fn=fake, reference="x")


def test_nested_summary_fields_are_aggregated(tmp_path):
  c = config_lib.base_config()
  fake = lambda cfg, d: {"final": {}, "variants": {"l1": {"psnr": 30.0 + 2 * cfg.seed}},
                         "speed": {"ratio": 2.0}, "config": {"x": 1}, "name": "edsr"}
  out = sweep.run(c, str(tmp_path), seeds=2, train_fn=fake)
  st = out["variants"]["run"]["stats"]
  assert st["variants/l1/psnr"] == {"mean": 31.0, "std": 1.0, "n": 2}
  assert st["speed/ratio"]["mean"] == 2.0 and "config/x" not in st
