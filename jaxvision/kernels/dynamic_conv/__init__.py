"""Dynamic depthwise convolutions (LaConv per-pixel aggregation, per-example)."""
from jaxvision.kernels.dynamic_conv.api import dynamic_conv, dynamic_conv_per_example
from jaxvision.kernels.dynamic_conv.config import DEFAULT_CONFIG, PREFERRED, DynamicConvConfig

__all__ = ["dynamic_conv", "dynamic_conv_per_example", "DynamicConvConfig", "DEFAULT_CONFIG",
           "PREFERRED"]
