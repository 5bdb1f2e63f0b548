"""configs/autodl.py variants, bad keys, and one tiny end-to-end demo run (wine, T = 4 s)."""
import json
import os

import pytest

from jaxvision.autodl import config, demo


@pytest.mark.parametrize("arg", [None, "demo", "smoke", "paper,demo"])
def test_variants_build(load_config, arg):
  c = load_config("autodl", arg)
  assert c.time_budget > 0 and c.t0 == 60.0
  if arg == "demo":
    assert c.num_seeds == 3 and config.ablations(c) == config.ABLATIONS


def test_bad_values_named():
  c = config.get_config("smoke")
  c.ablations = "no_such"
  with pytest.raises(ValueError, match="config.ablations"):
    config.check(c)
  c = config.get_config("smoke")
  c.datasets = "mnist"
  with pytest.raises(ValueError, match="config.datasets"):
    config.check(c)
  c = config.get_config("smoke")
  c.solution.tabular.nope = 1
  with pytest.raises(KeyError, match="tabular.nope"):
    config.check(c)


def test_demo_end_to_end_on_wine(tmp_path):
  c = config.get_config("smoke")
  c.datasets, c.time_budget, c.ablations = "wine", 4.0, ""
  s = demo.run_demo(c, str(tmp_path), log=lambda *_: None)
  full = s["participants"]["full"]["datasets"]["wine"]
  assert len(full["alcs"]) == 1 and 0 < full["alc_mean"] <= 1 and not full["failures"]
  assert s["average_rank"] == {"full": 1.0} and "| full |" in s["table_md"]
  saved = json.load(open(tmp_path / "summary.json"))
  assert saved["table_md"] == s["table_md"]
  assert os.path.exists(tmp_path / "runs" / "full" / "seed0" / "wine" / "learning_curve.png")
