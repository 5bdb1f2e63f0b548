"""Fake quantization (quantize-dequantize) with STE / LSQ gradients."""
from jaxvision.kernels.fake_quant.api import fake_quant
from jaxvision.kernels.fake_quant.config import DEFAULT_CONFIG, PREFERRED, FakeQuantConfig
from jaxvision.kernels.fake_quant.reference import round_half_even

__all__ = ["fake_quant", "FakeQuantConfig", "DEFAULT_CONFIG", "PREFERRED", "round_half_even"]
