"""skbary: continuous optimal-transport barycenters for scikit-learn."""

from .estimators import EnergyBarycenter, FreeSupportBarycenter, GaussianBarycenter, ICNNBarycenter
from .estimators.generative import GenerativeBarycenter
from .estimators.notb import NOTBarycenter
from .estimators.win import WINBarycenter
from .pipeline import BarycenterMapper
from .training import TrainingDivergedError
from .validation import stack

__version__ = "0.1.0"

__all__ = [
    "BarycenterMapper",
    "EnergyBarycenter",
    "FreeSupportBarycenter",
    "GaussianBarycenter",
    "GenerativeBarycenter",
    "ICNNBarycenter",
    "NOTBarycenter",
    "TrainingDivergedError",
    "WINBarycenter",
    "stack",
]
