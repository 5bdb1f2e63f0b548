"""DECLoss harness: L1, DECLoss and the ESRGAN GAN baseline on one SR network, one after another.

Stages: [pretrain (L1, `decloss.pretrain_steps`, optional)] then one `finetune_<v>` stage per
variant v in `decloss.compare`, each starting from the same generator (the pretrain output, or
the init) with a fresh optimizer, so PSNR/SSIM, the high-frequency energy ratio, the
LPIPS-proxy and the wall-clock curve (summary.json `curve`, eval time excluded) compare the
variants in one harness (the training-speed ratio of spec §4).

State::

  {"step", "models": {"generator", "extractor" (frozen, decloss), "discriminator" (gan),
   "perceptual" (frozen, gan)}, "opt": {"generator", "discriminator"},
   "extras": {"g_init": generator params every variant starts from}}

Batches: train {lr [B, p/s, p/s, 3], hr [B, p, p, 3]} in [0, 1]; eval adds hr_hw (true sizes).
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.core import roles
from jaxvision.images import panel_rows, save_png
from jaxvision.core.errors import ConfigError
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS
from jaxvision.data import photos as _photos  # noqa: F401  (registers photos_sr)
from jaxvision.methods.decloss import data as _data  # noqa: F401  (sr_folder, sr_test_*)
from jaxvision.losses import decloss as D
from jaxvision.methods.decloss import metrics as M
from jaxvision.methods.decloss.config import EXTRACTORS, VARIANTS
from jaxvision.ops.imresize import imresize_jax


def _dcfg(ctx):
  return ctx.config.decloss


def compare_list(ctx) -> list[str]:
  vs = list(_dcfg(ctx).compare)
  bad = [v for v in vs if v not in VARIANTS]
  if not vs or bad:
    raise ConfigError(f"decloss.compare={vs}: use a non-empty subset of {list(VARIANTS)}")
  return vs


def loss_config(ctx) -> D.DECLossConfig:
  d = _dcfg(ctx)
  try:
    return D.DECLossConfig(scale=int(d.scale), **d.loss.to_dict())
  except ValueError as e:
    raise ConfigError(f"config.decloss.loss: {e}") from e


def esrgan_config(ctx) -> D.ESRGANLossConfig:
  return D.ESRGANLossConfig(**_dcfg(ctx).gan.to_dict())


def needed_roles(ctx) -> dict:
  """role -> trainable for the variants in `compare`."""
  vs = compare_list(ctx)
  out = {"generator": True}
  if "decloss" in vs and loss_config(ctx).features == "extractor":
    out["extractor"] = False
  if "gan" in vs:
    out.update(discriminator=True, perceptual=False)
  return out


def validate(ctx) -> None:
  """Start-up checks with one clear line each."""
  d = _dcfg(ctx)
  if d.extractor not in EXTRACTORS:
    raise ConfigError(f"decloss.extractor={d.extractor!r}; use one of {list(EXTRACTORS)}")
  loss_config(ctx)
  for role in needed_roles(ctx):
    roles.role_cfg(ctx.config, role)
  for role in ("extractor", "perceptual"):
    if role not in needed_roles(ctx):
      continue
    name = roles.role_cfg(ctx.config, role).name
    want = "vgg19_features" if d.extractor == "vgg19" else "random_conv_features"
    if name != want:
      raise ConfigError(f"decloss.extractor={d.extractor!r} needs models.{role}.name={want!r} "
                        f"(got {name!r}); the config file sets both together")
    if d.extractor == "vgg19":
      path = roles.role_cfg(ctx.config, role).init.torch_checkpoint
      if not path:
        raise ConfigError(f"decloss.extractor='vgg19' needs VGG-19 weights: set --config.models."
                          f"{role}.init.torch_checkpoint=/path/vgg19.pth (torchvision "
                          "vgg19().state_dict()), or use --config.decloss.extractor=random")
      if not os.path.isfile(os.path.expanduser(path)):
        raise ConfigError(f"models.{role}.init.torch_checkpoint={path} does not exist")
  if d.lpips_alexnet:
    _lpips_params(str(d.lpips_alexnet), str(d.lpips_lin))  # fails now, with the fix, if bad
  data = ctx.data
  if data is not None and "scale" in data and int(data["scale"]) != int(d.scale):
    raise ConfigError(f"decloss.scale={d.scale} but the dataset makes x{data['scale']} pairs; "
                      "set config.dataset.scale to the same value")
  gscale = roles.role_cfg(ctx.config, "generator").kwargs.get("scale", None)
  if gscale is not None and int(gscale) != int(d.scale):
    raise ConfigError(f"models.generator.kwargs.scale={gscale} != decloss.scale={d.scale}")


# ------------------------------------------------------------------ state
def _tx(ctx, role, finetune: bool = False):
  """The role's optimizer; fine-tune stages scale the generator's lr schedule by
  `decloss.finetune_lr_multiplier` (the same for every variant)."""
  mult = float(_dcfg(ctx).finetune_lr_multiplier) if finetune and role == "generator" else 1.0
  return roles.make_tx(ctx, role, int(_dcfg(ctx).finetune_steps), lr_multiplier=mult)


def init(ctx: RunContext, rng, meta):
  validate(ctx)
  txs = {r: (_tx(ctx, r) if t else None) for r, t in needed_roles(ctx).items()}
  state = roles.init_state(ctx, rng, meta, txs)
  state["extras"] = {"g_init": jax.tree.map(jnp.copy, state["models"]["generator"]["params"])}
  return state


def stages(ctx: RunContext) -> list[Stage]:
  d = _dcfg(ctx)
  out = []
  if int(d.pretrain_steps) > 0:
    out.append(Stage("pretrain", int(d.pretrain_steps), kind="train", variant="l1"))
  for v in compare_list(ctx):
    out.append(Stage(f"finetune_{v}", int(d.finetune_steps), kind="finetune", variant=v,
                     eval_every_steps=int(d.eval_every_steps)))
  return out


def transition(ctx: RunContext, state, meta, next_stage: Stage):
  """Before each variant: generator <- extras.g_init (set from the pretrain output first),
  fresh generator optimizer. Also saves the finished stage's SR crop."""
  prev = stages(ctx)[int(meta["stage"])]
  _save_crop(ctx, state, meta, prev.variant if prev.kind == "finetune" else "pretrain")
  if next_stage.kind != "finetune":
    return state, {}
  models = dict(state["models"])
  extras = dict(state["extras"])
  if prev.kind == "train":
    extras["g_init"] = jax.tree.map(np.copy, models["generator"]["params"])
  g = {"params": jax.tree.map(np.copy, extras["g_init"]), "rest": models["generator"]["rest"]}
  models["generator"] = g
  opt = dict(state["opt"])
  opt["generator"] = jax.device_get(_tx(ctx, "generator", True).init(g["params"]))
  return {**state, "models": models, "opt": opt, "extras": extras}, {}


