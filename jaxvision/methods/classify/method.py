"""Dense classification: the reference method and the smallest example of the method API.

One role, `student` (`config.models.student`, optimizer `config.optims.student`); the
model/state helpers are `jaxvision.core.roles`. The structure is the role's zoo model with
`meta["widths"]["student"]` when a method (e.g. pruning) has set it.
"""
from __future__ import annotations

import functools

from jaxvision.core import roles
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS

ROLE = "student"


def init(ctx: RunContext, rng, meta: dict):
  return roles.init_state(ctx, rng, meta, {ROLE: roles.make_tx(ctx, ROLE, ctx.num_steps)})


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  ls = float(roles.optim_cfg(ctx.config, ROLE).label_smoothing)
  return roles.make_train_step(roles.graphdef(ctx, meta, ROLE),
                               roles.make_tx(ctx, ROLE, ctx.num_steps),
                               functools.partial(roles.ce_loss, label_smoothing=ls), ROLE)


def predict_fns(ctx: RunContext, meta: dict, stage: Stage):
  return {"classify": roles.classify_predict(roles.graphdef(ctx, meta, ROLE), ROLE)}


def prepare(ctx: RunContext, state, meta):
  return roles.load_pretrained(ctx, state, meta, ROLE)


def summary(ctx: RunContext, state, meta) -> dict:
  c = roles.flops_count(ctx, meta, ROLE)
  return {"flops": c["flops"], "params": c["params"]}


CLASSIFY = METHODS.register("classify", Method(
    name="classify", init=init, train_step=train_step, predict_fns=predict_fns,
    prepare=prepare, summary=summary))
