"""GCC on the one loop: sparsity pre-training -> one-shot pruning -> GCC training.

Tasks (gcc.task): 'paired' (Pix2Pix: batches {image, target} in [-1, 1], D sees concat(x, y),
pixel L1), 'sr' (SRGAN: batches {lr, hr} in [0, 1], mapped to [-1, 1] here, D sees the image
only, pixel MSE x sr_lambda_pixel + perceptual MSE x sr_lambda_perceptual on a frozen extractor:
VGG-19 `perceptual_layer` when gcc.perceptual_weights is given, else a fixed random conv net),
'noise' (SAGAN: batches {image[, index]}; G(z) with z ~ N(0, I) drawn in the step, the same z
for teacher and student, no reconstruction term; predict 'generate' uses z_i fixed by the
example's index) and 'unpaired' (CycleGAN: two directions, pools, cycle / identity L1 -- its
own step in `unpaired.py`, built from the helpers here).

Stages (spec §2.2-2.3):
  sparsity (kind 'train', gcc.sparsity_steps): the prototype generator ('generator' role) and
      the student D ('discriminator', gates frozen at alpha = 1, i.e. a plain D) train as an
      ordinary Pix2Pix with the L1 sub-gradient lambda * sign(w) added to G's gradients.
  -> transition: global-threshold binary search to gcc.target_macs (thop_conv MACs at
      gcc.macs_input_shape); meta["widths"]["generator"] = the pruned cfg; every role is
      re-initialised (GCC builds a fresh model; weights are not inherited).
  gcc (kind 'finetune', gcc.gcc_steps), per step on a batch of 2B pairs (first half: the update
      batch, second half: the independent architecture batch from the same training set; the
      ablation rows without the arch step still update on the first half only):
      1. teacher D_T then G_T update (ordinary pix2pix), KD targets F^T (G_T features of this
         step's forward) and E^T (updated D_T on (x, G_T(x)));
      2. student D weight update with alpha frozen; 3. student G (+ 1x1 adapters) update with
         adversarial (through D_S) + lambda_l1 * L1 + KD (content RMSE + Gram, G features via
         adapters, D features through the frozen D_T);
      4. arch step on the second half: clip alpha, Adam on alpha only with
         L_arch = |gap(D_S, G_S(x')) - gap(D_T, G_T(x'))| + d_loss(D_S).
  Ablation flags: gcc.selective_d=False (plain full D, no arch step), gcc.online_kd=False (no
  KD; the teacher pair still trains when selective_d needs its gap).

State: roles generator, discriminator, teacher_g, teacher_d (+ the *_b roles of direction B
for 'unpaired'); extras: adapters (params), adapters_opt, alpha_opt (alpha's own Adam),
gap_ema, perceptual (frozen extractor params, sr only), + unpaired.init_extras ('unpaired').
Pruning: gcc.fixed_widths[role] replaces the search (CycleGAN's hard-coded cfgs); with
gcc.macs_exclude_spectral_norm the budget counts MACs without the SN convs (SAGAN).

PNG grids: at the end of every stage, `<workdir>/grids/<stage>_<step>.png` (rows = the first
gcc.grid_examples examples of the first eval: input | teacher | student | target); the paths
are listed in summary.json["gcc"]["grids"]. At the end of the sparsity stage the student is the
unpruned prototype and the teacher is still at its initialisation (it trains in stage B only).
"""
from __future__ import annotations

import functools
import glob
import json
import os

import numpy as np

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision import flops
from jaxvision.core import roles
from jaxvision.images import panel_rows, save_png
from jaxvision.core.errors import ConfigError
from jaxvision.core.method import Method, Stage
from jaxvision.core.registry import METHODS
from jaxvision.losses import gan_distill
from jaxvision.methods.gcc import gan_losses, gates, pruning
from jaxvision.methods.gcc.config import TASKS
from jaxvision.methods.gcc.steps import d_input

ROLES = ("generator", "discriminator", "teacher_g", "teacher_d")
# CycleGAN (task 'unpaired'): the roles above are direction A (G_A: A -> B, D_A judges domain
# B); these are direction B (G_B: B -> A, D_B judges domain A), with the same optimizer blocks.
ROLES_B = {"generator": "generator_b", "discriminator": "discriminator_b",
           "teacher_g": "teacher_g_b", "teacher_d": "teacher_d_b"}


def task_roles(c) -> tuple[str, ...]:
  """The roles of gcc.task (4; 8 for 'unpaired')."""
  return ROLES + tuple(ROLES_B.values()) if c.task == "unpaired" else ROLES


def pruned_roles(c) -> tuple[str, ...]:
  """The generators the prune transition shrinks."""
  return ("generator", "generator_b") if c.task == "unpaired" else ("generator",)


def data_keys(task: str) -> tuple[str, ...]:
  return {"sr": ("lr", "hr"), "unpaired": ("A", "B"), "noise": ("image",)}.get(
      task, ("image", "target"))


