"""Config helpers: the shared defaults, the ':' argument parser and validation.

Every `configs/<key>.py` starts from `base_config()` and returns a ConfigDict.
The text after ':' in `--config=configs/<key>.py:resnet56,demo` reaches
`get_config(arg)`; `parse_arg` splits it into a variant name and flags.
"""
from __future__ import annotations

from typing import Iterable, Optional

import ml_collections

FLAGS_KNOWN = ("demo", "smoke")


from jaxvision.core.config import ConfigError, validate  # noqa: F401  (re-exported)


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


def optim_block(**overrides) -> ml_collections.ConfigDict:
  """One optimizer block (`config.optims.<name>`), read by `core.optim.make_optimizer`."""
  c = ml_collections.ConfigDict({
      "name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False,
      "weight_decay": 5e-4, "schedule": "cosine", "milestones_epochs": (),
      "gamma": 0.1, "warmup_epochs": 0.0, "label_smoothing": 0.0,
      "b1": 0.9, "b2": 0.999, "decay_start_epochs": 0.0})
  c.update(overrides)
  return c


def model_block(name: str, trainable: bool = True, optim: str = "", **kwargs) -> ml_collections.ConfigDict:
  """One role (`config.models.<role>`): zoo name, builder kwargs, trainable, optimizer block
  name ('' = the block named like the role) and pretrained init.

  init.checkpoint: an orbax workdir (init.skip: path prefixes that keep their fresh init, e.g.
  ["head"]); init.torch_checkpoint: a PyTorch state_dict file
  (torch_naming 'auto' | 'torchvision' | 'pytorchcv' | 'clr_rnf').
  """
  return ml_collections.ConfigDict({
      "name": name, "kwargs": {"width_multiplier": 1.0, **kwargs}, "trainable": trainable,
      "optim": optim, "init": {"checkpoint": "", "skip": (), "torch_checkpoint": "",
                               "torch_naming": "auto", "torch_strict": True}})


def eval_block(predict: str = "default", evaluators=None, split: str = "eval",
               every_steps: int = 0, every_seconds: float = 0.0,
               at_stage_ends: bool = True, dataset: str = "", pp: str = "") -> ml_collections.ConfigDict:
  """One evaluation (`config.evals.<name>`).

  predict: a name among the method's predict_fns ('default' = its first); evaluators:
  {label: {"type": registered name (default: the label), **options}} (core.registry.LOOP_EVALUATORS);
  split: 'eval' or 'train' of the run's dataset, or of `dataset` when set (another registered
  dataset, e.g. a test set); pp: batch preprocessing ops ('' = the dataset's eval pp);
  cadence: every_steps / every_seconds (0 = off) and at the start/end of each stage.
  """
  return ml_collections.ConfigDict({
      "predict": predict, "evaluators": dict(evaluators or {"mean": {}}), "split": split,
      "dataset": dataset, "pp": pp, "every_steps": every_steps, "every_seconds": every_seconds,
      "at_stage_ends": at_stage_ends})


def base_config() -> ml_collections.ConfigDict:
  """The keys the core loop reads, with defaults. Methods add their own block."""
  c = ml_collections.ConfigDict()
  c.method = "classify"
  c.seed = 0
  # Models and optimizers by role; kwargs go to models.build (width_multiplier and dtype are
  # accepted by every zoo model).
  c.models = ml_collections.ConfigDict({"student": model_block("resnet56")})
  c.optims = ml_collections.ConfigDict({"student": optim_block()})
  c.dataset = ml_collections.ConfigDict({
      "name": "cifar10", "data_dir": "", "download": False, "augment": True,
      "num_workers": 8, "pp_train": "", "pp_eval": ""})
  c.batch_size = 128
  c.eval_batch_size = 256
  # Run length: `num_epochs` when set and > 0 (it wins), else `steps`; `--config.num_epochs=0`
  # makes `--config.steps` count. summary.json["length"] says which decided.
  c.steps = 1000
  c.num_epochs = ml_collections.FieldReference(None, field_type=float)
  c.evals = ml_collections.ConfigDict({"eval": eval_block(evaluators={"classification": {}})})
  c.clock_excludes_eval = True  # wall-clock budgets and eval timestamps leave eval time out
  c.log_every = 50
  c.checkpoint_every = 1000
  c.keep_checkpoints = 2
  c.mesh = ml_collections.ConfigDict({"shape": (-1,), "axes": ("data",)})
  c.sharding = ml_collections.ConfigDict({"params": "replicate"})
  c.dtype = "float32"
  c.distributed = False
  c.max_norm_growth = 1e3  # divergence guard: parameter-norm growth over the first save (0 = off)
  c.compilation_cache = True  # JAX's persistent compilation cache (~/.cache/jaxvision/xla)
  c.progress = True
  return c


def smoke_overrides(role: str = "student", **extra) -> dict:
  """The shared tiny CI run (synthetic data, 8 devices, checkpoint and resume) + `extra`;
  `role` is the model/optimizer role it shrinks ('' for none)."""
  base = {"dataset.name": "synthetic", "dataset.num_train": 256, "dataset.num_eval": 64,
          "batch_size": 16, "eval_batch_size": 32, "num_epochs": None, "steps": 6,
          "log_every": 2, "checkpoint_every": 3, "evals.eval.every_steps": 4, "dtype": "float32"}
  if role:
    base.update({f"models.{role}.name": "cnn_small",
                 f"models.{role}.kwargs": {"width_multiplier": 0.5}, f"optims.{role}.lr": 0.05})
  return {**base, **extra}


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
  try:
    spec.loader.exec_module(mod)
  except SyntaxError as e:
    raise ConfigError(f"syntax error in {path} line {e.lineno}: {e.msg}") from e
  if not hasattr(mod, "get_config"):
    raise ConfigError(f"{path} defines no get_config(arg=None); add one returning a ConfigDict")
  config = mod.get_config(arg)
  if config is None:
    raise ConfigError(f"get_config() in {path} returned None; return the ConfigDict")
  return config


def set_path(config: ml_collections.ConfigDict, dotted: str, value):
  node = config
  *parents, leaf = dotted.split(".")
  for p in parents:
    node = node[p]
  node[leaf] = value
