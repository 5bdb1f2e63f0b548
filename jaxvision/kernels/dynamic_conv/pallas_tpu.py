"""Per-pixel dynamic depthwise convolution as Pallas Mosaic TPU kernels (interpret on CPU).

Layout for the TPU's (sublane, lane) tiles: channels on lanes, width on sublanes, rows and taps
on leading dims. XLA pads the input by p = d(k-1)/2 ('SAME') and lays the per-pixel weights out
as [B, H, k*k, W, G]. Grid (B, H / bh): a program owns bh output rows of one example; the whole
padded image of that example sits in VMEM as one block (the halo of every row block is then a
plain static / leading-dim slice, no overlapping BlockSpecs). The group-to-channel expansion
(channel c uses group c mod G) is a matmul with the 0/1 matrix E [G, C] (E[g, c] = [c mod G =
g]) on the MXU instead of a lane gather:

  forward   out[h, w] = sum_j  x_pad[h + dy d, w + dx d] * (K[h, j, w] @ E)
  grad x    dx[h, w]  = sum_j  g_pad[h + s_y, w + s_x] * (K_pad[h + s_y, j, w + s_x] @ E),
            s = ((k-1-dy) d, (k-1-dx) d): the weights are read at the source pixel
  grad K    dK[h, j, w] = (g[h, w] * x_pad[h + dy d, w + dx d]) @ E^T

Accumulation in float32; matmuls at HIGHEST precision (E is 0/1, so the expansion is exact).
Needs the padded image (and weights) of one example to fit `vmem_budget` bytes; larger inputs
fall back. Not yet run or timed on a TPU: `PREFERRED["tpu"]` stays "xla" until a benchmark on
a TPU shows this faster.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxvision.kernels._dispatch import interpret

_FLOATS = (jnp.float32, jnp.bfloat16)
_HP = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class Static:
  shape: tuple[int, int, int, int]  # B, H, W, C
  groups: int
  kernel_size: int
  dilation: int
  bh: int
  interpret: bool

  @property
  def pad(self) -> int:
    return self.dilation * (self.kernel_size - 1) // 2

  @property
  def grid(self):
    return self.shape[0], self.shape[1] // self.bh


def _itemsize(dt) -> int:
  return jnp.dtype(dt).itemsize


def supported(x, kernels, kernel_size, groups, dilation, vmem_budget: int) -> str | None:
  if x.dtype not in _FLOATS or kernels.dtype not in _FLOATS:
    return f"dtypes {x.dtype}/{kernels.dtype} (float32 or bfloat16 only)"
  if x.size == 0:
    return "empty input"
  _, h, w, c = x.shape
  p = dilation * (kernel_size - 1) // 2
  need = ((h + 2 * p) * (w + 2 * p) * (c * _itemsize(x.dtype)
                                       + kernel_size ** 2 * groups * _itemsize(kernels.dtype)))
  if need > vmem_budget:
    return (f"one example's padded input and weights need {need} bytes of VMEM "
            f"(> vmem_budget={vmem_budget})")
  return None


def make_static(x, *, kernel_size, groups, dilation, max_rows: int = 8) -> Static:
  h = x.shape[1]
  bh = max(r for r in range(1, min(max_rows, h) + 1) if h % r == 0)
  return Static(tuple(x.shape), groups, kernel_size, dilation, bh, interpret())


def _expand(g: int, c: int):
  return (jnp.arange(c)[None, :] % g == jnp.arange(g)[:, None]).astype(jnp.float32)


def _agg_kernel(src_ref, w_ref, e_ref, o_ref, *, st: Static, transpose: bool):
  """bh output rows of one example (see the module doc for both directions)."""
  _, _, ww, _ = st.shape
  k, d = st.kernel_size, st.dilation
  h0 = pl.program_id(1) * st.bh
  e = e_ref[...]

  def row(r, carry):
    acc = jnp.zeros(o_ref.shape[1:], jnp.float32)
    for dy in range(k):
      for dx in range(k):
        j = dy * k + dx
        sy, sx = ((k - 1 - dy) * d, (k - 1 - dx) * d) if transpose else (dy * d, dx * d)
        xs = src_ref[h0 + r + sy, pl.ds(sx, ww), :].astype(jnp.float32)
        if transpose:  # padded weights, read at the source pixel
          kw = w_ref[h0 + r + sy, j, pl.ds(sx, ww), :]
        else:          # this row block's weights
          kw = w_ref[r, j, :, :]
        acc = acc + xs * jnp.dot(kw.astype(jnp.float32), e, precision=_HP,
                                 preferred_element_type=jnp.float32)
    o_ref[r, :, :] = acc.astype(o_ref.dtype)
    return carry

  jax.lax.fori_loop(0, st.bh, row, 0)


def _dk_kernel(g_ref, src_ref, e_ref, dk_ref, *, st: Static):
  _, _, ww, _ = st.shape
  k, d = st.kernel_size, st.dilation
  h0 = pl.program_id(1) * st.bh
  et = e_ref[...].T

  def row(r, carry):
    gr = g_ref[r, :, :].astype(jnp.float32)
    for dy in range(k):
      for dx in range(k):
        xs = src_ref[h0 + r + dy * d, pl.ds(dx * d, ww), :].astype(jnp.float32)
        dk_ref[r, dy * k + dx, :, :] = jnp.dot(
            gr * xs, et, precision=_HP, preferred_element_type=jnp.float32).astype(dk_ref.dtype)
    return carry

  jax.lax.fori_loop(0, st.bh, row, 0)


def _full(shape):
  """Block = one example's whole array (leading batch dim squeezed)."""
  n = len(shape)
  return pl.BlockSpec((None,) + tuple(shape), lambda b, i: (b,) + (0,) * n)


