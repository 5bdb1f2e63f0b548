"""IntraQ image synthesis (spec §2.1): pure, jittable pieces.

Pixels x [N, H, W, C] (normalised input space, no clamping) are optimised against
the frozen FP teacher (eval-mode BN) with
  L = L_BNS + L_label + L_MDC,
L_label = soft inception loss (IntraQ), cross-entropy ('ce', ZeroQ+IL / GDFQ-style)
or nothing ('none', ZeroQ); local object reinforcement (LOR) feeds RRC+flip crops
to the teacher with probability p_lor per iteration. Adam + ReduceLROnPlateau.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision import losses
from jaxvision.methods.intraq import augment

LABEL_LOSSES = ("soft", "ce", "none")


@dataclasses.dataclass(frozen=True)
class SynthConfig:
  """Static synthesis settings (see configs/intraq.py for the per-dataset values)."""
  iters: int = 1000
  lr: float = 0.5
  b1: float = 0.9
  b2: float = 0.999
  plateau_factor: float = 0.1
  plateau_patience: int = 50
  plateau_min_lr: float = 1e-4
  bns_weight: float = 1.0
  lor: bool = True
  p_lor: float = 0.5
  lor_min_scale: float = 0.5
  label_loss: str = "soft"
  eps_soft: float = 1.0
  p_soft: float = 0.5
  mdc: bool = True
  lambda_l: float = 0.0
  lambda_u: float = 2.0
  feature_layer: str = "fc"

  def __post_init__(self):
    if self.label_loss not in LABEL_LOSSES:
      raise ValueError(f"synthesis label_loss={self.label_loss!r} is not one of {LABEL_LOSSES}.")
    if self.iters < 1:
      raise ValueError(f"synthesis iters must be >= 1, got {self.iters}.")
    if self.lambda_l > self.lambda_u:
      raise ValueError(f"lambda_l={self.lambda_l} must be <= lambda_u={self.lambda_u}.")


def teacher_forward(gdef, teacher_state: dict, x: jax.Array, feature_layer: str):
  """Eval-mode teacher forward with BN/feature taps.

  Returns (logits [N, K], bn stats list, features [N, D]).
  """
  model = nnx.merge(gdef, teacher_state["params"], teacher_state["rest"])
  losses.attach_taps(model, feature_layer=feature_layer)
  logits = model(x, train=False)
  return logits, losses.bn_stats(model), losses.captured_features(model)


def synthesis_loss(cfg: SynthConfig, logits, stats, feats, labels, soft, centres):
  """Total loss and its terms. labels/soft: [N]; centres: running sums (see losses.intraq)."""
  terms = {"bns": losses.bn_stats_loss(stats)}
  if cfg.label_loss == "soft":
    terms["sil"] = losses.soft_inception_loss(logits, labels, soft)
  elif cfg.label_loss == "ce":
    terms["ce"] = losses.cross_entropy(logits, labels)
  if cfg.mdc:
    c, mask = losses.lookup_centres(centres, labels)
    terms["mdc"] = losses.marginal_distance_loss(feats, c, mask, cfg.lambda_l, cfg.lambda_u)
  total = cfg.bns_weight * terms["bns"] + sum(v for k, v in terms.items() if k != "bns")
  return total, terms


def adam(cfg: SynthConfig) -> optax.GradientTransformation:
  """Adam direction (torch semantics); the step size comes from the plateau state."""
  return optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=1e-8)


def init_plateau(cfg: SynthConfig) -> dict:
  big = jnp.finfo(jnp.float32).max  # 'inf' of torch, kept finite for checkpoint checks
  return {"lr": jnp.asarray(cfg.lr, jnp.float32), "best": jnp.asarray(big, jnp.float32),
          "bad": jnp.zeros((), jnp.int32)}


def plateau_update(cfg: SynthConfig, st: dict, loss: jax.Array) -> dict:
  """torch ReduceLROnPlateau(mode='min', threshold=1e-4 rel, cooldown 0), stepped on `loss`."""
  better = loss < st["best"] * (1.0 - 1e-4)
  best = jnp.where(better, loss, st["best"])
  bad = jnp.where(better, 0, st["bad"] + 1)
  cut = bad > cfg.plateau_patience
  new_lr = jnp.maximum(st["lr"] * cfg.plateau_factor, cfg.plateau_min_lr)
  lr = jnp.where(cut & (st["lr"] - new_lr > 1e-8), new_lr, st["lr"])
  return {"lr": lr, "best": best, "bad": jnp.where(cut, 0, bad)}


def synth_iteration(cfg: SynthConfig, gdef, teacher_state, x, labels, soft, centres,
                    opt_state, plateau, rng):
  """One optimisation step of a batch x [N, H, W, C]. Returns (x, opt_state, plateau, metrics)."""
  k_coin, k_aug = jax.random.split(rng)

  def objective(x):
    xin = x
    if cfg.lor:
      aug = augment.random_resized_crop_flip(k_aug, x, cfg.lor_min_scale)
      xin = jnp.where(jax.random.bernoulli(k_coin, cfg.p_lor), aug, x)
    logits, stats, feats = teacher_forward(gdef, teacher_state, xin, cfg.feature_layer)
    return synthesis_loss(cfg, logits, stats, feats, labels, soft, centres)

  (loss, terms), g = jax.value_and_grad(objective, has_aux=True)(x)
  upd, opt_state = adam(cfg).update(g, opt_state)
  x = x - plateau["lr"] * upd
  plateau = plateau_update(cfg, plateau, loss)
  return x, opt_state, plateau, {"loss": loss, "lr": plateau["lr"], **terms}


def init_extras(rng, num_batches: int, batch: int, image_shape, num_classes: int,
                feat_dim: int, cfg: SynthConfig) -> dict:
  """Noise images [G, N, H, W, C], labels/soft targets [G, N], empty class centres."""
  k1, k2, k3 = jax.random.split(rng, 3)
  g = num_batches
  return {
      "images": jax.random.normal(k1, (g, batch, *image_shape), jnp.float32),
      "labels": jax.random.randint(k2, (g, batch), 0, num_classes, jnp.int32),
      "soft": losses.sample_soft_targets(k3, g * batch, cfg.eps_soft, cfg.p_soft).reshape(g, batch),
      "centres": losses.init_class_centres(num_classes, feat_dim),
      "plateau": init_plateau(cfg),
  }


def make_synthesis_step(cfg: SynthConfig, gdef, stage_start: int):
  """Step over state["extras"] for global step t: batch b = (t - start) // iters.

  At iteration 0 of a batch Adam and the plateau schedule restart; after its last
  iteration the teacher features of the finished images join the class centres
  (and, for label_loss='none', the teacher's predictions become the labels).
  """

  def step(state, batch, rng):
    del batch  # synthesis never reads data
    ex = state["extras"]
    t = state["step"] - stage_start
    b, it = t // cfg.iters, t % cfg.iters
    first = it == 0
    x = ex["images"][b]
    labels, soft = ex["labels"][b], ex["soft"][b]
    fresh_opt = adam(cfg).init(x)
    opt = jax.tree.map(lambda a, f: jnp.where(first, f, a), state["opt"]["images"], fresh_opt)
    plateau = jax.tree.map(lambda a, f: jnp.where(first, f, a), ex["plateau"], init_plateau(cfg))
    teacher = state["models"]["teacher"]
    x, opt, plateau, metrics = synth_iteration(cfg, gdef, teacher, x, labels, soft,
                                               ex["centres"], opt, plateau, rng)

    def finish(args):
      centres, all_labels = args
      logits, _, feats = teacher_forward(gdef, teacher, x, cfg.feature_layer)
      lab = labels
      if cfg.label_loss == "none":
        lab = jnp.argmax(logits, -1).astype(jnp.int32)
        all_labels = all_labels.at[b].set(lab)
      return losses.update_class_centres(centres, feats, lab), all_labels

    centres, all_labels = jax.lax.cond(it == cfg.iters - 1, finish, lambda a: a,
                                       (ex["centres"], ex["labels"]))
    new_ex = {**ex, "images": ex["images"].at[b].set(x), "plateau": plateau,
              "centres": centres, "labels": all_labels}
    new = {**state, "extras": new_ex, "opt": {**state["opt"], "images": opt},
           "step": state["step"] + 1}
    return new, metrics

  return step


def synthesize(cfg: SynthConfig, gdef, teacher_state: dict, extras: dict, rng) -> dict:
  """Runs the whole synthesis outside the training loop (notebooks, benchmarks).

  extras: from `init_extras`. Returns the updated extras (images, labels, centres).
  """
  g, n = extras["images"].shape[:2]
  state = {"step": jnp.zeros((), jnp.int32), "models": {"teacher": teacher_state},
           "opt": {"images": adam(cfg).init(extras["images"][0])}, "extras": extras}
  step = jax.jit(make_synthesis_step(cfg, gdef, 0))
  history = []
  for t in range(g * cfg.iters):
    state, m = step(state, None, jax.random.fold_in(rng, t))
    history.append(m)
  out = dict(state["extras"])
  out["history"] = jax.tree.map(lambda *v: jnp.stack(v), *history)
  return out
