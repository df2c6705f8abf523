"""Congruent potential sets: K scalar potentials with ``sum_k a_k f_k = 0`` exactly."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .mlp import BatchedMLP

__all__ = ["CongruentPotentials"]


class CongruentPotentials(nn.Module):
    """K potentials ``f_k = g_k - sum_j a_j g_j``, congruent by construction.

    For any point y, ``sum_k a_k f_k(y) = sum_k a_k g_k(y) - sum_j a_j g_j(y) = 0``, which is
    the constraint of the barycenter dual (NOT, EgBary). For K = 1 the only congruent
    potential is 0.

    The g_k are any K stacked scalar networks (``g(y)`` maps ``(K, N, d)`` to ``(K, N, 1)``:
    a :class:`~skbary.nn.mlp.BatchedMLP`, or a :class:`~skbary.nn.stacking.StackedModules`
    of a user's network); by default K stacked MLPs.

    Parameters
    ----------
    weights : sequence of float
        Barycenter weights a_k (non-negative, summing to 1).
    n_features : int, optional
        Dimension of the barycenter space (for the default MLPs; unused with ``g``).
    hidden_layer_sizes : sequence of int, default=(128, 128)
        Of the default MLPs.
    activation : str, default="relu"
        Of the default MLPs.
    g : nn.Module, optional
        The K networks g_k, used instead of the default MLPs.
    """

    def __init__(
        self,
        weights: Sequence[float] | torch.Tensor,
        n_features: int | None = None,
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "relu",
        *,
        g: nn.Module | None = None,
    ) -> None:
        super().__init__()
        a = torch.as_tensor(weights, dtype=torch.float32)
        self.register_buffer("weights", a)
        self.n_models = a.shape[0]
        if g is None:
            if n_features is None:
                raise TypeError("CongruentPotentials needs n_features or the networks g.")
            g = BatchedMLP(self.n_models, n_features, 1, hidden_layer_sizes, activation)
        self.g = g

    def all_at(self, y: torch.Tensor) -> torch.Tensor:
        """Every f_k at the same points: y (N, d) -> (K, N)."""
        return self._congruent(y)

    def _congruent(self, y: torch.Tensor) -> torch.Tensor:
        # the congruent combination of the g_j (subclasses adding terms override all_at)
        K = self.n_models
        g = self.g(y.unsqueeze(0).expand(K, -1, -1)).squeeze(-1)
        return g - (self.weights[:, None] * g).sum(dim=0, keepdim=True)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """f_k at its own points: y (K, B, d), block k for potential k -> (K, B).

        Each g_j is evaluated once on all K*B points (one batched call), as congruence
        needs every g_j wherever any f_k is evaluated.
        """
        K, B, d = y.shape
        f = self._congruent(y.reshape(K * B, d)).view(K, K, B)
        idx = torch.arange(K, device=y.device)
        return f[idx, idx]
