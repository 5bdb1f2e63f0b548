"""DCL as a jaxvision Method (one train stage; spec ../shared/papers/dcl.md).

Roles: "student" = the query encoder f_q (a "dcl_net" model: backbone + 1x1 feature squeeze),
"key_encoder" = f_k (same block, trainable=False; a copy of f_q at start, then momentum).
extras: "memory" (two class queues, pointers, prototypes). Mode `ce` (the CE-only baseline)
has no key encoder and no memory. Views are made on device inside the step.
Prediction "forgery": {"score": p_fake, "label", "video_id"} for the `forgery` evaluator
(frame- and video-level AUC / EER / ACC) or `dcl_forgery` (the same, plus roc.png per test set
written at each evaluation into the workdir; `summary` lists them).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.core import roles
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS
from jaxvision.methods.dcl import roc, step as S
from jaxvision.methods.dcl.config import MODES
from jaxvision.methods.dcl.objective import ObjectiveConfig
from jaxvision.methods.dcl.queues import QueueConfig, check_queue_config, init_memory
from jaxvision.methods.dcl.views import ViewConfig, to_unit


def _dcfg(ctx: RunContext):
  if "dcl" not in ctx.config:
    raise ValueError("config.dcl is missing; start from configs/dcl.py.")
  c = ctx.config.dcl
  if c.mode not in MODES:
    raise ValueError(f"dcl.mode={c.mode!r} is unknown; choose one of {MODES}.")
  return c


def _shards(ctx: RunContext) -> int:
  mesh = ctx.mesh
  if mesh is None or "data" not in mesh.shape:
    return 1
  return int(mesh.shape["data"])


def embedding_dim(ctx: RunContext, meta: dict) -> int:
  """h * w of the student's feature map at the view size (computed abstractly)."""
  c = _dcfg(ctx)
  model = roles.abstract_model(ctx, meta, S.QUERY)
  gdef, params, rest = roles.split(model)
  x = jax.ShapeDtypeStruct((1, c.image_size, c.image_size, 3), jnp.float32)
  out = jax.eval_shape(lambda p, r, x: nnx.merge(gdef, p, r)(x)["embedding"], params, rest, x)
  return int(out.shape[-1])


def dcl_config(ctx: RunContext, meta: dict) -> S.DCLConfig:
  """The static step config from config.dcl (ablation modes zero a weight)."""
  c = _dcfg(ctx)
  ow = dict(ce_weight=c.ce_weight, inter_weight=c.inter_weight, intra_weight=c.intra_weight,
            intra_real_weight=c.intra_real_weight, ce_only_epochs=c.ce_only_epochs,
            temperature=c.temperature)
  if c.mode == "no_intra":
    ow["intra_weight"] = 0.0
  if c.mode == "no_inter":
    ow["inter_weight"] = 0.0
  views = ViewConfig(size=int(c.image_size), **dict(c.views))
  queue = QueueConfig(size=int(c.queue_size), slack=int(c.queue_slack),
                      dim=embedding_dim(ctx, meta) if c.mode != "ce" else 1,
                      hard=int(c.hard_keys), shards=_shards(ctx),
                      proto_momentum=float(c.proto_momentum))
  return S.DCLConfig(objective=ObjectiveConfig(**ow), queue=queue, views=views,
                     momentum=float(c.momentum),
                     intra_exclude_masked_pairs=bool(c.intra_exclude_masked_pairs),
                     mask_threshold=float(c.mask_threshold))


def check_startup(ctx: RunContext, cfg: S.DCLConfig) -> None:
  """Bad input caught at start-up, one line each."""
  c = _dcfg(ctx)
  if c.mode == "ce":
    return
  check_queue_config(cfg.queue, int(ctx.config.batch_size))
  if cfg.uses_intra and ctx.data is not None and "mask" not in ctx.data.features:
    raise ValueError(f"Intra-ICL is on (dcl.intra_weight={c.intra_weight}) but dataset "
                     f"'{ctx.data.name}' has no 'mask' feature; provide forgery masks or use "
                     "dcl.mode=no_intra.")
  q, k = (roles.role_cfg(ctx.config, role) for role in (S.QUERY, S.KEY))
  if (q.name, dict(q.kwargs)) != (k.name, dict(k.kwargs)):
    raise ValueError(f"models.key_encoder ({k.name}, {dict(k.kwargs)}) must be the same network "
                     f"as models.{S.QUERY} ({q.name}, {dict(q.kwargs)}): the key encoder starts "
                     "as its copy; set the same kwargs (e.g. embed_channels) on both.")
  if roles.trainable(ctx.config, S.KEY):
    raise ValueError("models.key_encoder must have trainable=False (it follows the query "
                     "encoder by momentum).")