def prepare(ctx: RunContext, state, meta):
  """Fresh start: generator from models.generator.init (an L1-pretrained orbax workdir, protocol
  P2), VGG-19 torchvision weights into the frozen extractor/perceptual roles."""
  from jaxvision.models.sr import load_vgg19_torchvision  # pylint: disable=import-outside-toplevel
  state = roles.load_pretrained(ctx, state, meta, "generator")
  state = jax.device_get(state)
  models = dict(state["models"])
  if _dcfg(ctx).extractor == "vgg19":
    for role in ("extractor", "perceptual"):
      if role in models:
        m = roles.merge(roles.graphdef(ctx, meta, role), models[role])
        load_vgg19_torchvision(m, os.path.expanduser(
            roles.role_cfg(ctx.config, role).init.torch_checkpoint))
        models[role] = roles.model_state(m)
  extras = {**state["extras"],
            "g_init": jax.tree.map(np.copy, models["generator"]["params"])}
  return {**state, "models": models, "extras": extras}


# ------------------------------------------------------------------ steps
def _single(role, gdef, tx, loss_fn):
  def step(state, batch, rng):
    new, m = roles.role_update(state, role, gdef, tx, loss_fn, batch, rng)
    new["step"] = state["step"] + 1
    return new, m
  return step


def _frozen(gdef, model_state):
  """x -> features of a frozen role (its whole state under stop_gradient)."""
  return lambda x: roles.merge(gdef, jax.lax.stop_gradient(model_state))(x)


def l1_loss(model, batch, rng, state):
  sr = model(batch["lr"], train=True).astype(jnp.float32)
  l1 = jnp.mean(jnp.abs(sr - batch["hr"]))
  return l1, {"l1": l1}


def make_decloss_loss(ctx, meta):
  cfg = loss_config(ctx)
  eg = roles.graphdef(ctx, meta, "extractor") if cfg.features == "extractor" else None

  def loss(model, batch, rng, state):
    sr = model(batch["lr"], train=True)
    fn = _frozen(eg, state["models"]["extractor"]) if eg is not None else None
    return D.decloss(sr, batch["hr"], batch["lr"], key=rng, cfg=cfg, feature_fn=fn)
  return loss


