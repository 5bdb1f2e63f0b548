"""The method spec: what a paper registers so the one loop in `core.loop` runs it.

A method is a frozen bag of functions. The loop owns everything else (mesh,
shardings, jit, data, RNG, evaluation cadence, checkpoints, logging, resume).

State is one plain pytree (a dict), by convention::

  {"step": int32 scalar,              # global step, over all stages
   "models": {"student": nnx.State, ...},   # model states by role
   "opt": {"student": optax state, ...},    # optimizer states by role
   "extras": {...}}                   # masks, synthetic images, EMA, ...

`meta` is a small JSON-able dict that fixes the *structure* of the state
(stage index, pruned widths, quantizer placement...). It is saved next to the
state in every checkpoint, and `init(ctx, rng, meta)` must rebuild a state of
exactly that structure, which is how a run resumes after a host-side stage
transition changed the model. The loop keeps `meta["stage"]` (stage index).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import ml_collections

State = Any  # a pytree (dict) as described above
Batch = Mapping[str, Any]  # {"image": [B,H,W,C] float32, "label": [B] int32, ...}
Meta = dict


class DataInfo(Mapping):
  """What a method may know about its data before seeing it: a free, read-only mapping.

  Always: "name", "num_train", "num_eval", "features" ({key: (shape, dtype)} of one
  preprocessed example; shape entries may be None for variable sizes). Anything else a
  dataset knows is an extra key ("num_classes", "scale", "video_ids"...). Attribute access
  works too: `info.num_classes`; `info.image_shape` is features["image"]'s shape.
  """

  def __init__(self, name: str, num_train: int, num_eval: int,
               features: Optional[Mapping[str, tuple]] = None, **extra: Any):
    self._d = {"name": name, "num_train": int(num_train), "num_eval": int(num_eval),
               "features": {k: (tuple(s), str(d)) for k, (s, d) in dict(features or {}).items()},
               **extra}

  def __getitem__(self, key):
    return self._d[key]

  def __iter__(self):
    return iter(self._d)

  def __len__(self):
    return len(self._d)

  def __getattr__(self, key):
    if key.startswith("_"):
      raise AttributeError(key)
    if key == "image_shape":
      return self.shape("image")
    try:
      return self._d[key]
    except KeyError:
      raise AttributeError(f"the dataset '{self._d['name']}' does not provide '{key}' "
                           f"(it provides {', '.join(self._d)})") from None

  def shape(self, key: str) -> tuple:
    try:
      return tuple(self._d["features"][key][0])
    except KeyError:
      raise KeyError(f"dataset '{self._d['name']}' has no feature '{key}'; features: "
                     f"{', '.join(self._d['features'])}") from None

  def __repr__(self):
    return f"DataInfo({self._d!r})"


@dataclasses.dataclass(frozen=True)
class RunContext:
  """Host-side facts handed to every method function (never traced)."""
  config: ml_collections.ConfigDict
  data: Optional[DataInfo]
  mesh: Any  # jax.sharding.Mesh
  workdir: str
  is_main: bool = True  # process 0: the one that writes files
  steps_per_epoch: int = 1

  def epochs_to_steps(self, epochs: float) -> int:
    return int(round(float(epochs) * self.steps_per_epoch))

  @property
  def num_steps(self) -> int:
    """The run length: config.num_epochs converted to steps when set (it wins), else config.steps."""
    from jaxvision.core.config import run_length
    return run_length(self.config, self.steps_per_epoch)[0]


STAGE_KINDS = ("train", "synthesize", "calibrate", "finetune", "transition", "anytime")


@dataclasses.dataclass(frozen=True)
class Stage:
  """One phase of a run, with typed fields (never parse its name).

  Attributes:
    name: shown in logs and summary ("dense", "finetune", "synthesize_bns"...).
    kind: what it is (one of STAGE_KINDS); methods dispatch on it.
    steps: number of train steps (0 allowed: a transition only). Use `epochs` instead to
      count in epochs of the training split (converted by the loop), or `seconds` for a
      wall-clock budget (the stage ends after the first step that reaches it; `steps`, if
      also given, caps it).
    uses_data: False for stages that must not read training data (the loop passes
      `batch=None`), e.g. IntraQ's synthesis.
    evaluate: run the evals with `at_stage_ends` at the start (after the transition) and end.
    eval_every_steps / eval_every_seconds: extra cadence inside this stage (0 = the evals'
      own cadence only).
    variant: free tag for methods running several variants one after another.
    optim: optimizer block used by this stage ('' = each role's own).
  """
  name: str
  steps: Optional[int] = None
  kind: str = "train"
  epochs: Optional[float] = None
  seconds: Optional[float] = None
  uses_data: bool = True
  evaluate: bool = True
  eval_every_steps: int = 0
  eval_every_seconds: float = 0.0
  variant: str = ""
  optim: str = ""

  def __post_init__(self):
    if self.kind not in STAGE_KINDS:
      raise ValueError(f"stage '{self.name}': kind '{self.kind}' is not one of {STAGE_KINDS}")
    if self.steps is None and self.epochs is None and self.seconds is None:
      raise ValueError(f"stage '{self.name}' needs a length: steps, epochs or seconds")
    for k in ("steps", "epochs", "seconds"):
      v = getattr(self, k)
      if v is not None and v < 0:
        raise ValueError(f"stage '{self.name}': {k}={v} must be >= 0")

  @property
  def budgeted(self) -> bool:
    return self.seconds is not None

  def num_steps(self, steps_per_epoch: int) -> Optional[int]:
    """Step count (None for a pure wall-clock budget)."""
    if self.epochs is not None:
      return int(round(float(self.epochs) * steps_per_epoch))
    return None if self.steps is None else int(self.steps)


TrainStep = Callable[[State, Optional[Batch], Any], tuple[State, dict]]
PredictFn = Callable[[State, Batch], dict]


@dataclasses.dataclass(frozen=True)
class Method:
  """Functions a paper provides. Only `init`, `train_step`, `predict_fns` are required.

  init(ctx, rng, meta) -> state
      Pure and traceable (the loop runs it under `jax.eval_shape` and `jax.jit`).
      `meta` is {} on a fresh start, else the meta of the checkpoint.
  train_step(ctx, meta, stage) -> step_fn(state, batch, rng) -> (state, metrics)
      Returns the pure step for the structure given by `meta` and this stage;
      the loop jits it with shardings and donation. `batch` is None when
      `stage.uses_data` is False. metrics: dict of scalars (must include "loss").
      The step function must increment state["step"].
  predict_fns(ctx, meta, stage) -> {name: fn(state, batch) -> {key: per-example array [B, ...]}}
      Named predictions in eval mode; the loop jits them with shardings and feeds their
      outputs (plus the batch's "mask") to the evaluators of each `config.evals.<name>`
      whose `predict` names them ('default' = the first). Copy the ground truth the
      evaluators need (labels, targets, trimaps) from the batch into the output.
  stages(ctx) -> list[Stage]
      Default: one stage "train" of the run length (num_epochs or steps).
  transition(ctx, state, meta, next_stage) -> (state, meta)
      Host side, between stages: pruning surgery, calibration, ... . May change
      the structure; the returned meta must describe it. `state` arrives gathered on this
      host (numpy leaves, also when parameters were fsdp-sharded over processes); the loop
      re-shards what it returns.
  prepare(ctx, state, meta) -> state
      Host side, fresh start only (not on resume): e.g. load pretrained weights.
  summary(ctx, state, meta) -> dict
      Extra fields for summary.json (FLOPs, kept indices, sparsity...). Also the
      place to write PNG plots into ctx.workdir (when ctx.is_main).
  fingerprint(ctx) -> dict
      Extra config values that fix the state's structure (e.g. the sparsity method);
      a resume with different values is refused with one line naming them.
  """
  name: str
  init: Callable[[RunContext, Any, Meta], State]
  train_step: Callable[[RunContext, Meta, Stage], TrainStep]
  predict_fns: Callable[[RunContext, Meta, Stage], Mapping[str, PredictFn]]
  stages: Optional[Callable[[RunContext], list[Stage]]] = None
  transition: Optional[Callable[[RunContext, State, Meta, Stage], tuple[State, Meta]]] = None
  prepare: Optional[Callable[[RunContext, State, Meta], State]] = None
  summary: Optional[Callable[[RunContext, State, Meta], dict]] = None
  fingerprint: Optional[Callable[[RunContext], dict]] = None
  # (regex over state paths, PartitionSpec) overriding config.sharding.params,
  # e.g. (("extras/images", P("data")),) for per-device synthetic images.
  sharding_rules: tuple = ()

  def get_stages(self, ctx: RunContext) -> list[Stage]:
    if self.stages is None:
      return [Stage("train", ctx.num_steps)]
    return list(self.stages(ctx))
