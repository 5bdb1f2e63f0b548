"""CLR-RNF as a jaxvision Method: dense stage -> (transition: prune) -> fine-tune stage.

Stages:
  dense     trains the dense model with `config.clr_rnf.dense_optim` for
            `clr_rnf.dense_epochs` (or `dense_steps`); 0 steps when a pretrained
            checkpoint is given (`config.init.checkpoint` / `init.torch_checkpoint`, loaded
            by `prepare`). Its end eval is the accuracy before pruning.
  finetune  the transition into it prunes (CLR ranking, RNF selection, surgery) on the host;
            its start eval is the accuracy right after pruning, its end eval after fine-tuning
            with `config.optim` for `config.num_epochs` (or `config.steps`; 0 = prune only).

Train / eval steps and model (de)construction are the classify method's. `meta` carries the
pruned `widths`, the original `dense_widths` and `clr_rnf` (per-unit keep counts and rates,
and the kept filter indices of every pruned layer), so a resumed run rebuilds the narrow net.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.methods import classify
from jaxvision.methods.clr_rnf import archs, surgery
from jaxvision.methods.clr_rnf.pruning import PruneOptions, plan_pruning

ROLE = "student"


def prune_options(config) -> PruneOptions:
  """PruneOptions from `config.clr_rnf` (validated)."""
  c = config.clr_rnf
  return PruneOptions(
      pr_target=float(c.pr_target), lam=None if c.get("lam") is None else float(c.lam),
      ranking=str(c.get("ranking", "clr")), selection=str(c.get("selection", "rnf")),
      flops_mode=c.get("flops_mode"), inherit_bn=bool(c.get("inherit_bn", True)),
      residual_select=str(c.get("residual_select", "code")), seed=int(c.get("seed", 0)),
      random_exclude_last=bool(c.get("random_exclude_last", False))).validate()


def _pretrained(ctx: RunContext) -> bool:
  init = ctx.config.get("init", {})
  return bool(init.get("checkpoint", "")) or bool(init.get("torch_checkpoint", ""))


def dense_steps(ctx: RunContext) -> int:
  """Steps of the dense stage (0 when starting from a pretrained checkpoint)."""
  if _pretrained(ctx):
    return 0
  c = ctx.config.clr_rnf
  if c.get("dense_epochs") is not None:
    return ctx.epochs_to_steps(c.dense_epochs)
  return int(c.get("dense_steps", 0))


def _stage_tx(ctx: RunContext, stage_index: int):
  if stage_index == 0:
    return classify.make_tx(ctx, max(dense_steps(ctx), 1), ctx.config.clr_rnf.dense_optim)
  return classify.make_tx(ctx, max(ctx.num_steps, 1), ctx.config.optim)


def _ce(ctx):
  return functools.partial(classify.ce_loss,
                           label_smoothing=float(ctx.config.optim.get("label_smoothing", 0.0)))


# ------------------------------------------------------------------ method fns
def stages(ctx: RunContext) -> list[Stage]:
  prune_options(ctx.config)            # bad options fail at start-up, not after training
  archs.get_arch(ctx.config.model.name)  # and so does a model without pruning rules
  return [Stage("dense", dense_steps(ctx)), Stage("finetune", ctx.num_steps)]


def init(ctx: RunContext, rng, meta: dict):
  return classify.init_state(ctx, rng, meta, _stage_tx(ctx, int(meta.get("stage", 0))), ROLE)


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  si = 0 if stage.name == "dense" else 1
  return classify.make_train_step(classify.graphdef(ctx, meta), _stage_tx(ctx, si), _ce(ctx),
                                  ROLE)


def eval_step(ctx: RunContext, meta: dict):
  return classify.make_eval_step(classify.graphdef(ctx, meta), ROLE)


def prepare(ctx: RunContext, state, meta: dict):
  return classify.load_pretrained(ctx, state, meta, ROLE)


def prune_state(ctx: RunContext, state, meta: dict):
  """Host-side one-shot pruning of state's model. Returns (new state, new meta entries)."""
  if "widths" in meta:
    raise ValueError("clr_rnf: this state is already pruned (meta has 'widths').")
  opts = prune_options(ctx.config)
  host = jax.device_get(state)
  model = classify.merge(classify.graphdef(ctx, meta), host["models"][ROLE])
  res = plan_pruning(model, ctx.config.model.name, opts, int(ctx.data.image_shape[0]))
  narrow = surgery.narrow_model(
      model, res.plan, lambda w: classify.build_model(ctx, {"widths": w}, nnx.Rngs(opts.seed)),
      opts.seed)
  ms = classify.model_state(narrow)
  tx = _stage_tx(ctx, 1)
  new_state = {"step": jnp.asarray(host["step"], jnp.int32), "models": {ROLE: ms},
               "opt": {ROLE: tx.init(ms["params"])}, "extras": {}}
  new_meta = {"widths": [int(w) for w in res.plan.widths],
              "dense_widths": [int(w) for w in model.widths], "clr_rnf": res.to_meta()}
  return new_state, new_meta


def transition(ctx: RunContext, state, meta: dict, next_stage: Stage):
  if next_stage.name != "finetune":
    return state, {}
  return prune_state(ctx, state, meta)


def _count(ctx: RunContext, widths):
  from jaxvision import flops
  kw = {k: v for k, v in dict(ctx.config.model.get("kwargs", {})).items() if k != "dtype"}
  return flops.count(ctx.config.model.name, input_shape=ctx.data.image_shape, convention="thop",
                     widths=widths, num_classes=ctx.data.num_classes, **kw)


def summary(ctx: RunContext, state, meta: dict) -> dict:
  """FLOPs / params before and after (thop), reductions, accuracies per phase, widths,
  kept indices; writes `clr_rnf_widths.png` into the workdir."""
  evals = meta.get("evals", {})
  out = {"accuracy": {"before_pruning": evals.get("dense", {}).get("end", {}),
                      "after_pruning": evals.get("finetune", {}).get("start", {}),
                      "after_finetune": evals.get("finetune", {}).get("end", {})}}
  if "widths" not in meta:
    return out
  dense = _count(ctx, meta.get("dense_widths"))
  pruned = _count(ctx, meta["widths"])
  info = meta.get("clr_rnf", {})
  out.update({
      "flops_before": dense["flops"], "flops_after": pruned["flops"],
      "params_before": dense["params"], "params_after": pruned["params"],
      "flops_reduction": 1.0 - pruned["flops"] / dense["flops"],
      "params_reduction": 1.0 - pruned["params"] / dense["params"],
      "flops": pruned["flops"], "params": pruned["params"],
      "widths": meta["widths"], "dense_widths": meta.get("dense_widths"),
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


CLR_RNF = Method(name="clr_rnf", init=init, train_step=train_step, eval_step=eval_step,
                 stages=stages, transition=transition, prepare=prepare, summary=summary)
