"""CLR-RNF as a jaxvision Method: dense stage -> (transition: prune) -> fine-tune stage.

Stages:
  dense     trains the dense model with `config.optims.dense` for
            `clr_rnf.dense_epochs` (or `dense_steps`); 0 steps when a pretrained
            checkpoint is given (`config.models.student.init.checkpoint` / `.torch_checkpoint`,
            loaded by `prepare`). Its end eval is the accuracy before pruning.
  finetune  the transition into it prunes (CLR ranking, RNF selection, surgery) on the host;
            its start eval is the accuracy right after pruning, its end eval after fine-tuning
            with `config.optims.student` for `config.num_epochs` (or `config.steps`; 0 = prune only).

Train steps and model (de)construction are `core.roles`'. `meta` carries the pruned
`widths` ({"student": widths}), the original `dense_widths` and `clr_rnf` (per-unit keep counts and rates,
and the kept filter indices of every pruned layer), so a resumed run rebuilds the narrow net.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.core import roles
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.methods.clr_rnf import archs, surgery
from jaxvision.methods.clr_rnf.pruning import PruneOptions, plan_pruning

ROLE = "student"


def prune_options(config) -> PruneOptions:
  """PruneOptions from `config.clr_rnf` (validated)."""
  c = config.clr_rnf
  return PruneOptions(
      pr_target=float(c.pr_target), lam=None if c.lam is None else float(c.lam),
      ranking=str(c.ranking), selection=str(c.selection), rnf_fill=str(c.rnf_fill),
      flops_mode=c.flops_mode,
      inherit_bn=bool(c.inherit_bn), residual_select=str(c.residual_select), seed=int(c.seed),
      random_exclude_last=bool(c.random_exclude_last)).validate()


def _pretrained(ctx: RunContext) -> bool:
  return roles.has_pretrained(ctx, ROLE)


def dense_steps(ctx: RunContext) -> int:
  """Steps of the dense stage (0 when starting from a pretrained checkpoint)."""
  if _pretrained(ctx):
    return 0
  c = ctx.config.clr_rnf
  if c.dense_epochs is not None:
    return ctx.epochs_to_steps(c.dense_epochs)
  return int(c.dense_steps)


def _stage_tx(ctx: RunContext, stage_index: int):
  if stage_index == 0:
    return roles.make_tx(ctx, ROLE, dense_steps(ctx), optim_name="dense")
  return roles.make_tx(ctx, ROLE, ctx.num_steps)


def _ce(ctx, stage_index: int):
  oc = roles.optim_cfg(ctx.config, ROLE, "dense" if stage_index == 0 else None)
  return functools.partial(roles.ce_loss, label_smoothing=float(oc.label_smoothing))


# ------------------------------------------------------------------ method fns
def stages(ctx: RunContext) -> list[Stage]:
  prune_options(ctx.config)            # bad options fail at start-up, not after training
  archs.get_arch(roles.role_cfg(ctx.config, ROLE).name)  # and a model without pruning rules
  return [Stage("dense", dense_steps(ctx), optim="dense"),
          Stage("finetune", ctx.num_steps, kind="finetune")]


def init(ctx: RunContext, rng, meta: dict):
  tx = _stage_tx(ctx, int(meta.get("stage", 0)))
  return roles.init_state(ctx, rng, meta, {ROLE: tx})


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  si = 0 if stage.kind == "train" else 1
  return roles.make_train_step(roles.graphdef(ctx, meta, ROLE), _stage_tx(ctx, si), _ce(ctx, si),
                               ROLE)


def predict_fns(ctx: RunContext, meta: dict, stage: Stage):
  return {"classify": roles.classify_predict(roles.graphdef(ctx, meta, ROLE), ROLE)}


def prepare(ctx: RunContext, state, meta: dict):
  return roles.load_pretrained(ctx, state, meta, ROLE)


def prune_state(ctx: RunContext, state, meta: dict):
  """Host-side one-shot pruning of state's model. Returns (new state, new meta entries)."""
  if roles.role_widths(meta, ROLE) is not None:
    raise ValueError("clr_rnf: this state is already pruned (meta has 'widths').")
  opts = prune_options(ctx.config)
  host = jax.device_get(state)
  model = roles.merge(roles.graphdef(ctx, meta, ROLE), host["models"][ROLE])
  res = plan_pruning(model, roles.role_cfg(ctx.config, ROLE).name, opts,
                     int(ctx.data.image_shape[0]))
  narrow = surgery.narrow_model(
      model, res.plan,
      lambda w: roles.build_model(ctx, {"widths": {ROLE: w}}, nnx.Rngs(opts.seed), ROLE),
      opts.seed)
  ms = roles.model_state(narrow)
  tx = _stage_tx(ctx, 1)
  new_state = {"step": jnp.asarray(host["step"], jnp.int32), "models": {ROLE: ms},
               "opt": {ROLE: tx.init(ms["params"])}, "extras": {}}
  new_meta = {"widths": {ROLE: [int(w) for w in res.plan.widths]},
              "dense_widths": [int(w) for w in model.widths], "clr_rnf": res.to_meta()}
  return new_state, new_meta


