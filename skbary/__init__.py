"""skbary: continuous optimal-transport barycenters for scikit-learn."""

from . import datasets, metrics, model_selection, scorers, streams
from .estimators import (
    EnergyBarycenter,
    FreeSupportBarycenter,
    GaussianBarycenter,
    GenerativeBarycenter,
    ICNNBarycenter,
    NOTBarycenter,
    WINBarycenter,
)
from .exceptions import DiscreteSampleWarning, NotLearnedError, TrainingDivergedError
from .pipeline import BarycenterMapper
from .streams import InputStream
from .validation import stack

__version__ = "0.1.0"

__all__ = [
    "BarycenterMapper",
    "DiscreteSampleWarning",
    "EnergyBarycenter",
    "FreeSupportBarycenter",
    "GaussianBarycenter",
    "GenerativeBarycenter",
    "ICNNBarycenter",
    "InputStream",
    "NOTBarycenter",
    "NotLearnedError",
    "TrainingDivergedError",
    "WINBarycenter",
    "datasets",
    "metrics",
    "model_selection",
    "scorers",
    "stack",
    "streams",
]
