"""Network building blocks shared by the estimators."""

from .mlp import MLP, BatchedLinear, BatchedMLP, make_activation
from .potentials import CongruentPotentials

__all__ = ["MLP", "BatchedLinear", "BatchedMLP", "CongruentPotentials", "make_activation"]