def make_gan_losses(ctx, meta):
  gg = roles.graphdef(ctx, meta, "generator")
  dg = roles.graphdef(ctx, meta, "discriminator")
  pg = roles.graphdef(ctx, meta, "perceptual")
  gcfg = esrgan_config(ctx)

  def d_loss(model, batch, rng, state):
    sr = jax.lax.stop_gradient(roles.merge(gg, state["models"]["generator"])(batch["lr"]))
    real = model(batch["hr"], train=True)
    fake = model(sr, train=True)
    loss = D.relativistic_d_loss(real, fake)
    return loss, {"real": jnp.mean(real), "fake": jnp.mean(fake)}

  def g_loss(model, batch, rng, state):
    sr = model(batch["lr"], train=True)
    d = roles.merge(dg, state["models"]["discriminator"])
    real, fake = d(batch["hr"], train=True), d(sr, train=True)
    return D.esrgan_generator_loss(sr, batch["hr"], real, fake,
                                   feature_fn=_frozen(pg, state["models"]["perceptual"]),
                                   cfg=gcfg)
  return d_loss, g_loss


def train_step(ctx: RunContext, meta, stage: Stage):
  v = stage.variant or "l1"
  gg = roles.graphdef(ctx, meta, "generator")
  tx = _tx(ctx, "generator", stage.kind == "finetune")
  if v == "l1":
    return _single("generator", gg, tx, l1_loss)
  if v == "decloss":
    return _single("generator", gg, tx, make_decloss_loss(ctx, meta))
  d_loss, g_loss = make_gan_losses(ctx, meta)
  return roles.make_multi_step([
      ("discriminator", roles.graphdef(ctx, meta, "discriminator"), _tx(ctx, "discriminator"),
       d_loss),
      ("generator", gg, tx, g_loss)])


# ------------------------------------------------------------------ eval
@functools.lru_cache(maxsize=2)
def _lpips_params(alexnet: str, lin: str) -> dict:
  """Calibrated LPIPS weights (AlexNet + v0.1 linear layers), loaded once per process."""
  from jaxvision.evaluators import lpips  # pylint: disable=import-outside-toplevel
  try:
    return lpips.load_lpips_alex(os.path.expanduser(alexnet), os.path.expanduser(lin) if lin
                                 else "")
  except lpips.LPIPSWeightsError as e:
    raise ConfigError(f"decloss.lpips_alexnet / lpips_lin: {e}") from None


def predict_fns(ctx: RunContext, meta, stage):
  gg = roles.graphdef(ctx, meta, "generator")
  d = _dcfg(ctx)
  scale, seed = int(d.scale), int(d.lpips_proxy_seed)
  lp = _lpips_params(str(d.lpips_alexnet), str(d.lpips_lin)) if d.lpips_alexnet else None
  niqe = bool(d.niqe_model)
  from jaxvision.evaluators.lpips import lpips_alex  # pylint: disable=import-outside-toplevel

  def metrics(x, hr, hw):
    out = M.sr_metrics(x, hr, hw, scale, seed)
    if lp is not None:
      out["lpips"] = lpips_alex(lp, x, hr, hw)
    return out

  def sr_predict(state, batch):
    lr, hr = batch["lr"], batch["hr"]
    hw = batch["hr_hw"] if "hr_hw" in batch else jnp.tile(
        jnp.asarray(hr.shape[1:3], jnp.int32), (hr.shape[0], 1))
    sr = jnp.clip(roles.merge(gg, state["models"]["generator"])(lr, train=False), 0.0, 1.0)
    out = metrics(sr.astype(jnp.float32), hr, hw)
    bic = jnp.clip(imresize_jax(lr.astype(jnp.float32), output_shape=hr.shape[1:3]), 0.0, 1.0)
    out.update({f"bicubic_{k}": v for k, v in metrics(bic, hr, hw).items()})
    if niqe:  # images for the host-side NIQE evaluator
      out.update(pred=sr.astype(jnp.float32), hw=hw)
    return out
  return {"sr": sr_predict}


# ------------------------------------------------------------------ crops and summary
CROP_PHOTO, CROP_HR = "chelsea", 96


def _crop_source(ctx):
  """(lr, hr) float crops of one held-out photo (photos_sr only; else None)."""
  if ctx.config.dataset.name != "photos_sr":
    return None
  from jaxvision.data.photos import photo  # pylint: disable=import-outside-toplevel
  from jaxvision.ops.imresize import imresize  # pylint: disable=import-outside-toplevel
  s = int(_dcfg(ctx).scale)
  img = photo(CROP_PHOTO)
  size = CROP_HR - CROP_HR % s
  y = img.astype(np.float32).mean(-1)
  lap = np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
  c = np.cumsum(np.cumsum(np.pad(lap, ((1, 0), (1, 0))), 0), 1)
  win = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
  i, j = np.unravel_index(np.argmax(win[::s, ::s]), win[::s, ::s].shape)
  hr = img[i * s:i * s + size, j * s:j * s + size]
  return imresize(hr, 1.0 / s).astype(np.float32) / 255.0, hr.astype(np.float32) / 255.0


