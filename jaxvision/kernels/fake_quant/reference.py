"""Plain-jnp fake quantization: the oracle and the CPU default.

Conventions (shared bit-for-bit with the Pallas kernels, which call the same
elementwise functions below):
  v = round_half_even(x * (1/scale)) + zero_point           (x * inv_scale as torch)
  symmetric:  q = clip(v, -2^(b-1), 2^(b-1)-1), zero_point = 0
  asymmetric: q = clip(v, 0, 2^b - 1)
  out = (q - zero_point) * scale
Rounding is round-half-to-even (torch.round / std::nearbyint, which PyTorch and
the papers use). It is written with floor + tie fix because the Pallas Triton
lowering has no `round` primitive.

Backward (straight-through estimator, as torch.fake_quantize_*):
  dx     = g * 1[qmin <= v <= qmax]          (exactly the clipped identity)
  dscale = sum g * ((q - zp) - x/scale if in range else q - zp)   (LSQ; learn_scale)
           else 0.  LSQ's gradient scale 1/sqrt(N*qmax) is NOT applied here.
  dzero_point = 0.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class FQSpec:
  bits: int
  axis: int | None  # normalised, non-negative
  symmetric: bool
  learn_scale: bool

  @property
  def qrange(self) -> tuple[float, float]:
    if self.symmetric:
      return float(-(2 ** (self.bits - 1))), float(2 ** (self.bits - 1) - 1)
    return 0.0, float(2 ** self.bits - 1)


def round_half_even(v):
  """Round to nearest, ties to even, for float32 `v` (same as jnp.round)."""
  fl = jnp.floor(v)
  frac = v - fl  # exact
  half = fl * 0.5
  odd = (half - jnp.floor(half)) != 0.0
  up = (frac > 0.5) | ((frac == 0.5) & odd)
  return jnp.where(up, fl + 1.0, fl)


def quant_levels(x, inv_s, zp, qmin, qmax):
  """(v, q): unclipped and clipped integer levels (float32)."""
  v = round_half_even(x * inv_s) + zp
  return v, jnp.minimum(jnp.maximum(v, qmin), qmax)


def fq_forward_math(x, inv_s, s, zp, qmin, qmax):
  """Elementwise quantize-dequantize in float32 (arguments broadcast)."""
  _, q = quant_levels(x, inv_s, zp, qmin, qmax)
  return (q - zp) * s


def fq_backward_math(x, g, inv_s, zp, qmin, qmax, learn_scale):
  """(dx, dscale per element or None); x, inv_s, zp float32, g any float dtype."""
  v, q = quant_levels(x, inv_s, zp, qmin, qmax)
  inside = (v >= qmin) & (v <= qmax)
  dx = jnp.where(inside, g, jnp.zeros_like(g))
  if not learn_scale:
    return dx, None
  ds = g.astype(jnp.float32) * jnp.where(inside, (q - zp) - x * inv_s, q - zp)
  return dx, ds


def _bcast(p, ndim, axis):
  if axis is None:
    return p
  shape = [1] * ndim
  shape[axis] = p.shape[0]
  return p.reshape(shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def fake_quant_reference(x, scale, zero_point, spec: FQSpec):
  """x: any shape, float32/bfloat16; scale, zero_point: float32 [] or [C] (C = x.shape[axis])."""
  qmin, qmax = spec.qrange
  s = _bcast(scale, x.ndim, spec.axis)
  zp = _bcast(zero_point, x.ndim, spec.axis)
  out = fq_forward_math(x.astype(jnp.float32), 1.0 / s, s, zp, qmin, qmax)
  return out.astype(x.dtype)


def _ref_fwd(x, scale, zero_point, spec):
  return fake_quant_reference(x, scale, zero_point, spec), (x, scale, zero_point)


def _ref_bwd(spec, res, g):
  x, scale, zero_point = res
  qmin, qmax = spec.qrange
  s = _bcast(scale, x.ndim, spec.axis)
  zp = _bcast(zero_point, x.ndim, spec.axis)
  dx, ds = fq_backward_math(x.astype(jnp.float32), g, 1.0 / s, zp, qmin, qmax,
                            spec.learn_scale)
  if ds is None:
    dscale = jnp.zeros_like(scale)
  else:
    red = tuple(i for i in range(x.ndim) if i != spec.axis)
    dscale = jnp.sum(ds, axis=red).astype(scale.dtype)
  return dx.astype(x.dtype), dscale, jnp.zeros_like(zero_point)


fake_quant_reference.defvjp(_ref_fwd, _ref_bwd)
