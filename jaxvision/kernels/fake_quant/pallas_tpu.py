"""Fake quantization as a Pallas Mosaic TPU kernel (interpret mode on CPU).

Same kernel bodies as the GPU version; tiles obey the TPU rule (last two block
dims multiples of (32, 128) or the full dims). Unmeasured on a TPU.
"""
from __future__ import annotations


from jaxvision.kernels._dispatch import interpret
from jaxvision.kernels.fake_quant import _pallas
from jaxvision.kernels.fake_quant.config import FakeQuantConfig
from jaxvision.kernels.fake_quant.reference import FQSpec

supported = _pallas.supported  # the same input check for both kernel families


def _chooser(cfg: FakeQuantConfig):
  def choose(rows, cols, mode):
    del mode
    bn = cols if cols <= cfg.tpu_max_cols else cfg.tpu_max_cols
    cap = max(32, (cfg.tpu_tile_elems // bn) // 32 * 32)
    bm = rows if rows <= cap else cap
    return bm, bn
  return choose


def static(x, spec: FQSpec, cfg: FakeQuantConfig) -> _pallas.Static:
  lay = _pallas.make_layout(x.shape, spec.axis, _chooser(cfg), flat_cols=1024)
  return _pallas.Static(spec, lay, interpret(), "tpu")


def fake_quant_tpu(x, scale, zp, spec: FQSpec, cfg: FakeQuantConfig):
  return _pallas.fake_quant_pallas(x, scale, zp, static(x, spec, cfg))
