"""Quantized wrappers for existing `nnx.Conv` / `nnx.Linear` layers.

`QuantLayer(layer, weight_spec, act_spec)` keeps the original layer (its params
stay at `<path>/layer/kernel`), fake-quantizes the layer's input activation with
a tracked range, and fake-quantizes the kernel per output channel by swapping the
layer's own `conv_general_dilated` / `dot_general` hook for a quantizing one, so
every option of the wrapped layer (padding, groups, dilation, dtype) keeps working.

`IntegerLayer` is the exported form: int8/int16 weight codes, per-channel
scales/zero points and the activation scale/zero point; it computes the conv or
matmul in int32 on the integer codes and rescales once.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.linear import canonicalize_padding

from jaxvision.quant import ops as fq
from jaxvision.quant.spec import QuantSpec


class QuantState(nnx.Variable):
  """Base type of quantizer state (never trained by the optimizer)."""


class QuantRange(QuantState):
  """A tracked range bound (lo or hi): scalar (per tensor) or [C] (per channel)."""


class QuantCount(QuantState):
  """Number of range updates seen (int32 scalar): EMA bias correction, 0 = uncalibrated."""


class QuantInt(nnx.Variable):
  """Exported integer weight codes and their (inverse step, zero point) parameters."""


@dataclasses.dataclass(frozen=True)
class WeightQuantOp:
  """Replacement for a layer's `conv_general_dilated` / `dot_general` hook.

  Fake-quantizes its second argument (the kernel, channels on the last axis) with
  `spec` before calling `base`.
  """
  base: Callable[..., Any]
  spec: QuantSpec

  def __call__(self, lhs, rhs, *args, **kwargs):
    axis = -1 if self.spec.per_channel else None
    lo, hi = fq.channel_minmax(rhs, axis)
    return self.base(lhs, fq.fake_quant(rhs, lo, hi, self.spec, axis), *args, **kwargs)


def _hook_name(layer: nnx.Module) -> str:
  if isinstance(layer, nnx.Conv):
    return "conv_general_dilated"
  if isinstance(layer, nnx.Linear):
    return "dot_general"
  raise TypeError(f"can only quantize nnx.Conv or nnx.Linear, got {type(layer).__name__}.")


class ActQuantizer(nnx.Module):
  """Per-tensor (or per-channel on the last axis) activation fake quantizer with range state.

  x: [..., C]. While `calibrating`, each call updates the range from the batch
  min/max (running min/max, or EMA) and quantizes with the updated range; otherwise
  the range is frozen. Before the first update the quantizer passes x through.
  """

  def __init__(self, spec: QuantSpec, channels: Optional[int] = None):
    shape = (channels,) if spec.per_channel else ()
    if spec.per_channel and channels is None:
      raise ValueError("a per-channel activation spec needs `channels`.")
    self.spec = spec
    self.lo = QuantRange(jnp.zeros(shape, jnp.float32))
    self.hi = QuantRange(jnp.zeros(shape, jnp.float32))
    self.count = QuantCount(jnp.zeros((), jnp.int32))
    self.calibrating = False

  def _update(self, x: jax.Array):
    spec, axis = self.spec, (-1 if self.spec.per_channel else None)
    mlo, mhi = fq.channel_minmax(x, axis)
    t = self.count[...] + 1
    lo, hi = self.lo[...], self.hi[...]
    if spec.range_mode in ("minmax", "current"):
      first = t == 1
      lo = jnp.where(first, mlo, jnp.minimum(lo, mlo))
      hi = jnp.where(first, mhi, jnp.maximum(hi, mhi))
    else:
      b = spec.ema_decay
      if spec.ema_quirk:  # official code: bias correction applied to the stored value
        corr = 1.0 - b ** t.astype(jnp.float32)
        lo, hi = (b * lo + (1 - b) * mlo) / corr, (b * hi + (1 - b) * mhi) / corr
      else:
        lo, hi = b * lo + (1 - b) * mlo, b * hi + (1 - b) * mhi
    self.lo[...], self.hi[...], self.count[...] = lo, hi, t

  def range(self) -> tuple[jax.Array, jax.Array]:
    """The range used for quantization (EMA bias-corrected at read time)."""
    lo, hi = self.lo[...], self.hi[...]
    if self.spec.range_mode == "ema" and not self.spec.ema_quirk:
      corr = 1.0 - self.spec.ema_decay ** jnp.maximum(self.count[...], 1).astype(jnp.float32)
      lo, hi = lo / corr, hi / corr
    return lo, hi

  def qparams(self) -> tuple[jax.Array, jax.Array]:
    return fq.qparams(*self.range(), self.spec)

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.calibrating:
      self._update(x)
    lo, hi = self.range()
    xq = fq.fake_quant(x, lo, hi, self.spec, -1 if self.spec.per_channel else None)
    return jnp.where(self.count[...] > 0, xq, x)


class QuantLayer(nnx.Module):
  """Fake-quantized wrapper of an `nnx.Conv` or `nnx.Linear` (see module docstring).

  Attributes: `layer` (the original module, hook swapped), `act` (ActQuantizer or
  None), `weight_spec`, `path`.
  """

  def __init__(self, layer: nnx.Module, weight_spec: Optional[QuantSpec],
               act_spec: Optional[QuantSpec], path: str = ""):
    hook = _hook_name(layer)
    base = getattr(layer, hook)
    if isinstance(base, WeightQuantOp):
      raise ValueError(f"layer '{path}' is already quantized.")
    if weight_spec is not None:
      setattr(layer, hook, WeightQuantOp(base, weight_spec))
    self.layer = layer
    self.weight_spec = weight_spec
    self.path = path
    channels = layer.in_features if act_spec is not None and act_spec.per_channel else None
    self.act = ActQuantizer(act_spec, channels) if act_spec is not None else None

  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    if self.act is not None:
      x = self.act(x)
    return self.layer(x, *args, **kwargs)

  def unwrap(self) -> nnx.Module:
    """The original layer with its hook restored (the wrapper is then unusable)."""
    hook = _hook_name(self.layer)
    op = getattr(self.layer, hook)
    if isinstance(op, WeightQuantOp):
      setattr(self.layer, hook, op.base)
    return self.layer


def _int_dtype(bits: int):
  return jnp.int8 if bits <= 8 else jnp.int16


class IntegerLayer(nnx.Module):
  """Integer-arithmetic form of a `QuantLayer` (built by `quant.to_integer_model`).

  Weight codes q_w ([kh, kw, cin/g, cout] or [cin, cout], int8/int16), per-channel
  (s_w, z_w); input codes q_a = clip(round(s_a x + z_a)). Output:
  y = (sum (q_a - z_a)(q_w - z_w)) / (s_a s_w) + bias, the sum in int32.
  Layers without an activation quantizer multiply the float input by (q_w - z_w).
  """

  def __init__(self, qlayer: QuantLayer):
    layer, wspec = qlayer.layer, qlayer.weight_spec
    if wspec is None:
      raise ValueError(f"layer '{qlayer.path}' has no weight quantizer; nothing to export.")
    self.kind = "conv" if isinstance(layer, nnx.Conv) else "linear"
    self.path, self.wspec = qlayer.path, wspec
    kernel = layer.kernel[...]
    axis = -1 if wspec.per_channel else None
    s, z = fq.qparams(*fq.channel_minmax(kernel, axis), wspec)
    self.w_q = QuantInt(fq.quantize(kernel, s, z, wspec, axis).astype(_int_dtype(wspec.bits)))
    cout = kernel.shape[-1]
    self.w_s = QuantInt(jnp.broadcast_to(s, (cout,)).astype(jnp.float32))
    self.w_z = QuantInt(jnp.broadcast_to(z, (cout,)).astype(jnp.float32))
    self.bias = QuantInt(layer.bias[...]) if layer.bias is not None else None
    if qlayer.act is not None:
      if int(qlayer.act.count[...]) == 0:
        raise ValueError(f"layer '{qlayer.path}': activation range is uncalibrated; run "
                         "quant.calibrate (or a calibration stage) before exporting.")
      a_s, a_z = qlayer.act.qparams()
      self.aspec = qlayer.act.spec
      self.a_s, self.a_z = QuantInt(a_s), QuantInt(a_z)
    else:
      self.aspec, self.a_s, self.a_z = None, None, None
    if self.kind == "conv":
      nd = len(layer.kernel_size)
      bc = lambda v: (v,) * nd if isinstance(v, int) or v is None else tuple(v)
      self.strides = bc(layer.strides or 1)
      self.input_dilation = bc(layer.input_dilation or 1)
      self.kernel_dilation = bc(layer.kernel_dilation or 1)
      pad = canonicalize_padding(layer.padding, nd)
      if isinstance(pad, str) and pad not in ("SAME", "VALID"):
        raise ValueError(f"layer '{qlayer.path}': padding {pad!r} has no integer path; "
                         "use SAME, VALID or explicit padding.")
      self.padding = pad if isinstance(pad, str) else tuple(tuple(p) for p in pad)
      self.groups = layer.feature_group_count
      if nd != 2:
        raise ValueError(f"layer '{qlayer.path}': integer export supports 2-D convs, got {nd}-D.")

  def _matmul(self, x: jax.Array, w: jax.Array, out_dtype) -> jax.Array:
    if self.kind == "linear":
      return jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())),
                                 preferred_element_type=out_dtype)
    dn = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    return jax.lax.conv_general_dilated(
        x, w, self.strides, self.padding, lhs_dilation=self.input_dilation,
        rhs_dilation=self.kernel_dilation, dimension_numbers=dn,
        feature_group_count=self.groups, preferred_element_type=out_dtype)

  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    w_c = self.w_q[...].astype(jnp.int32) - self.w_z[...].astype(jnp.int32)
    if self.aspec is not None:
      a_s, a_z = self.a_s[...], self.a_z[...]
      x_c = (fq.quantize(x, a_s, a_z, self.aspec) - a_z).astype(jnp.int32)
      acc = self._matmul(x_c, w_c, jnp.int32).astype(jnp.float32)
      y = acc / (a_s * self.w_s[...])
    else:
      y = self._matmul(x.astype(jnp.float32), w_c.astype(jnp.float32), jnp.float32)
      y = y / self.w_s[...]
    if self.bias is not None:
      y = y + self.bias[...]
    return y.astype(x.dtype)
