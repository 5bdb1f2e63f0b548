"""Fake quantization as a Pallas Triton kernel (GPU; interpret mode on CPU).

Power-of-two 2-D tiles, ragged tails masked by Pallas; rounding without the
`round` primitive (see reference.round_half_even). Lowering to Triton IR is
checked on CPU by tests/kernels (jax.export for 'cuda'); runtime speed on a GPU
is unmeasured.
"""
from __future__ import annotations


from jaxvision.kernels._dispatch import interpret, next_pow2
from jaxvision.kernels.fake_quant import _pallas
from jaxvision.kernels.fake_quant.config import FakeQuantConfig
from jaxvision.kernels.fake_quant.reference import FQSpec

supported = _pallas.supported  # the same input check for both kernel families


def _chooser(cfg: FakeQuantConfig):
  def choose(rows, cols, mode):
    if mode == "tensor" and rows == 1:
      return 1, min(next_pow2(cols), cfg.tile_elems)
    bn = min(next_pow2(cols), cfg.max_cols)
    bm = min(next_pow2(rows), max(1, cfg.tile_elems // bn))
    return bm, bn
  return choose


def static(x, spec: FQSpec, cfg: FakeQuantConfig) -> _pallas.Static:
  lay = _pallas.make_layout(x.shape, spec.axis, _chooser(cfg), flat_cols=cfg.max_cols)
  return _pallas.Static(spec, lay, interpret(), "gpu", cfg.num_warps, cfg.num_stages)


def fake_quant_gpu(x, scale, zp, spec: FQSpec, cfg: FakeQuantConfig):
  return _pallas.fake_quant_pallas(x, scale, zp, static(x, spec, cfg))