def _rows(shape):
  """Block = bh rows (second dim) of one example."""
  n = len(shape)
  return pl.BlockSpec((None,) + tuple(shape), lambda b, i: (b, i) + (0,) * (n - 1))


def _pad_hw(a, p):
  pads = [(0, 0)] * a.ndim
  pads[1] = (p, p)
  pads[-2] = (p, p)
  return jnp.pad(a, pads)


def aggregate(src, wts, st: Static, transpose: bool):
  """src [B,H,W,C] (x, or the cotangent for transpose); wts [B,H,k*k,W,G] -> [B,H,W,C]."""
  b, h, w, c = st.shape
  p, k2, g = st.pad, st.kernel_size ** 2, st.groups
  src_p = _pad_hw(src, p)
  if transpose:
    wts = _pad_hw(wts, p)
    w_spec = _full((h + 2 * p, k2, w + 2 * p, g))
  else:
    w_spec = _rows((st.bh, k2, w, g))
  return pl.pallas_call(
      functools.partial(_agg_kernel, st=st, transpose=transpose),
      out_shape=jax.ShapeDtypeStruct((b, h, w, c), src.dtype),
      grid=st.grid,
      in_specs=[_full((h + 2 * p, w + 2 * p, c)), w_spec, pl.BlockSpec((g, c), lambda b, i: (0, 0))],
      out_specs=_rows((st.bh, w, c)),
      interpret=st.interpret,
      name="dynamic_conv_tpu_bwd_x" if transpose else "dynamic_conv_tpu_fwd",
  )(src_p, wts, _expand(g, c))


def kernel_grad(gout, x, dtype, st: Static):
  """dK [B,H,k*k,W,G] from the output cotangent [B,H,W,C] and x."""
  b, h, w, c = st.shape
  p, k2, g = st.pad, st.kernel_size ** 2, st.groups
  return pl.pallas_call(
      functools.partial(_dk_kernel, st=st),
      out_shape=jax.ShapeDtypeStruct((b, h, k2, w, g), dtype),
      grid=st.grid,
      in_specs=[_rows((st.bh, w, c)), _full((h + 2 * p, w + 2 * p, c)),
                pl.BlockSpec((g, c), lambda b, i: (0, 0))],
      out_specs=_rows((st.bh, k2, w, g)),
      interpret=st.interpret,
      name="dynamic_conv_tpu_bwd_k",
  )(gout, _pad_hw(x, p), _expand(g, c))


def to_tpu_layout(kernels, st: Static):
  """[B,H,W,G*k*k] (group-major, taps row-major) -> [B,H,k*k,W,G]."""
  b, h, w, _ = kernels.shape
  return kernels.reshape(b, h, w, st.groups, st.kernel_size ** 2).transpose(0, 1, 4, 2, 3)


def from_tpu_layout(kt, st: Static):
  b, h, k2, w, g = kt.shape
  return kt.transpose(0, 1, 3, 4, 2).reshape(b, h, w, g * k2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def dynamic_conv_tpu(x, kernels, st: Static):
  """x [B,H,W,C], kernels [B,H,W,G*k*k] -> [B,H,W,C] (same contract as the reference)."""
  return aggregate(x, to_tpu_layout(kernels, st), st, transpose=False)


def _fwd(x, kernels, st):
  return dynamic_conv_tpu(x, kernels, st), (x, kernels)


def _bwd(st, res, g):
  x, kernels = res
  dx = aggregate(g.astype(x.dtype), to_tpu_layout(kernels, st), st, transpose=True)
  dk = from_tpu_layout(kernel_grad(g, x, kernels.dtype, st), st)
  return dx, dk


dynamic_conv_tpu.defvjp(_fwd, _bwd)
