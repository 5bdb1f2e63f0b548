"""LFPNet training on the core loop (spec lfpnet.md §4, [RECON] FBA-style recipe).

One role, `matting` (an LFPNet from the zoo). Each train batch holds context crops of side 2S
(image/alpha/fg/bg/trimap, floats in [0, 1], trimap uint8); the step, on device:

  1. optionally swaps each example's background for the next example's (`bg_swap_prob`) and
     composites I = alpha * F + (1 - alpha) * B;
  2. makes a trimap from alpha by eroding fg (alpha >= 1 - eps) and bg (alpha <= eps) with square
     kernels of side 2r + 1, r drawn per example in `trimap_radius` (lax.reduce_window);
  3. encodes the inner centre S x S patch and the 2S context (12 channels each, `encode_jax`);
  4. takes one optimizer step on `losses.lfpnet_loss` (alpha, composition, Laplacian, gradient,
     F/B terms on the inner patch + the context-alpha term).

The loop jits the step with the batch sharded over the mesh's data axis (data parallel; GN has
no cross-device statistics). Evaluation (`predict_fns()["alpha"]`) tiles every eval image as the
full-resolution inference does (`lfpnet.eval_tile`: tiles of that side with stride / 2 and tent
blending, or 0 = the whole image as one tile; `lfpnet.eval_tta`), in jnp inside the jitted
predict, and returns the composed alpha `pred`, the 0.5-in-unknown baseline `pred_half`,
`target` and `trimap` for the `matting` evaluator. The host-side tiled inference for images of
any size is `inference.predict_alpha` / the `predict` CLI.

State: {"step", "models": {"matting"}, "opt": {"matting"}, "extras": {}}.
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.core import roles
from jaxvision.images import panel_rows, save_png
from jaxvision.core.errors import ConfigError
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS
from jaxvision.data import photos as _photos  # noqa: F401  (registers photos_matting)
from jaxvision.methods.lfpnet import data as _data  # noqa: F401  (registers comp1k_folder)
from jaxvision.methods.lfpnet import inference
from jaxvision.methods.lfpnet.config import BASELINES
from jaxvision.methods.lfpnet.encoding import encode_jax
from jaxvision.methods.lfpnet.losses import LossWeights, lfpnet_loss

ROLE = "matting"


def _lcfg(ctx):
  return ctx.config.lfpnet


def validate(ctx) -> None:
  """Start-up checks, one clear line each."""
  c = _lcfg(ctx)
  s = int(c.inner_size)
  if s <= 0 or s % 32:
    raise ConfigError(f"lfpnet.inner_size={s}: use a positive multiple of 32")
  lo, hi = (int(v) for v in c.trimap_radius)
  if not 0 <= lo <= hi:
    raise ConfigError(f"lfpnet.trimap_radius={tuple(c.trimap_radius)}: use (lo, hi) with "
                      "0 <= lo <= hi")
  bad = [b for b in c.baselines if b not in BASELINES]
  if bad:
    raise ConfigError(f"lfpnet.baselines has {bad}; use a subset of {list(BASELINES)}")
  if {"closed_form", "knn"} & set(c.baselines):
    _pymatting()
  if int(c.eval_tile) < 0 or int(c.eval_tile) % 32:
    raise ConfigError(f"lfpnet.eval_tile={c.eval_tile}: use 0 (one tile per eval image) or a "
                      "positive multiple of 32")
  if c.eval_tta not in inference.TTA_MODES:
    raise ConfigError(f"lfpnet.eval_tta={c.eval_tta!r}: use one of {list(inference.TTA_MODES)}")
  if not 0.0 <= float(c.bg_swap_prob) <= 1.0:
    raise ConfigError(f"lfpnet.bg_swap_prob={c.bg_swap_prob} must be in [0, 1]")
  LossWeights(**c.loss.to_dict())
  data = ctx.data
  if data is not None and "image" in data["features"]:
    side = data.shape("image")[0]
    if side is not None and side != 2 * s:
      raise ConfigError(f"training crops are {side}px but lfpnet.inner_size={s} needs context "
                        f"crops of 2S = {2 * s}px; set config.dataset.image_size={2 * s}")
  roles.role_cfg(ctx.config, ROLE)


# ------------------------------------------------------------------ pure batch making
def composite(alpha, fg, bg):
  """I = alpha * F + (1 - alpha) * B. alpha [..., 1], fg / bg [..., 3] in [0, 1]."""
  return alpha * fg + (1.0 - alpha) * bg


def erode(mask, radius: int):
  """Binary erosion of mask [B, H, W] (bool) by a (2r+1)^2 square; outside the image counts as
  True (scipy's border_value=1). One lax.reduce_window min."""
  if radius == 0:
    return mask
  k = 2 * radius + 1
  m = jax.lax.reduce_window(mask.astype(jnp.float32), jnp.inf, jax.lax.min, (1, k, k), (1, 1, 1),
                            ((0, 0), (radius, radius), (radius, radius)))
  return m > 0.5


def trimap_from_alpha(alpha, r_fg, r_bg, radii: tuple[int, int], eps: float = 1e-3):
  """Trimap uint8 [B, H, W] in {0, 128, 255} by erosion of the fg / bg regions of alpha.

  alpha: [B, H, W] in [0, 1]; r_fg, r_bg: [B] int radii in [radii[0], radii[1]] (square kernel
  side 2r + 1). fg = alpha >= 1 - eps eroded by r_fg -> 255; bg = alpha <= eps eroded by r_bg -> 0;
  everything else (every fractional pixel included) -> 128. The erosion for each radius is the
  iterate of 3x3 erosions (exactly the (2r+1)^2 square erosion), selected per example."""
  lo, hi = int(radii[0]), int(radii[1])

  def eroded(m, r):
    outs, cur = [], m
    for k in range(hi + 1):
      if k:
        cur = erode(cur, 1)
      if k >= lo:
        outs.append(cur)
    stack = jnp.stack(outs, 0)  # [hi - lo + 1, B, H, W]
    idx = jnp.clip(r - lo, 0, hi - lo)
    return jnp.take_along_axis(stack, idx[None, :, None, None], 0)[0]

  fg = eroded(alpha >= 1.0 - eps, r_fg)
  bg = eroded(alpha <= eps, r_bg)
  return jnp.where(fg, 255, jnp.where(bg, 0, 128)).astype(jnp.uint8)


def centre(x, s: int):
  """Centre s x s crop of [B, 2s, 2s, C] (rows/cols [s/2, 3s/2))."""
  o = (x.shape[1] - s) // 2
  return x[:, o:o + s, o:o + s]


def onehot(t):
  """uint8 trimap [B, H, W] -> [B, H, W, 3] float (bg, unknown, fg)."""
  return jnp.stack([t == 0, t == 128, t == 255], -1).astype(jnp.float32)


def make_training_batch(batch, rng, *, inner: int, radii=(0, 15), eps: float = 1e-3,
                        bg_swap_prob: float = 0.5, data_trimap: bool = False) -> dict:
  """Train batch of 2S context crops -> model inputs and loss targets (pure, jit-able).

  batch: alpha [B,2S,2S,1], fg / bg [B,2S,2S,3] in [0, 1] (and trimap [B,2S,2S,1] uint8 when
  data_trimap). Returns x [B,S,S,12], x_ctx [B,2S,2S,12], raw / fg / bg [B,S,S,3], alpha
  [B,S,S,1], onehot [B,S,S,3], alpha_ctx [B,2S,2S,1], onehot_ctx [B,2S,2S,3], trimap_ctx [B,2S,2S].
  """
  k_swap, k_fg, k_bg = jax.random.split(rng, 3)
  alpha = batch["alpha"].astype(jnp.float32)
  fg = batch["fg"].astype(jnp.float32)
  bg = batch["bg"].astype(jnp.float32)
  b = alpha.shape[0]
  if bg_swap_prob > 0 and b > 1:
    swap = jax.random.bernoulli(k_swap, bg_swap_prob, (b,))[:, None, None, None]
    bg = jnp.where(swap, jnp.roll(bg, 1, axis=0), bg)
  image = composite(alpha, fg, bg)
  if data_trimap:
    tri = batch["trimap"][..., 0].astype(jnp.uint8)
  else:
    r_fg = jax.random.randint(k_fg, (b,), radii[0], radii[1] + 1)
    r_bg = jax.random.randint(k_bg, (b,), radii[0], radii[1] + 1)
    tri = trimap_from_alpha(alpha[..., 0], r_fg, r_bg, radii, eps)
  xc = encode_jax(image, tri)
  tri_in = centre(tri[..., None], inner)[..., 0]
  raw = centre(image, inner)
  x = encode_jax(raw, tri_in)
  return {"x": x, "x_ctx": xc, "raw": raw, "fg": centre(fg, inner), "bg": centre(bg, inner),
          "alpha": centre(alpha, inner), "onehot": x[..., 3:6], "alpha_ctx": alpha,
          "onehot_ctx": xc[..., 3:6], "trimap_ctx": tri}


def eval_alpha(model, image, trimap, *, tile: int = 0, tta: str = "none"):
  """Composed alpha [B, H, W] of whole eval images (H, W multiples of 32): image [B,H,W,3] in
  [0, 1], trimap [B,H,W] uint8. tile = 0: the image is one tile (inner = the image, context = the
  image padded by half its side per edge: replicate / trimap 0); tile > 0: tiles of that side
  with stride tile / 2 and tent blending (`inference.tiled_alpha`, as the full-resolution
  inference). tta: "none" | "official" | "8" (spec §2.7)."""
  h, w = trimap.shape[1:3]
  tile = int(tile) or max(h, w)
  fn = lambda x, xc, raw: model(x, xc, raw, train=False)[..., :1]  # noqa: E731
  return inference.tiled_alpha(fn, image, trimap, tile=tile, tta=tta)


def quantize(a):
  """alpha in [0, 1] -> floor(clip(255 a)) / 255 (the official uint8 truncation)."""
  return jnp.floor(jnp.clip(a * 255.0, 0.0, 255.0)) / 255.0


# ------------------------------------------------------------------ method
def _weights(ctx) -> LossWeights:
  return LossWeights(**{k: float(v) for k, v in _lcfg(ctx).loss.to_dict().items()})


def _tx(ctx):
  return roles.make_tx(ctx, ROLE, ctx.num_steps)


def init(ctx: RunContext, rng, meta):
  validate(ctx)
  return roles.init_state(ctx, rng, meta, {ROLE: _tx(ctx)})


def prepare(ctx: RunContext, state, meta):
  """Fresh start: models.matting.init (orbax workdir / state_dict) when set; else, with
  lfpnet.head_bias_init = v >= 0, every bias of the 7-channel head's last conv starts at v (so the
  clamped alpha / F / B start inside (0, 1), where the clamp passes gradients)."""
  state = roles.load_pretrained(ctx, state, meta, ROLE)
  v = float(_lcfg(ctx).head_bias_init)
  if v < 0 or roles.has_pretrained(ctx, ROLE):
    return state
  state = jax.device_get(state)
  m = roles.merge(roles.graphdef(ctx, meta, ROLE), state["models"][ROLE])
  m.head3.bias.value = jnp.full_like(m.head3.bias.value, float(v))
  return {**state, "models": {**state["models"], ROLE: roles.model_state(m)}}


def stages(ctx: RunContext) -> list[Stage]:
  return [Stage("train", ctx.num_steps, kind="train")]


def make_loss(ctx):
  c = _lcfg(ctx)
  weights = _weights(ctx)
  kw = dict(inner=int(c.inner_size), radii=tuple(int(v) for v in c.trimap_radius),
            eps=float(c.trimap_eps), bg_swap_prob=float(c.bg_swap_prob),
            data_trimap=bool(c.data_trimap))

  def loss_fn(model, batch, rng):
    b = make_training_batch(batch, rng, **kw)
    want_ctx = weights.context > 0 and getattr(model, "ctx_head1", None) is not None
    res = model(b["x"], b["x_ctx"], b["raw"], train=True, return_context=want_ctx)
    out, ctx_alpha = res if want_ctx else (res, None)
    total, terms = lfpnet_loss(out, b, ctx_alpha, weights)
    u = b["onehot"][..., 1:2]
    a = out[..., :1] * u + b["onehot"][..., 2:3]
    terms["unknown_frac"] = jnp.mean(u)
    terms["train_sad"] = jnp.mean(jnp.sum(jnp.abs(a - b["alpha"]) * u, axis=(1, 2, 3))) / 1000
    terms.pop("loss", None)
    return total, terms
  return loss_fn


def train_step(ctx: RunContext, meta, stage: Stage):
  return roles.make_train_step(roles.graphdef(ctx, meta, ROLE), _tx(ctx), make_loss(ctx),
                               role=ROLE)


def _eval_kw(ctx) -> dict:
  c = _lcfg(ctx)
  return {"tile": int(c.eval_tile), "tta": str(c.eval_tta)}


def predict_fns(ctx: RunContext, meta, stage):
  gd = roles.graphdef(ctx, meta, ROLE)
  q = bool(_lcfg(ctx).eval_quantize)
  kw = _eval_kw(ctx)

  def alpha_predict(state, batch):
    image = batch["image"].astype(jnp.float32)
    t = batch["trimap"][..., 0].astype(jnp.uint8)
    pred = eval_alpha(roles.merge(gd, state["models"][ROLE]), image, t, **kw)[..., None]
    u = (t == 128)[..., None].astype(jnp.float32)
    half = 0.5 * u + (t == 255)[..., None].astype(jnp.float32)
    if q:
      pred, half = quantize(pred), quantize(half)
    return {"pred": pred, "pred_half": half, "target": batch["alpha"].astype(jnp.float32),
            "trimap": batch["trimap"]}
  return {"alpha": alpha_predict}


# ------------------------------------------------------------------ baselines, panels, summary
def _eval_set(config, limit=None):
  """Eval records of the run's dataset as uint8 arrays: image, trimap [N,H,W,...], alpha."""
  from jaxvision.core.registry import DATASETS  # pylint: disable=import-outside-toplevel
  ds = DATASETS.get(config.dataset.name)(config)
  n = len(ds.eval) if limit is None else min(limit, len(ds.eval))
  recs = ds.eval.take(np.arange(n)) if hasattr(ds.eval, "take") else None
  if recs is None:
    items = [ds.eval[i] for i in range(n)]
    recs = {k: np.stack([r[k] for r in items]) for k in ("image", "alpha", "trimap")}
  return {k: np.asarray(recs[k]) for k in ("image", "alpha", "trimap")}


def _pymatting():
  try:
    import pymatting  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ConfigError("lfpnet.baselines 'closed_form' / 'knn' need pymatting: pip install "
                      "'jaxvision[matting]' (or pymatting), or drop them from lfpnet.baselines"
                      ) from e
  return pymatting


@functools.lru_cache(maxsize=8)
def _classical_cached(kind: str, dataset_json: str, quant: bool) -> dict:
  import ml_collections  # pylint: disable=import-outside-toplevel
  from jaxvision.evaluators import matting  # pylint: disable=import-outside-toplevel
  pymatting = _pymatting()
  cfg = ml_collections.ConfigDict({"dataset": json.loads(dataset_json)})
  data = _eval_set(cfg)
  fn = pymatting.estimate_alpha_cf if kind == "closed_form" else pymatting.estimate_alpha_knn
  ev = matting.MattingEvaluator()
  for img, a, t in zip(data["image"], data["alpha"], data["trimap"]):
    tri = t[..., 0]
    if not (tri == 128).any():
      continue
    if (tri == 255).any() and (tri == 0).any():
      p = np.clip(fn(img.astype(np.float64) / 255.0, tri.astype(np.float64) / 255.0), 0, 1)
    else:  # one known class only: the minimiser is that constant (pymatting refuses the input)
      p = np.full(tri.shape, 1.0 if (tri == 255).any() else 0.0)
    p[tri == 0], p[tri == 255] = 0.0, 1.0
    if quant:
      p = np.floor(p * 255.0) / 255.0
    ev.update(p[None], (a[..., 0].astype(np.float64) / 255.0)[None], tri[None])
  return ev.result()


def classical_baseline(config, kind: str = "closed_form") -> dict:
  """SAD / MSE / Grad / Conn of a pymatting baseline (closed-form or KNN matting) on the eval
  set of config.dataset (cached per dataset config within the process)."""
  return dict(_classical_cached(kind, json.dumps(config.dataset.to_dict(), sort_keys=True,
                                                 default=str),
                                bool(config.lfpnet.eval_quantize)))


_PANEL_FNS: dict = {}


def _panel_fn(ctx, meta):
  """Jitted eval alpha (as `predict_fns`), compiled once per model config and process."""
  kw = _eval_kw(ctx)
  key = json.dumps([roles.role_cfg(ctx.config, ROLE).to_dict(), roles.role_widths(meta, ROLE), kw],
                   sort_keys=True, default=str)
  if key not in _PANEL_FNS:
    gd = roles.graphdef(ctx, meta, ROLE)
    _PANEL_FNS[key] = jax.jit(lambda ms, img, t: eval_alpha(roles.merge(gd, ms), img, t, **kw))
  return _PANEL_FNS[key]


def _write_panels(ctx, state, meta) -> str | None:
  """PNG rows image | trimap | predicted alpha | true alpha for the first eval images."""
  n = int(_lcfg(ctx).panels)
  if n <= 0 or not ctx.is_main:
    return None
  data = _eval_set(ctx.config, n)
  img = jnp.asarray(data["image"], jnp.float32) / 255.0
  t = jnp.asarray(data["trimap"][..., 0])
  pred = np.asarray(_panel_fn(ctx, meta)(jax.device_get(state["models"][ROLE]), img, t))
  tr = np.asarray(t)
  rows = [[np.asarray(img[i]), tr[i] / 255.0, pred[i], data["alpha"][i][..., 0] / 255.0]
          for i in range(len(pred))]
  path = save_png(os.path.join(ctx.workdir, "panels.png"), panel_rows(rows))
  return path


def summary(ctx: RunContext, state, meta) -> dict:
  c = _lcfg(ctx)
  end = meta.get("evals", {}).get("train", {}).get("end", {})
  get = lambda label: {m: end[f"{label}/{m}"] for m in ("sad", "mse", "grad", "conn")  # noqa: E731
                       if f"{label}/{m}" in end}
  model = get("matting") or {m: end[m] for m in ("sad", "mse", "grad", "conn") if m in end}
  base = {}
  if "half" in c.baselines:
    base["half"] = get("half_baseline")
  for kind in ("closed_form", "knn"):
    if kind in c.baselines:
      base[kind] = {k: v for k, v in classical_baseline(ctx.config, kind).items()
                    if k in ("sad", "mse", "grad", "conn")}
  ratios = {f"{name}_{m}": model[m] / v[m] for name, v in base.items() for m in ("sad", "mse")
            if m in model and v.get(m)}
  out = {"lfpnet": model, "baselines": base, "ratio_vs": ratios,
         "inner_size": int(c.inner_size),
         "eval": (f"tiles of {c.eval_tile} px, stride {int(c.eval_tile) // 2}, tent blending"
                  if int(c.eval_tile) else "one tile per eval image (context = image padded by "
                  "half its side)") + f", TTA {c.eval_tta}"}
  png = _write_panels(ctx, state, meta)
  if png:
    out["panels_png"] = png
  return out


def fingerprint(ctx):
  return {"inner_size": int(_lcfg(ctx).inner_size)}


LFPNET = METHODS.register("lfpnet", Method(
    name="lfpnet", init=init, train_step=train_step, predict_fns=predict_fns, stages=stages,
    prepare=prepare, summary=summary, fingerprint=fingerprint))
