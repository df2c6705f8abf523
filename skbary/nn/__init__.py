"""Network building blocks shared by the estimators."""

from .icnn import FICNN
from .mlp import MLP, BatchedLinear, BatchedMLP, make_activation
from .potentials import CongruentPotentials

__all__ = ["FICNN", "MLP", "BatchedLinear", "BatchedMLP", "CongruentPotentials", "make_activation"]
