"""Models and optimizers by role: the helpers every method builds its state and steps from.

Config (one way for every method, single-model ones included)::

  config.models.<role> = {name, kwargs, trainable, optim, init: {checkpoint, torch_checkpoint,
                          torch_naming, torch_strict}}
  config.optims.<name> = {name, lr, momentum, weight_decay, schedule, ...}   # core.optim

`models.<role>.optim` names the optimizer block of a trainable role ('' = the block named
like the role). Frozen roles (`trainable=False`) get no optimizer state and no gradient.

State (one pytree)::

  {"step": int32, "models": {role: {"params": nnx.State, "rest": nnx.State}},
   "opt": {role: optax state (trainable roles only)}, "extras": {...}}

`meta["widths"]` ({role: widths}) overrides a role's structure, e.g. after pruning surgery.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision.core import optim
from jaxvision.core.errors import ConfigError
from jaxvision.core.registry import MODELS

LossFn = Callable[..., tuple[jax.Array, dict]]


# ------------------------------------------------------------------ config
def role_cfg(config, role: str):
  """config.models[role], or a ConfigError listing the configured roles."""
  models = config.get("models") if hasattr(config, "get") else None
  if models is None or role not in models:
    have = ", ".join(models.keys()) if models is not None else "none"
    raise ConfigError(f"config.models has no role '{role}' (configured roles: {have}); "
                      f"add config.models.{role} = {{name, kwargs, ...}}")
  return models[role]


def optim_cfg(config, role: str, name: Optional[str] = None):
  """The optimizer block of `role` (or the block called `name`)."""
  key = name or str(role_cfg(config, role).get("optim", "") or role)  # name: no role lookup
  optims = config.get("optims")
  if optims is None or key not in optims:
    have = ", ".join(optims.keys()) if optims is not None else "none"
    raise ConfigError(f"config.optims has no block '{key}' (for role '{role}'); blocks: {have}")
  return optims[key]


def roles(config) -> list[str]:
  return list(config.models.keys())


def trainable(config, role: str) -> bool:
  return bool(role_cfg(config, role).get("trainable", True))


def _kwargs(ctx, role: str) -> dict:
  return {"dtype": ctx.config.dtype, **dict(role_cfg(ctx.config, role).get("kwargs", {}))}


def role_widths(meta: Mapping, role: str):
  w = (meta or {}).get("widths") or {}
  return w.get(role)


def num_outputs(ctx, role: str) -> int:
  """The first argument of the role's model builder: the data's class count (1 if none)."""
  kw = role_cfg(ctx.config, role).get("kwargs", {})
  if "num_classes" in kw:
    return int(kw["num_classes"])
  data = ctx.data
  n = data.get("num_classes") if data is not None else None
  return int(n) if n else 1


def _builder_kwargs(ctx, role: str, overrides: dict) -> dict:
  kw = {**_kwargs(ctx, role), **overrides}
  kw.pop("num_classes", None)
  return kw


# ------------------------------------------------------------------ models
def build_model(ctx, meta: Mapping, rngs: nnx.Rngs, role: str = "student", **overrides) -> nnx.Module:
  """The model of `role` (widths from meta["widths"][role] when set)."""
  rc = role_cfg(ctx.config, role)
  return MODELS.get(rc.name)(num_outputs(ctx, role), rngs=rngs, widths=role_widths(meta, role),
                             **_builder_kwargs(ctx, role, overrides))


@functools.lru_cache(maxsize=64)
def _abstract_cached(name: str, num_classes: int, widths_json: str, kwargs_json: str):
  widths = json.loads(widths_json)
  kwargs = json.loads(kwargs_json)
  return nnx.eval_shape(lambda: MODELS.get(name)(num_classes, rngs=nnx.Rngs(0), widths=widths,
                                                 **kwargs))


def abstract_model(ctx, meta: Mapping, role: str = "student", **overrides) -> nnx.Module:
  """The role's model built abstractly (no FLOPs), cached per (name, widths, kwargs).

  Treat it as read-only: it is shared between callers.
  """
  rc = role_cfg(ctx.config, role)
  kw = _builder_kwargs(ctx, role, overrides)
  try:
    kw_json = json.dumps(kw, sort_keys=True)
  except TypeError:  # unhashable kwargs (e.g. callables): build without the cache
    return nnx.eval_shape(lambda: build_model(ctx, meta, nnx.Rngs(0), role, **overrides))
  return _abstract_cached(rc.name, num_outputs(ctx, role),
                          json.dumps(role_widths(meta, role)), kw_json)


def split(model: nnx.Module):
  """model -> (graphdef, params, rest): trainable nnx.Param and everything else (BN stats)."""
  return nnx.split(model, nnx.Param, ...)


def graphdef(ctx, meta: Mapping, role: str = "student", **overrides):
  """The (static) graphdef of the role's model for this meta."""
  return split(abstract_model(ctx, meta, role, **overrides))[0]


