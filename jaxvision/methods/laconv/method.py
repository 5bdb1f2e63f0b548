"""LaConv on the loop: one trainable role `model` (`laconvnet_vl`: language encoder + LaConvNet).

Task from config.laconv.task (the model head follows it); config.laconv.conv = 'static' is the
baseline (same trunk, static depthwise convs, late fusion). Recipe (spec §4): Adam
(b2 0.98), global-norm clip 0.15, EMA of the weights (decay 0.9997) for evaluation, flips
with 'left' <-> 'right' swapped in the text. The word embedding is frozen; GloVe vectors are
loaded at the start when config.laconv.glove_path is set (random N(0, 1) otherwise;
summary.json says which).

Losses: rec = SimOTA (simota.py); res = BCE-with-logits (mean) x B; vqa = BCE against soft
scores (MCAN 0/.3/.6/.9/1 for 0/1/2/3/>=4 matching annotators), summed over answers.
Predictions: 'rec' {box, target_box} (xyxy original pixels) for the `rec` evaluator;
'res' per-example mask_iou, prec@X, ie (%) for `mean`; 'vqa' {answer, gt_answers,
answer_type} for `vqa` (answer types: 0 yes/no, 1 number, 2 other).
"""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvision.core import roles
from jaxvision.core.evaluation import register as register_evaluator
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS
from jaxvision.evaluators import protocol
from jaxvision.methods.laconv import config as cfg_lib
from jaxvision.methods.laconv import data as _data  # noqa: F401  (registers the datasets)
from jaxvision.methods.laconv import model as _model  # noqa: F401  (registers laconvnet_vl)
from jaxvision.methods.laconv import simota
from jaxvision.methods.laconv.boxes import box_iou, cxcywh_to_xyxy
from jaxvision.methods.laconv.language import load_glove
from jaxvision.models.laconvnet import grid_centers

ROLE = "model"
PREC_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
MCAN_SCORES = (0.0, 0.3, 0.6, 0.9, 1.0)


def _check(ctx):
  c = ctx.config.laconv
  if c.task not in cfg_lib.TASKS:
    raise ValueError(f"config.laconv.task={c.task!r}; choose one of {cfg_lib.TASKS}.")
  if c.conv not in cfg_lib.CONVS:
    raise ValueError(f"config.laconv.conv={c.conv!r}; choose one of {cfg_lib.CONVS}.")
  if ctx.data is not None and ctx.data.get("task", c.task) != c.task:
    raise ValueError(f"dataset built for task {ctx.data['task']!r} but laconv.task={c.task!r}.")


def _overrides(ctx) -> dict:
  c = ctx.config.laconv
  return {"vocab_size": int(ctx.data.vocab_size), "head": str(c.task), "conv_type": str(c.conv),
          "impl": str(c.impl)}


def _gdef(ctx, meta):
  return roles.graphdef(ctx, meta, ROLE, **_overrides(ctx))


def _ema_decay(ctx) -> float:
  return float(ctx.config.laconv.ema_decay)


def _tx(ctx):
  tx = roles.make_tx(ctx, ROLE, ctx.num_steps)
  clip = float(ctx.config.laconv.grad_clip)
  return optax.chain(optax.clip_by_global_norm(clip), tx) if clip > 0 else tx


def init(ctx: RunContext, rng, meta: dict):
  _check(ctx)
  m = roles.build_model(ctx, meta, nnx.Rngs(params=rng, dropout=jax.random.fold_in(rng, 1)),
                        ROLE, **_overrides(ctx))
  ms = roles.model_state(m)
  extras = {"glove_found": jnp.asarray(-1, jnp.int32)}
  if _ema_decay(ctx) > 0:
    extras["ema"] = jax.tree.map(jnp.copy, ms)
  return {"step": jnp.zeros((), jnp.int32), "models": {ROLE: ms},
          "opt": {ROLE: _tx(ctx).init(ms["params"])}, "extras": extras}


# ------------------------------------------------------------------------ augmentation


def flip_batch(batch, rng, swap_ids):
  """Per-example horizontal flip (p = 0.5): image, mask, box and 'left' <-> 'right' tokens."""
  img = batch["image"]
  b, _, w, _ = img.shape
  f = jax.random.bernoulli(rng, 0.5, (b,))
  out = dict(batch)
  out["image"] = jnp.where(f[:, None, None, None], img[:, :, ::-1], img)
  if "mask" in batch:
    out["mask"] = jnp.where(f[:, None, None], batch["mask"][:, :, ::-1], batch["mask"])
  if "box" in batch:
    bx = batch["box"]
    out["box"] = jnp.where(f[:, None], bx.at[:, 0].set(w - bx[:, 0]), bx)
  left, right = swap_ids
  if left >= 0 and right >= 0:
    t = batch["tokens"]
    swapped = jnp.where(t == left, right, jnp.where(t == right, left, t))
    out["tokens"] = jnp.where(f[:, None], swapped, t)
  return out