def _check(ctx):
  c = ctx.config.gcc
  if c.task not in TASKS:
    raise ConfigError(f"gcc.task must be one of {TASKS} (paired = Pix2Pix, sr = SRGAN, "
                      f"unpaired = CycleGAN, noise = SAGAN), got '{c.task}'.")
  gan_losses.check_loss_type(c.loss_type)
  if c.kd_metric not in gan_distill.METRICS:
    raise ConfigError(f"gcc.kd_metric must be one of {gan_distill.METRICS}, got {c.kd_metric!r}")
  if c.sparsity_mode not in ("scale", "weight"):
    raise ConfigError(f"gcc.sparsity_mode must be 'scale' or 'weight', got {c.sparsity_mode!r}")
  for r in task_roles(c):
    roles.role_cfg(ctx.config, r)
  need = data_keys(c.task)
  if ctx.data is not None and not all(k in ctx.data.features for k in need):
    kind = {"sr": "super-resolution (lr/hr)", "unpaired": "unpaired (A/B)",
            "noise": "image (GAN)"}.get(c.task, "paired")
    raise ConfigError(f"gcc.task='{c.task}' needs batches with {need}, but the dataset "
                      f"'{ctx.data.name}' gives {tuple(ctx.data.features)}; use a "
                      f"{kind} dataset or the matching gcc.task.")
  if c.task == "noise":
    zs = {r: int(roles.role_cfg(ctx.config, r).kwargs.get("z_dim", 128))
          for r in ("generator", "teacher_g")}
    if len(set(zs.values())) != 1:
      raise ConfigError(f"gcc (noise): generator z_dim {zs['generator']} and teacher z_dim "
                        f"{zs['teacher_g']} differ (they share z); set models.*.kwargs.z_dim.")
  if c.task == "unpaired" and int(c.pool_size) < 0:
    raise ConfigError(f"gcc.pool_size={c.pool_size} must be >= 0 (0 = no history pool).")
  fixed = dict(c.fixed_widths)
  bad = sorted(set(fixed) - set(pruned_roles(c)))
  if bad:
    raise ConfigError(f"gcc.fixed_widths names {bad}; it takes the pruned generators "
                      f"{list(pruned_roles(c))}.")
  if c.task == "sr":
    gscale = int(roles.role_cfg(ctx.config, "generator").kwargs.get("scale", 4))
    tscale = int(roles.role_cfg(ctx.config, "teacher_g").kwargs.get("scale", 4))
    dscale = int(ctx.data.get("scale", gscale)) if ctx.data is not None else gscale
    if not gscale == tscale == dscale:
      raise ConfigError(f"gcc (sr): generator scale {gscale}, teacher scale {tscale} and dataset "
                        f"scale {dscale} differ; set models.*.kwargs.scale and dataset.scale "
                        f"to one value.")
    w = str(c.perceptual_weights)
    if w and not os.path.isfile(os.path.expanduser(w)):
      raise ConfigError(f"gcc.perceptual_weights={w} does not exist; pass torchvision's "
                        f"vgg19().state_dict() file, or '' for the random fixed extractor.")
  if ctx.config.batch_size % 2:
    raise ConfigError(f"batch_size={ctx.config.batch_size} must be even: in the GCC stage its "
                      f"second half is the architecture batch (unused when selective_d=False).")


def _teacher_generators(c) -> tuple[str, ...]:
  return ("teacher_g", "teacher_g_b") if c.task == "unpaired" else ("teacher_g",)


def _uses_teacher(c) -> bool:
  return bool(c.selective_d or c.online_kd)


def _abstract(ctx, meta, role):
  return roles.abstract_model(ctx, meta, role)


def _adapters(ctx, meta, rngs, student="generator", teacher="teacher_g"):
  s = _abstract(ctx, meta, student).kd_widths()
  t = _abstract(ctx, meta, teacher).kd_widths()
  return gan_distill.FeatureAdapters(s, t, rngs=rngs)


def _alpha_tx(ctx):
  c = ctx.config.gcc
  lr = c.arch_lr
  every = (ctx.epochs_to_steps(c.arch_lr_step_epochs) if c.arch_lr_step_epochs > 0
           else int(c.arch_lr_step_steps))
  if every > 0:
    lr = optax.exponential_decay(c.arch_lr, every, 0.1, staircase=True)
  return optax.adam(lr, *c.arch_betas)


def _uses_perceptual(c) -> bool:
  return c.task == "sr" and float(c.sr_lambda_perceptual) > 0


def _perceptual_model(ctx, rngs):
  """The frozen perceptual extractor: VGG-19 cut at gcc.perceptual_layer when weights are
  given (loaded in `prepare`), else the fixed random conv net (weights from the run seed)."""
  from jaxvision.models import sr as sr_models  # pylint: disable=import-outside-toplevel
  c = ctx.config.gcc
  if c.perceptual_weights:
    return sr_models.VGG19Features(rngs=rngs, layer=str(c.perceptual_layer))
  return sr_models.RandomConvFeatures(rngs=rngs)


