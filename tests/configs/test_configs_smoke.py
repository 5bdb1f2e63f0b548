"""Every config's ':smoke' variant trains, evaluates and checkpoints on 8 devices,
and every named variant builds a valid config (names resolve in the registries)."""
import importlib.util
import pathlib

import pytest

from jaxvision import config_lib
from jaxvision.core import loop

CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).resolve().parents[2] / "configs").glob("*.py")
                 if not p.stem.startswith("_"))


def _module(repo_root, name):
  spec = importlib.util.spec_from_file_location(f"cfgmod_{name}", repo_root / "configs" / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _core_loop(repo_root, name):
  mod = _module(repo_root, name)
  if getattr(mod, "USES_CORE_LOOP", True) is False:  # e.g. AutoDL's own driver (own tests)
    pytest.skip(f"configs/{name}.py is not run by the core loop")
  return mod


@pytest.mark.parametrize("name", CONFIGS)
def test_every_variant_is_valid(repo_root, name):
  mod = _core_loop(repo_root, name)
  assert mod.__doc__ and "python -m jaxvision.main" in mod.__doc__, "docstring shows the command"
  for variant in getattr(mod, "VARIANTS", ()) or (None,):
    for flag in ("", ",demo", ",smoke"):
      arg = f"{variant}{flag}" if variant else flag.lstrip(",")
      config_lib.validate(mod.get_config(arg or None))


@pytest.mark.parametrize("name", CONFIGS)
def test_smoke_runs(load_config, repo_root, tmp_path, name):
  mod = _core_loop(repo_root, name)
  other = getattr(mod, "SMOKE_TESTED_BY", "")
  if other:  # that file trains the same :smoke config through the loop and resumes it
    text = (repo_root / other).read_text()
    runs = ("loop.train", "Trainer(", "smoke_run(", "assert_resumes_exactly(")
    assert "smoke" in text and any(r in text for r in runs), other
    pytest.skip(f"configs/{name}.py:smoke runs in {other}")
  c = load_config(name, "smoke")
  c.progress = False
  summary = loop.train(c, str(tmp_path))
  assert summary["final"], "the last stage was evaluated"
  assert (tmp_path / "summary.json").exists()
  assert any((tmp_path / "checkpoints").iterdir())
