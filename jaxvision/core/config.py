"""Config validation (before any work) and the run-length rule. Imports nothing above core."""
from __future__ import annotations

import ml_collections

from jaxvision.core.errors import ConfigError

__all__ = ["ConfigError", "validate", "run_length"]


def _need(config, key: str, hint: str):
  if key not in config:
    raise ConfigError(f"config.{key} is missing; {hint}")


def validate(config) -> None:
  """Checks names against the registries and basic invariants, before any work."""
  from jaxvision.core import optim, registry
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"the config must be an ml_collections.ConfigDict (got "
                      f"{type(config).__name__}); start from a configs/<key>.py get_config()")
  for key in ("method", "models", "optims", "dataset", "evals", "batch_size", "steps", "mesh"):
    _need(config, key, "start from jaxvision.config_lib.base_config() or a configs/<key>.py file")
  registry.METHODS.get(config.method)
  registry.DATASETS.get(config.dataset.name)
  if not len(config.models):
    raise ConfigError("config.models is empty; configure at least one role, e.g. "
                      "config.models.student = config_lib.model_block('resnet20')")
  for role, rc in config.models.items():
    if "name" not in rc:
      raise ConfigError(f"config.models.{role}.name is missing (a zoo model name)")
    registry.MODELS.get(rc.name)
    if bool(rc.get("trainable", True)):
      block = str(rc.get("optim", "") or role)
      if block not in config.optims:
        raise ConfigError(f"config.models.{role} is trainable but config.optims has no block "
                          f"'{block}' (blocks: {', '.join(config.optims.keys()) or 'none'}); add "
                          f"config.optims.{block} = config_lib.optim_block(...) or set "
                          f"config.models.{role}.trainable=False")
  for name, oc in config.optims.items():
    if oc.name not in optim.OPTIMIZERS:
      raise ConfigError(f"config.optims.{name}.name='{oc.name}' is not one of "
                        f"{', '.join(optim.OPTIMIZERS)}")
    if oc.schedule not in optim.SCHEDULES:
      raise ConfigError(f"config.optims.{name}.schedule='{oc.schedule}' is not one of "
                        f"{', '.join(optim.SCHEDULES)}")
  if config.batch_size <= 0 or config.eval_batch_size <= 0:
    raise ConfigError("batch_size and eval_batch_size must be positive")
  if int(config.steps) < 0:
    raise ConfigError(f"config.steps={config.steps} must be >= 0")
  epochs = config.get("num_epochs")
  if epochs is not None and float(epochs) < 0:
    raise ConfigError(f"config.num_epochs={epochs} must be >= 0 (or None to use config.steps)")
  for key, low in (("log_every", 1), ("checkpoint_every", 0), ("keep_checkpoints", 1)):
    if int(config[key]) < low:
      raise ConfigError(f"config.{key}={config[key]} must be >= {low}"
                        + (" (0 turns it off)" if low == 0 else ""))
  for name, ec in config.evals.items():
    for label, opts in ec.evaluators.items():
      kind = opts.get("type", label) if hasattr(opts, "get") else label
      registry.LOOP_EVALUATORS.get(kind)
    if int(ec.get("every_steps", 0)) < 0 or float(ec.get("every_seconds", 0.0)) < 0:
      raise ConfigError(f"config.evals.{name}: every_steps/every_seconds must be >= 0 (0 = off)")
    if ec.get("split", "eval") not in ("eval", "train"):
      raise ConfigError(f"config.evals.{name}.split='{ec.split}'; use 'eval' or 'train'")
    if ec.get("dataset", ""):
      registry.DATASETS.get(ec.dataset)
  if config.dtype not in ("float32", "bfloat16", "float16"):
    raise ConfigError(f"config.dtype='{config.dtype}' is not one of float32, bfloat16, float16")
  if config.sharding.params not in ("replicate", "fsdp"):
    raise ConfigError(f"config.sharding.params='{config.sharding.params}'; use 'replicate' or 'fsdp'")
  if len(config.mesh.shape) != len(config.mesh.axes) or "data" not in config.mesh.axes:
    raise ConfigError("config.mesh.shape and config.mesh.axes must have equal length and "
                      "include a 'data' axis, e.g. shape=(-1,), axes=('data',)")


def run_length(config, steps_per_epoch: int) -> tuple[int, str]:
  """(steps, which setting decided it): `num_epochs` wins when set and > 0, else `steps`
  (`--config.num_epochs=0` switches a full-size variant to `--config.steps`)."""
  epochs = config.get("num_epochs")
  if epochs is not None and float(epochs) > 0:
    return int(round(float(epochs) * steps_per_epoch)), f"num_epochs={epochs}"
  return int(config.steps), f"steps={config.steps}"
