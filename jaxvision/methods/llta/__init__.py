"""LLTA transfer-attack runner: surrogate + frozen victims (roles), transfer matrix, demo."""
from jaxvision.methods.llta import method  # noqa: F401  (registers 'llta')
from jaxvision.methods.llta.transfer import run_transfer  # noqa: F401