def transition(ctx: RunContext, state, meta: dict, next_stage: Stage):
  if next_stage.kind != "finetune":
    return state, {}
  return prune_state(ctx, state, meta)


def _count(ctx: RunContext, widths):
  return roles.flops_count(ctx, {"widths": {ROLE: widths}}, ROLE, convention="thop")


def summary(ctx: RunContext, state, meta: dict) -> dict:
  """FLOPs / params before and after (thop), reductions, accuracies per phase, widths,
  kept indices; writes `clr_rnf_widths.png` into the workdir."""
  evals = meta.get("evals", {})
  out = {"accuracy": {"before_pruning": evals.get("dense", {}).get("end", {}),
                      "after_pruning": evals.get("finetune", {}).get("start", {}),
                      "after_finetune": evals.get("finetune", {}).get("end", {})}}
  widths = roles.role_widths(meta, ROLE)
  if widths is None:
    return out
  dense = _count(ctx, meta.get("dense_widths"))
  pruned = _count(ctx, widths)
  info = meta.get("clr_rnf", {})
  out.update({
      "flops_before": dense["flops"], "flops_after": pruned["flops"],
      "params_before": dense["params"], "params_after": pruned["params"],
      "flops_reduction": 1.0 - pruned["flops"] / dense["flops"],
      "params_reduction": 1.0 - pruned["params"] / dense["params"],
      "flops": pruned["flops"], "params": pruned["params"],
      "widths": widths, "dense_widths": meta.get("dense_widths"),
      "layers": {u: {"before": v["n"], "after": v["keep"], "rate": v["rate"], "f": v["f"]}
                 for u, v in info.get("units", {}).items()},
      "kept_indices": info.get("kept", {}), "lam": info.get("lam"), "tau": info.get("tau"),
  })
  if ctx.is_main and ctx.workdir:
    try:
      out["widths_plot"] = plot_widths(info.get("units", {}),
                                       os.path.join(ctx.workdir, "clr_rnf_widths.png"))
    except OSError as e:  # a read-only workdir must not lose the summary
      out["widths_plot_error"] = str(e)
  return out


def plot_widths(units: dict, path: str, title: str = "CLR-RNF kept filters per unit") -> str:
  """Bar plot (matplotlib Agg) of original vs kept filters per ranking unit -> PNG path."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = list(units)
  before = np.array([units[u]["n"] for u in names])
  after = np.array([units[u]["keep"] for u in names])
  fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(names) + 2), 3.5))
  x = np.arange(len(names))
  ax.bar(x, before, color="#cccccc", label="original")
  ax.bar(x, after, color="#1f77b4", label="kept")
  ax.set_xticks(x)
  ax.set_xticklabels(names, rotation=90, fontsize=6)
  ax.set_ylabel("filters")
  ax.set_title(title)
  ax.legend()
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


CLR_RNF = Method(name="clr_rnf", init=init, train_step=train_step, predict_fns=predict_fns,
                 stages=stages, transition=transition, prepare=prepare, summary=summary)
