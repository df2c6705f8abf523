"""K maps ``T_k(x) = x + net_k(x)`` that start at the identity."""

from __future__ import annotations

import torch
from torch import nn

from .init import last_linear, zero_

__all__ = ["ResidualMaps"]


class ResidualMaps(nn.Module):
    """K maps ``T_k(x) = x + net_k(x)`` with the output layer of ``net`` zeroed.

    Between laws that are close (a barycenter and its inputs, a generator and its data) the
    identity is already a fair map, and training from it converges faster. ``net`` is any
    stacked module (``(K, B, d) -> (K, B, d)`` with ``forward_one(x, k)``); the default maps
    of WIN and Generative are ``ResidualMaps(BatchedMLP(...))``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        zero_(last_linear(net))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return x + self.net.forward_one(x, k)
