"""OptG (Zhang et al., arXiv 2201.12826) and its baselines (GMP, RigL, dense) in one harness.

`config.optg.method` picks 'optg' | 'gmp' | 'rigl' | 'dense'; everything
else (model, data, weight optimizer, budget) is shared, so runs compare at the
same sparsity and steps. State (one pytree)::

  {"step", "models": {"student": {"params", "rest"}},
   "opt": {"student": weight tx state, "scores": score tx state (OptG)},
   "extras": {"masks": nested bool masks, "scores": fp32 scores (OptG)}}

OptG step (pure, jitted by the core loop): at step % interval == 0 (once per
epoch by default) the masks are re-derived from the global top-K of the signed
scores (K from the sigmoid schedule, exact integer counts); forward with
W*M; STE backward: weights get G*M, scores get G*W; weights use the configured
optimizer (coupled L2 on every param, removed weights included); scores use SGD
momentum 0.9, no weight decay, lr = lr_w(step) * sigmoid(beta*(epoch - E/2)).
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvision import sparsity as sp
from jaxvision.core import optim, roles
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS
from jaxvision.sparsity import masking
from jaxvision.sparsity import paths as paths_lib

SCORE_LR_MODES = ("ramp", "constant")


# ------------------------------------------------------------------ plan
def abstract_params(ctx: RunContext, meta: dict):
  model = roles.abstract_model(ctx, meta, "student")
  return roles.split(model)[1], model


def make_plan(ctx: RunContext, meta: dict) -> sp.Plan:
  """The sparsity plan for this run from `config.optg` (host side)."""
  cfg = ctx.config.optg
  params, model = abstract_params(ctx, meta)
  exclude = cfg.exclude or None
  if cfg.dense_first_last:
    first, last = paths_lib.first_last_layers(model)
    fl = f"^({first}|{last})$"
    exclude = f"{exclude}|{fl}" if exclude else fl
  if cfg.score_lr_mode not in SCORE_LR_MODES:
    raise ValueError(f"optg.score_lr_mode={cfg.score_lr_mode!r}; valid: {SCORE_LR_MODES}")
  return sp.make_plan(
      params, method=cfg.method, target=float(cfg.target), steps_per_epoch=ctx.steps_per_epoch,
      total_steps=ctx.num_steps, include=cfg.include, exclude=exclude,
      distribution=cfg.distribution or None, interval=int(cfg.interval),
      beta=float(cfg.beta), begin_frac=float(cfg.begin_frac),
      end_frac=float(cfg.end_frac), drop_fraction=float(cfg.drop_fraction),
      ties=cfg.ties, snap_final=bool(cfg.snap_final))


def score_lr_fn(ctx: RunContext, plan: sp.Plan):
  """step -> score lr: lr_w(step) * sigmoid(beta (epoch - E/2)) (the 'supermask optimizer')."""
  cfg = ctx.config.optg
  lr_w = optim.lr_schedule(roles.optim_cfg(ctx.config, "student"), ctx.steps_per_epoch,
                           ctx.num_steps)
  spe, E, beta = ctx.steps_per_epoch, plan.schedule.total_epochs, plan.schedule.beta
  mode = cfg.score_lr_mode
  const = float(cfg.score_lr)

  def fn(step):
    epoch = jnp.floor(jnp.asarray(step, jnp.float32) / spe)
    if mode == "constant":
      return jnp.asarray(const, jnp.float32)
    return lr_w(step) * jax.nn.sigmoid(beta * (epoch - E / 2.0))

  return fn


def make_score_tx(ctx: RunContext, plan: sp.Plan) -> optax.GradientTransformation:
  """SGD (PyTorch momentum buffer b = m b + g), no weight decay, lr from `score_lr_fn`."""
  mom = float(ctx.config.optg.score_momentum)
  lr = score_lr_fn(ctx, plan)
  return optax.sgd(lr, momentum=mom or None)


# ------------------------------------------------------------------ state
def init(ctx: RunContext, rng, meta: dict):
  plan = make_plan(ctx, meta)
  tx = roles.make_tx(ctx, "student", ctx.num_steps)
  r_model, r_mask = jax.random.split(rng)
  state = roles.init_state(ctx, r_model, meta, {"student": tx})
  extras = sp.init_extras(plan, state["models"]["student"]["params"], r_mask)
  state["extras"] = extras
  if plan.method == "optg":
    state["opt"]["scores"] = make_score_tx(ctx, plan).init(extras["scores"])
  return state


def make_sparse_train_step(gdef, tx, plan: sp.Plan, loss_fn, score_tx=None, role="student"):
  """The pure train step shared by OptG / GMP / RigL / dense.

  Returns step(state, batch, rng) -> (state, metrics); metrics include
  `sparsity` (1 - kept/N over masked tensors, after this step's refresh).
  """

  def step(state, batch, rng):
    s = state["step"]
    ms = state["models"][role]
    params = ms["params"]
    extras = sp.refresh(plan, state["extras"], params, s)
    masks = extras["masks"]

    def forward(p):
      model = nnx.merge(gdef, p, ms["rest"], copy=True)
      loss, aux = loss_fn(model, batch, rng)
      return loss, (aux, nnx.state(model, nnx.Not(nnx.Param)))

    new_opt = dict(state["opt"])
    if plan.method == "optg":
      obj = lambda p, sc: forward(sp.apply_masks(p, masks, sc))
      (loss, (aux, rest)), (gw, gs) = jax.value_and_grad(obj, argnums=(0, 1), has_aux=True)(
          params, extras["scores"])
      su, new_opt["scores"] = score_tx.update(gs, state["opt"]["scores"], extras["scores"])
      extras = {**extras, "scores": optax.apply_updates(extras["scores"], su)}
    elif plan.method == "rigl":
      peff = sp.map_masked(lambda w, m: w * m.astype(w.dtype), params, masks)
      (loss, (aux, rest)), g_eff = jax.value_and_grad(forward, has_aux=True)(peff)
      dense = masking.get_leaves(g_eff, masks)
      extras, params = sp.rigl_update(plan, extras, params, dense, s)
      gw = sp.map_masked(lambda g, m: g * m.astype(g.dtype), g_eff, extras["masks"])
    else:
      obj = lambda p: forward(sp.apply_masks(p, masks))
      (loss, (aux, rest)), gw = jax.value_and_grad(obj, has_aux=True)(params)
    updates, new_opt[role] = tx.update(gw, state["opt"][role], params)
    params = optax.apply_updates(params, updates)
    new = dict(state)
    new["models"] = {**state["models"], role: {"params": params, "rest": rest}}
    new["opt"] = new_opt
    new["extras"] = extras
    new["step"] = s + 1
    spars = sp.sparsity(extras["masks"]) if extras["masks"] else jnp.zeros((), jnp.float32)
    return new, {"loss": loss, **aux, "sparsity": spars}

  return step


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  plan = make_plan(ctx, meta)
  ls = float(roles.optim_cfg(ctx.config, "student").label_smoothing)
  score_tx = make_score_tx(ctx, plan) if plan.method == "optg" else None
  return make_sparse_train_step(roles.graphdef(ctx, meta), roles.make_tx(ctx, "student", ctx.num_steps),
                                plan, functools.partial(roles.ce_loss, label_smoothing=ls),
                                score_tx)


def masked_params(params, state):
  masks = state["extras"]["masks"]
  return sp.apply_masks(params, masks) if masks else params


def predict_fns(ctx: RunContext, meta: dict, stage: Stage):
  return {"classify": roles.classify_predict(roles.graphdef(ctx, meta),
                                             transform_params=masked_params)}


# ------------------------------------------------------------------ report
def sparse_report(ctx: RunContext, state, meta, plan: sp.Plan | None = None) -> dict:
  """Final overall/per-layer sparsity, dense and sparse FLOPs (MACs) and params.

  Sparse FLOPs = sum over layers of dense MACs x layer density (STR's
  convention, an assumption per the spec; unmasked layers count dense).
  """
  from jaxvision import flops
  plan = plan or make_plan(ctx, meta)
  kw = {k: v for k, v in dict(roles.role_cfg(ctx.config, "student").kwargs).items() if k != "dtype"}
  c = flops.count(roles.role_cfg(ctx.config, "student").name,
                  widths=roles.role_widths(meta, "student"), convention="macs",
                  num_classes=ctx.data.num_classes, input_shape=ctx.data.image_shape, **kw)
  masks = jax.device_get(state["extras"]["masks"])
  params = jax.device_get(state["models"]["student"]["params"])
  dens = {paths_lib.path_str(k): float(np.mean(m)) for k, m in paths_lib.flatten(masks).items()}
  layers, sparse_flops = [], 0.0
  for l in c["layers"]:
    d = dens.get(f"{l['name']}/kernel", 1.0)
    sparse_flops += l["flops"] * d
    if f"{l['name']}/kernel" in dens:
      layers.append({"name": l["name"], "sparsity": 1.0 - d, "flops": l["flops"],
                     "sparse_flops": l["flops"] * d})
  kept = sum(int(np.sum(m)) for m in jax.tree.leaves(masks))
  n_masked = sum(int(np.size(m)) for m in jax.tree.leaves(masks))
  return {
      "sparsity_method": plan.method,
      "target_sparsity": float(ctx.config.optg.target) if plan.method != "dense" else 0.0,
      "sparsity": 1.0 - kept / n_masked if n_masked else 0.0,
      "weight_sparsity": float(masking.weight_sparsity(params, masks)) if n_masked else 0.0,
      "masked_params": n_masked, "kept_params": kept,
      "layer_sparsity": {k: 1.0 - v for k, v in dens.items()},
      "layers": layers,
      "flops_dense": int(c["flops"]), "flops_sparse": int(round(sparse_flops)),
      "params_dense": int(c["params"]), "params_sparse": int(c["params"] - n_masked + kept),
      "flops_convention": "macs (conv+linear MACs x layer density)",
  }


def _plots(ctx: RunContext, report: dict, plan: sp.Plan):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = list(report["layer_sparsity"])
  if names:
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(names)), 3.5))
    ax.bar(range(len(names)), [report["layer_sparsity"][n] for n in names])
    ax.set_xticks(range(len(names)), [n.replace("/kernel", "") for n in names], rotation=90,
                  fontsize=6)
    ax.set_ylabel("sparsity")
    ax.set_title(f"{plan.method}: per-layer sparsity (overall {report['sparsity']:.4f})")
    fig.tight_layout()
    fig.savefig(os.path.join(ctx.workdir, "layer_sparsity.png"), dpi=100)
    plt.close(fig)
  fig, ax = plt.subplots(figsize=(5, 3.5))
  steps = np.arange(plan.schedule.total_steps)
  if plan.num_masked:
    n = plan.num_masked
    sched = [1 - plan.kept_at_update(int(t) // plan.schedule.interval) / n for t in steps]
  else:
    sched = np.zeros_like(steps, dtype=float)
  ax.plot(steps, sched, label="scheduled (mask refresh)")
  mpath = os.path.join(ctx.workdir, "metrics.jsonl")
  if os.path.exists(mpath):
    xs, ys = [], []
    with open(mpath) as f:
      for line in f:
        try:
          r = json.loads(line)
        except ValueError:
          continue
        if "train/sparsity" in r and "step" in r:
          xs.append(r["step"]), ys.append(r["train/sparsity"])
    if xs:
      ax.plot(xs, ys, "o", ms=3, label="logged")
  ax.set_xlabel("step")
  ax.set_ylabel("sparsity")
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(ctx.workdir, "sparsity_vs_step.png"), dpi=100)
  plt.close(fig)


def summary(ctx: RunContext, state, meta) -> dict:
  plan = make_plan(ctx, meta)
  rep = sparse_report(ctx, state, meta, plan)
  if ctx.is_main and ctx.workdir:
    os.makedirs(ctx.workdir, exist_ok=True)
    _plots(ctx, rep, plan)
    if ctx.config.optg.export:
      from jaxvision.sparsity import export
      export.save(os.path.join(ctx.workdir, "export"), ctx, state, meta)
      rep["export"] = os.path.join(ctx.workdir, "export")
  rep["flops"], rep["params"] = rep["flops_sparse"], rep["params_sparse"]
  return rep


def fingerprint(ctx: RunContext) -> dict:
  return {"optg.method": str(ctx.config.optg.method)}  # decides the state's extras


OPTG = METHODS.register("optg", Method(
    name="optg", init=init, train_step=train_step, predict_fns=predict_fns,
    prepare=roles.load_pretrained, summary=summary, fingerprint=fingerprint))
