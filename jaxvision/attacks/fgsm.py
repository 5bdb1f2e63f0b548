"""L∞ iterative gradient-sign transfer attacks: I-FGSM, MI-FGSM, DI, TI, SGM (composable).

One step t (per example, all batched):
  x_in = DI(x_t)                         if di_prob > 0 (random resize-pad, prob di_prob)
  grad = ∇_{x_t} L(f(x_in; SGM hook), y)  L = CE, summed (so gradients are per example)
  grad = W_ti * grad                     if ti_kernel > 0 (depthwise Gaussian smoothing)
  g    = momentum * g + grad / mean|grad|  (momentum 0: plain I-FGSM; sign is unchanged)
  x_{t+1} = Π_{x,eps}(x_t + step_size * sign(g))   (− for targeted attacks)
Refs: I-FGSM (Kurakin+ 2017), MI-FGSM (Dong+ 2018), DI (Xie+ 2019), TI (Dong+ 2019),
SGM (Wu+ 2020); llta.md §5/§9 for the settings used as baselines.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxvision.attacks import ops
from jaxvision.attacks.surrogate import Surrogate


def check_budget(eps: float, steps: int, step_size: float | None, momentum: float,
                 clip_min: float, clip_max: float) -> None:
  """Shared start-up checks of the L∞ budget (one clear line each)."""
  span = clip_max - clip_min
  if not clip_max > clip_min:
    raise ValueError(f"clip_min={clip_min} must be below clip_max={clip_max}.")
  if not 0 < eps <= span:
    hint = (f" eps is in pixel units of [{clip_min}, {clip_max}]: write eps=16/255, not 16."
            if eps > span else "")
    raise ValueError(f"eps={eps} must be in (0, {span}].{hint}")
  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}.")
  if step_size is not None and not 0 < step_size <= span:
    raise ValueError(f"step_size={step_size} must be in (0, {span}] (pixel units; e.g. 1.6/255).")
  if momentum < 0:
    raise ValueError(f"momentum must be >= 0 (0 = no momentum, 1.0 = MI-FGSM), got {momentum}.")


def _check_ti(size: int) -> None:
  if size < 0 or (size and size % 2 == 0):
    raise ValueError(f"ti_kernel must be 0 (off) or an odd size, got {size}.")


def _check_prob(name: str, p: float) -> None:
  if not 0.0 <= p <= 1.0:
    raise ValueError(f"{name} must be a probability in [0, 1], got {p}.")


@dataclasses.dataclass(frozen=True)
class AttackConfig:
  """I-FGSM family settings (jit static). Pixel units of [clip_min, clip_max].

  eps: L∞ budget. steps: iterations. step_size: None = eps / steps. momentum: MI decay μ
  (0 = I-FGSM). di_prob / di_resize_rate: DI probability and canvas rate (0 = off).
  ti_kernel / ti_nsig: TI Gaussian size (0 = off) and width. sgm_gamma: SGM residual-branch
  gradient scale (1 = off). targeted: descend the loss of the given (target) labels.
  """
  eps: float = 16 / 255
  steps: int = 10
  step_size: float | None = None
  momentum: float = 0.0
  di_prob: float = 0.0
  di_resize_rate: float = 1.1
  ti_kernel: int = 0
  ti_nsig: float = 3.0
  sgm_gamma: float = 1.0
  targeted: bool = False
  clip_min: float = 0.0
  clip_max: float = 1.0

  def __post_init__(self):
    check_budget(self.eps, self.steps, self.step_size, self.momentum, self.clip_min,
                 self.clip_max)
    _check_prob("di_prob", self.di_prob)
    if self.di_resize_rate < 1:
      raise ValueError(f"di_resize_rate must be >= 1, got {self.di_resize_rate}.")
    _check_ti(self.ti_kernel)
    if not 0.0 <= self.sgm_gamma <= 1.0:
      raise ValueError(f"sgm_gamma must be in [0, 1] (1 = off; 0.2 for ResNets), "
                       f"got {self.sgm_gamma}.")

  @property
  def alpha(self) -> float:
    return self.eps / self.steps if self.step_size is None else self.step_size


def fgsm_attack(cfg: AttackConfig, surrogate: Surrogate, variables, x: jax.Array,
                labels: jax.Array, rng: jax.Array) -> jax.Array:
  """Runs the configured I-FGSM-family attack; pure and jittable (cfg, surrogate static).

  x: [B, H, W, C] in [clip_min, clip_max]; labels: [B] int; rng: one key or [B] keys.
  Returns x_adv: [B, H, W, C] with ‖x_adv − x‖∞ ≤ eps, inside the pixel range.
  """
  hook = None
  if cfg.sgm_gamma != 1.0:
    surrogate.require_hook("SGM")
    hook = surrogate.sgm_hook(cfg.sgm_gamma)
  keys = ops.example_keys(rng, x.shape[0])
  kernel = ops.gaussian_kernel(cfg.ti_kernel, cfg.ti_nsig) if cfg.ti_kernel else None
  sign = -1.0 if cfg.targeted else 1.0
  x = x.astype(jnp.float32)

  def loss(xa, kt):
    xin = ops.input_diversity(xa, kt, cfg.di_prob, cfg.di_resize_rate) if cfg.di_prob else xa
    return ops.ce_sum(surrogate.apply(variables, xin, hook), labels)

  def step(t, carry):
    xa, g = carry
    grad = jax.grad(loss)(xa, ops.fold_in(keys, t))
    if kernel is not None:
      grad = ops.ti_smooth(grad, kernel)
    g = ops.momentum_update(g, grad, cfg.momentum)
    xa = ops.project_linf(xa + sign * cfg.alpha * jnp.sign(g), x, cfg.eps, cfg.clip_min,
                          cfg.clip_max)
    return xa, g

  xa, _ = jax.lax.fori_loop(0, cfg.steps, step, (x, jnp.zeros_like(x)))
  return xa
