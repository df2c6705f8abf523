"""Multilayer perceptrons: one network, or K networks stacked into one batched module."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

import torch
from torch import nn

from .activations import ACTIVATIONS, make_activation

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "BatchedLinear",
    "BatchedMLP",
    "check_hidden_layer_sizes",
    "make_activation",
]


def check_hidden_layer_sizes(
    hidden_layer_sizes: int | Sequence[int], allow_empty: bool = True
) -> tuple[int, ...]:
    """The hidden widths as a tuple of positive ints.

    An int is one hidden layer of that width, as scikit-learn's ``MLPRegressor`` takes it
    (``hidden_layer_sizes=16`` is ``(16,)``). Anything else that is not a sequence of
    positive integers raises a ``ValueError`` naming the argument.
    """
    given = hidden_layer_sizes
    if isinstance(given, numbers.Integral) and not isinstance(given, bool):
        hidden_layer_sizes = (int(given),)
    try:
        sizes = tuple(operator.index(h) for h in hidden_layer_sizes)
    except TypeError:
        sizes = None
    if sizes is None or any(h < 1 for h in sizes) or (not sizes and not allow_empty):
        need = "at least one positive width" if not allow_empty else "positive integers"
        raise ValueError(
            f"hidden_layer_sizes must be an int or a sequence of {need}, got {given!r}."
        )
    return sizes


class MLP(nn.Sequential):
    """A fully connected network ``in_features -> hidden... -> out_features``.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    hidden_layer_sizes : sequence of int, default=(128, 128)
        Widths of the hidden layers.
    activation : str, default="relu"
        Hidden activation (see :data:`skbary.nn.activations.ACTIVATIONS`).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "relu",
    ) -> None:
        widths = (in_features, *check_hidden_layer_sizes(hidden_layer_sizes))
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), make_activation(activation)]
        layers.append(nn.Linear(widths[-1], out_features))
        super().__init__(*layers)


class BatchedLinear(nn.Module):
    """K independent linear layers applied in one ``baddbmm``: (K, B, in) -> (K, B, out).

    Each of the K layers is initialised like ``nn.Linear`` (uniform in +-1/sqrt(in)).
    """

    def __init__(self, n_models: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(
            torch.empty(n_models, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_models, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Layer k alone: (B, in) -> (B, out)."""
        return torch.addmm(self.bias[k], x, self.weight[k])


class BatchedMLP(nn.Module):
    """K independent MLPs evaluated together: input (K, B, in), output (K, B, out).

    One kernel per layer serves every input, which is what makes training the K maps or
    potentials of a barycenter together cheap on both CPU and GPU.

    Parameters
    ----------
    n_models : int
        K, the number of stacked networks.
    in_features, out_features : int
        Widths of each network.
    hidden_layer_sizes : sequence of int, default=(128, 128)
    activation : str, default="relu"
    """

    def __init__(
        self,
        n_models: int,
        in_features: int,
        out_features: int,
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.n_models = n_models
        widths = (in_features, *check_hidden_layer_sizes(hidden_layer_sizes), out_features)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(BatchedLinear(n_models, a, b))
            if i < len(widths) - 2:
                layers.append(make_activation(activation))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Network k alone on rows x: (B, in) -> (B, out).

        Inference of one input's network without evaluating the other K - 1.
        """
        for layer in self.layers:
            if isinstance(layer, BatchedLinear):
                x = layer.forward_one(x, k)
            else:
                x = layer(x)
        return x
