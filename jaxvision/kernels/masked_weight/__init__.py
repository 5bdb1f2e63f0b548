"""Masked weights / supermask with the OptG straight-through gradients."""
from jaxvision.kernels.masked_weight.api import masked_weight
from jaxvision.kernels.masked_weight.config import DEFAULT_CONFIG, PREFERRED, MaskedWeightConfig

__all__ = ["masked_weight", "MaskedWeightConfig", "DEFAULT_CONFIG", "PREFERRED"]