def _save_crop(ctx, state, meta, tag: str) -> None:
  if not (ctx.is_main and bool(_dcfg(ctx).crops)):
    return
  src = _crop_source(ctx)
  if src is None:
    return
  lr, hr = src
  gg = roles.graphdef(ctx, meta, "generator")
  g = roles.merge(gg, jax.device_get(state["models"]["generator"]))
  sr = np.clip(np.asarray(g(jnp.asarray(lr[None]), train=False))[0], 0, 1)
  d = os.path.join(ctx.workdir, "crops")
  os.makedirs(d, exist_ok=True)
  np.save(os.path.join(d, f"{tag}.npy"), sr)


def _write_crops_png(ctx) -> str | None:
  src = _crop_source(ctx)
  d = os.path.join(ctx.workdir, "crops")
  if src is None or not os.path.isdir(d):
    return None
  lr, hr = src
  s = int(_dcfg(ctx).scale)
  tiles = [("LR", np.repeat(np.repeat(lr, s, 0), s, 1)),
           ("bicubic", np.clip(np.asarray(imresize_jax(jnp.asarray(lr),
                                                       output_shape=hr.shape[:2])), 0, 1))]
  for v in compare_list(ctx):
    p = os.path.join(d, f"{v}.npy")
    if os.path.exists(p):
      tiles.append((v, np.load(p)))
  tiles.append(("HR", hr))
  path = save_png(os.path.join(ctx.workdir, "crops.png"), panel_rows([[t for _, t in tiles]]))
  with open(os.path.join(ctx.workdir, "crops.txt"), "w") as f:
    f.write(" | ".join(n for n, _ in tiles) + "\n")
  return path


def speed_ratio(curve: list, target_key: str = "lpips_proxy") -> dict:
  """Wall-clock (eval excluded) for GAN to reach its best `target_key` and for DECLoss to reach
  that value (or its own best, whichever comes first); times from each stage's start eval,
  which itself (the shared starting generator) does not count."""
  def series(stage):
    rows = [r for r in curve if r.get("stage") == stage and target_key in r]
    if len(rows) < 2:
      return []
    t0 = rows[0]["time_s"]
    return [(r["time_s"] - t0, r[target_key]) for r in rows[1:]]
  gan, dec = series("finetune_gan"), series("finetune_decloss")
  if not gan or not dec:
    return {}
  best = min(v for _, v in gan)
  t_gan = next(t for t, v in gan if v <= best)
  reach = [t for t, v in dec if v <= best]
  dbest = min(v for _, v in dec)
  t_dec = reach[0] if reach else next(t for t, v in dec if v <= dbest)
  return {"target": best, "gan_s": t_gan, "decloss_s": t_dec, "decloss_reached": bool(reach),
          "ratio": (t_gan / t_dec) if t_dec > 0 else None}


def summary(ctx: RunContext, state, meta) -> dict:
  if ctx.is_main:
    _save_crop(ctx, state, meta, stages(ctx)[-1].variant)
  evals = meta.get("evals", {})
  names = [s.name for s in stages(ctx)]
  secs = meta.get("stage_seconds", [])
  variants = {}
  for v in compare_list(ctx):
    name = f"finetune_{v}"
    i = names.index(name)
    variants[v] = {**evals.get(name, {}).get("end", {}),
                   "train_seconds": secs[i] if i < len(secs) else None}
  bic = {k[len("bicubic_"):]: val for k, val in evals.get(names[-1], {}).get("end", {}).items()
         if k.startswith("bicubic_")}
  ext = _dcfg(ctx).extractor
  out = {"variants": variants, "bicubic": bic, "speed": speed_ratio(
             meta.get("curve", []), "lpips" if _dcfg(ctx).lpips_alexnet else "lpips_proxy"),
         "extractor": ("VGG-19 relu3_4 (torchvision weights)" if ext == "vgg19" else
                       "fixed random-init conv net (no VGG-19 weights given)"),
         "lpips": ("calibrated LPIPS v0.1 AlexNet (`lpips`) and the proxy (`lpips_proxy`)"
                   if _dcfg(ctx).lpips_alexnet else
                   "proxy only (random-feature LPIPS formula, `lpips_proxy`): set "
                   "decloss.lpips_alexnet for the calibrated LPIPS")}
  if ctx.is_main:
    png = _write_crops_png(ctx)
    if png:
      out["crops_png"] = png
  return out


def fingerprint(ctx):
  return {"compare": list(_dcfg(ctx).compare), "extractor": _dcfg(ctx).extractor,
          "pretrain_steps": int(_dcfg(ctx).pretrain_steps)}


DECLOSS = METHODS.register("decloss", Method(
    name="decloss", init=init, train_step=train_step, predict_fns=predict_fns, stages=stages,
    transition=transition, prepare=prepare, summary=summary, fingerprint=fingerprint))