def init(ctx: RunContext, rng, meta: dict):
  c = _dcfg(ctx)
  cfg = dcl_config(ctx, meta)
  check_startup(ctx, cfg)
  tx = roles.make_tx(ctx, S.QUERY, ctx.num_steps)
  if c.mode == "ce":
    return roles.init_state(ctx, rng, meta, {S.QUERY: tx})
  state = roles.init_state(ctx, rng, meta, {S.QUERY: tx, S.KEY: None},
                           extras={"memory": init_memory(jax.random.fold_in(rng, 17), cfg.queue)})
  # MoCo: the key encoder starts as a copy of the query encoder.
  state["models"][S.KEY] = jax.tree.map(lambda x: x, state["models"][S.QUERY])
  return state


def prepare(ctx: RunContext, state, meta):
  """Pretrained backbone (models.student.init), copied into the key encoder."""
  if not roles.has_pretrained(ctx, S.QUERY):
    return state
  state = roles.load_pretrained(ctx, state, meta, S.QUERY)
  if S.KEY in state["models"]:
    state["models"][S.KEY] = jax.tree.map(lambda x: x, state["models"][S.QUERY])
  return state


def train_step(ctx: RunContext, meta: dict, stage: Stage):
  cfg = dcl_config(ctx, meta)
  gq = roles.graphdef(ctx, meta, S.QUERY)
  tx = roles.make_tx(ctx, S.QUERY, ctx.num_steps)
  if _dcfg(ctx).mode == "ce":
    return S.make_ce_step(gq, tx, cfg)
  return S.make_train_step(gq, roles.graphdef(ctx, meta, S.KEY), tx, cfg, ctx.steps_per_epoch)


def eval_images(images: jax.Array, size: int, mean: float = 0.5, std: float = 0.5) -> jax.Array:
  """Test-time input: [B, H, W, 3] uint8/[0, 1] -> resized to size, normalised (no TTA)."""
  x = to_unit(images)
  if x.shape[1:3] != (size, size):
    x = jax.image.resize(x, (x.shape[0], size, size, 3), "linear")
  return (x - mean) / std


def predict_fns(ctx: RunContext, meta: dict, stage: Stage):
  size = int(_dcfg(ctx).image_size)
  p_fake = S.fake_probability(roles.graphdef(ctx, meta, S.QUERY))

  def forgery(state, batch):
    out = {"score": p_fake(state, eval_images(batch["image"], size)), "label": batch["label"]}
    if "video_id" in batch:
      out["video_id"] = batch["video_id"]
    return out

  return {"forgery": forgery}


def fingerprint(ctx: RunContext) -> dict:
  c = _dcfg(ctx)
  return {"mode": c.mode, "queue_size": c.queue_size, "queue_slack": c.queue_slack,
          "image_size": c.image_size}


def summary(ctx: RunContext, state, meta) -> dict:
  c = _dcfg(ctx)
  out = {"mode": c.mode, "embedding_dim": embedding_dim(ctx, meta)}
  if "memory" in state.get("extras", {}):
    mem = state["extras"]["memory"]
    out["queue_ptr"] = {"real": int(mem["ptr_real"]), "fake": int(mem["ptr_fake"])}
  # ROC PNGs of the final evaluation (written by the `dcl_forgery` evaluators).
  pngs = roc.written(ctx.workdir, list(ctx.config.get("evals", {}))) if ctx.workdir else {}
  if pngs:
    out["roc_png"] = pngs
  return out


DCL = METHODS.register("dcl", Method(
    name="dcl", init=init, train_step=train_step, predict_fns=predict_fns, prepare=prepare,
    summary=summary, fingerprint=fingerprint))

__all__ = ["DCL", "dcl_config", "embedding_dim", "eval_images", "check_startup"]