def merge(gdef, model_state: Mapping) -> nnx.Module:
  return nnx.merge(gdef, model_state["params"], model_state["rest"], copy=True)


def model_state(model: nnx.Module) -> dict:
  _, params, rest = split(model)
  return {"params": params, "rest": rest}


# --------------------------------------------------------------- optimizers
def make_tx(ctx, role: str, total_steps: int, optim_name: Optional[str] = None,
            **kw) -> optax.GradientTransformation:
  """The optax transformation of `role` (its optimizer block), schedule over total_steps."""
  return optim.make_optimizer(optim_cfg(ctx.config, role, optim_name), ctx.steps_per_epoch,
                              max(int(total_steps), 1), **kw)


# -------------------------------------------------------------------- state
def init_state(ctx, rng, meta: Mapping, txs: Mapping[str, Optional[optax.GradientTransformation]],
               extras: Optional[dict] = None) -> dict:
  """Builds every role in `txs` (role -> tx, or None for a frozen role: no optimizer state)."""
  models, opts = {}, {}
  for i, (role, tx) in enumerate(txs.items()):
    r = jax.random.fold_in(rng, i)
    m = build_model(ctx, meta, nnx.Rngs(params=r, dropout=jax.random.fold_in(r, 1)), role)
    models[role] = model_state(m)
    if tx is not None:
      opts[role] = tx.init(models[role]["params"])
  return {"step": jnp.zeros((), jnp.int32), "models": models, "opt": opts,
          "extras": dict(extras or {})}


# -------------------------------------------------------------------- steps
def ce_loss(model: nnx.Module, batch: Mapping, rng, label_smoothing: float = 0.0):
  """Cross-entropy of model(batch["image"], train=True); returns (loss, aux metrics)."""
  logits = model(batch["image"], train=True)
  loss = optim.cross_entropy(logits, batch["label"], label_smoothing)
  acc = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
  return loss, {"accuracy": acc}


def role_update(state: dict, role: str, gdef, tx: optax.GradientTransformation, loss_fn: LossFn,
                batch, rng, transform_params: Optional[Callable] = None) -> tuple[dict, dict]:
  """One optimizer step of `role` on `loss_fn(model, batch, rng, state)`; other roles untouched.

  `loss_fn` gets the merged model of `role` and the current state (read other roles from it;
  they receive no gradient). transform_params(params, state) -> params is applied inside the
  gradient (masks, fake quantization). Returns (new state, metrics incl. "loss").
  """
  ms = state["models"][role]

  def objective(params):
    p = transform_params(params, state) if transform_params is not None else params
    model = nnx.merge(gdef, p, ms["rest"], copy=True)
    loss, aux = loss_fn(model, batch, rng, state)
    return loss, (aux, nnx.state(model, nnx.Not(nnx.Param)))

  (loss, (aux, rest)), grads = jax.value_and_grad(objective, has_aux=True)(ms["params"])
  updates, opt_state = tx.update(grads, state["opt"][role], ms["params"])
  params = optax.apply_updates(ms["params"], updates)
  new = dict(state)
  new["models"] = {**state["models"], role: {"params": params, "rest": rest}}
  new["opt"] = {**state["opt"], role: opt_state}
  return new, {"loss": loss, **aux}


def _state_free(loss_fn: LossFn) -> LossFn:
  return lambda model, batch, rng, state: loss_fn(model, batch, rng)


def make_train_step(gdef, tx: optax.GradientTransformation, loss_fn: LossFn = ce_loss,
                    role: str = "student", transform_params: Optional[Callable] = None):
  """A pure step on one role with `loss_fn(model, batch, rng)`; increments state["step"]."""

  def step(state, batch, rng):
    new, metrics = role_update(state, role, gdef, tx, _state_free(loss_fn), batch, rng,
                               transform_params)
    new["step"] = state["step"] + 1
    return new, metrics

  return step


