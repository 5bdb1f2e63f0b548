"""Pallas masked-weight kernels shared by the GPU (Triton) and TPU (Mosaic) entry points.

The tensors are viewed flat as [R, L] (L = config.cols when it divides n, else
[1, n]); one elementwise pass forward, one fused pass backward (reads g, w and
scores/mask once; writes dw and dscores).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxvision.kernels.masked_weight.reference import MWSpec, backward_math, forward_math, mask_math


@dataclasses.dataclass(frozen=True)
class Static:
  spec: MWSpec
  rows: int
  cols: int
  block: tuple[int, int]
  interpret: bool
  family: str  # "gpu" | "tpu"
  num_warps: int = 4
  num_stages: int = 1

  def kw(self):
    cp = None
    if self.family == "gpu":
      from jaxvision.kernels._dispatch import triton_params  # noqa: PLC0415
      cp = triton_params(self.num_warps, self.num_stages)
    return dict(interpret=self.interpret, compiler_params=cp)

  @property
  def grid(self):
    return pl.cdiv(self.rows, self.block[0]), pl.cdiv(self.cols, self.block[1])


def _mask_from_refs(spec, scores_ref, aux_ref):
  if spec.mode == "threshold":
    return mask_math(scores_ref[...], aux_ref[...], None)
  return mask_math(None, None, aux_ref[...])


def _fwd_kernel(*refs, spec: MWSpec):
  if spec.mode == "threshold":
    w_ref, s_ref, aux_ref, o_ref = refs
  else:
    w_ref, aux_ref, o_ref = refs
    s_ref = None
  o_ref[...] = forward_math(w_ref[...], _mask_from_refs(spec, s_ref, aux_ref))


def _bwd_kernel(*refs, spec: MWSpec):
  refs = list(refs)
  g_ref, w_ref = refs.pop(0), refs.pop(0)
  s_ref = refs.pop(0) if spec.has_scores else None
  aux_ref = refs.pop(0)
  dw_ref = refs.pop(0)
  m = _mask_from_refs(spec, s_ref, aux_ref)
  dw, ds = backward_math(g_ref[...], w_ref[...], m, s_ref.dtype if s_ref is not None else None)
  dw_ref[...] = dw
  if spec.has_scores:
    refs.pop(0)[...] = ds


def _operands(st: Static, scores, aux, flat):
  tspec = pl.BlockSpec(st.block, lambda i, j: (i, j))
  ops, specs = [], []
  if st.spec.has_scores:
    ops.append(flat(scores))
    specs.append(tspec)
  if st.spec.mode == "threshold":
    ops.append(jnp.asarray(aux, scores.dtype).reshape(1, 1))
    specs.append(pl.BlockSpec((1, 1), lambda i, j: (0, 0)))
  else:
    ops.append(flat(aux))
    specs.append(tspec)
  return ops, specs


def forward(w, scores, aux, st: Static):
  flat = lambda a: a.reshape(st.rows, st.cols)  # noqa: E731
  tspec = pl.BlockSpec(st.block, lambda i, j: (i, j))
  ops, specs = _operands(st, scores, aux, flat)
  if st.spec.mode == "mask":  # scores are not read by the forward
    ops, specs = ops[-1:], specs[-1:]
  out = pl.pallas_call(
      functools.partial(_fwd_kernel, spec=st.spec),
      out_shape=jax.ShapeDtypeStruct((st.rows, st.cols), w.dtype),
      grid=st.grid, in_specs=[tspec, *specs], out_specs=tspec,
      name="masked_weight_fwd", **st.kw(),
  )(flat(w), *ops)
  return out.reshape(w.shape)


def backward(w, scores, aux, g, st: Static):
  flat = lambda a: a.reshape(st.rows, st.cols)  # noqa: E731
  tspec = pl.BlockSpec(st.block, lambda i, j: (i, j))
  ops, specs = _operands(st, scores, aux, flat)
  out_shape = [jax.ShapeDtypeStruct((st.rows, st.cols), w.dtype)]
  if st.spec.has_scores:
    out_shape.append(jax.ShapeDtypeStruct((st.rows, st.cols), scores.dtype))
  outs = pl.pallas_call(
      functools.partial(_bwd_kernel, spec=st.spec),
      out_shape=tuple(out_shape),
      grid=st.grid, in_specs=[tspec, tspec, *specs], out_specs=tuple([tspec] * len(out_shape)),
      name="masked_weight_bwd", **st.kw(),
  )(flat(g), flat(w), *ops)
  dw = outs[0].reshape(w.shape)
  ds = outs[1].reshape(w.shape) if st.spec.has_scores else None
  return dw, ds


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def masked_weight_pallas(w, scores, aux, st: Static):
  """w: [...]; scores like w or None; aux: threshold scalar or mask like w."""
  return forward(w, scores, aux, st)


def _fwd(w, scores, aux, st):
  return forward(w, scores, aux, st), (w, scores, aux)


def _bwd(st, res, g):
  w, scores, aux = res
  dw, ds = backward(w, scores, aux, g, st)
  return dw, ds, None


masked_weight_pallas.defvjp(_fwd, _bwd)
