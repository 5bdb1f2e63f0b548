"""Command line: python -m jaxvision.main --config=configs/<key>.py[:variant,demo|smoke] --workdir=DIR

Overrides: --config.a.b=value (type-checked by ml_collections). A workdir that
holds checkpoints resumes. Errors in the config, names, data or workdir exit
non-zero at once with one line naming the problem and the fix.
"""
from __future__ import annotations

import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/classify.py:resnet56 or configs/optg.py:demo",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and summary.json.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                 "Call jax.distributed.initialize() (multi-host runs).")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Train this many seeds (config.seed + k) and report "
                              "mean ± std in WORKDIR/summary.json.")
_SWEEP = flags.DEFINE_string("sweep", "", "Variants to compare, e.g. 'optg.method=optg,gmp' "
                             "(several keys separated by ';'); with --seeds, a mean ± std table.")
_REFERENCE = flags.DEFINE_string("sweep_reference", "", "A variant of --sweep (e.g. 'mode=ce'): "
                                 "report every other variant's paired difference to it.")


def _fail(msg: str, code: int = 2):
  print(f"jaxvision: error: {msg}", file=sys.stderr)
  sys.exit(code)


def main(argv):
  del argv
  if _CONFIG.value is None:
    _fail("--config is required, e.g. --config=configs/classify.py:demo")
  if not _WORKDIR.value:
    _fail("--workdir is required, e.g. --workdir=/tmp/jaxvision/run1 (a workdir with "
          "checkpoints resumes)")
  logging.set_verbosity(logging.WARNING)
  from jaxvision import config_lib
  from jaxvision.core import loop
  from jaxvision.core.logging import WorkdirLockedError
  from jaxvision.core.registry import UnknownNameError
  from jaxvision.core.sharding import MeshError
  from jaxvision.data import DataNotReadyError
  config = _CONFIG.value
  if _DISTRIBUTED.value:
    with config.unlocked():
      config.distributed = True
  try:
    if _SEEDS.value != 1 or _SWEEP.value:
      from jaxvision.core import sweep
      sweep.run(config, _WORKDIR.value, _SEEDS.value, sweep.parse_sweep(_SWEEP.value),
                reference=_REFERENCE.value)
      print(f"summary: {os.path.join(os.path.abspath(os.path.expanduser(_WORKDIR.value)), 'summary.json')}")
      return
    summary = loop.train(config, _WORKDIR.value)
  except (UnknownNameError, config_lib.ConfigError, DataNotReadyError, MeshError,
          WorkdirLockedError) as e:
    _fail(str(e))
  except OSError as e:  # full disk, permissions: one line, the run resumes from its checkpoint
    _fail(f"{e.strerror or e} ({e.filename or 'workdir'}); free space or fix permissions, "
          f"then rerun the same command to resume", 1)
  except loop.Preempted as e:
    _fail(str(e), 143)
  except loop.TrainingDivergedError as e:
    _fail(str(e), 1)
  final = summary.get("final", {})
  print("final: " + ", ".join(f"{k}={v:.4f}" for k, v in final.items()
                              if isinstance(v, float)))
  print(f"summary: {os.path.join(os.path.abspath(_WORKDIR.value), 'summary.json')}")


def _one_line(err: BaseException, argv) -> str:
  """A flag/config parsing failure as one line naming the bad key or value."""
  text = str(err).replace("\\'", "'").replace("\\n", "\n")
  if isinstance(err, (AttributeError, KeyError)):
    m = re.search(r"'([A-Za-z0-9_]+)'", text)
    key = m.group(1) if m else text.strip()
    hint = re.search(r'Did you mean "([^"]+)"', text)
    bad = [a.split("=")[0] for a in argv if a.startswith("--config.") and key in a]
    where = bad[0] if bad else "a --config.* override"
    fix = f"did you mean '{hint.group(1)}'?" if hint else "check the spelling against the config file"
    return f"unknown config key '{key}' in {where}; {fix}"
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  errs = [l for l in lines if "Error:" in l and not l.startswith("File ")]
  line = errs[-1] if errs else (lines[0] if lines else type(err).__name__)
  return line.replace("jaxvision.config_lib.ConfigError: ", "")


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # noqa: BLE001  (absl and config_flags raise many types)
    _fail(_one_line(e, argv))


def run():
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
