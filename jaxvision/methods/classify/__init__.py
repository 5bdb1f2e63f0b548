"""Dense classification (the reference method)."""
from jaxvision.methods.classify.method import CLASSIFY  # noqa: F401