def _perceptual_desc(c) -> str:
  if not _uses_perceptual(c):
    return "none"
  if c.perceptual_weights:
    return f"VGG-19 {c.perceptual_layer} (torchvision weights {c.perceptual_weights})"
  return ("random fixed conv extractor (RandomConvFeatures, no VGG-19 weights given: "
          "not the paper's VGG loss)")


def init(ctx, rng, meta):
  _check(ctx)
  n = max(int(ctx.config.gcc.gcc_steps), int(ctx.config.gcc.sparsity_steps), 1)
  txs = {r: roles.make_tx(ctx, r, n) for r in task_roles(ctx.config.gcc)}
  state = roles.init_state(ctx, rng, meta, txs)
  ad = _adapters(ctx, meta, nnx.Rngs(jax.random.fold_in(rng, 99)))
  ad_params = nnx.state(ad, nnx.Param)
  d = roles.merge(roles.graphdef(ctx, meta, "discriminator"), state["models"]["discriminator"])
  state["extras"] = {
      "adapters": ad_params,
      "adapters_opt": txs["generator"].init(ad_params),
      "alpha_opt": _alpha_tx(ctx).init(nnx.state(d, gates.ALPHA)),
      "gap_ema": jnp.zeros((), jnp.float32),
  }
  if _uses_perceptual(ctx.config.gcc):
    state["extras"]["perceptual"] = nnx.state(
        _perceptual_model(ctx, nnx.Rngs(jax.random.fold_in(rng, 98))), nnx.Param)
  if ctx.config.gcc.task == "unpaired":
    from jaxvision.methods.gcc import unpaired  # pylint: disable=import-outside-toplevel
    state["extras"].update(unpaired.init_extras(ctx, rng, meta, state, txs))
  return state


def prepare(ctx, state, meta):
  """Fresh start: VGG-19 weights into the perceptual extractor (sr), and a pretrained teacher
  G from models.teacher_g.init (GCC's SRGAN teacher starts from a pretrained SRResNet)."""
  c = ctx.config.gcc
  for r in _teacher_generators(c):
    state = roles.load_pretrained(ctx, state, meta, r)
  if _uses_perceptual(c) and c.perceptual_weights:
    from jaxvision.models.sr import load_vgg19_torchvision  # pylint: disable=import-outside-toplevel
    gdef = nnx.split(nnx.eval_shape(lambda: _perceptual_model(ctx, nnx.Rngs(0))))[0]
    m = nnx.merge(gdef, jax.device_get(state["extras"]["perceptual"]))
    load_vgg19_torchvision(m, os.path.expanduser(str(c.perceptual_weights)))
    state = {**state, "extras": {**state["extras"], "perceptual": nnx.state(m, nnx.Param)}}
  return state


# ------------------------------------------------------------------------------ helpers


def _is_alpha(path) -> bool:
  s = pruning._key_str(path)
  return s.endswith("alpha") and "gates" in s


def _freeze_alpha(params):
  return jax.tree_util.tree_map_with_path(
      lambda p, v: jax.lax.stop_gradient(v) if _is_alpha(p) else v, params)


def _apply(tx, params, grads, opt_state):
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


# Model calls and the D / arch updates run in nested jits (inline=True: traced on their own,
# inlined into the step's jaxpr; equal graphdefs share one trace). A BatchNorm or spectral-norm
# state update inside one huge trace costs time proportional to that trace (flax compares the
# new value's sharding, and a tracer's sharding error message walks the whole jaxpr), which made
# tracing a GCC step several times slower. GraphDefs are not hashable (list attributes), so the
# jitted closures are cached by the identity of their static objects (kept alive here).
_JITTED: dict = {}


def _jitted(fn, *objs, **consts):
  key = (fn.__name__,) + tuple(id(o) for o in objs) + tuple(sorted(consts.items()))
  if key not in _JITTED:
    if len(_JITTED) > 512:
      _JITTED.clear()
    _JITTED[key] = (objs, jax.jit(functools.partial(fn, *objs, **consts), inline=True))
  return _JITTED[key][1]


def _call_impl(gdef, params, rest, x, train=True, features=False):
  m = nnx.merge(gdef, params, rest, copy=True)
  out = m(x, train=train, features=True) if features else m(x, train=train)
  return out, nnx.state(m, nnx.Not(nnx.Param))


def _call(gdef, params, rest, x, train=True, features=False):
  """A model forward in its own nested jit -> (output, new rest)."""
  return _jitted(_call_impl, gdef, train=train, features=features)(params, rest, x)


