"""jaxvision.sparsity."""
