"""Initialisations that make a fresh network start at a known map, written once.

Between laws that are close (a barycenter and its inputs, a generator and its data) a map
that starts at the identity, or at an affine map, is already a fair map and training
converges faster. Every network of the package that starts that way uses these helpers.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["identity_", "last_linear", "scale_", "zero_"]


def last_linear(net: nn.Module) -> nn.Module:
    """The last layer of ``net`` that has a ``weight`` and a ``bias`` (the output layer)."""
    last = None
    for module in net.modules():
        if (
            getattr(module, "weight", None) is not None
            and getattr(module, "bias", None) is not None
        ):
            last = module
    if last is None:
        raise ValueError(f"{type(net).__name__} has no layer with a weight and a bias.")
    return last


@torch.no_grad()
def scale_(layer: nn.Module, factor: float) -> nn.Module:
    """Multiply a layer's weight and bias by ``factor`` (0 zeroes it: the output starts at 0)."""
    layer.weight.mul_(factor)
    layer.bias.mul_(factor)
    return layer


def zero_(layer: nn.Module) -> nn.Module:
    """Zero a layer's weight and bias, so that ``x + net(x)`` starts at the identity."""
    return scale_(layer, 0.0)


@torch.no_grad()
def identity_(layer: nn.Module) -> nn.Module:
    """Set an affine layer to the identity (zero-padded or truncated) with zero bias.

    Works for ``nn.Linear`` (weight ``(out, in)``) and for the batched layers of
    :mod:`skbary.nn.mlp` (weight ``(K, in, out)``).
    """
    w = layer.weight
    if w.dim() == 2:  # nn.Linear: (out, in)
        w.copy_(torch.eye(w.shape[0], w.shape[1]))
    else:  # BatchedLinear: (K, in, out)
        w.copy_(torch.eye(w.shape[1], w.shape[2]).expand_as(w))
    layer.bias.zero_()
    return layer