def _fwd(gdef, ms, x, train=True, features=False):
  """Runs a role's model; returns (output, new rest)."""
  return _call(gdef, ms["params"], ms["rest"], x, train=train, features=features)


def _d_update_impl(gdef, tx, ms, opt, cond, real, fake, *, lt, half, freeze_alpha=False,
                   features=False):
  """One D weight step on d_loss(D(real), D(fake.detach())); returns (state, opt, loss) and,
  with features=True, + the D's KD features on the fake (this forward, pre-update weights)."""
  def loss_fn(p):
    if freeze_alpha:
      p = _freeze_alpha(p)
    m = nnx.merge(gdef, p, ms["rest"], copy=True)
    pr = m(d_input(cond, real), train=True)
    pf = m(d_input(cond, jax.lax.stop_gradient(fake)), train=True, features=features)
    pf, feats = pf if features else (pf, None)
    loss = gan_losses.d_loss(pr, pf, lt, half)
    return loss, (nnx.state(m, nnx.Not(nnx.Param)), feats)

  (loss, (rest, feats)), g = jax.value_and_grad(loss_fn, has_aux=True)(ms["params"])
  params, opt = _apply(tx, ms["params"], g, opt)
  out = ({"params": params, "rest": rest}, opt, loss)
  return out + (feats,) if features else out


def _d_update(gdef, tx, ms, opt, cond, real, fake, lt, half, freeze_alpha=False,
              features=False):
  """`_d_update_impl` in its own nested jit (same arguments and results)."""
  fn = _jitted(_d_update_impl, gdef, tx, lt=lt, half=bool(half), freeze_alpha=bool(freeze_alpha),
               features=bool(features))
  return fn(ms, opt, cond, real, fake)


def _teacher_gap(c, gdef_td, mtd, cond, fake_t, lt, ema_prev, step, num_steps):
  """gap(D_T, fake_T) (no gradient), smoothed when gcc.teacher_gap_ema; returns (gap, ema)."""
  p, _ = _fwd(gdef_td, mtd, d_input(cond, jax.lax.stop_gradient(fake_t)))
  gap_t = gan_losses.loss_gap(p, lt)
  if c.teacher_gap_ema:
    beta = 1.0 - step.astype(jnp.float32) / max(int(num_steps), 1)
    gap_t = gan_losses.ema_gap(ema_prev, gap_t, beta)
    return gap_t, gap_t
  return gap_t, ema_prev


def _arch_update_impl(gdef_d, atx, md, opt, cond, real, fake_s, gap_t, *, lt, half):
  """Architecture step of one gated student D: clip alpha, one `atx` step on alpha only with
  L_arch = |gap(D_S, fake_s) - gap_t| + d_loss(D_S). Returns (state, opt, loss, parts)."""
  dm = roles.merge(gdef_d, md)
  g2, alpha, rest2 = nnx.split(dm, gates.ALPHA, ...)
  alpha = gates.clip_alpha(alpha)

  def a_loss(al):
    m = nnx.merge(g2, al, rest2, copy=True)
    pr = m(d_input(cond, real), train=True)
    pf = m(d_input(cond, jax.lax.stop_gradient(fake_s)), train=True)
    loss, parts = gan_losses.arch_loss(pr, pf, gap_t, lt, half)
    return loss, (parts, nnx.state(m, nnx.Not(gates.ALPHA)))

  (la, (parts, r2)), ga = jax.value_and_grad(a_loss, has_aux=True)(alpha)
  alpha, opt = _apply(atx, alpha, ga, opt)
  return roles.model_state(nnx.merge(g2, alpha, r2)), opt, la, parts


def _arch_update(gdef_d, md, opt, atx, cond, real, fake_s, gap_t, lt, half):
  """`_arch_update_impl` in its own nested jit."""
  return _jitted(_arch_update_impl, gdef_d, atx, lt=lt, half=bool(half))(md, opt, cond, real,
                                                                         fake_s, gap_t)


# --------------------------------------------------------------------------------- steps