def make_multi_step(updates: Sequence[tuple], batch_keys: Optional[Mapping[str, str]] = None):
  """One jitted step that updates several roles in order, each with its own optimizer.

  Args:
    updates: (role, gdef, tx, loss_fn(model, batch, rng, state)) in update order, e.g.
      discriminator first, then generator (the generator's loss sees the updated D).
    batch_keys: role -> key of a sub-batch in the batch (a role with its own batch, e.g. the
      architecture step of GCC); missing roles get the whole batch.
  Metrics are prefixed by role ("discriminator/loss"); "loss" is the last role's loss.
  """
  batch_keys = dict(batch_keys or {})

  def step(state, batch, rng):
    metrics = {}
    for i, (role, gdef, tx, loss_fn) in enumerate(updates):
      b = batch[batch_keys[role]] if role in batch_keys else batch
      state, m = role_update(state, role, gdef, tx, loss_fn, b, jax.random.fold_in(rng, i))
      metrics.update({f"{role}/{k}": v for k, v in m.items()})
      metrics["loss"] = m["loss"]
    state = dict(state)
    state["step"] = state["step"] + 1
    return state, metrics

  return step


def ema_update(state: dict, target: str, source: str, momentum) -> dict:
  """models[target] <- m * models[target] + (1 - m) * models[source] (params and float stats).

  The MoCo key encoder (m = 0.999) and EMA generators. `target` is a frozen role.
  """
  def mix(t, s):
    if not jnp.issubdtype(t.dtype, jnp.floating):
      return s
    return (momentum * t + (1.0 - momentum) * s).astype(t.dtype)

  new = dict(state)
  new["models"] = {**state["models"],
                   target: jax.tree.map(mix, state["models"][target], state["models"][source])}
  return new


# ---------------------------------------------------------------- predict
def logits_fn(gdef, role: str = "student", transform_params: Optional[Callable] = None):
  """fn(state, batch) -> logits of the role's model in eval mode."""

  def fn(state, batch):
    ms = state["models"][role]
    p = transform_params(ms["params"], state) if transform_params is not None else ms["params"]
    return nnx.merge(gdef, p, ms["rest"], copy=True)(batch["image"], train=False)

  return fn


def classify_predict(gdef, role: str = "student", transform_params: Optional[Callable] = None):
  """Prediction for classification evaluators: {"logits": [B, K], "label": [B]}."""
  logits = logits_fn(gdef, role, transform_params)

  def fn(state, batch):
    return {"logits": logits(state, batch).astype(jnp.float32), "label": batch["label"]}

  return fn


# -------------------------------------------------------------- pretrained
def load_pretrained(ctx, state: dict, meta: Mapping, role: str = "student") -> dict:
  """Loads models.<role>.init.checkpoint (an orbax workdir) or .torch_checkpoint into
  state["models"][role]; no-op when neither is set. init.skip: path prefixes that keep their
  fresh init (checkpoint only), e.g. ["head"] to put a new head on a trained trunk; '{seed}'
  in init.checkpoint becomes config.seed (each seed of a --seeds run starts from its own)."""
  init = role_cfg(ctx.config, role).get("init", {})
  ckpt_path, torch_path = init.get("checkpoint", ""), init.get("torch_checkpoint", "")
  if not ckpt_path and not torch_path:
    return state
  if ckpt_path:
    from jaxvision.core.checkpoint import load_model_state
    # '{seed}' names the same seed's run of a multi-seed sweep, e.g. .../rec_demo/seed{seed}
    ckpt_path = str(ckpt_path).replace("{seed}", str(int(ctx.config.seed)))
    loaded = load_model_state(ckpt_path, state["models"][role], role,
                              skip=tuple(init.get("skip", ())))
  else:
    from jaxvision.models import torch_import
    model = merge(graphdef(ctx, meta, role), jax.device_get(state["models"][role]))
    torch_import.maybe_load_pretrained(model, {"init": init})
    loaded = model_state(model)
  new = dict(state)
  new["models"] = {**state["models"], role: loaded}
  return new


def has_pretrained(ctx, role: str = "student") -> bool:
  init = role_cfg(ctx.config, role).get("init", {})
  return bool(init.get("checkpoint", "")) or bool(init.get("torch_checkpoint", ""))


def flops_count(ctx, meta: Mapping, role: str = "student", **kw) -> dict:
  """FLOPs/params of the role's model (jaxvision.flops.count) at the data's input shape."""
  from jaxvision import flops
  rc = role_cfg(ctx.config, role)
  mk = {k: v for k, v in dict(rc.get("kwargs", {})).items() if k not in ("dtype", "num_classes")}
  return flops.count(rc.name, widths=role_widths(meta, role), num_classes=num_outputs(ctx, role),
                     input_shape=tuple(ctx.data.image_shape), **mk, **kw)
