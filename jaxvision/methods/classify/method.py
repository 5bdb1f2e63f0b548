"""Dense classification: the reference method, and the building blocks other
methods reuse (model from config + meta, NNX split/merge, CE train step, eval).

The model structure is `config.model.name` with `meta["widths"]` when a method
(e.g. pruning) has set it, so a pruned network resumes and fine-tunes through
exactly these functions.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvision import models
from jaxvision.core import optim
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS
from jaxvision.evaluators import classification as cls_eval


def build_model(ctx: RunContext, meta: dict, rngs: nnx.Rngs, **overrides) -> nnx.Module:
  """The configured model; widths from meta["widths"] when present."""
  cfg = ctx.config
  kwargs = {"dtype": cfg.dtype, **dict(cfg.model.get("kwargs", {})), **overrides}
  return models.build(cfg.model.name, ctx.data.num_classes, rngs=rngs,
                      widths=meta.get("widths"), **kwargs)


def split(model: nnx.Module):
  """model -> (graphdef, params, rest): trainable nnx.Param and everything else (BN stats)."""
  return nnx.split(model, nnx.Param, ...)


def graphdef(ctx: RunContext, meta: dict, **overrides):
  """The (static) graphdef of the model for this meta (built abstractly, no FLOPs)."""
  abstract = nnx.eval_shape(lambda: build_model(ctx, meta, nnx.Rngs(0), **overrides))
  return split(abstract)[0]


def merge(gdef, model_state: dict) -> nnx.Module:
  return nnx.merge(gdef, model_state["params"], model_state["rest"], copy=True)


def model_state(model: nnx.Module) -> dict:
  _, params, rest = split(model)
  return {"params": params, "rest": rest}


def make_tx(ctx: RunContext, total_steps: int, optim_cfg=None, **kw) -> optax.GradientTransformation:
  return optim.make_optimizer(optim_cfg if optim_cfg is not None else ctx.config.optim,
                              ctx.steps_per_epoch, total_steps, **kw)


def init_state(ctx: RunContext, rng, meta: dict, tx: optax.GradientTransformation,
               role: str = "student") -> dict:
  """{"step", "models": {role: {"params", "rest"}}, "opt": {role: tx state}, "extras": {}}."""
  model = build_model(ctx, meta, nnx.Rngs(params=rng, dropout=jax.random.fold_in(rng, 1)))
  ms = model_state(model)
  return {"step": jnp.zeros((), jnp.int32), "models": {role: ms},
          "opt": {role: tx.init(ms["params"])}, "extras": {}}


LossFn = Callable[..., tuple[jax.Array, dict]]


def ce_loss(model: nnx.Module, batch: dict, rng, label_smoothing: float = 0.0):
  """Cross-entropy of model(batch["image"], train=True); returns (loss, aux metrics)."""
  logits = model(batch["image"], train=True)
  loss = optim.cross_entropy(logits, batch["label"], label_smoothing)
  acc = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
  return loss, {"accuracy": acc}


def make_train_step(gdef, tx: optax.GradientTransformation, loss_fn: LossFn = ce_loss,
                    role: str = "student", transform_params: Optional[Callable] = None):
  """A pure SGD step on state["models"][role] with `loss_fn(model, batch, rng)`.

  transform_params(params, state) -> params, if given, is applied before the
  forward pass (masks, fake quantization of weights, ...), inside the gradient.
  """

  def step(state, batch, rng):
    ms = state["models"][role]

    def objective(params):
      p = transform_params(params, state) if transform_params is not None else params
      model = nnx.merge(gdef, p, ms["rest"], copy=True)
      loss, aux = loss_fn(model, batch, rng)
      return loss, (aux, nnx.state(model, nnx.Not(nnx.Param)))

    (loss, (aux, rest)), grads = jax.value_and_grad(objective, has_aux=True)(ms["params"])
    updates, opt_state = tx.update(grads, state["opt"][role], ms["params"])
    params = optax.apply_updates(ms["params"], updates)
    new = dict(state)
    new["models"] = {**state["models"], role: {"params": params, "rest": rest}}
    new["opt"] = {**state["opt"], role: opt_state}
    new["step"] = state["step"] + 1
    return new, {"loss": loss, **aux}

  return step


def make_eval_step(gdef, role: str = "student", transform_params: Optional[Callable] = None,
                   topk=(1, 5)):
  """Per-example top-k / loss of state["models"][role] on batch (eval mode)."""

  def step(state, batch):
    ms = state["models"][role]
    p = transform_params(ms["params"], state) if transform_params is not None else ms["params"]
    logits = nnx.merge(gdef, p, ms["rest"], copy=True)(batch["image"], train=False)
    return cls_eval.per_example(logits, batch["label"], topk)

  return step


def load_pretrained(ctx: RunContext, state: dict, meta: dict, role: str = "student") -> dict:
  """Loads config.init.checkpoint (an orbax workdir) or config.init.torch_checkpoint
  into state["models"][role]; no-op when neither is set."""
  init = ctx.config.get("init", {})
  ckpt_path, torch_path = init.get("checkpoint", ""), init.get("torch_checkpoint", "")
  if not ckpt_path and not torch_path:
    return state
  gdef = graphdef(ctx, meta)
  if ckpt_path:
    from jaxvision.core.checkpoint import load_model_state
    loaded = load_model_state(ckpt_path, state["models"][role], role)
  else:
    from jaxvision.models import torch_import
    model = merge(gdef, jax.device_get(state["models"][role]))
    torch_import.maybe_load_pretrained(model, ctx.config)
    loaded = model_state(model)
  new = dict(state)
  new["models"] = {**state["models"], role: loaded}
  return new


# ------------------------------------------------------------------- method
def _total(ctx):
  return ctx.num_steps


def init(ctx: RunContext, rng, meta: dict):
  return init_state(ctx, rng, meta, make_tx(ctx, _total(ctx)))


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  ls = float(ctx.config.optim.get("label_smoothing", 0.0))
  return make_train_step(graphdef(ctx, meta), make_tx(ctx, _total(ctx)),
                         functools.partial(ce_loss, label_smoothing=ls))


def eval_step(ctx: RunContext, meta: dict):
  return make_eval_step(graphdef(ctx, meta))


def summary(ctx: RunContext, state, meta) -> dict:
  from jaxvision import flops
  c = flops.count(ctx.config.model.name, widths=meta.get("widths"),
                  num_classes=ctx.data.num_classes, input_shape=ctx.data.image_shape,
                  **{k: v for k, v in dict(ctx.config.model.get("kwargs", {})).items()
                     if k not in ("dtype",)})
  return {"flops": c["flops"], "params": c["params"]}


CLASSIFY = METHODS.register("classify", Method(
    name="classify", init=init, train_step=train_step, eval_step=eval_step,
    prepare=load_pretrained, summary=summary))