def train_step(ctx, meta, stage):
  c = ctx.config.gcc
  if c.task == "unpaired":
    from jaxvision.methods.gcc import unpaired  # pylint: disable=import-outside-toplevel
    return unpaired.train_step(ctx, meta, stage)
  lt, half = c.loss_type, bool(c.d_half)
  n = max(int(c.gcc_steps), int(c.sparsity_steps), 1)
  gd = {r: roles.graphdef(ctx, meta, r) for r in ROLES}
  txs = {r: roles.make_tx(ctx, r, n) for r in ROLES}
  ad_gdef = nnx.split(nnx.eval_shape(lambda: _adapters(ctx, meta, nnx.Rngs(0))))[0]
  atx = _alpha_tx(ctx)
  sparse = stage.kind == "train"
  l1_targets = (pruning.l1_targets(_abstract(ctx, meta, "generator"), c.sparsity_mode,
                                   dict(c.sparsity_multipliers)) if sparse else None)
  teacher = _uses_teacher(c) and not sparse
  arch = bool(c.selective_d) and not sparse
  kd = bool(c.online_kd) and not sparse
  sr, noise = c.task == "sr", c.task == "noise"
  cond = (lambda x: None) if sr or noise else (lambda x: x)  # noqa: E731  (D input: image or (x, image))
  z_dim = int(_abstract(ctx, meta, "generator").z_dim) if noise else 0
  pg = (nnx.split(nnx.eval_shape(lambda: _perceptual_model(ctx, nnx.Rngs(0))))[0]
        if _uses_perceptual(c) else None)
  lam_adv = float(c.lambda_adv)

  def content(out, y, E):
    """Reconstruction terms of a generator output (a loss, its parts)."""
    if noise:
      return jnp.float32(0.0), {}
    if not sr:
      l1 = c.lambda_l1 * jnp.mean(jnp.abs(out - y))
      return l1, {"g_l1": l1}
    mse = jnp.mean(jnp.square(out.astype(jnp.float32) - y))
    loss, aux = c.sr_lambda_pixel * mse, {"g_mse": mse}
    if pg is not None:
      f = nnx.merge(pg, E["perceptual"])
      to01 = lambda a: (a.astype(jnp.float32) + 1.0) / 2.0  # noqa: E731
      per = jnp.mean(jnp.square(f(to01(out)).astype(jnp.float32)
                                - jax.lax.stop_gradient(f(to01(y)).astype(jnp.float32))))
      loss = loss + c.sr_lambda_perceptual * per
      aux["g_perceptual"] = per
    return loss, aux

  def step(state, batch, rng):
    if sr:
      x, y = batch["lr"] * 2.0 - 1.0, batch["hr"] * 2.0 - 1.0
    elif noise:  # z ~ N(0, I), the same for teacher and student; the second half: the arch z'
      y = batch["image"]
      x = jax.random.normal(jax.random.fold_in(rng, 1), (y.shape[0], z_dim), jnp.float32)
    else:
      x, y = batch["image"], batch["target"]
    if not sparse:  # every GCC-stage row (ablations too) updates on the first half
      h = x.shape[0] // 2
      x, y, xa, ya = x[:h], y[:h], x[h:], y[h:]
    M, O, E = dict(state["models"]), dict(state["opt"]), dict(state["extras"])
    metrics = {}
    # 1. teacher pair (ordinary pix2pix step)
    if teacher:
      (fake_t, feats_t), _ = _fwd(gd["teacher_g"], M["teacher_g"], x, train=True, features=True)
      M["teacher_d"], O["teacher_d"], metrics["teacher/d_loss"] = _d_update(
          gd["teacher_d"], txs["teacher_d"], M["teacher_d"], O["teacher_d"], cond(x), y, fake_t,
          lt, half)
      def tg_loss(p):
        out, rest = _call(gd["teacher_g"], p, M["teacher_g"]["rest"], x)
        adv = gan_losses.g_loss(_fwd(gd["teacher_d"], M["teacher_d"], d_input(cond(x), out))[0],
                                lt)
        rec, _ = content(out, y, E)
        return lam_adv * adv + rec, rest

      (lg, rest), g = jax.value_and_grad(tg_loss, has_aux=True)(M["teacher_g"]["params"])
      p, O["teacher_g"] = _apply(txs["teacher_g"], M["teacher_g"]["params"], g, O["teacher_g"])
      M["teacher_g"] = {"params": p, "rest": rest}
      metrics["teacher/g_loss"] = lg
      (_, e_t), _ = _fwd(gd["teacher_d"], M["teacher_d"], d_input(cond(x), fake_t),
                         features=True)
      targets = [jax.lax.stop_gradient(f) for f in list(feats_t) + list(e_t)]
    # 2. student forward + D weight update (alpha frozen)
    (fake_s, _) = _fwd(gd["generator"], M["generator"], x, train=True)
    M["discriminator"], O["discriminator"], metrics["d_loss"] = _d_update(
        gd["discriminator"], txs["discriminator"], M["discriminator"], O["discriminator"],
        cond(x), y, fake_s, lt, half, freeze_alpha=True)
    # 3. student G (+ adapters)
    def g_loss(params):
      gp, ap = params
      (out, feats), rest = _call(gd["generator"], gp, M["generator"]["rest"], x, features=True)
      adv = gan_losses.g_loss(
          _fwd(gd["discriminator"], M["discriminator"], d_input(cond(x), out))[0], lt)
      rec, aux = content(out, y, E)
      aux = {"g_adv": adv, **aux}
      loss = lam_adv * adv + rec
      if kd:
        ad = nnx.merge(ad_gdef, ap)
        (_, e_s), _ = _fwd(gd["teacher_d"], M["teacher_d"], d_input(cond(x), out),
                           features=True)
        kdl, parts = gan_distill.feature_distill_loss(
            ad(feats) + list(e_s), targets, lambda_content=c.lambda_content,
            lambda_gram=c.lambda_gram, metric=c.kd_metric)
        loss = loss + kdl
        aux.update({"kd_content": parts["content"], "kd_gram": parts["gram"]})
      return loss, (aux, rest)

    (lg, (aux, rest)), (gg, ga) = jax.value_and_grad(g_loss, has_aux=True)(
        (M["generator"]["params"], E["adapters"]))
    if sparse:
      gg = pruning.add_l1_subgradient(gg, M["generator"]["params"], l1_targets,
                                      c.sparsity_lambda)
    p, O["generator"] = _apply(txs["generator"], M["generator"]["params"], gg, O["generator"])
    M["generator"] = {"params": p, "rest": rest}
    if kd:
      E["adapters"], E["adapters_opt"] = _apply(txs["generator"], E["adapters"], ga,
                                                E["adapters_opt"])
    metrics.update({"g_loss": lg, **aux})
    # 4. architecture step on the second half (alpha only)
    if arch:
      fa, _ = _fwd(gd["generator"], M["generator"], xa, train=True)
      ft, _ = _fwd(gd["teacher_g"], M["teacher_g"], xa, train=True)
      gap_t, E["gap_ema"] = _teacher_gap(c, gd["teacher_d"], M["teacher_d"], cond(xa), ft, lt,
                                         E["gap_ema"], state["step"], ctx.num_steps)
      M["discriminator"], E["alpha_opt"], la, parts = _arch_update(
          gd["discriminator"], M["discriminator"], E["alpha_opt"], atx, cond(xa), ya, fa,
          gap_t, lt, half)
      metrics.update({"arch_loss": la, "gap_s": parts["gap_s"], "gap_t": parts["gap_t"]})
    new = {"step": state["step"] + 1, "models": M, "opt": O, "extras": E}
    metrics["loss"] = lg
    return new, metrics

  return step


