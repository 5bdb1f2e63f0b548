"""LLTA runner through the loop: smoke (train stages, resume, transfer matrix, per-image
results, heat map), start-up errors, and the multi-seed aggregation."""
import os

import jax
import numpy as np
import pytest

import jaxvision.methods.llta  # noqa: F401  (registers "llta")
from jaxvision.core import loop
from jaxvision.core.errors import ConfigError
from jaxvision.methods.llta import transfer


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def test_llta_config_variants(load_config):
  c = load_config("llta")
  assert c.models.surrogate.name == "resnet50" and not c.models.surrogate.trainable
  assert abs(c.llta.eps - 16 / 255) < 1e-12 and c.llta.num_images == 1000
  assert sorted(transfer.victim_roles(c)) == ["victim_mobilenet_v2", "victim_resnet18",
                                              "victim_resnet34"]
  d = load_config("llta", "demo")
  assert d.llta.eps == 0.1 and d.dataset.name == "digits" and d.llta.train_steps > 0
  assert len(transfer.victim_roles(d)) == 3
  assert len({d.models[r].name for r in d.models.keys()}) == 4   # different architectures
  from jaxvision.methods.llta import method
  steps = {r: method.train_steps(d, r) for r in d.models.keys()}
  assert steps == {**{r: d.llta.train_steps for r in d.models.keys()},
                   **dict(d.llta.role_train_steps)}
  assert d.steps == sum(steps.values())         # every role gets its own training stage
  cfgs = transfer.attack_configs(d)
  assert set(cfgs) == {"mifgsm", "dim", "tim", "sgm", "llta", "llta_mi", "llta_mi_ti"}
  assert cfgs["llta_mi"].momentum == 1.0 and cfgs["llta"].momentum == 0.0
  # LLTA+MI+TI smooths with TIM's kernel; every LLTA row has the same (reduced) task sizes
  assert cfgs["llta_mi_ti"].ti_kernel == cfgs["tim"].ti_kernel == 5
  assert len({(v.num_tasks, v.support_size, v.search_epochs) for k, v in cfgs.items()
              if k.startswith("llta")}) == 1


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  """Reference run (one cheap attack) and an interrupted + resumed run with all smoke attacks."""
  from jaxvision import config_lib
  from jaxvision.methods.llta import method  # noqa: F401
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
  load = lambda: config_lib.load_config_file(os.path.join(repo, "configs", "llta.py"), "smoke")
  tmp = tmp_path_factory.mktemp("llta")
  ref_cfg = load()
  ref_cfg.progress = False
  ref_cfg.llta.attacks = ("mifgsm",)
  ref_cfg.llta.overrides = {}
  ref = loop.Trainer(ref_cfg, str(tmp / "ref"))
  ref.run()
  c = load()
  c.progress = False
  with pytest.raises(loop.Preempted):
    loop.train(c, str(tmp / "run"), stop_at_step=4)     # inside the second training stage
  res = loop.Trainer(c, str(tmp / "run"))
  summary = res.run()
  return dict(ref=ref, res=res, summary=summary, workdir=str(tmp / "run"), cfg=c)


def test_smoke_resume_matches_uninterrupted(smoke):
  for a, b in zip(_leaves(smoke["ref"].state["models"]), _leaves(smoke["res"].state["models"])):
    np.testing.assert_array_equal(a, b)
  assert smoke["summary"]["steps"] == 6     # two roles x 3 train steps


def test_smoke_transfer_outputs(smoke):
  t = smoke["summary"]["transfer"]
  c = smoke["cfg"]
  assert t["attacks"] == ["mifgsm", "llta"] and t["models"] == ["surrogate", "cnn"]
  n = c.llta.num_images
  assert t["num_images"] == n and len(t["per_image"]["label"]) == n
  for a in t["attacks"]:
    assert t["max_linf"][a] <= c.llta.eps + 1e-5
    for m in t["models"]:
      s = t["per_image"]["success"][a][m]
      assert len(s) == n and set(s) <= {0, 1}
      assert abs(100 * np.mean(s) - t["matrix"][a][m]) < 1e-9     # matrix = per-image mean
    assert t["white_box"][a] == t["matrix"][a]["surrogate"]
    assert t["black_box_mean"][a] == t["matrix"][a]["cnn"]
  assert os.path.isfile(os.path.join(smoke["workdir"], "transfer_matrix.png"))
  assert os.path.isfile(os.path.join(smoke["workdir"], "summary.json"))
  assert "acc_surrogate/top1" in smoke["summary"]["final"]


def _bad(load_config, tmp_path, **sets):
  from jaxvision import config_lib
  c = load_config("llta", "smoke")
  c.progress = False
  for k, v in sets.items():
    config_lib.set_path(c, k.replace("__", "."), v)
  return lambda: loop.train(c, str(tmp_path / "bad"))


def test_startup_errors(load_config, tmp_path):
  with pytest.raises(ConfigError, match="16/255"):
    _bad(load_config, tmp_path, llta__eps=16.0)()
  with pytest.raises(ConfigError, match="unknown attack 'pgd'"):
    _bad(load_config, tmp_path, llta__attacks=("mifgsm", "pgd"))()
  with pytest.raises(ConfigError, match="victim 'victim_cnn' normalises"):
    _bad(load_config, tmp_path, llta__norm={"default": "digits", "victim_cnn": "imagenet"})()
  with pytest.raises(ConfigError, match="role 'surrogate' is trained on the dataset's pp"):
    _bad(load_config, tmp_path, llta__norm={"default": "imagenet"})()
  with pytest.raises(ConfigError, match=r"\[0, 1\] pixels"):
    _bad(load_config, tmp_path, llta__attack_pp="to_float|normalize('digits')")()
