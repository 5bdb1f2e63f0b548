"""Matting losses (FBA-style, spec lfpnet.md §4 [RECON]); pure jnp, float32.

Every map is [B, H, W, C] and every `mask` is [B, H, W, 1] with values in [0, 1] (the region the
loss is averaged over, e.g. the trimap's unknown region). Masked means divide by the mask's sum
times the channel count (plus 1e-6), so an empty mask gives 0, not NaN.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-6


def masked_l1(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """sum(|pred - target| * mask) / (sum(mask) * C)."""
  c = pred.shape[-1]
  d = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)) * mask
  return jnp.sum(d) / (jnp.sum(mask) * c + EPS)


def composition_loss(alpha, fg, bg, image, mask) -> jax.Array:
  """L1 between alpha*F + (1-alpha)*B and the image on `mask`. alpha: [B,H,W,1]; others [..,3]."""
  return masked_l1(alpha * fg + (1 - alpha) * bg, image, mask)


def gradient_loss(pred, target, mask) -> jax.Array:
  """L1 of the forward differences along rows and columns (mask taken at the first pixel)."""
  dy = lambda t: t[:, 1:] - t[:, :-1]  # noqa: E731
  dx = lambda t: t[:, :, 1:] - t[:, :, :-1]  # noqa: E731
  return (masked_l1(dy(pred), dy(target), mask[:, 1:]) +
          masked_l1(dx(pred), dx(target), mask[:, :, 1:]))


def gaussian_kernel(size: int = 5, sigma: float = 1.0) -> np.ndarray:
  r = np.arange(size) - size // 2
  g = np.exp(-r ** 2 / (2 * sigma ** 2))
  k = np.outer(g, g)
  return (k / k.sum()).astype(np.float32)


def _blur(x, k):
  c = x.shape[-1]
  kern = jnp.tile(jnp.asarray(k)[:, :, None, None], (1, 1, 1, c))
  p = k.shape[0] // 2
  x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
  return jax.lax.conv_general_dilated(x, kern, (1, 1), "VALID", feature_group_count=c,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def laplacian_pyramid(x: jax.Array, levels: int = 5, sigma: float = 1.0) -> list[jax.Array]:
  """Band-pass levels x_i - up(down(x_i)) (Gaussian 5x5 blur, 2x decimation), then the residual.

  Returns `levels` arrays; sides must stay even for levels - 1 halvings.
  """
  k = gaussian_kernel(5, sigma)
  out, cur = [], x.astype(jnp.float32)
  for _ in range(levels - 1):
    low = _blur(cur, k)[:, ::2, ::2]
    up = jnp.zeros_like(cur).at[:, ::2, ::2].set(low)
    up = _blur(up, k * 4)
    out.append(cur - up)
    cur = low
  out.append(cur)
  return out


def laplacian_loss(pred, target, mask, levels: int = 5, sigma: float = 1.0) -> jax.Array:
  """sum_i 2^i * L1(L_i(pred * mask), L_i(target * mask)) over a `levels`-level pyramid."""
  lp = laplacian_pyramid(pred * mask, levels, sigma)
  lt = laplacian_pyramid(target * mask, levels, sigma)
  return sum((2.0 ** i) * jnp.mean(jnp.abs(a - b)) for i, (a, b) in enumerate(zip(lp, lt)))


def exclusion_loss(fg, bg, mask) -> jax.Array:
  """Mean |grad F| * |grad B| on `mask` (F and B should not share edges; FBA's exclusion term)."""
  def g(t):
    return (jnp.abs(t[:, 1:, 1:] - t[:, :-1, 1:]) + jnp.abs(t[:, 1:, 1:] - t[:, 1:, :-1]))
  return masked_l1(g(fg) * g(bg), jnp.zeros_like(fg[:, 1:, 1:]), mask[:, 1:, 1:])


def fb_loss(fg, bg, fg_gt, bg_gt, alpha_gt, image, mask) -> jax.Array:
  """L1(F, F_gt) where alpha_gt > 0, L1(B, B_gt) where alpha_gt < 1 (both within `mask`), the
  composition of (alpha_gt, F, B) against the image, and the exclusion term."""
  m_f = mask * (alpha_gt > 0)
  m_b = mask * (alpha_gt < 1)
  return (masked_l1(fg, fg_gt, m_f) + masked_l1(bg, bg_gt, m_b) +
          composition_loss(alpha_gt, fg, bg, image, mask) + exclusion_loss(fg, bg, mask))
