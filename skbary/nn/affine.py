"""Where dense d x d state stops: the one threshold, and the diagonal affine skip above it.

Up to :data:`DENSE_MAX_FEATURES` features the methods keep full d x d objects where they help
(covariances of the routing model, quadratic parts of potentials, affine skips of maps);
above it (image-sized rows: 3 x 64 x 64 = 12,288 features would make each such object a
gigabyte) they switch to diagonal forms. Every such switch reads this constant.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .init import identity_
from .mlp import BatchedLinear

__all__ = [
    "DENSE_MAX_FEATURES",
    "BatchedDiagonalAffine",
    "PlusAffine",
    "affine_layer",
    "dense",
    "identity_skip",
]

#: The largest number of features for which d x d state is kept.
DENSE_MAX_FEATURES = 512


def dense(*n_features: int) -> bool:
    """Whether d x d state is kept for rows of these widths."""
    return max(int(d) for d in n_features) <= DENSE_MAX_FEATURES


class BatchedDiagonalAffine(nn.Module):
    """K affine maps with a diagonal weight, ``y = pad(x[:m] * w_k) + b_k``, m = min(in, out).

    Starts at the identity (zero-padded or truncated): ``w_k = 1``, ``b_k = 0``. The diagonal
    counterpart of an identity-started :class:`~skbary.nn.mlp.BatchedLinear` for wide rows.
    """

    def __init__(self, n_models: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        m = min(self.in_features, self.out_features)
        self.weight = nn.Parameter(torch.ones(n_models, 1, m))
        self.bias = nn.Parameter(torch.zeros(n_models, 1, self.out_features))

    def _scaled(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        m = w.shape[-1]
        return F.pad(x[..., :m] * w, (0, self.out_features - m))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(K, B, in) -> (K, B, out)``."""
        return self._scaled(x, self.weight) + self.bias

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Map k alone: ``(B, in) -> (B, out)``."""
        return self._scaled(x, self.weight[k]) + self.bias[k]


def identity_skip(n_models: int, in_features: int, out_features: int) -> nn.Module:
    """K learnable affine maps starting at the identity: full up to
    :data:`DENSE_MAX_FEATURES` features, diagonal above."""
    if dense(in_features, out_features):
        return identity_(BatchedLinear(n_models, in_features, out_features))
    return BatchedDiagonalAffine(n_models, in_features, out_features)


@torch.no_grad()
def affine_layer(weight: np.ndarray, bias: np.ndarray) -> nn.Module:
    """A learnable affine layer set to ``x -> x @ weight + bias`` (row vectors).

    ``weight`` (d_in, d_out) and ``bias`` (d_out,) give an ``nn.Linear``; ``weight``
    (K, d_in, d_out) and ``bias`` (K, d_out) a :class:`~skbary.nn.mlp.BatchedLinear` of K
    layers (``forward_one`` included).
    """
    w = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
    b = torch.as_tensor(np.asarray(bias), dtype=torch.float32)
    if w.dim() == 2:
        layer = nn.Linear(w.shape[0], w.shape[1])
        layer.weight.copy_(w.T)
        layer.bias.copy_(b)
        return layer
    layer = BatchedLinear(w.shape[0], w.shape[1], w.shape[2])
    layer.weight.copy_(w)
    layer.bias.copy_(b[:, None, :])
    return layer


class PlusAffine(nn.Module):
    """``net(x) + affine(x)``: a network plus a learnable affine part.

    With a ``net`` that starts at the identity (a residual map, WIN's residual generator)
    and ``affine`` at ``x -> x (M - I) + t`` (:func:`affine_layer`) the sum starts at the
    affine map ``x -> x M + t`` and learns what is not affine in the network (WIN's
    Gaussian start). Batched maps (``forward_one(x, k)``) stay batched.
    """

    def __init__(self, net: nn.Module, affine: nn.Module) -> None:
        super().__init__()
        self.net, self.affine = net, affine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.affine(x)

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Map k alone (batched ``net`` and ``affine``): ``(B, in) -> (B, out)``."""
        return self.net.forward_one(x, k) + self.affine.forward_one(x, k)
