"""jaxvision.kernels: fused ops with a jnp reference and Pallas kernels.

Every op takes `impl="auto" | "xla" | "pallas" | "pallas_gpu" | "pallas_tpu"`;
"auto" follows the op's `PREFERRED` table (config.py), which picks the XLA
reference on every backend until benchmarks/kernels.py shows a kernel faster.
"""
from jaxvision.kernels._dispatch import IMPLS
from jaxvision.kernels.dynamic_conv import DynamicConvConfig, dynamic_conv, dynamic_conv_per_example
from jaxvision.kernels.fake_quant import FakeQuantConfig, fake_quant, round_half_even
from jaxvision.kernels.masked_weight import MaskedWeightConfig, masked_weight

__all__ = [
    "IMPLS",
    "DynamicConvConfig",
    "FakeQuantConfig",
    "MaskedWeightConfig",
    "dynamic_conv",
    "dynamic_conv_per_example",
    "fake_quant",
    "masked_weight",
    "round_half_even",
]
