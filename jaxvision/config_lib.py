"""Config helpers: the shared defaults, the ':' argument parser and validation.

Every `configs/<key>.py` starts from `base_config()` and returns a ConfigDict.
The text after ':' in `--config=configs/<key>.py:resnet56,demo` reaches
`get_config(arg)`; `parse_arg` splits it into a variant name and flags.
"""
from __future__ import annotations

from typing import Iterable, Optional

import ml_collections

FLAGS_KNOWN = ("demo", "smoke")


class ConfigError(ValueError):
  """A config that cannot run; the message names the key and the fix."""


def parse_arg(arg: Optional[str], variants: Iterable[str] = (),
              default: Optional[str] = None) -> tuple[Optional[str], set[str]]:
  """Parses "resnet56,demo" or "variant=resnet56,smoke" -> ("resnet56", {"demo"}).

  Args:
    arg: the text after ':' (None or "" for none).
    variants: valid variant names (checked when given).
    default: variant used when none is named.
  Raises:
    ConfigError: unknown variant or flag, listing the valid ones.
  """
  variants = tuple(variants)
  variant, flags = default, set()
  for part in filter(None, (p.strip() for p in (arg or "").split(","))):
    key, _, value = part.partition("=")
    if value:
      if key != "variant":
        raise ConfigError(f"unknown config argument '{key}={value}'; use 'variant=NAME' "
                          f"or a flag ({', '.join(FLAGS_KNOWN)})")
      part = value
    if part in FLAGS_KNOWN:
      flags.add(part)
    elif not variants or part in variants:
      variant = part
    else:
      raise ConfigError(
          f"unknown config variant or flag '{part}'; variants: {', '.join(variants)}; "
          f"flags: {', '.join(FLAGS_KNOWN)}")
  if "demo" in flags and "smoke" in flags:
    raise ConfigError("choose one of 'demo' and 'smoke', not both")
  return variant, flags


def base_config() -> ml_collections.ConfigDict:
  """The keys the core loop reads, with defaults. Methods add their own keys."""
  c = ml_collections.ConfigDict()
  c.method = "classify"
  c.seed = 0
  # kwargs go to models.build; width_multiplier and dtype are accepted by every model
  c.model = ml_collections.ConfigDict({"name": "resnet56", "kwargs": {"width_multiplier": 1.0}})
  c.dataset = ml_collections.ConfigDict({
      "name": "cifar10", "data_dir": "", "download": False, "augment": True,
      "num_workers": 8})
  c.batch_size = 128
  c.eval_batch_size = 256
  c.steps = 1000
  c.num_epochs = ml_collections.FieldReference(None, field_type=float)
  c.optim = ml_collections.ConfigDict({
      "name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False,
      "weight_decay": 5e-4, "schedule": "cosine", "milestones_epochs": (),
      "gamma": 0.1, "warmup_epochs": 0.0, "label_smoothing": 0.0,
      "b1": 0.9, "b2": 0.999})
  c.eval_every = 0
  c.log_every = 50
  c.checkpoint_every = 1000
  c.keep_checkpoints = 2
  c.mesh = ml_collections.ConfigDict({"shape": (-1,), "axes": ("data",)})
  c.sharding = ml_collections.ConfigDict({"params": "replicate"})
  c.dtype = "float32"
  c.distributed = False
  # checkpoint: an orbax workdir; torch_checkpoint: a PyTorch state_dict file
  # (naming 'auto' | 'torchvision' | 'pytorchcv' | 'clr_rnf').
  c.init = ml_collections.ConfigDict({"checkpoint": "", "torch_checkpoint": "",
                                      "torch_naming": "auto", "torch_strict": True})
  c.progress = True
  return c


def apply_flags(config: ml_collections.ConfigDict, flags: set[str], *,
                demo: Optional[dict] = None, smoke: Optional[dict] = None):
  """Applies nested overrides for the 'demo'/'smoke' flags ({"a.b": value})."""
  for flag, overrides in (("demo", demo), ("smoke", smoke)):
    if flag in flags:
      for key, value in (overrides or {}).items():
        set_path(config, key, value)
  return config


def load_config_file(path: str, arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Loads a config file and calls its get_config(arg) (for notebooks and tests)."""
  import importlib.util
  import os
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path} does not exist")
  name = "jaxvision_config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def set_path(config: ml_collections.ConfigDict, dotted: str, value):
  node = config
  *parents, leaf = dotted.split(".")
  for p in parents:
    node = node[p]
  node[leaf] = value


def _choices(name: str, registry) -> None:
  registry.get(name)  # raises UnknownNameError listing the valid names


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks names against the registries and basic invariants, before any work."""
  from jaxvision.core import registry
  _choices(config.method, registry.METHODS)
  _choices(config.model.name, registry.MODELS)
  _choices(config.dataset.name, registry.DATASETS)
  from jaxvision.core import optim
  if config.batch_size <= 0 or config.eval_batch_size <= 0:
    raise ConfigError("batch_size and eval_batch_size must be positive")
  if config.optim.name not in optim.OPTIMIZERS:
    raise ConfigError(f"config.optim.name='{config.optim.name}' is not one of "
                      f"{', '.join(optim.OPTIMIZERS)}")
  if config.optim.schedule not in optim.SCHEDULES:
    raise ConfigError(f"config.optim.schedule='{config.optim.schedule}' is not one of "
                      f"{', '.join(optim.SCHEDULES)}")
  for key, low in (("log_every", 1), ("eval_every", 0), ("checkpoint_every", 0),
                   ("keep_checkpoints", 1)):
    if int(config[key]) < low:
      raise ConfigError(f"config.{key}={config[key]} must be >= {low}"
                        + (" (0 turns it off)" if low == 0 else ""))
  if config.dtype not in ("float32", "bfloat16", "float16"):
    raise ConfigError(f"config.dtype='{config.dtype}' is not one of float32, bfloat16, float16")
  if config.sharding.params not in ("replicate", "fsdp"):
    raise ConfigError(f"config.sharding.params='{config.sharding.params}'; use 'replicate' or 'fsdp'")
  if len(config.mesh.shape) != len(config.mesh.axes) or "data" not in config.mesh.axes:
    raise ConfigError("config.mesh.shape and config.mesh.axes must have equal length and "
                      "include a 'data' axis, e.g. shape=(-1,), axes=('data',)")
