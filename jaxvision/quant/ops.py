"""Uniform fake quantization with a straight-through gradient.

Asymmetric (IntraQ / ZeroQ quant_utils), from a range [l, u] and b bits:
  s = (2^b - 1) / max(u - l, 1e-8)          (inverse step)
  z = -(round(s l) + 2^(b-1))               (integer zero point)
  q = clip(round(s x + z), -2^(b-1), 2^(b-1) - 1)
  x_hat = (q - z) / s
Symmetric: s = qmax / max(max(|l|, |u|), 1e-8), z = 0, q in [-qmax, qmax].

Backward: d x_hat / d x = 1 everywhere (no clipping mask), no gradient to l, u.
`fake_quant` is the single switch point between this jnp reference and the
kernel package (`jaxvision.kernels`).
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jaxvision.quant.spec import QuantSpec


def qparams(lo: jax.Array, hi: jax.Array, spec: QuantSpec) -> tuple[jax.Array, jax.Array]:
  """Range -> (inverse step s, integer zero point z), both float32, shaped like lo.

  Args:
    lo, hi: range bounds, scalar (per tensor) or [C] (per channel).
  """
  lo = jax.lax.stop_gradient(jnp.asarray(lo, jnp.float32))
  hi = jax.lax.stop_gradient(jnp.asarray(hi, jnp.float32))
  if spec.symmetric:
    amax = jnp.maximum(jnp.abs(lo), jnp.abs(hi))
    s = spec.qmax / jnp.maximum(amax, 1e-8)
    return s, jnp.zeros_like(s)
  s = (2.0 ** spec.bits - 1.0) / jnp.maximum(hi - lo, 1e-8)
  z = -(jnp.round(s * lo) + 2.0 ** (spec.bits - 1))
  return s, z


def _bcast(v: jax.Array, x: jax.Array, axis: Optional[int]) -> jax.Array:
  """Reshapes per-channel v [C] to broadcast against x along `axis`."""
  if axis is None or v.ndim == 0:
    return v
  shape = [1] * x.ndim
  shape[axis % x.ndim] = v.shape[0]
  return v.reshape(shape)


def quantize(x: jax.Array, s: jax.Array, z: jax.Array, spec: QuantSpec,
             axis: Optional[int] = None) -> jax.Array:
  """Integer codes q (float32 holding integers) of x: clip(round(s x + z), qmin, qmax)."""
  s, z = _bcast(s, x, axis), _bcast(z, x, axis)
  return jnp.clip(jnp.round(x.astype(jnp.float32) * s + z), spec.qmin, spec.qmax)


def dequantize(q: jax.Array, s: jax.Array, z: jax.Array, axis: Optional[int] = None) -> jax.Array:
  """x_hat = (q - z) / s."""
  s, z = _bcast(s, q, axis), _bcast(z, q, axis)
  return (q.astype(jnp.float32) - z) / s


def fake_quant_reference(x: jax.Array, s: jax.Array, z: jax.Array, spec: QuantSpec,
                         axis: Optional[int] = None) -> jax.Array:
  """jnp oracle: dequantize(quantize(x)) with an identity (STE) gradient for x."""
  xq = dequantize(quantize(x, s, z, spec, axis), s, z, axis).astype(x.dtype)
  return x + jax.lax.stop_gradient(xq - x)


def fake_quant(x: jax.Array, lo: jax.Array, hi: jax.Array, spec: QuantSpec,
               axis: Optional[int] = None) -> jax.Array:
  """Fake-quantizes x to `spec.bits` over range [lo, hi] (STE backward).

  Args:
    x: any shape. lo, hi: scalars, or [C] with `axis` naming x's channel axis.
  Returns: x_hat, same shape and dtype as x.
  """
  s, z = qparams(lo, hi, spec)
  if USE_KERNEL and spec.bits <= 8 and x.dtype in (jnp.float32, jnp.bfloat16):
    return _kernel_fake_quant(x, s, z, spec, axis)
  return fake_quant_reference(x, s, z, spec, axis)


USE_KERNEL = True  # False: always the jnp reference above


def _kernel_fake_quant(x, s, z, spec: QuantSpec, axis):
  """The `jaxvision.kernels` implementation, mapped to this module's conventions.

  The kernel takes scale = 1/s and an unsigned zero point z + 2^(b-1) (same codes,
  shifted), and masks its STE gradient outside the range; IntraQ's STE has no mask,
  so the kernel's output is attached to x with an identity gradient.
  """
  from jaxvision.kernels.fake_quant import fake_quant as kernel_fq
  kw = dict(bits=spec.bits, axis=axis if s.ndim else None)
  if spec.symmetric:
    y = kernel_fq(x, 1.0 / s, None, symmetric=True, **kw)
  else:
    y = kernel_fq(x, 1.0 / s, z + 2.0 ** (spec.bits - 1), symmetric=False, **kw)
  return x + jax.lax.stop_gradient(y - x)


def channel_minmax(x: jax.Array, axis: Optional[int]) -> tuple[jax.Array, jax.Array]:
  """Per-channel (axis given) or per-tensor (axis None) min and max of x, detached."""
  x = jax.lax.stop_gradient(x.astype(jnp.float32))
  if axis is None:
    return jnp.min(x), jnp.max(x)
  red = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
  return jnp.min(x, axis=red), jnp.max(x, axis=red)
