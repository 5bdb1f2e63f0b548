"""`fake_quant`: the public entry point; picks the implementation."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.kernels import _dispatch
from jaxvision.kernels.fake_quant import pallas_gpu, pallas_tpu
from jaxvision.kernels.fake_quant.config import DEFAULT_CONFIG, PREFERRED, FakeQuantConfig
from jaxvision.kernels.fake_quant.reference import FQSpec, fake_quant_reference


def _param(p, name, x, axis, default=None):
  if p is None:
    p = default
  p = jnp.asarray(p)
  if not jnp.issubdtype(p.dtype, jnp.floating) and not jnp.issubdtype(p.dtype, jnp.integer):
    raise TypeError(f"fake_quant: {name} must be a real number or array, got {p.dtype}.")
  p = p.astype(jnp.float32)
  if axis is None:
    if p.size != 1:
      raise ValueError(f"fake_quant: per-tensor (axis=None) needs a scalar {name}, got "
                       f"shape {p.shape}; pass axis= for per-channel parameters.")
    return p.reshape(())
  c = x.shape[axis]
  if p.ndim == 0 or p.shape == (1,):
    return jnp.broadcast_to(p.reshape(()), (c,))
  if p.shape != (c,):
    raise ValueError(f"fake_quant: per-channel {name} must have shape ({c},) = "
                     f"(x.shape[{axis}],), got {p.shape}.")
  return p


def fake_quant(x, scale, zero_point=None, *, bits: int, axis: int | None = None,
               symmetric: bool = True, learn_scale: bool = False, impl: str = "auto",
               config: FakeQuantConfig | None = None):
  """Uniform quantize-dequantize with a straight-through backward.

  Args:
    x: [...] float32 or bfloat16.
    scale: scalar, or [x.shape[axis]] per channel; positive.
    zero_point: None (0) or like `scale`; only for symmetric=False. Used as given
      (normally integer-valued, in [0, 2^bits - 1]).
    bits: 2..8.
    axis: channel axis (any, negative allowed) or None for per-tensor.
    symmetric: True: q = clip(round(x/scale), -2^(b-1), 2^(b-1)-1), out = q*scale.
      False (unsigned): q = clip(round(x/scale)+zp, 0, 2^b-1), out = (q-zp)*scale.
      round = round-half-to-even; x/scale is computed as x * (1/scale) like torch.
    learn_scale: gradient to `scale` (LSQ) instead of zero.
    impl: "auto" | "xla" | "pallas" | "pallas_gpu" | "pallas_tpu" (see _dispatch).
  Returns:
    Same shape and dtype as x. Gradients: dx = g * 1[round(x/s)+zp in range];
    dscale = LSQ (learn_scale) else 0; dzero_point = 0.
  """
  x = jnp.asarray(x)
  if x.dtype not in (jnp.float32, jnp.bfloat16):
    raise TypeError(f"fake_quant: x must be float32 or bfloat16, got {x.dtype}.")
  if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
    raise ValueError(f"fake_quant: bits must be an int in 2..8, got {bits!r}.")
  if axis is not None:
    if not isinstance(axis, int) or not -x.ndim <= axis < x.ndim:
      raise ValueError(f"fake_quant: axis={axis!r} is out of range for x.ndim={x.ndim}.")
    axis = axis % x.ndim
  if symmetric and zero_point is not None:
    raise ValueError("fake_quant: zero_point is only used with symmetric=False; "
                     "drop it or pass symmetric=False.")
  scale = _param(scale, "scale", x, axis)
  zp = _param(zero_point, "zero_point", x, axis, default=0.0)
  spec = FQSpec(bits, axis, bool(symmetric), bool(learn_scale))
  cfg = config or DEFAULT_CONFIG
  if not learn_scale:
    scale = jax.lax.stop_gradient(scale)
  which = _dispatch.choose(
      "fake_quant", impl, PREFERRED,
      {"pallas_gpu": lambda: pallas_gpu.supported(x),
       "pallas_tpu": lambda: pallas_tpu.supported(x)})
  if which == "pallas_gpu":
    return pallas_gpu.fake_quant_gpu(x, scale, zp, spec, cfg)
  if which == "pallas_tpu":
    return pallas_tpu.fake_quant_tpu(x, scale, zp, spec, cfg)
  return fake_quant_reference(x, scale, zp, spec)