# ------------------------------------------------------------------- stages / transition


def stages(ctx):
  _check(ctx)
  c = ctx.config.gcc
  # sparsity length 0: a transition only (the random prototype is pruned by its scores).
  sp = (dict(epochs=float(c.sparsity_epochs)) if c.sparsity_epochs > 0
        else dict(steps=int(c.sparsity_steps)))
  gc = dict(epochs=float(c.gcc_epochs)) if c.gcc_epochs > 0 else dict(steps=int(c.gcc_steps))
  has_sparsity = c.sparsity_epochs > 0 or int(c.sparsity_steps) > 0
  return [Stage("sparsity", kind="train", evaluate=has_sparsity, **sp),
          Stage("gcc", kind="finetune", **gc)]


def _prune(ctx, state, meta, role="generator"):
  """The pruned widths of `role`: gcc.fixed_widths[role] when given (the code's hard-coded
  CycleGAN cfgs; no search), else the binary search to the role's budget."""
  c = ctx.config.gcc
  proto = roles.merge(roles.graphdef(ctx, meta, role), state["models"][role])
  shape = tuple(c.macs_input_shape)
  fixed = dict(c.fixed_widths).get(role)
  if fixed is not None:
    w = [int(v) for v in fixed]
    xsn = bool(c.macs_exclude_spectral_norm)
    macs = pruning.count_macs(proto, w, shape, exclude_spectral_norm=xsn)  # checks the cfg too
    return pruning.PruneResult(float("nan"), w, macs, float(macs),
                               pruning.count_macs(proto, None, shape, exclude_spectral_norm=xsn),
                               0)
  target = float(c.target_macs_b or c.target_macs) if role == "generator_b" else float(
      c.target_macs)
  return pruning.search_threshold(proto, target, mode=c.prune_mode,
                                  tolerance=float(c.prune_tolerance), input_shape=shape,
                                  exclude_spectral_norm=bool(c.macs_exclude_spectral_norm))


def _prune_record(res, fixed: bool) -> dict:
  return {"threshold": None if fixed else res.threshold, "macs": res.macs, "full_macs": res.full_macs,
          "target_macs": res.target_macs, "iterations": res.iterations, "fixed_cfg": fixed}


def transition(ctx, state, meta, next_stage):
  prev = stages(ctx)[int(meta.get("stage", 0))]
  write_grid(ctx, state, meta, prev.name)
  if next_stage.kind != "finetune":
    return state, {}
  c = ctx.config.gcc
  widths, records = dict(meta.get("widths") or {}), {}
  for role in pruned_roles(c):
    res = _prune(ctx, state, meta, role)
    widths[role] = list(res.widths)
    records[role] = _prune_record(res, role in dict(c.fixed_widths))
  # meta["prune"]: G's record (+ "generator_b": G_B's for CycleGAN)
  new_meta = {"widths": widths, "prune": {
      **records["generator"], **{r: v for r, v in records.items() if r != "generator"}}}
  fresh = init(ctx, jax.random.key(int(ctx.config.seed) + 1), {**meta, **new_meta})
  fresh["step"] = jnp.asarray(state["step"])
  # what `prepare` loaded survives the re-initialisation: the frozen extractor, a pretrained T
  if "perceptual" in state["extras"]:
    fresh["extras"]["perceptual"] = state["extras"]["perceptual"]
  for r in _teacher_generators(c):
    if roles.has_pretrained(ctx, r):
      fresh["models"][r] = state["models"][r]
  return fresh, new_meta


