"""jaxvision.data."""
