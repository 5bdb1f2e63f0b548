"""IntraQ as a jaxvision Method: [pretrain] -> per synthesis variant v:
synthesize_v (no data) -> calibrate_v (inject W/A quantizers, ranges from the synthetic
images; its end evaluation is plain PTQ) -> finetune_v (KD + CE on synthetic images only).

`config.intraq.compare` lists the synthesis variants run one after another in one
command (default 'bns,intraq'); the last one is the main result. Variants:
  bns      BN-statistics matching only (ZeroQ; labels = teacher predictions)
  bns_ce   BNS + cross-entropy inception loss (GDFQ / ZeroQ+IL style)
  lor      bns_ce + local object reinforcement
  lor_sil  BNS + LOR + soft inception loss
  intraq   BNS + LOR + SIL + MDC with the configured values (spec §2.1)

State (constant structure for every stage, so resume needs no extra meta):
  models: teacher (FP, frozen after pretraining), student (quantized copy)
  opt: teacher (pretraining), student (fine-tuning), images (Adam for one batch)
  extras: images [G, N, H, W, C] (sharded on N), labels/soft [G, N], centres, plateau.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import PartitionSpec as P

from jaxvision import losses, quant
from jaxvision.core import optim, roles
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS
from jaxvision.methods.intraq import augment
from jaxvision.methods.intraq.synthesis import (SynthConfig, adam, init_extras,
                                                make_synthesis_step)

SYNTH_VARIANTS = {
    "bns": dict(lor=False, mdc=False, label_loss="none"),
    "bns_ce": dict(lor=False, mdc=False, label_loss="ce"),
    "lor": dict(mdc=False, label_loss="ce"),
    "lor_sil": dict(mdc=False, label_loss="soft"),
    "intraq": {},
}
CALIB_SOURCES = ("synthetic",)


# ------------------------------------------------------------------ config
def _icfg(ctx: RunContext):
  if "intraq" not in ctx.config:
    raise ValueError("config.intraq is missing; start from configs/intraq.py.")
  return ctx.config.intraq


def compare_list(ctx: RunContext) -> list[str]:
  names = [s.strip() for s in str(_icfg(ctx).compare).split(",") if s.strip()]
  bad = [n for n in names if n not in SYNTH_VARIANTS]
  if not names or bad:
    raise ValueError(f"config.intraq.compare={_icfg(ctx).compare!r}: unknown variants {bad}; "
                     f"use a comma list of {', '.join(SYNTH_VARIANTS)}.")
  if len(set(names)) != len(names):
    raise ValueError(f"config.intraq.compare={_icfg(ctx).compare!r} repeats a variant.")
  return names


@functools.lru_cache(maxsize=32)
def _call_order_cached(model_name, kwargs_json, num_classes, image_shape):
  order = []
  kwargs = json.loads(kwargs_json)

  def f():
    from jaxvision import models
    m = models.build(model_name, num_classes, rngs=nnx.Rngs(0), **kwargs)
    order.extend(quant.call_order(m, jnp.zeros((1, *image_shape), jnp.float32)))
    return jnp.zeros(())

  jax.eval_shape(f)
  return tuple(order)


def layer_call_order(ctx: RunContext, meta: dict) -> tuple[str, ...]:
  """Conv/linear paths of the configured model in call order (abstract trace)."""
  rc = roles.role_cfg(ctx.config, "teacher")
  kwargs = {"dtype": ctx.config.dtype, **dict(rc.kwargs)}
  if roles.role_widths(meta, "teacher") is not None:
    kwargs["widths"] = list(roles.role_widths(meta, "teacher"))
  return _call_order_cached(rc.name, json.dumps(kwargs, sort_keys=True),
                            ctx.data.num_classes, tuple(ctx.data.image_shape))


def synth_config(ctx: RunContext, variant: str, meta: Optional[dict] = None) -> SynthConfig:
  s = _icfg(ctx).synthesis
  feat = s.feature_layer
  if feat in ("", "auto"):
    feat = layer_call_order(ctx, meta or {})[-1]
  base = dict(iters=int(s.iters), lr=float(s.lr), b1=float(s.b1), b2=float(s.b2),
              plateau_factor=float(s.plateau_factor), plateau_patience=int(s.plateau_patience),
              plateau_min_lr=float(s.plateau_min_lr), bns_weight=float(s.bns_weight),
              lor=bool(s.lor), p_lor=float(s.p_lor), lor_min_scale=float(s.lor_min_scale),
              label_loss=str(s.label_loss), eps_soft=float(s.eps_soft), p_soft=float(s.p_soft),
              mdc=bool(s.mdc), lambda_l=float(s.lambda_l), lambda_u=float(s.lambda_u),
              feature_layer=feat)
  base.update(SYNTH_VARIANTS[variant])
  return SynthConfig(**base)


def quant_rules(ctx: RunContext) -> tuple[quant.QuantRule, ...]:
  q = _icfg(ctx).quant
  overrides = tuple((str(p), int(b)) for p, b in q.overrides)
  return quant.uniform_rules(int(q.w_bits), act_bits=int(q.a_bits),
                             quantize_input=bool(q.quantize_input), overrides=overrides,
                             range_mode=str(q.act_range), ema_quirk=bool(q.ema_quirk))


def _check(ctx: RunContext):
  ic = _icfg(ctx)
  if ic.calib.source not in CALIB_SOURCES:
    raise ValueError(f"config.intraq.calib.source={ic.calib.source!r}; supported: "
                     f"{CALIB_SOURCES} (the GDFQ-generator calibration is not implemented).")
  if int(ic.calib.steps) < 1:
    raise ValueError("config.intraq.calib.steps must be >= 1 (activation ranges need data).")
  n = int(ic.synthesis.batch_size)
  d = ctx.mesh.shape["data"] if ctx.mesh is not None else 1
  for key, v in (("synthesis.batch_size", n), ("calib.batch_size", int(ic.calib.batch_size)),
                 ("finetune.batch_size", int(ic.finetune.batch_size))):
    if v % d:
      raise ValueError(f"config.intraq.{key}={v} is not a multiple of the {d} data devices.")
  total = n * int(ic.synthesis.num_batches)
  if int(ic.finetune.batch_size) > total or int(ic.calib.batch_size) > total:
    raise ValueError(f"calib/finetune batch sizes must be <= the {total} synthetic images "
                     "(synthesis.batch_size * synthesis.num_batches).")


# ------------------------------------------------------------------ models
def make_student(teacher: nnx.Module, ctx: RunContext) -> nnx.Module:
  """A quantized copy of the teacher (the teacher is untouched)."""
  student = nnx.clone(teacher)
  x = jnp.zeros((1, *ctx.data.image_shape), jnp.float32)
  quant.quantize_model(student, quant_rules(ctx), sample_input=x)
  return student


def student_graphdef(ctx: RunContext, meta: dict):
  abstract = nnx.eval_shape(lambda: make_student(
      roles.build_model(ctx, meta, nnx.Rngs(0), "teacher"), ctx))
  return roles.split(abstract)[0]


def _teacher_gdef(ctx: RunContext, meta: dict):
  return roles.graphdef(ctx, meta, "teacher")


def _pretrain_tx(ctx: RunContext):
  return roles.make_tx(ctx, "teacher", int(_icfg(ctx).pretrain.steps))


def _finetune_tx(ctx: RunContext):
  fc = _icfg(ctx).finetune
  return optim.make_optimizer(roles.optim_cfg(ctx.config, "student", name="student"),
                              int(fc.iters_per_epoch),
                              max(int(fc.steps), 1))


def _stage_start(ctx: RunContext, stage: Stage) -> int:
  start = 0
  for s in stages(ctx):
    if s == stage:
      return start
    start += s.steps
  raise ValueError(f"unknown stage {stage.name}")


# ------------------------------------------------------------------ method functions
def stages(ctx: RunContext) -> list[Stage]:
  ic = _icfg(ctx)
  out = []
  pre = int(ic.pretrain.steps)
  if pre > 0:
    out.append(Stage("pretrain", pre, kind="train", uses_data=True, evaluate=True))
  synth_steps = int(ic.synthesis.num_batches) * int(ic.synthesis.iters)
  ft = int(ic.finetune.steps)
  for i, v in enumerate(compare_list(ctx)):
    out.append(Stage(f"synthesize_{v}", synth_steps, kind="synthesize", uses_data=False,
                     evaluate=(i == 0 and pre == 0), variant=v))
    out.append(Stage(f"calibrate_{v}", int(ic.calib.steps), kind="calibrate", uses_data=False,
                     evaluate=True, variant=v))
    out.append(Stage(f"finetune_{v}", ft, kind="finetune", uses_data=False, evaluate=ft > 0,
                     variant=v))
  return out


def _extras(ctx: RunContext, variant_index: int, meta: dict) -> dict:
  ic = _icfg(ctx)
  v = compare_list(ctx)[variant_index]
  cfg = synth_config(ctx, v, meta)
  feat_dim = _feature_dim(ctx, meta, cfg.feature_layer)
  key = jax.random.fold_in(jax.random.key(int(ctx.config.seed)), 1000 + variant_index)
  return init_extras(key, int(ic.synthesis.num_batches), int(ic.synthesis.batch_size),
                     tuple(ctx.data.image_shape), ctx.data.num_classes, feat_dim, cfg)


def _feature_dim(ctx, meta, layer_path) -> int:
  abstract = roles.abstract_model(ctx, meta, "teacher")
  for p, m in quant.find_modules(abstract, (nnx.Conv, nnx.Linear)):
    if "/".join(map(str, p)) == layer_path:
      return int(m.in_features)
  raise ValueError(f"config.intraq.synthesis.feature_layer='{layer_path}' is not a conv/linear "
                   f"layer of {roles.role_cfg(ctx.config, 'teacher').name}; layers: {layer_call_order(ctx, meta)}.")


def init(ctx: RunContext, rng, meta: dict):
  _check(ctx)
  k_t, k_d = jax.random.split(rng)
  teacher = roles.build_model(ctx, meta, nnx.Rngs(params=k_t, dropout=k_d), "teacher")
  student = make_student(teacher, ctx)
  t_state, s_state = roles.model_state(teacher), roles.model_state(student)
  extras = _extras(ctx, 0, meta)
  return {
      "step": jnp.zeros((), jnp.int32),
      "models": {"teacher": t_state, "student": s_state},
      "opt": {"teacher": _pretrain_tx(ctx).init(t_state["params"]),
              "student": _finetune_tx(ctx).init(s_state["params"]),
              "images": adam(synth_config(ctx, compare_list(ctx)[0], meta)).init(
                  extras["images"][0])},
      "extras": extras,
  }


def _sample(state, key, n: int, do_aug: bool, min_scale: float):
  """A batch (augmented images [n,H,W,C], labels [n]) drawn from the synthetic set."""
  ex = state["extras"]
  imgs = ex["images"].reshape(-1, *ex["images"].shape[2:])
  labels = ex["labels"].reshape(-1)
  k1, k2 = jax.random.split(key)
  idx = jax.random.choice(k1, imgs.shape[0], (n,), replace=False)
  x = imgs[idx]
  if do_aug:
    x = augment.random_resized_crop_flip(k2, x, min_scale)
  return x, labels[idx]


def _epoch_batch(state, ctx: RunContext, t, n: int):
  """Fine-tuning batch t: shuffled epochs over the synthetic set, drop_last, restart."""
  ex = state["extras"]
  total = ex["images"].shape[0] * ex["images"].shape[1]
  per_epoch = total // n
  epoch, i = t // per_epoch, t % per_epoch
  perm = jax.random.permutation(
      jax.random.fold_in(jax.random.key(int(ctx.config.seed) + 17), epoch), total)
  idx = jax.lax.dynamic_slice(perm, (i * n,), (n,))
  imgs = ex["images"].reshape(-1, *ex["images"].shape[2:])
  return imgs[idx], ex["labels"].reshape(-1)[idx]


def kd_ce_loss(model, batch, rng, *, alpha: float, temperature: float, ce_weight: float):
  """alpha T^2 KL(teacher || student) + ce_weight CE; the student runs eval-mode BN."""
  del rng
  logits = model(batch["image"], train=False)
  kd = losses.kd_loss(logits, batch["teacher_logits"], temperature, alpha)
  ce = losses.cross_entropy(logits, batch["label"])
  acc = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
  return kd + ce_weight * ce, {"kd": kd, "ce": ce, "accuracy": acc}


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  ic = _icfg(ctx)
  t_gdef = _teacher_gdef(ctx, meta)
  if stage.kind == "train":
    return roles.make_train_step(t_gdef, _pretrain_tx(ctx), roles.ce_loss, role="teacher")
  kind, v = stage.kind, stage.variant
  start = _stage_start(ctx, stage)
  if kind == "synthesize":
    return make_synthesis_step(synth_config(ctx, v, meta), t_gdef, start)
  s_gdef = student_graphdef(ctx, meta)
  min_scale = float(ic.synthesis.lor_min_scale)
  if kind == "calibrate":
    n, do_aug = int(ic.calib.batch_size), bool(ic.calib.augment)

    def calib_step(state, batch, rng):
      del batch
      x, y = _sample(state, rng, n, do_aug, min_scale)
      ms = state["models"]["student"]
      model = nnx.merge(s_gdef, ms["params"], ms["rest"])
      quant.set_calibrating(model, True)
      logits = model(x, train=False)
      quant.set_calibrating(model, False)
      rest = nnx.state(model, nnx.Not(nnx.Param))
      new = {**state, "models": {**state["models"], "student": {"params": ms["params"],
                                                                "rest": rest}},
             "step": state["step"] + 1}
      return new, {"loss": losses.cross_entropy(logits, y)}

    return calib_step
  # finetune
  fc = ic.finetune
  n = int(fc.batch_size)
  loss_fn = functools.partial(kd_ce_loss, alpha=float(fc.kd_alpha),
                              temperature=float(fc.kd_temperature),
                              ce_weight=float(fc.ce_weight))
  inner = roles.make_train_step(s_gdef, _finetune_tx(ctx), loss_fn, role="student")
  do_aug = bool(fc.augment)

  def finetune_step(state, batch, rng):
    del batch
    x, y = _epoch_batch(state, ctx, state["step"] - start, n)
    if do_aug:
      x = augment.random_resized_crop_flip(rng, x, min_scale)
    t = roles.merge(t_gdef, state["models"]["teacher"])(x, train=False)
    return inner(state, {"image": x, "label": y,
                         "teacher_logits": jax.lax.stop_gradient(t)}, rng)

  return finetune_step


def predict_fns(ctx: RunContext, meta: dict, stage: Stage):
  """The teacher before quantization (pretrain, synthesize stages), the student after."""
  if stage.kind in ("train", "synthesize"):
    return {"classify": roles.classify_predict(_teacher_gdef(ctx, meta), "teacher")}
  return {"classify": roles.classify_predict(student_graphdef(ctx, meta), "student")}


def prepare(ctx: RunContext, state, meta):
  """Loads models.teacher.init.(torch_)checkpoint into the teacher, then re-derives the student."""
  state = roles.load_pretrained(ctx, state, meta, role="teacher")
  return _reset_student(ctx, state, meta)


def _reset_student(ctx, state, meta):
  state = jax.device_get(state)
  teacher = roles.merge(_teacher_gdef(ctx, meta), state["models"]["teacher"])
  student = make_student(teacher, ctx)
  s_state = roles.model_state(student)
  return {**state, "models": {**state["models"], "student": s_state},
          "opt": {**state["opt"], "student": _finetune_tx(ctx).init(s_state["params"])}}


def transition(ctx: RunContext, state, meta, next_stage: Stage):
  kind = next_stage.kind
  state = jax.device_get(state)
  if kind == "synthesize":
    names = compare_list(ctx)
    i = names.index(next_stage.variant)
    extras = _extras(ctx, i, meta)
    state = {**state, "extras": extras,
             "opt": {**state["opt"], "images": adam(synth_config(ctx, names[i], meta)).init(
                 extras["images"][0])}}
  elif kind == "calibrate":
    if ctx.is_main:
      save_images(ctx.workdir, next_stage.variant, state["extras"])
    state = _reset_student(ctx, state, meta)
  elif kind == "finetune":
    s = state["models"]["student"]
    state = {**state, "opt": {**state["opt"], "student": _finetune_tx(ctx).init(s["params"])}}
  return state, {}


def save_images(workdir: str, variant: str, extras: dict, max_images: int = 64) -> str:
  """Writes intraq_images_<variant>.npz (all images + labels) and a PNG grid; returns PNG path."""
  os.makedirs(workdir, exist_ok=True)
  imgs = np.asarray(extras["images"]).reshape(-1, *np.asarray(extras["images"]).shape[2:])
  labels = np.asarray(extras["labels"]).reshape(-1)
  np.savez_compressed(os.path.join(workdir, f"intraq_images_{variant}.npz"),
                      images=imgs, labels=labels)
  path = os.path.join(workdir, f"intraq_images_{variant}.png")
  image_grid(imgs[:max_images], path)
  return path


def image_grid(imgs: np.ndarray, path: Optional[str] = None) -> np.ndarray:
  """[N, H, W, C] normalised images -> uint8 grid (each image min-max scaled); saved if path."""
  n, h, w, c = imgs.shape
  cols = int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  grid = np.zeros((rows * (h + 2), cols * (w + 2), 3), np.uint8)
  for k in range(n):
    im = imgs[k].astype(np.float32)
    im = (im - im.min()) / max(float(im.max() - im.min()), 1e-8)
    im = np.repeat(im, 3, -1) if c == 1 else im[..., :3]
    r, q = divmod(k, cols)
    grid[r * (h + 2):r * (h + 2) + h, q * (w + 2):q * (w + 2) + w] = (im * 255).astype(np.uint8)
  if path is not None:
    from PIL import Image
    Image.fromarray(grid).save(path)
  return grid


def summary(ctx: RunContext, state, meta) -> dict:
  evals = meta.get("evals", {})
  names = compare_list(ctx)
  top = lambda stage, when: evals.get(stage, {}).get(when, {}).get("top1")
  fp = top("pretrain", "end")
  if fp is None:
    fp = top(f"synthesize_{names[0]}", "start")
  variants = {v: {"ptq_top1": top(f"calibrate_{v}", "end"),
                  "finetuned_top1": top(f"finetune_{v}", "end")} for v in names}
  main = names[-1]
  state = jax.device_get(state)
  if ctx.is_main:
    save_images(ctx.workdir, main, state["extras"])
  student = roles.merge(student_graphdef(ctx, meta), state["models"]["student"])
  q = _icfg(ctx).quant
  out = {
      "fp_top1": fp,
      "ptq_top1": variants[main]["ptq_top1"],
      "bns_only_top1": variants.get("bns", {}).get("finetuned_top1"),
      "intraq_top1": variants[main]["finetuned_top1"] if main == "intraq" else None,
      "main_variant": main,
      "variants": variants,
      "bits": {"w": int(q.w_bits), "a": int(q.a_bits)},
      "model_size_bits": quant.model_size_bits(student),
      "images_png": os.path.join(ctx.workdir, f"intraq_images_{main}.png"),
  }
  return {"intraq": out}


INTRAQ = METHODS.register("intraq", Method(
    name="intraq", init=init, train_step=train_step, predict_fns=predict_fns, stages=stages,
    transition=transition, prepare=prepare, summary=summary,
    sharding_rules=(("extras/images", P(None, "data")), ("opt/images/.*(mu|nu)", P("data")))))
