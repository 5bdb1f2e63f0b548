"""The DCL train step as a pure function over the roles state (dcl.md §2.1-2.5).

State (jaxvision.core.roles layout):
  models: "student" (query encoder f_q: DCLNet, trained), "key_encoder" (f_k: same structure,
          frozen; params follow f_q by momentum, BN statistics from its own train forwards)
  opt:    "student"
  extras: "memory" (queues.init_memory)

One step, in the official order: two views -> theta_k <- m theta_k + (1 - m) theta_q (with the
pre-update theta_q) -> key forward (train mode, no gradient) -> prototypes and hard keys
enqueued -> query forward with gradient -> CE + Inter-ICL (current queues) + Intra-ICL (q's
mask at the feature resolution), weighted by epoch (CE only during the warm-up).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision.core import optim, roles
from jaxvision.losses.contrastive import inter_icl_loss, intra_icl_loss
from jaxvision.methods.dcl.objective import ObjectiveConfig, combine, loss_weights
from jaxvision.methods.dcl.queues import QueueConfig, momentum_update, update_memory
from jaxvision.methods.dcl.views import ViewConfig, make_views

QUERY, KEY = "student", "key_encoder"


@dataclasses.dataclass(frozen=True)
class DCLConfig:
  """Everything the step needs (jit static). views None: the batch already holds the views
  ("image" = q, "image_k" = k, "mask" = q's mask)."""
  objective: ObjectiveConfig = ObjectiveConfig()
  queue: QueueConfig = QueueConfig()
  views: Optional[ViewConfig] = ViewConfig()
  momentum: float = 0.999
  intra_exclude_masked_pairs: bool = False
  mask_threshold: float = 0.01

  @property
  def uses_intra(self) -> bool:
    return self.objective.intra_weight > 0

  @property
  def uses_inter(self) -> bool:
    return self.objective.inter_weight > 0


def _views(cfg: DCLConfig, batch, rng):
  if cfg.views is None:
    return batch["image"], batch["image_k"], batch.get("mask")
  return make_views(rng, batch["image"], batch.get("mask"), cfg.views)


def resize_mask(mask: jax.Array, hw: tuple[int, int]) -> jax.Array:
  """[B, H, W] -> [B, h, w] bilinear without antialiasing (cv2.resize INTER_LINEAR)."""
  return jax.image.resize(mask.astype(jnp.float32), (mask.shape[0], *hw), "linear",
                          antialias=False)


def make_train_step(gdef_q, gdef_k, tx: optax.GradientTransformation, cfg: DCLConfig,
                    steps_per_epoch: int):
  """fn(state, batch, rng) -> (state, metrics). batch: "image" [B, H, W, 3] (uint8 or float
  in [0, 1]), "label" [B] (1 = fake), "mask" [B, H, W] (needed when Intra-ICL is on)."""
  oc = cfg.objective

  def step(state, batch, rng):
    r_view, r_loss = jax.random.split(rng)
    labels = batch["label"].astype(jnp.int32)
    q_img, k_img, q_mask = _views(cfg, batch, r_view)
    epoch = state["step"] // max(int(steps_per_epoch), 1)
    weights = loss_weights(epoch, oc)
    # Momentum update of the key encoder's params (pre-update theta_q), then its forward.
    k_state = state["models"][KEY]
    k_params = momentum_update(k_state["params"], state["models"][QUERY]["params"], cfg.momentum)
    k_model = nnx.merge(gdef_k, k_params, k_state["rest"], copy=True)
    k_out = k_model(k_img, train=True)
    keys = jax.lax.stop_gradient(k_out["embedding"])
    k_rest = nnx.state(k_model, nnx.Not(nnx.Param))
    memory = update_memory(state["extras"]["memory"], keys, labels, cfg.queue)

    def loss_fn(model, batch, rng, st):
      out = model(q_img, train=True)
      logits = out["logits"].astype(jnp.float32)
      terms = {"ce": optim.cross_entropy(logits, labels)}
      terms["inter"] = (inter_icl_loss(out["embedding"], keys, labels, memory["queue_real"],
                                       memory["queue_fake"], oc.temperature)
                        if cfg.uses_inter else jnp.zeros(()))
      if cfg.uses_intra:
        fmap = out["fmap"]
        m = resize_mask(q_mask, fmap.shape[1:3])
        f, r = intra_icl_loss(fmap, m, labels, oc.temperature, cfg.mask_threshold,
                              cfg.intra_exclude_masked_pairs)
      else:
        f = r = jnp.zeros(())
      terms["intra_fake"], terms["intra_real"] = f, r
      acc = jnp.mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32))
      return combine(terms, weights), {**terms, "accuracy": acc, "ce_weight": weights["ce"]}

    new, metrics = roles.role_update(state, QUERY, gdef_q, tx, loss_fn, batch, r_loss)
    new["models"] = {**new["models"], KEY: {"params": k_params, "rest": k_rest}}
    new["extras"] = {**new["extras"], "memory": memory}
    new["step"] = state["step"] + 1
    return new, metrics

  return step


def make_ce_step(gdef_q, tx: optax.GradientTransformation, cfg: DCLConfig):
  """The CE-only baseline on the same q view (no key encoder, no memory)."""

  def step(state, batch, rng):
    q_img, _, _ = _views(cfg, batch, jax.random.split(rng)[0])
    labels = batch["label"].astype(jnp.int32)

    def loss_fn(model, batch, rng, st):
      logits = model(q_img, train=True)["logits"].astype(jnp.float32)
      acc = jnp.mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32))
      return optim.cross_entropy(logits, labels), {"accuracy": acc}

    new, metrics = roles.role_update(state, QUERY, gdef_q, tx, loss_fn, batch, rng)
    new["step"] = state["step"] + 1
    return new, metrics

  return step


def fake_probability(gdef_q):
  """fn(state, images [B, H, W, 3] normalised) -> p_fake [B] (softmax[:, 1], eval mode)."""

  def fn(state, images):
    out = roles.merge(gdef_q, state["models"][QUERY])(images, train=False)
    return jax.nn.softmax(out["logits"].astype(jnp.float32), -1)[:, 1]

  return fn
