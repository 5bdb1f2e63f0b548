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


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What a method may know about its data before seeing it."""
  name: str
  num_classes: int
  image_shape: tuple[int, int, int]  # (H, W, C) after preprocessing
  num_train: int
  num_eval: int


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
    """config.num_epochs converted to steps when set, else config.steps."""
    epochs = self.config.get("num_epochs")
    return self.epochs_to_steps(epochs) if epochs is not None else int(self.config.steps)


@dataclasses.dataclass(frozen=True)
class Stage:
  """One phase of a run.

  Attributes:
    name: shown in logs and summary ("dense", "finetune", "synthesize"...).
    steps: number of train steps in the stage (0 allowed: a transition only).
    uses_data: False for stages that must not read training data (the loop
      passes `batch=None`), e.g. IntraQ's synthesis.
    evaluate: run the evaluator at the start (after the transition) and at the
      end of the stage; results land in summary["stages"][name].
  """
  name: str
  steps: int
  uses_data: bool = True
  evaluate: bool = True


TrainStep = Callable[[State, Optional[Batch], Any], tuple[State, dict]]
EvalStep = Callable[[State, Batch], dict]


@dataclasses.dataclass(frozen=True)
class Method:
  """Functions a paper provides. Only `init`, `train_step`, `eval_step` required.

  init(ctx, rng, meta) -> state
      Pure and traceable (the loop runs it under `jax.eval_shape` and `jax.jit`).
      `meta` is {} on a fresh start, else the meta of the checkpoint.
  train_step(ctx, meta, stage) -> step_fn(state, batch, rng) -> (state, metrics)
      Returns the pure step for the structure given by `meta` and this stage;
      the loop jits it with shardings and donation. `batch` is None when
      `stage.uses_data` is False. metrics: dict of scalars (must include "loss").
      The step function must increment state["step"].
  eval_step(ctx, meta) -> fn(state, batch) -> {name: per-example array [B]}
      The loop averages each entry over the eval set with padding masked out.
  stages(ctx) -> list[Stage]
      Default: one stage "train" of config.steps steps.
  transition(ctx, state, meta, next_stage) -> (state, meta)
      Host side, between stages: pruning surgery, calibration, ... . May change
      the structure; the returned meta must describe it.
  prepare(ctx, state, meta) -> state
      Host side, fresh start only (not on resume): e.g. load pretrained weights.
  summary(ctx, state, meta) -> dict
      Extra fields for summary.json (FLOPs, kept indices, sparsity...). Also the
      place to write PNG plots into ctx.workdir (when ctx.is_main).
  """
  name: str
  init: Callable[[RunContext, Any, Meta], State]
  train_step: Callable[[RunContext, Meta, Stage], TrainStep]
  eval_step: Callable[[RunContext, Meta], EvalStep]
  stages: Optional[Callable[[RunContext], list[Stage]]] = None
  transition: Optional[Callable[[RunContext, State, Meta, Stage], tuple[State, Meta]]] = None
  prepare: Optional[Callable[[RunContext, State, Meta], State]] = None
  summary: Optional[Callable[[RunContext, State, Meta], dict]] = None
  # (regex over state paths, PartitionSpec) overriding config.sharding.params,
  # e.g. (("extras/images", P("data")),) for per-device synthetic images.
  sharding_rules: tuple = ()

  def get_stages(self, ctx: RunContext) -> list[Stage]:
    if self.stages is None:
      return [Stage("train", ctx.num_steps)]
    return list(self.stages(ctx))
