"""Pallas fake-quant kernels shared by the GPU (Triton) and TPU (Mosaic) entry points.

x is viewed as a 2-D array [R, L] with per-row, per-column or one scale:
  per-tensor           [1, n] or [n/L, L]        params [1, 1]
  per-channel, last    [prod(before), C]         params [1, C]
  per-channel, other   [prod(before)*C, after]   params [R, 1]  (scale tiled)
Forward and backward are each one pass over x (backward also reads g). The LSQ
scale gradient is reduced inside each tile to [nrb, ncb, tr, tc] partial sums
that XLA then adds up (tiny compared with x).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxvision.kernels.fake_quant.reference import FQSpec, fq_backward_math, fq_forward_math


@dataclasses.dataclass(frozen=True)
class Layout:
  mode: str  # "tensor" | "col" | "row"
  rows: int
  cols: int
  pre: int  # for "row": number of repeats of the channel vector
  block: tuple[int, int]


_DTYPES = (jnp.float32, jnp.bfloat16)


def supported(x) -> str | None:
  """None when the Pallas kernels take `x`, else the reason."""
  if x.dtype not in _DTYPES:
    return f"dtype {x.dtype} (the kernel takes float32 or bfloat16)"
  if x.size == 0:
    return "empty input"
  return None


def make_layout(shape, axis, choose_block: Callable[[int, int, str], tuple[int, int]],
                flat_cols: int | None = None) -> Layout:
  n = math.prod(shape)
  if axis is None:
    if flat_cols and n % flat_cols == 0 and n >= flat_cols:
      rows, cols = n // flat_cols, flat_cols
    else:
      rows, cols = 1, n
    return Layout("tensor", rows, cols, 1, choose_block(rows, cols, "tensor"))
  pre = math.prod(shape[:axis])
  c = shape[axis]
  post = math.prod(shape[axis + 1:])
  if post == 1:
    return Layout("col", pre, c, pre, choose_block(pre, c, "col"))
  return Layout("row", pre * c, post, pre, choose_block(pre * c, post, "row"))


def _param2d(p, lay: Layout):
  if lay.mode == "tensor":
    return p.reshape(1, 1)
  if lay.mode == "col":
    return p.reshape(1, lay.cols)
  return jnp.tile(p, lay.pre).reshape(lay.rows, 1)


def _param_spec(lay: Layout):
  bm, bn = lay.block
  if lay.mode == "tensor":
    return pl.BlockSpec((1, 1), lambda i, j: (0, 0))
  if lay.mode == "col":
    return pl.BlockSpec((1, bn), lambda i, j: (0, j))
  return pl.BlockSpec((bm, 1), lambda i, j: (i, 0))


def _partial_tile(lay: Layout):
  bm, bn = lay.block
  return {"tensor": (1, 1), "col": (1, bn), "row": (bm, 1)}[lay.mode]


def _fwd_kernel(x_ref, inv_ref, s_ref, zp_ref, o_ref, *, qmin, qmax):
  x = x_ref[...].astype(jnp.float32)
  out = fq_forward_math(x, inv_ref[...], s_ref[...], zp_ref[...], qmin, qmax)
  o_ref[...] = out.astype(o_ref.dtype)


def _bwd_kernel(x_ref, g_ref, inv_ref, zp_ref, dx_ref, *maybe_ds, qmin, qmax, lay: Layout):
  x = x_ref[...].astype(jnp.float32)
  learn = bool(maybe_ds)
  dx, ds = fq_backward_math(x, g_ref[...], inv_ref[...], zp_ref[...], qmin, qmax, learn)
  dx_ref[...] = dx.astype(dx_ref.dtype)
  if learn:
    (ds_ref,) = maybe_ds
    bm, bn = lay.block
    i, j = pl.program_id(0), pl.program_id(1)
    rows = i * bm + jnp.arange(bm, dtype=jnp.int32)
    cols = j * bn + jnp.arange(bn, dtype=jnp.int32)
    valid = (rows[:, None] < lay.rows) & (cols[None, :] < lay.cols)
    ds = jnp.where(valid, ds, 0.0)
    if lay.mode == "tensor":
      part = jnp.sum(ds).reshape(1, 1)
    elif lay.mode == "col":
      part = jnp.sum(ds, axis=0, keepdims=True)
    else:
      part = jnp.sum(ds, axis=1, keepdims=True)
    ds_ref[...] = part.reshape(ds_ref.shape)


def _grid(lay: Layout):
  bm, bn = lay.block
  return pl.cdiv(lay.rows, bm), pl.cdiv(lay.cols, bn)


def forward(x, scale, zp, spec: FQSpec, lay: Layout, *, interpret: bool, compiler_params):
  qmin, qmax = spec.qrange
  x2 = x.reshape(lay.rows, lay.cols)
  s2 = _param2d(scale, lay)
  params = (1.0 / s2, s2, _param2d(zp, lay))
  xspec = pl.BlockSpec(lay.block, lambda i, j: (i, j))
  pspec = _param_spec(lay)
  out = pl.pallas_call(
      functools.partial(_fwd_kernel, qmin=qmin, qmax=qmax),
      out_shape=jax.ShapeDtypeStruct(x2.shape, x.dtype),
      grid=_grid(lay),
      in_specs=[xspec, pspec, pspec, pspec],
      out_specs=xspec,
      interpret=interpret,
      compiler_params=compiler_params,
      name="fake_quant_fwd",
  )(x2, *params)
  return out.reshape(x.shape)


def backward(x, scale, zp, g, spec: FQSpec, lay: Layout, *, interpret: bool, compiler_params):
  """(dx, dscale or None)."""
  qmin, qmax = spec.qrange
  x2 = x.reshape(lay.rows, lay.cols)
  g2 = g.reshape(lay.rows, lay.cols)
  s2 = _param2d(scale, lay)
  xspec = pl.BlockSpec(lay.block, lambda i, j: (i, j))
  pspec = _param_spec(lay)
  nrb, ncb = _grid(lay)
  out_shape = [jax.ShapeDtypeStruct(x2.shape, x.dtype)]
  out_specs = [xspec]
  if spec.learn_scale:
    tr, tc = _partial_tile(lay)
    out_shape.append(jax.ShapeDtypeStruct((nrb, ncb, tr, tc), jnp.float32))
    out_specs.append(pl.BlockSpec((None, None, tr, tc), lambda i, j: (i, j, 0, 0)))
  outs = pl.pallas_call(
      functools.partial(_bwd_kernel, qmin=qmin, qmax=qmax, lay=lay),
      out_shape=tuple(out_shape),
      grid=(nrb, ncb),
      in_specs=[xspec, xspec, pspec, pspec],
      out_specs=tuple(out_specs),
      interpret=interpret,
      compiler_params=compiler_params,
      name="fake_quant_bwd",
  )(x2, g2, 1.0 / s2, _param2d(zp, lay))
  dx = outs[0].reshape(x.shape)
  if not spec.learn_scale:
    return dx, None
  part = outs[1]
  if lay.mode == "tensor":
    ds = jnp.sum(part).reshape(scale.shape)
  elif lay.mode == "col":  # [nrb, ncb, 1, bn] -> [C]
    ds = jnp.sum(part, axis=(0, 2)).reshape(-1)[: lay.cols]
  else:  # [nrb, ncb, bm, 1] -> [R] -> [pre, C] -> [C]
    ds = jnp.sum(part, axis=(1, 3)).reshape(-1)[: lay.rows]
    ds = ds.reshape(lay.pre, -1).sum(axis=0)
  return dx, ds.astype(scale.dtype)


@dataclasses.dataclass(frozen=True)
class Static:
  """Everything static about one pallas fake-quant call (hashable: a jit static)."""
  spec: FQSpec
  lay: Layout
  interpret: bool
  family: str  # "gpu" | "tpu"
  num_warps: int = 4
  num_stages: int = 1

  def kw(self):
    if self.family == "gpu":
      from jaxvision.kernels._dispatch import triton_params  # noqa: PLC0415
      cp = triton_params(self.num_warps, self.num_stages)
    else:
      cp = None
    return dict(interpret=self.interpret, compiler_params=cp)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def fake_quant_pallas(x, scale, zp, st: Static):
  """x: [any] f32/bf16; scale, zp: f32 [] or [C]; STE/LSQ custom VJP."""
  return forward(x, scale, zp, st.spec, st.lay, **st.kw())


def _fwd(x, scale, zp, st):
  return fake_quant_pallas(x, scale, zp, st), (x, scale, zp)


def _bwd(st, res, g):
  x, scale, zp = res
  dx, ds = backward(x, scale, zp, g, st.spec, st.lay, **st.kw())
  if ds is None:
    ds = jnp.zeros_like(scale)
  return dx, ds, jnp.zeros_like(zp)


fake_quant_pallas.defvjp(_fwd, _bwd)
