"""Selective-activation gates of the student discriminator (spec §2.3 "Gate module").

The gate itself (`SelectiveGate`, `gate_mask` with its straight-through VJP, `GateAlpha`) is
part of the zoo (jaxvision/models/gan.py) so discriminators can carry it; this module holds
what the method does with it: parameter filters, clipping and reporting.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models.gan import GateAlpha, SelectiveGate, gate_mask, gates_of

# The D weight optimizer trains WEIGHTS (conv / BN / linear params); the arch step trains ALPHA.
ALPHA = GateAlpha
WEIGHTS = nnx.All(nnx.Param, nnx.Not(GateAlpha))


def clip_alpha(alpha_state):
  """Clips every alpha leaf of a state (or any pytree of alphas) into [0, 1] (pure)."""
  return jax.tree.map(lambda a: jnp.clip(a, 0.0, 1.0), alpha_state)


def clip_model_alpha(model: nnx.Module) -> None:
  """In-place version on a module (host side, GCC `clipping_mask_alpha`)."""
  for _, g in gates_of(model):
    g.alpha[...] = jnp.clip(g.alpha[...], 0.0, 1.0)


def gate_report(model: nnx.Module) -> list[dict]:
  """Per gate: path, channels, active (mask == 1), half (alpha == threshold), off (mask == 0),
  and alpha min / mean (what summary.json records per D layer)."""
  out = []
  for path, g in gates_of(model):
    # on the host (eager jnp here compiled a tiny XLA program per op and gate shape at every
    # summary); gate_mask is 1 / 0.5 / 0 where alpha is above / at / below the threshold
    a, t = np.asarray(jax.device_get(g.alpha[...]), np.float32), np.float32(g.threshold)
    out.append(dict(path=path, channels=int(a.shape[0]), active=int(np.sum(a > t)),
                    half=int(np.sum(a == t)), off=int(np.sum(a < t)),
                    alpha_min=float(np.min(a)), alpha_mean=float(np.mean(a, dtype=np.float64))))
  return out


__all__ = ["ALPHA", "WEIGHTS", "GateAlpha", "SelectiveGate", "clip_alpha", "clip_model_alpha",
           "gate_mask", "gate_report", "gates_of"]
