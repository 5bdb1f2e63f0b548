"""jaxvision: JAX/Flax reimplementations of ten computer-vision papers."""
__version__ = "0.1.0"
