"""jaxvision.kernels."""
