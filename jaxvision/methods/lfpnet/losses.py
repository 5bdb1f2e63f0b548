"""The LFPNet training loss (spec lfpnet.md §4, [RECON] FBA-style; equal weights, context 0.5)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxvision.losses import matting as M


@dataclasses.dataclass(frozen=True)
class LossWeights:
  """Weights of the loss terms (0 disables a term)."""
  alpha: float = 1.0
  comp: float = 1.0
  lap: float = 1.0
  grad: float = 1.0
  fb: float = 1.0
  context: float = 0.5


def lfpnet_loss(out: jax.Array, batch: dict, ctx_alpha: jax.Array | None = None,
                weights: LossWeights = LossWeights()) -> tuple[jax.Array, dict]:
  """Total loss and its terms.

  out: [B, S, S, 7] model output (alpha, F, B). batch keys: `raw` [B,S,S,3] image in [0, 1],
  `onehot` [B,S,S,3] trimap (bg, unknown, fg), `alpha` [B,S,S,1], `fg`, `bg` [B,S,S,3];
  for the context term `alpha_ctx` [B,2S,2S,1] and `onehot_ctx` [B,2S,2S,3].
  The alpha terms use alpha_out = alpha * unknown + fg on the unknown region.
  """
  a, f, b = out[..., :1], out[..., 1:4], out[..., 4:7]
  u = batch["onehot"][..., 1:2].astype(jnp.float32)
  a = a * u + batch["onehot"][..., 2:3]
  gt = batch["alpha"].astype(jnp.float32)
  terms = {
      "l_alpha": M.masked_l1(a, gt, u),
      "l_comp": M.composition_loss(a, batch["fg"], batch["bg"], batch["raw"], u),
      "l_lap": M.laplacian_loss(a, gt, u),
      "l_grad": M.gradient_loss(a, gt, u),
      "l_fb": M.fb_loss(f, b, batch["fg"], batch["bg"], gt, batch["raw"], u),
  }
  total = (weights.alpha * terms["l_alpha"] + weights.comp * terms["l_comp"] +
           weights.lap * terms["l_lap"] + weights.grad * terms["l_grad"] +
           weights.fb * terms["l_fb"])
  if ctx_alpha is not None and weights.context:
    uc = batch["onehot_ctx"][..., 1:2].astype(jnp.float32)
    terms["l_context"] = M.masked_l1(ctx_alpha, batch["alpha_ctx"], uc)
    total = total + weights.context * terms["l_context"]
  terms["loss"] = total
  return total, terms