# ------------------------------------------------------------------------ predict / summary


def _to01(a):
  return jnp.clip((a.astype(jnp.float32) + 1.0) / 2.0, 0.0, 1.0)


def predict_fns(ctx, meta, stage):
  """'translate' (paired) or 'sr': {pred (student), teacher, target, input} images in [0, 1].
  'unpaired' (CycleGAN): see `unpaired.predict_fns` (pred / teacher = G_A(A), real = B)."""
  if ctx.config.gcc.task == "unpaired":
    from jaxvision.methods.gcc import unpaired  # pylint: disable=import-outside-toplevel
    return unpaired.predict_fns(ctx, meta, stage)
  gs, gt = roles.graphdef(ctx, meta, "generator"), roles.graphdef(ctx, meta, "teacher_g")
  sr = ctx.config.gcc.task == "sr"
  if ctx.config.gcc.task == "noise":
    z_dim = int(_abstract(ctx, meta, "generator").z_dim)

    def generate(state, batch):
      """pred / teacher = G(z_i) with z_i = N(0, I) from key(0) folded with the example's
      `index` (fixed across evaluations); target = the real image."""
      y = batch["image"]
      idx = batch["index"] if "index" in batch else jnp.arange(y.shape[0])
      z = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(jax.random.key(0), i),
                                               (z_dim,)))(idx)
      s = roles.merge(gs, state["models"]["generator"])(z, train=False)
      t = roles.merge(gt, state["models"]["teacher_g"])(z, train=False)
      return {"pred": _to01(s), "teacher": _to01(t), "target": _to01(y)}

    return {"generate": generate}

  def translate(state, batch):
    x = batch["lr"] * 2.0 - 1.0 if sr else batch["image"]
    s = roles.merge(gs, state["models"]["generator"])(x, train=False)
    t = roles.merge(gt, state["models"]["teacher_g"])(x, train=False)
    out = {"pred": _to01(s), "teacher": _to01(t)}
    if sr:
      out.update(target=batch["hr"], input=batch["lr"])
    else:
      out.update(target=_to01(batch["target"]), input=_to01(batch["image"]))
    if "label" in batch:  # Cityscapes trainIds for drn_miou
      out["label"] = batch["label"]
    return out

  return {"sr" if sr else "translate": translate}


# ------------------------------------------------------------------------------- PNG grids
_GRID_FNS: dict = {}


def _grid_roles(c) -> tuple[str, ...]:
  """The roles the predict function reads (the generators)."""
  return (("generator", "teacher_g", "generator_b", "teacher_g_b") if c.task == "unpaired"
          else ("generator", "teacher_g"))


def _grid_fn(ctx, meta):
  """The jitted predict function on {generator, teacher_g} states, once per structure."""
  key = json.dumps([ctx.config.gcc.task] + [
      [roles.role_cfg(ctx.config, r).to_dict(), roles.role_widths(meta, r)]
      for r in _grid_roles(ctx.config.gcc)], sort_keys=True, default=str)
  if key not in _GRID_FNS:
    fn = next(iter(predict_fns(ctx, meta, None).values()))
    _GRID_FNS[key] = jax.jit(lambda models, batch: fn({"models": models}, batch))
  return _GRID_FNS[key]


def grid_examples(config, n: int) -> dict:
  """The first n examples of config.evals.sr / .student / .eval (else the first configured
  eval), with that eval's dataset and pp, as a batch."""
  from jaxvision.core.registry import DATASETS  # pylint: disable=import-outside-toplevel
  from jaxvision.data import base as data_base  # pylint: disable=import-outside-toplevel
  from jaxvision.data import pp as pp_lib  # pylint: disable=import-outside-toplevel
  name = next((k for k in ("sr", "student", "eval") if k in config.evals), None)
  ev = config.evals[name] if name else next(iter(config.evals.values()))
  ds = DATASETS.get(ev.get("dataset", "") or config.dataset.name)(config)
  records = ds.train if ev.get("split", "eval") == "train" else ds.eval
  idx = np.arange(min(int(n), len(records)))
  batch = data_base.gather(records, idx)
  pp = pp_lib.parse(ev.get("pp", "") or ds.pp_eval)
  return pp_lib.finalize(pp(batch, np.random.default_rng(0)))


