"""One module per method; each holds only what is specific to its paper."""

from .energy import EnergyBarycenter
from .free_support import FreeSupportBarycenter
from .gaussian import GaussianBarycenter
from .generative import GenerativeBarycenter
from .icnn import ICNNBarycenter
from .notb import NOTBarycenter
from .win import WINBarycenter

__all__ = [
    "EnergyBarycenter",
    "FreeSupportBarycenter",
    "GaussianBarycenter",
    "GenerativeBarycenter",
    "ICNNBarycenter",
    "NOTBarycenter",
    "WINBarycenter",
]
