"""Optimizers by name, learning-rate schedules, and label-smoothed cross-entropy.

PyTorch conventions, since the papers' numbers come from PyTorch code: SGD adds
the weight decay to the gradient before momentum (coupled L2), momentum buffer
`b = m*b + g`, update `-lr*b`; epochs are converted to steps with the run's
`steps_per_epoch`.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax

SCHEDULES = ("constant", "cosine", "step", "multistep", "linear")
OPTIMIZERS = ("sgd", "adam", "adamw", "radam")


def lr_schedule(cfg, steps_per_epoch: int, total_steps: int) -> Callable[[Any], Any]:
  """Returns step -> learning rate for `cfg.schedule` with optional linear warm-up.

  cosine: lr * (1 + cos(pi * t / T)) / 2 over the steps after warm-up.
  step/multistep: lr * gamma ** (number of `milestones_epochs` passed).
  linear: lr until `decay_start_epochs`, then linearly to 0 at the last step (Pix2Pix/CycleGAN:
    lr * (1 - max(0, t - start) / (T - start + 1))).
  warmup_epochs: lr * (step + 1) / warmup_steps for the first warmup_steps.
  """
  if cfg.schedule not in SCHEDULES:
    raise ValueError(f"optim.schedule='{cfg.schedule}' is not one of {', '.join(SCHEDULES)}")
  base = float(cfg.lr)
  warmup = int(round(float(cfg.get("warmup_epochs", 0.0)) * steps_per_epoch))
  total = max(int(total_steps), 1)
  milestones = [int(round(float(e) * steps_per_epoch)) for e in cfg.get("milestones_epochs", ())]
  gamma = float(cfg.get("gamma", 0.1))

  def fn(step):
    step = jnp.asarray(step, jnp.float32)
    if cfg.schedule == "constant":
      lr = jnp.asarray(base, jnp.float32)
    elif cfg.schedule == "linear":
      start = int(round(float(cfg.get("decay_start_epochs", 0.0)) * steps_per_epoch))
      lr = base * (1.0 - jnp.maximum(0.0, step - start) / max(total - start + 1, 1))
    elif cfg.schedule == "cosine":
      t = jnp.clip((step - warmup) / max(total - warmup, 1), 0.0, 1.0)
      lr = base * 0.5 * (1.0 + jnp.cos(jnp.pi * t))
    else:
      passed = sum((step >= m).astype(jnp.float32) for m in milestones) if milestones else 0.0
      lr = base * gamma ** passed
    if warmup > 0:
      lr = lr * jnp.minimum((step + 1.0) / warmup, 1.0)
    return lr

  return fn


def make_optimizer(cfg, steps_per_epoch: int, total_steps: int, *,
                   decay_mask: Optional[Any] = None,
                   lr_multiplier: float = 1.0) -> optax.GradientTransformation:
  """Builds the optax transformation named by `cfg.name` ("sgd", "adam", "adamw", "radam").

  radam is torch.optim.RAdam (Liu et al. 2020): the variance rectification switches on once
  rho_t > 5, before that the update is lr * bias-corrected momentum; weight decay is coupled L2
  as PyTorch's default (decoupled_weight_decay=False).

  Args:
    cfg: the `config.optim` ConfigDict (name, lr, momentum, nesterov,
      weight_decay, schedule, milestones_epochs, gamma, warmup_epochs, b1, b2).
    steps_per_epoch, total_steps: to turn epochs into steps.
    decay_mask: pytree of bools (or callable params -> pytree) selecting which
      parameters get weight decay; None decays all.
    lr_multiplier: scales the whole schedule.
  """
  if cfg.name not in OPTIMIZERS:
    raise ValueError(f"optim.name='{cfg.name}' is not one of {', '.join(OPTIMIZERS)}")
  sched = lr_schedule(cfg, steps_per_epoch, total_steps)
  lr = (lambda s: sched(s) * lr_multiplier) if lr_multiplier != 1.0 else sched
  wd = float(cfg.get("weight_decay", 0.0))
  parts = []
  if cfg.name == "sgd":
    if wd:
      parts.append(optax.add_decayed_weights(wd, mask=decay_mask))
    parts.append(optax.sgd(lr, momentum=float(cfg.momentum) or None,
                           nesterov=bool(cfg.get("nesterov", False))))
  elif cfg.name in ("adam", "radam"):
    if wd:
      parts.append(optax.add_decayed_weights(wd, mask=decay_mask))
    fn = optax.adam if cfg.name == "adam" else optax.radam
    parts.append(fn(lr, b1=float(cfg.get("b1", 0.9)), b2=float(cfg.get("b2", 0.999))))
  else:
    parts.append(optax.adamw(lr, b1=float(cfg.get("b1", 0.9)), b2=float(cfg.get("b2", 0.999)),
                             weight_decay=wd, mask=decay_mask))
  return optax.chain(*parts)


def cross_entropy(logits, labels, label_smoothing: float = 0.0):
  """Mean softmax cross-entropy. logits: [B, C] (any float dtype), labels: [B] int."""
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[-1]
  onehot = jax.nn.one_hot(labels, num_classes)
  if label_smoothing:
    onehot = onehot * (1.0 - label_smoothing) + label_smoothing / num_classes
  return optax.softmax_cross_entropy(logits, onehot).mean()
