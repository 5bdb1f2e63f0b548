"""One package per paper; importing it registers the method."""
from jaxvision.methods import classify  # noqa: F401
