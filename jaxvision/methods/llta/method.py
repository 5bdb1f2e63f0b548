"""LLTA runner on the loop: a surrogate and frozen victims (roles), then the transfer matrix.

Roles: `surrogate` (white-box) and `victim_<name>` (black-box), each a zoo model with its own
input normalisation (`config.llta.norm`). Pretrained roles are frozen (`trainable=False`,
`init.torch_checkpoint`); trainable roles (the digits demo) get one training stage each
(`llta.train_steps` steps of cross-entropy, or `llta.role_train_steps[role]`; variant =
the role), in config order. After the
last stage, `summary` runs every attack of `config.llta.attacks` on the surrogate over the
first `llta.num_images` eval images (sharded over 'data') and writes the transfer matrix,
white-box / black-box success and per-image results to summary.json, plus
transfer_matrix.png. Clean accuracy of every role is evaluated at each stage end.
"""
from __future__ import annotations

import functools

import jax

from jaxvision.core import roles
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import DATASETS, METHODS
from jaxvision.methods.llta import transfer


def _trainable(config) -> list[str]:
  return [r for r in config.models.keys() if roles.trainable(config, r)]


def train_steps(config, role: str) -> int:
  """Steps of `role`'s training stage: llta.role_train_steps[role], else llta.train_steps."""
  per = config.llta.get("role_train_steps", None) or {}
  return int(per[role]) if role in per else int(config.llta.train_steps)


def stages(ctx: RunContext) -> list[Stage]:
  cfg = ctx.config
  transfer.check_setup(cfg)
  train = _trainable(cfg)
  per = cfg.llta.get("role_train_steps", None) or {}
  unknown = [r for r in per.keys() if r not in cfg.models]
  if unknown:
    raise ValueError(f"llta.role_train_steps names unknown roles {unknown}; roles are "
                     f"{list(cfg.models.keys())}")
  if train:
    bad = [r for r in train if train_steps(cfg, r) < 1]
    if bad:
      raise ValueError(f"roles {bad} are trainable but have {train_steps(cfg, bad[0])} training "
                       "steps; set llta.train_steps (or llta.role_train_steps), or freeze them "
                       "(trainable=False)")
    transfer.check_trained_norms(cfg, DATASETS.get(cfg.dataset.name)(cfg))
    return [Stage(f"train_{r}", steps=train_steps(cfg, r), kind="train", variant=r)
            for r in train]
  return [Stage("attack", steps=0, kind="transition", uses_data=False, evaluate=False)]


def init(ctx: RunContext, rng, meta: dict):
  txs = {r: (roles.make_tx(ctx, r, train_steps(ctx.config, r))
             if roles.trainable(ctx.config, r) else None)
         for r in ctx.config.models.keys()}
  return roles.init_state(ctx, rng, meta, txs)


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  if stage.kind != "train":
    def noop(state, batch=None, rng=None):
      return {**state, "step": state["step"] + 1}, {"loss": jax.numpy.zeros(())}
    return noop
  role = stage.variant
  ls = float(roles.optim_cfg(ctx.config, role).label_smoothing)
  return roles.make_train_step(roles.graphdef(ctx, meta, role),
                               roles.make_tx(ctx, role, train_steps(ctx.config, role)),
                               functools.partial(roles.ce_loss, label_smoothing=ls), role)


def predict_fns(ctx: RunContext, meta: dict, stage: Stage):
  return {f"classify_{r}": roles.classify_predict(roles.graphdef(ctx, meta, r), r)
          for r in ctx.config.models.keys()}


def prepare(ctx: RunContext, state, meta):
  for r in ctx.config.models.keys():
    state = roles.load_pretrained(ctx, state, meta, r)
  return state


def summary(ctx: RunContext, state, meta) -> dict:
  cfg = ctx.config
  host = jax.device_get(state)
  models = {r: roles.merge(roles.graphdef(ctx, meta, r), host["models"][r])
            for r in cfg.models.keys()}
  dataset = DATASETS.get(cfg.dataset.name)(cfg)
  x, y = transfer.load_images(cfg, dataset)
  return transfer.run_transfer(cfg, models, x, y, mesh=ctx.mesh, seed=int(cfg.seed),
                               workdir=ctx.workdir if ctx.is_main else None)


def fingerprint(ctx: RunContext) -> dict:
  return {"roles": list(ctx.config.models.keys()),
          "trainable": _trainable(ctx.config)}


LLTA = METHODS.register("llta", Method(
    name="llta", init=init, train_step=train_step, predict_fns=predict_fns, stages=stages,
    prepare=prepare, summary=summary, fingerprint=fingerprint))
