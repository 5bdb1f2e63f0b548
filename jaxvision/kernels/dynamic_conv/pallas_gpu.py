"""Dynamic depthwise convolutions as Pallas Triton kernels (GPU; interpret on CPU).

Grid (B, H, cdiv(W, bw)); a program owns the [bw, C] strip of output row h. For
each of the k*k taps it gathers the shifted input strip (indices clamped into the
image, out-of-image taps zeroed with a select, so every address is valid) and the
per-pixel weights expanded to channels by index (c mod G) * k*k + j, and
accumulates in float32. Needs power-of-two C and G (Triton tensor sizes).
Backward: dx is the same kernel as a transposed correlation (weights read at the
source pixel); dK reduces g * x_shift over the C/G channels of each group per
pixel (per example: also over pixels, as [B, H, nWb] partial sums added by XLA).
Lowering to Triton IR is checked on CPU by tests; GPU runtime/speed unmeasured.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from jaxvision.kernels._dispatch import interpret, next_pow2, triton_params
from jaxvision.kernels.dynamic_conv.config import DynamicConvConfig

_FLOATS = (jnp.float32, jnp.bfloat16, jnp.float16)


@dataclasses.dataclass(frozen=True)
class Static:
  shape: tuple[int, int, int, int]  # B, H, W, C
  groups: int
  kernel_size: int
  dilation: int
  per_pixel: bool
  bw: int
  interpret: bool
  num_warps: int = 4
  num_stages: int = 1

  @property
  def grid(self):
    b, h, w, _ = self.shape
    return b, h, pl.cdiv(w, self.bw)

  @property
  def pad(self):
    return self.dilation * (self.kernel_size - 1) // 2

  def kw(self):
    return dict(interpret=self.interpret,
                compiler_params=triton_params(self.num_warps, self.num_stages))


def supported(x, kernels, groups) -> str | None:
  c = x.shape[-1]
  if x.dtype not in _FLOATS or kernels.dtype not in _FLOATS:
    return f"dtypes {x.dtype}/{kernels.dtype} (floating only)"
  if c & (c - 1) or groups & (groups - 1):
    return f"C={c} and groups={groups} must be powers of two for the Triton kernel"
  if x.size == 0:
    return "empty input"
  return None


def make_static(x, *, kernel_size, groups, dilation, per_pixel, cfg: DynamicConvConfig):
  b, h, w, c = x.shape
  bw = min(next_pow2(w), max(1, cfg.tile_elems // c))
  return Static((b, h, w, c), groups, kernel_size, dilation, per_pixel, bw, interpret(),
                cfg.num_warps, cfg.num_stages)


def _taps(st: Static, h, wout, transpose: bool):
  """Yields (j, row, cols, valid) for the k*k taps; row/cols clamped into the image."""
  _, hh, ww, _ = st.shape
  k, d, p = st.kernel_size, st.dilation, st.pad
  for dy in range(k):
    for dx in range(k):
      if transpose:
        r, cols = h + p - dy * d, wout + p - dx * d
      else:
        r, cols = h + dy * d - p, wout + dx * d - p
      valid = (r >= 0) & (r < hh) & (cols >= 0) & (cols < ww)
      yield dy * k + dx, jnp.clip(r, 0, hh - 1), jnp.clip(cols, 0, ww - 1), valid


def _agg_kernel(x_ref, k_ref, o_ref, *, st: Static, transpose: bool):
  """o[h, w, c] = sum_j K[pixel, c mod G, j] * x[shifted pixel, c] (see module doc)."""
  _, _, ww, c = st.shape
  b, h, wi = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  k2 = st.kernel_size ** 2
  wout = wi * st.bw + jnp.arange(st.bw, dtype=jnp.int32)
  ch = jnp.arange(c, dtype=jnp.int32)
  cg = ch % st.groups
  wout_c = jnp.minimum(wout, ww - 1)
  acc = jnp.zeros((st.bw, c), jnp.float32)
  for j, r, cols, valid in _taps(st, h, wout, transpose):
    xv = x_ref[b, r, cols[:, None], ch[None, :]].astype(jnp.float32)
    if not st.per_pixel:
      kv = k_ref[b, j, cg][None, :]
    elif transpose:  # weights of the output pixel that read this input pixel
      kv = k_ref[b, r, cols[:, None], (cg * k2 + j)[None, :]]
    else:
      kv = k_ref[b, h, wout_c[:, None], (cg * k2 + j)[None, :]]
    acc += jnp.where(valid[:, None], xv * kv.astype(jnp.float32), 0.0)
  o_ref[...] = acc.astype(o_ref.dtype)


def _dk_kernel(g_ref, x_ref, dk_ref, *, st: Static):
  _, _, ww, c = st.shape
  b, h, wi = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  k2, gr = st.kernel_size ** 2, st.groups
  wout = wi * st.bw + jnp.arange(st.bw, dtype=jnp.int32)
  ch = jnp.arange(c, dtype=jnp.int32)
  gi = jnp.arange(gr, dtype=jnp.int32)
  gt = g_ref[...].astype(jnp.float32)
  in_w = wout < ww
  for j, r, cols, valid in _taps(st, h, wout, False):
    xv = x_ref[b, r, cols[:, None], ch[None, :]].astype(jnp.float32)
    prod = jnp.where((valid & in_w)[:, None], gt * xv, 0.0)
    if st.per_pixel:
      red = prod.reshape(st.bw, c // gr, gr).sum(axis=1)  # [bw, G]
      mask = jnp.broadcast_to(in_w[:, None], (st.bw, gr))
      plt.store(dk_ref.at[b, h, wout[:, None], (gi * k2 + j)[None, :]],
                red.astype(dk_ref.dtype), mask=mask)
    else:
      red = prod.sum(axis=0).reshape(c // gr, gr).sum(axis=0)  # [G]
      dk_ref[b, h, wi, j, gi] = red


def _no_block():
  return pl.BlockSpec(memory_space=pl.ANY)


def aggregate(x, kern, st: Static, transpose: bool):
  """x: [B,H,W,C]; kern: [B,H,W,G*k*k] (per pixel) or [B,k*k,G] -> [B,H,W,C]."""
  c = st.shape[3]
  return pl.pallas_call(
      functools.partial(_agg_kernel, st=st, transpose=transpose),
      out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
      grid=st.grid,
      in_specs=[_no_block(), _no_block()],
      out_specs=pl.BlockSpec((None, None, st.bw, c), lambda b, h, i: (b, h, i, 0)),
      name="dynamic_conv_bwd_x" if transpose else "dynamic_conv_fwd", **st.kw(),
  )(x, kern)


def kernel_grad(g, x, kern_shape, kern_dtype, st: Static):
  b, h, _, c = st.shape
  k2, gr = st.kernel_size ** 2, st.groups
  if st.per_pixel:
    out_shape = jax.ShapeDtypeStruct(kern_shape, kern_dtype)
  else:
    out_shape = jax.ShapeDtypeStruct((b, h, st.grid[2], k2, gr), jnp.float32)
  out = pl.pallas_call(
      functools.partial(_dk_kernel, st=st),
      out_shape=out_shape,
      grid=st.grid,
      in_specs=[pl.BlockSpec((None, None, st.bw, c), lambda b, h, i: (b, h, i, 0)),
                _no_block()],
      out_specs=_no_block(),
      name="dynamic_conv_bwd_k", **st.kw(),
  )(g, x)
  if st.per_pixel:
    return out
  return out.sum(axis=(1, 2)).astype(kern_dtype).reshape(kern_shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def dynamic_conv_pallas(x, kern, st: Static):
  """Per pixel: kern [B,H,W,G*k*k]; per example: kern [B,k*k,G]. Returns [B,H,W,C]."""
  return aggregate(x, kern, st, transpose=False)


def _fwd(x, kern, st):
  return aggregate(x, kern, st, transpose=False), (x, kern)


def _bwd(st, res, g):
  x, kern = res
  dx = aggregate(g.astype(x.dtype), kern, st, transpose=True)
  dk = kernel_grad(g, x, kern.shape, kern.dtype, st)
  return dx, dk


dynamic_conv_pallas.defvjp(_fwd, _bwd)
