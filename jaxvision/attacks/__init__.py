"""jaxvision.attacks: L∞ transfer attacks on a white-box surrogate (batched, jittable, shardable).

    surrogate, variables = attacks.from_nnx(model, mean=MEAN, std=STD)   # x in [0, 1]
    cfg = attacks.attack_config("llta", eps=16 / 255)                    # or "mifgsm", "dim", ...
    attack = attacks.make_attack(cfg, surrogate)                          # jitted
    x_adv = attack(variables, x, labels, jax.random.key(0))              # x: [B, H, W, C]

Attacks: I-FGSM, MI-FGSM, DI, TI, SGM (`AttackConfig`, composable) and LLTA (`LLTAConfig`,
with MI on/off). Each is a pure function (cfg, surrogate, variables, x, labels, rng) -> x_adv
with per-example randomness: an image's result does not depend on its batch.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Callable

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxvision.attacks.fgsm import AttackConfig, fgsm_attack
from jaxvision.attacks.llta import (LLTAConfig, TaskSet, llta_attack, meta_gradient,
                                    sample_tasks, search_gamma)
from jaxvision.attacks.ops import (canvas_size, ce_sum, decay_relu, example_keys,
                                   gaussian_kernel, input_diversity, mi_normalize,
                                   momentum_update, project_linf, resize_pad, ti_smooth)
from jaxvision.attacks.surrogate import Surrogate, from_nnx, predict_labels, residual_layout

# Named presets (llta.md §5/§9 baselines). Momentum 1.0 = MI-FGSM (DIM/TIM/SGM build on MI as
# in TransferAttack); "llta" is the official no-MI variant, "llta_mi" the TransferAttack one,
# "llta_mi_ti" adds TIM's depthwise smoothing (the official `ti` switch, bug fixed).
PRESETS: dict[str, tuple[type, dict]] = {
    "ifgsm": (AttackConfig, {}),
    "mifgsm": (AttackConfig, {"momentum": 1.0}),
    "dim": (AttackConfig, {"momentum": 1.0, "di_prob": 0.5, "di_resize_rate": 1.1}),
    "tim": (AttackConfig, {"momentum": 1.0, "ti_kernel": 7, "ti_nsig": 3.0}),
    "sgm": (AttackConfig, {"momentum": 1.0, "sgm_gamma": 0.2}),
    "llta": (LLTAConfig, {}),
    "llta_mi": (LLTAConfig, {"momentum": 1.0}),
    "llta_mi_ti": (LLTAConfig, {"momentum": 1.0, "ti_kernel": 7, "ti_nsig": 3.0}),
}
ATTACK_NAMES = tuple(PRESETS)


def attack_config(name: str, **overrides) -> AttackConfig | LLTAConfig:
  """The preset `name` (one of ATTACK_NAMES) with `overrides` (eps, steps, ... fields)."""
  if name not in PRESETS:
    close = difflib.get_close_matches(name, PRESETS, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ValueError(f"unknown attack '{name}'.{hint} Valid attacks: {', '.join(PRESETS)}.")
  cls, preset = PRESETS[name]
  fields = {f.name for f in dataclasses.fields(cls)}
  bad = sorted(set(overrides) - fields)
  if bad:
    raise ValueError(f"attack '{name}' ({cls.__name__}) has no setting(s) {bad}; valid: "
                     f"{sorted(fields)}.")
  return cls(**{**preset, **overrides})


def run_attack(cfg: AttackConfig | LLTAConfig, surrogate: Surrogate, variables, x, labels, rng):
  """Dispatches to `llta_attack` or `fgsm_attack` (pure; jit with cfg, surrogate static)."""
  if isinstance(cfg, LLTAConfig):
    return llta_attack(cfg, surrogate, variables, x, labels, rng)
  if isinstance(cfg, AttackConfig):
    return fgsm_attack(cfg, surrogate, variables, x, labels, rng)
  raise TypeError(f"cfg must be an AttackConfig or LLTAConfig, got {type(cfg).__name__}.")


def make_attack(cfg: AttackConfig | LLTAConfig, surrogate: Surrogate,
                mesh: jax.sharding.Mesh | None = None, data_axis: str = "data") -> Callable:
  """Jitted `attack(variables, x, labels, rng) -> x_adv`. With `mesh`, images, labels and the
  per-example keys are sharded over `data_axis` and the variables replicated (B must divide
  by the axis size); pass rng as one key (split per example inside) or [B] keys.
  """
  if not isinstance(cfg, (AttackConfig, LLTAConfig)):
    raise TypeError(f"cfg must be an AttackConfig or LLTAConfig, got {type(cfg).__name__}.")

  def attack(variables, x, labels, rng):
    keys = example_keys(rng, x.shape[0])
    if mesh is not None:
      keys = jax.lax.with_sharding_constraint(keys, NamedSharding(mesh, P(data_axis)))
    return run_attack(cfg, surrogate, variables, x, labels, keys)

  if mesh is None:
    return jax.jit(attack)
  rep, dat = NamedSharding(mesh, P()), NamedSharding(mesh, P(data_axis))
  return jax.jit(attack, in_shardings=(rep, dat, dat, None), out_shardings=dat)


__all__ = [
    "ATTACK_NAMES", "PRESETS", "AttackConfig", "LLTAConfig", "Surrogate", "TaskSet",
    "attack_config", "canvas_size", "ce_sum", "decay_relu", "example_keys", "fgsm_attack",
    "from_nnx", "gaussian_kernel", "input_diversity", "llta_attack", "make_attack",
    "meta_gradient", "mi_normalize", "momentum_update", "predict_labels", "project_linf",
    "residual_layout", "resize_pad", "run_attack", "sample_tasks", "search_gamma",
    "ti_smooth",
]
