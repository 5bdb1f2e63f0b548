"""Plain-jnp dynamic depthwise convolutions: the oracles and the CPU default.

Per-pixel (LaConv / SAN `aggregation_zeropad`, NHWC):
  out[b,h,w,c] = sum_{dy,dx} K[b,h,w, (c mod G)*k*k + dy*k + dx]
                             * x_pad[b, h + dy*d, w + dx*d, c]
  zero padding p = d*(k-1)/2 ('SAME', odd k). Channels use kernel groups
  interleaved (c mod G), as the released LaConvNet code.
Per-example: out[b,h,w,c] = sum_{dy,dx} K[b,dy,dx, c mod G] * x_pad[b,h+dy*d,w+dx*d,c].
Gradients come from XLA autodiff; accumulation in float32, output in x.dtype.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _pad(x, p):
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def dynamic_conv_reference(x, kernels, *, kernel_size: int, groups: int, dilation: int = 1):
  """x: [B,H,W,C]; kernels: [B,H,W,G*k*k] -> [B,H,W,C].

  Loop over the k*k taps on static slices of the padded input (O(BHWC) memory,
  unlike unfold's O(BHWCk^2)); channels reshaped C -> (C/G, G), G fastest.
  """
  b, h, w, c = x.shape
  k, g, d = kernel_size, groups, dilation
  p = d * (k - 1) // 2
  xp = _pad(x, p).astype(jnp.float32)
  kr = kernels.astype(jnp.float32).reshape(b, h, w, 1, g, k * k)
  acc = jnp.zeros((b, h, w, c // g, g), jnp.float32)
  for dy in range(k):
    for dx in range(k):
      xs = xp[:, dy * d:dy * d + h, dx * d:dx * d + w, :].reshape(b, h, w, c // g, g)
      acc = acc + xs * kr[..., dy * k + dx]
  return acc.reshape(b, h, w, c).astype(x.dtype)


def dynamic_conv_per_example_reference(x, kernels, *, dilation: int = 1):
  """x: [B,H,W,C]; kernels: [B,k,k,G] (G divides C; G = C is depthwise) -> [B,H,W,C].

  The batch is folded into feature groups: one depthwise conv with B*C groups.
  """
  b, h, w, c = x.shape
  k, g = kernels.shape[1], kernels.shape[3]
  p = dilation * (k - 1) // 2
  kc = jnp.tile(kernels, (1, 1, 1, c // g))  # [B,k,k,C], channel c -> group c mod G
  lhs = x.transpose(1, 2, 0, 3).reshape(1, h, w, b * c)
  rhs = kc.transpose(1, 2, 0, 3).reshape(k, k, 1, b * c)
  out = jax.lax.conv_general_dilated(
      lhs.astype(jnp.float32), rhs.astype(jnp.float32), window_strides=(1, 1),
      padding=((p, p), (p, p)), rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=b * c,
      precision=jax.lax.Precision.HIGHEST)
  return out.reshape(h, w, b, c).transpose(2, 0, 1, 3).astype(x.dtype)
