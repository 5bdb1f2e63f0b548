"""jaxvision.methods."""