def grid_image(outs: dict) -> np.ndarray:
  """Rows input | teacher | student | target of per-example images in [0, 1] -> [H, W, 3]
  float (inputs smaller than the target, e.g. SR inputs, are upsampled by pixel repetition).
  Without a "target" (unpaired data) the last column is "real", a real image of the output
  domain (not a ground truth)."""
  last = "target" if "target" in outs else "real"
  rows = []
  for i in range(len(outs["pred"])):
    tgt = np.asarray(outs[last][i], np.float32)
    tiles = []
    for k in [k for k in ("input", "teacher", "pred", last) if k in outs]:
      a = np.asarray(outs[k][i], np.float32)
      if a.shape[0] < tgt.shape[0]:
        r = tgt.shape[0] // a.shape[0]
        a = np.repeat(np.repeat(a, r, 0), r, 1)
      tiles.append(a[:tgt.shape[0], :tgt.shape[1]])
    rows.append(tiles)
  return panel_rows(rows)


def write_grid(ctx, state, meta, stage_name: str) -> str | None:
  """`<workdir>/grids/<stage>_<step>.png` of the first gcc.grid_examples eval examples."""
  n = int(ctx.config.gcc.grid_examples)
  if n <= 0 or not ctx.is_main or not ctx.workdir:
    return None
  batch = grid_examples(ctx.config, n)
  models = {r: jax.device_get(state["models"][r]) for r in _grid_roles(ctx.config.gcc)}
  outs = jax.device_get(_grid_fn(ctx, meta)(models, batch))
  return save_png(os.path.join(ctx.workdir, "grids",
                              f"{stage_name}_{int(np.asarray(state['step']))}.png"),
                 grid_image(outs))


def _macs(ctx, meta, role):
  m = _abstract(ctx, meta, role)
  shape = tuple(ctx.config.gcc.macs_input_shape)
  counts = {c: flops.count(m, input_shape=shape, convention=c) for c in ("thop_conv", "macs")}
  # params do not depend on the convention: no third trace for them
  out = {c: int(r["flops"]) for c, r in counts.items()} | {
      "params": int(counts["thop_conv"]["params"])}
  if ctx.config.gcc.task == "noise":  # both ways (spec §2.2): + the official thop artifact
    out["thop_conv_without_spectral_norm"] = pruning.count_macs(
        m, None, shape, exclude_spectral_norm=True)
  return out


def summary(ctx, state, meta):
  d = roles.merge(roles.graphdef(ctx, meta, "discriminator"), state["models"]["discriminator"])
  out = {"gcc": {
      "student": _macs(ctx, meta, "generator"), "teacher": _macs(ctx, meta, "teacher_g"),
      "student_widths": list(_abstract(ctx, meta, "generator").widths),
      "prune": meta.get("prune", {}), "gates": gates.gate_report(d),
      "macs_input_shape": list(ctx.config.gcc.macs_input_shape),
      "flags": {"selective_d": bool(ctx.config.gcc.selective_d),
                "online_kd": bool(ctx.config.gcc.online_kd)},
      "task": str(ctx.config.gcc.task)}}
  if ctx.config.gcc.task == "sr":
    out["gcc"]["perceptual"] = _perceptual_desc(ctx.config.gcc)
  if ctx.config.gcc.task == "unpaired":
    d_b = roles.merge(roles.graphdef(ctx, meta, "discriminator_b"),
                      state["models"]["discriminator_b"])
    out["gcc"].update({
        "student_b": _macs(ctx, meta, "generator_b"), "teacher_b": _macs(ctx, meta, "teacher_g_b"),
        "student_b_widths": list(_abstract(ctx, meta, "generator_b").widths),
        "gates_b": gates.gate_report(d_b),
        "d_feature_kd": ("trains G (cyclegan_dkd_grad)" if ctx.config.gcc.cyclegan_dkd_grad
                         else "logged only (fake detached, the official code)")})
  last = stages(ctx)[-1].name
  write_grid(ctx, state, meta, last)
  d = os.path.join(ctx.workdir, "grids") if ctx.workdir else ""
  out["gcc"]["grids"] = sorted(glob.glob(os.path.join(d, "*.png"))) if d else []
  if ctx.is_main and ctx.workdir:
    with open(os.path.join(ctx.workdir, "gcc_structure.json"), "w") as f:
      json.dump(out["gcc"], f, indent=1)
  return out


def _fingerprint(ctx):
  c = ctx.config.gcc
  out = {"task": c.task, "selective_d": bool(c.selective_d), "online_kd": bool(c.online_kd)}
  if c.task == "sr":
    out["perceptual"] = _perceptual_desc(c)
  return out


GCC = Method(name="gcc", init=init, train_step=train_step, predict_fns=predict_fns,
             stages=stages, transition=transition, prepare=prepare, summary=summary,
             fingerprint=_fingerprint)
METHODS.register("gcc", GCC)
