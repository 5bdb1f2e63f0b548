"""One package per paper; importing it registers the method."""
from jaxvision.methods import classify  # noqa: F401
from jaxvision.methods import clr_rnf  # noqa: F401
from jaxvision.methods import dcl  # noqa: F401
from jaxvision.methods import decloss  # noqa: F401
from jaxvision.methods import gcc  # noqa: F401
from jaxvision.methods import intraq  # noqa: F401
from jaxvision.methods import laconv  # noqa: F401
from jaxvision.methods import llta  # noqa: F401
from jaxvision.methods import lfpnet  # noqa: F401  (the 'lfpnet' method, the 'comp1k_folder' dataset)
from jaxvision.methods import optg  # noqa: F401
