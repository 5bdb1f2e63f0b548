"""jaxvision.quant."""
