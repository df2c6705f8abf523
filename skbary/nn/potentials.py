"""Scalar potentials: congruent sets (``sum_k a_k f_k = 0`` exactly) and quadratic parts.

* :class:`CongruentPotentials` -- K potentials ``f_k = g_k - sum_j a_j g_j`` (NOT, EgBary);
* :func:`quadratic_at_own` -- K quadratic forms ``1/2 y^T A_k y + b_k^T y``, each at its own
  points, full or diagonal (NOT's congruent quadratic part, :class:`WithQuadratic`);
* :class:`WithQuadratic` -- K potential networks plus a learned quadratic form each (the
  max-min solvers' potentials).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .affine import dense
from .mlp import BatchedMLP

__all__ = [
    "EXACT_MAX_MODELS",
    "CongruentPotentials",
    "WithQuadratic",
    "congruent_mean_terms",
    "quadratic_at_own",
]


#: Up to this many potentials :func:`congruent_mean_terms` evaluates the pooled term
#: exactly (K^2 B evaluations, at most twice the 2 K B of its estimate).
EXACT_MAX_MODELS = 4


def congruent_mean_terms(
    g: nn.Module, weights: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Terms whose weighted mean is ``sum_k a_k mean_b f_k(y_kb)``, in O(K B) evaluations.

    With congruent potentials ``f_k = g_k - sum_j a_j g_j`` the objective splits as::

        sum_k a_k mean_b f_k(y_kb) = sum_k a_k mean_b g_k(y_kb) - sum_j a_j E_{z ~ Y} g_j(z)

    where Y is the pooled law ``sum_k a_k Unif(y_k)``. The first term needs every g_k at its
    own block only (K B evaluations); the second needs every g_j at points of the pool,
    which the exact form evaluates at all K B points (K^2 B evaluations, the K^1.8 growth
    of the iteration time reported in issue 18). Here it is estimated from B points drawn
    from the pool (blocks in proportion to a by systematic sampling, rows uniform), so the
    estimate -- and its gradient for the
    potentials and, through y, for the maps -- is unbiased and costs 2 K B evaluations.
    For K <= :data:`EXACT_MAX_MODELS` the exact form costs at most twice as much and is
    used (``generator`` None also asks for it).

    Parameters
    ----------
    g : nn.Module
        The K stacked networks g_k, ``(K, N, d) -> (K, N, 1)``.
    weights : Tensor of shape (K,)
        a.
    y : Tensor of shape (K, B, d)
        Block k: points where f_k is averaged.
    generator : torch.Generator or None
        Draws the pooled points.

    Returns
    -------
    Tensor of shape (K, B)
        ``h_kb`` with ``sum_k a_k mean_b h_kb`` the estimate. Each h_kb is *not* f_k(y_kb);
        use the terms only inside that weighted mean (a loss).
    """
    K, B, d = y.shape
    if generator is None or K <= EXACT_MAX_MODELS:
        f = g(y.reshape(1, K * B, d).expand(K, -1, -1)).squeeze(-1).view(K, K, B)
        f = f - (weights[:, None, None] * f).sum(dim=0, keepdim=True)
        idx = torch.arange(K, device=y.device)
        return f[idx, idx]

    # systematic draw of the blocks (block k gets a_k B points up to one): unbiased, and
    # less variable than independent draws; rows uniform within the block
    u = torch.arange(B, device=y.device) + torch.rand((), generator=generator, device=y.device)
    cdf = torch.cumsum(weights, 0)
    block = torch.searchsorted(cdf, u / B * cdf[-1], right=True).clamp_max(K - 1)
    row = torch.randint(0, B, (B,), generator=generator, device=y.device)
    pool = y[block, row]  # (B, d) drawn from sum_k a_k Unif(y_k)
    # one batched call: g_k at its own block and at the pooled draws, (K, 2B)
    out = g(torch.cat([y, pool.unsqueeze(0).expand(K, -1, -1)], dim=1)).squeeze(-1)
    own, at_pool = out[:, :B], out[:, B:]
    return own - (weights[:, None] * at_pool).sum(0).mean()


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

    def mean_terms(self, y: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(K, B) terms whose a-weighted mean estimates ``sum_k a_k mean_b f_k(y_kb)``
        without bias in O(K B) network evaluations (:func:`congruent_mean_terms`): for the
        losses of training, where :meth:`forward`'s exact f_k costs O(K^2 B)."""
        return congruent_mean_terms(self.g, self.weights, y, generator)


def quadratic_at_own(y: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1/2 y^T A_k y + b_k^T y`` at block k of y: (K, B, d) -> (K, B).

    A is (K, d, d) (symmetric: the caller symmetrises it) or (K, d), the diagonal of a
    diagonal form (wide rows, :data:`~skbary.nn.affine.DENSE_MAX_FEATURES`); b is (K, d).
    """
    if A.dim() == 2:
        quad = (y * y * A[:, None, :]).sum(-1)
    else:
        quad = (torch.bmm(y, A) * y).sum(-1)
    return 0.5 * quad + (y * b[:, None, :]).sum(-1)


class WithQuadratic(nn.Module):
    """K potentials ``v_k(y) = net_k(y) + 1/2 y^T A_k y + b_k^T y``, the form zero at the start.

    An MLP is close to affine far from its training points, so where a potential's true
    form grows quadratically (an OT problem between laws of different scales, whose map
    is then about linear) the network alone gets the tails wrong; the learned quadratic
    form takes that part exactly, and the network the rest. A_k is a full symmetric
    (d, d) matrix up to :data:`~skbary.nn.affine.DENSE_MAX_FEATURES` features and a
    diagonal above.

    Parameters
    ----------
    net : nn.Module
        The K networks, ``(K, B, d) -> (K, B, 1)`` (e.g. a :class:`~skbary.nn.mlp.BatchedMLP`).
    n_models : int
        K.
    n_features : int
        d.
    """

    def __init__(self, net: nn.Module, n_models: int, n_features: int) -> None:
        super().__init__()
        K, d = int(n_models), int(n_features)
        self.net = net
        self.A = nn.Parameter(torch.zeros((K, d, d) if dense(d) else (K, d)))
        self.b = nn.Parameter(torch.zeros(K, d))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(K, B, d) -> (K, B, 1)."""
        A = self.A if self.A.dim() == 2 else 0.5 * (self.A + self.A.transpose(1, 2))
        return self.net(y) + quadratic_at_own(y, A, self.b)[..., None]