# ------------------------------------------------------------------------ losses


def soft_scores(gt_answers, num_answers: int, kind: str = "mcan"):
  """gt_answers [B, 10] ids (ids >= num_answers are unknown: ignored) -> [B, A] targets."""
  counts = jnp.sum(jax.nn.one_hot(gt_answers, num_answers), axis=1)
  if kind == "mcan":
    return jnp.asarray(MCAN_SCORES)[jnp.minimum(counts, 4).astype(jnp.int32)]
  if kind == "linear":
    return jnp.minimum(counts / 3.0, 1.0)
  raise ValueError(f"config.laconv.vqa_score={kind!r}; choose 'mcan' or 'linear'.")


def make_loss(ctx):
  c = ctx.config.laconv
  task, iou_type, score_kind = str(c.task), str(c.iou_type), str(c.vqa_score)

  def loss_fn(model, batch, rng):
    out = model(batch["image"], batch["tokens"], train=True, rng=rng)
    if task == "rec":
      h, w = out["raw"].shape[1:3]
      stride = batch["image"].shape[1] // h
      centers = jnp.asarray(grid_centers(h, w, stride))
      loss, aux = simota.rec_loss(out["boxes"], out["obj"], batch["box"], centers, stride,
                                  valid=batch["valid"] > 0, iou_type=iou_type)
      best = simota.rec_predict(out["boxes"], out["obj"])
      acc = jnp.mean((box_iou(best, batch["box"]) > 0.5).astype(jnp.float32))
      return loss, {"loss_iou": aux["loss_iou"], "loss_obj": aux["loss_obj"],
                    "num_fg": aux["num_fg"], "accuracy": acc}
    if task == "res":
      gt = batch["mask"].astype(jnp.float32)
      loss = jnp.mean(optax.sigmoid_binary_cross_entropy(out, gt)) * out.shape[0]
      return loss, {"mask_iou": jnp.mean(_mask_iou(out, gt))}
    target = soft_scores(batch["gt_answers"], out.shape[-1], score_kind)
    loss = jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(out, target), -1))
    acc = jnp.mean(jnp.take_along_axis(target, jnp.argmax(out, -1)[:, None], 1))
    return loss, {"accuracy": acc}

  return loss_fn


def _ema(ema, ms, decay):
  def mix(t, s):
    if not jnp.issubdtype(t.dtype, jnp.floating):
      return s
    return (decay * t + (1.0 - decay) * s).astype(t.dtype)
  return jax.tree.map(mix, ema, ms)


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  _check(ctx)
  step = roles.make_train_step(_gdef(ctx, meta), _tx(ctx), make_loss(ctx), ROLE)
  flip = bool(ctx.config.laconv.flip)
  swap = tuple(int(i) for i in ctx.data.swap_ids)
  decay = _ema_decay(ctx)

  def fn(state, batch, rng):
    if flip:
      batch = flip_batch(batch, jax.random.fold_in(rng, 7), swap)
    new, metrics = step(state, batch, rng)
    if decay > 0:
      new["extras"] = {**new["extras"],
                       "ema": _ema(state["extras"]["ema"], new["models"][ROLE], decay)}
    return new, metrics

  return fn


# ------------------------------------------------------------------------ predictions


def _mask_iou(logits, gt):
  """Per-example IoU of (logits > 0) with (gt > 0.5): [B, H, W] -> [B]."""
  p, g = logits > 0, gt > 0.5
  inter = jnp.sum(p & g, axis=(1, 2))
  union = jnp.sum(p | g, axis=(1, 2))
  return jnp.where(union > 0, inter / jnp.maximum(union, 1), 0.0)


def _mask_box(m):
  """xyxy box of a bool mask [B, H, W] (zeros when empty)."""
  h, w = m.shape[1:]
  rows, cols = jnp.any(m, 2), jnp.any(m, 1)
  ar_h, ar_w = jnp.arange(h), jnp.arange(w)
  y1 = jnp.min(jnp.where(rows, ar_h, h), 1)
  y2 = jnp.max(jnp.where(rows, ar_h + 1, 0), 1)
  x1 = jnp.min(jnp.where(cols, ar_w, w), 1)
  x2 = jnp.max(jnp.where(cols, ar_w + 1, 0), 1)
  box = jnp.stack([x1, y1, x2, y2], -1).astype(jnp.float32)
  return jnp.where(jnp.any(rows, 1)[:, None], box, 0.0)


def _unletterbox(b_xyxy, lb):
  """Canvas xyxy [B, 4] -> original pixels with lb [B, 3] = (scale, left, top)."""
  off = jnp.stack([lb[:, 1], lb[:, 2], lb[:, 1], lb[:, 2]], -1)
  return (b_xyxy - off) / lb[:, :1]


def predict_fns(ctx: RunContext, meta: dict, stage: Stage):
  gdef = _gdef(ctx, meta)
  task = str(ctx.config.laconv.task)
  use_ema = _ema_decay(ctx) > 0

  def model(state):
    return roles.merge(gdef, state["extras"]["ema"] if use_ema else state["models"][ROLE])

  def rec(state, batch):
    out = model(state)(batch["image"], batch["tokens"], train=False)
    best = cxcywh_to_xyxy(simota.rec_predict(out["boxes"], out["obj"]))
    h, w = batch["image"].shape[1:3]
    best = jnp.clip(best, 0.0, jnp.array([w, h, w, h], jnp.float32))
    return {"box": _unletterbox(best, batch["lb"]), "target_box": batch["orig_box"]}

  def res(state, batch):
    logits = model(state)(batch["image"], batch["tokens"], train=False)
    gt = batch["mask"].astype(jnp.float32)
    miou = _mask_iou(logits, gt)
    out = {"mask_iou": 100.0 * miou}
    for t in PREC_THRESHOLDS:
      out[f"prec@{t}"] = 100.0 * (miou > t).astype(jnp.float32)
    box_ok = box_iou(_mask_box(logits > 0), cxcywh_to_xyxy(batch["box"]), "xyxy") >= 0.5
    out["ie"] = 100.0 * (box_ok != (miou >= 0.5)).astype(jnp.float32)
    return out

  def vqa(state, batch):
    logits = model(state)(batch["image"], batch["tokens"], train=False)
    return {"answer": jnp.argmax(logits, -1).astype(jnp.int32),
            "gt_answers": batch["gt_answers"], "answer_type": batch["answer_type"]}

  return {task: {"rec": rec, "res": res, "vqa": vqa}[task]}


# ------------------------------------------------------------------------ host side


def prepare(ctx: RunContext, state, meta):
  """Loads models.model.init (an orbax workdir, or the official PyTorch REC checkpoint, which
  carries the word embedding) or else GloVe vectors into the frozen word embedding when
  laconv.glove_path is set; the EMA copy starts from the loaded weights."""
  path = str(ctx.config.laconv.glove_path)
  new = roles.load_pretrained(ctx, state, meta, ROLE)
  if roles.has_pretrained(ctx, ROLE):
    new["extras"] = {**state["extras"], "glove_found": jnp.asarray(-2, jnp.int32)}
  elif path:
    m = roles.merge(_gdef(ctx, meta), jax.device_get(state["models"][ROLE]))
    emb = m.language.embedding
    table, found = load_glove(path, dict(ctx.data.vocab), emb.get_value().shape[1])
    emb.set_value(jnp.asarray(table))
    new = dict(state)
    new["models"] = {**state["models"], ROLE: roles.model_state(m)}
    new["extras"] = {**state["extras"], "glove_found": jnp.asarray(found, jnp.int32)}
  else:
    return state
  if "ema" in state["extras"]:
    new["extras"]["ema"] = jax.tree.map(jnp.copy, new["models"][ROLE])
  return new


def summary(ctx: RunContext, state, meta) -> dict:
  params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state["models"][ROLE]["params"]))
  found = int(np.asarray(jax.device_get(state["extras"]["glove_found"])))
  return {"params": params, "task": str(ctx.config.laconv.task),
          "conv": str(ctx.config.laconv.conv),
          "embedding": ("glove" if found >= 0 else "from models.model.init" if found == -2
                        else "random_normal (no GloVe file)"),
          "glove_words_found": found, "vocab_size": int(ctx.data.vocab_size),
          "truncated_train_texts": int(ctx.data.get("truncated", 0))}


def fingerprint(ctx: RunContext) -> dict:
  c = ctx.config.laconv
  return {"task": str(c.task), "conv": str(c.conv), "ema": _ema_decay(ctx) > 0}


@register_evaluator("laconv_vqa")
class LaconvVqa(protocol.Vqa):
  """`vqa` with the answer list read from `answers_file` (vqa/answers.json) plus '<unk>'."""

  def __init__(self, answers_file: str = "", vocab=(), keys=None, **options):
    if answers_file:
      from jaxvision.evaluators.vqa import normalize_answer  # noqa: PLC0415
      with open(answers_file) as f:
        vocab = [normalize_answer(a) for a in json.load(f)] + [_data.UNK_ANSWER]
    super().__init__(vocab=vocab, keys=keys, **options)


LACONV = METHODS.register("laconv", Method(
    name="laconv", init=init, train_step=train_step, predict_fns=predict_fns, prepare=prepare,
    summary=summary, fingerprint=fingerprint))
