"""NOT barycenter: the bi-level neural optimal-transport barycenter.

Kolesov, Mokrov, Udovichenko, Gazdieva, Pammer, Burnaev, Korotin, "Estimating Barycenters of
Distributions with Neural Optimal Transport", ICML 2024 (``papers/notb-neural-ot-barycenters``).

Per input k a plan ``pi_k(. | x)`` given by a (stochastic) map T_k into the barycenter space
(:class:`Plans`), and a potential f_k; the potentials are congruent, ``f_k = g_k - sum_j a_j
g_j`` so that ``sum_k a_k f_k = 0`` exactly (:class:`Potentials`). Algorithm 1 of the paper
solves the max-min problem (their eq. 14)::

    sup_{f congruent} inf_T  sum_k a_k { E_x C_k(x, T_k(x, .)#S) - E_{x,s} f_k(T_k(x, s)) }

    repeat (one iteration, :func:`iteration`, on :func:`~skbary.solvers.maxmin_step`)
        x ~ P_k (B rows of every input), s ~ S (|S[x]| draws per row)
        potential step:  decrease  V_f = sum_k a_k E f_k(T_k(x, s))         (over g)
        M_T times:       x ~ P_k, s ~ S
                         decrease  V_T = sum_k a_k E [C^_k(x, T_k(x, .)) - f_k(T_k(x, s))]
                                                                              (over T)
                         EMA of the maps' weights

with the weak costs ``C^_k = c + reg_strength * R`` (paper eqs. 7-8; R the closed-form KL to
a Gaussian prior, or the squared energy distance to the prior, :class:`Prior`). No generator
is trained: the barycenter is the common image ``T_k # P_k`` of the inputs.

Roles (:data:`ROLES`): ``map`` (the K maps T_k: rows ``[x]``, ``[x, s]`` for stochastic plans,
to ``d_out`` columns, ``2 d_out`` -- mean then log-std offset -- for Gaussian plans; default
:class:`~skbary.nn.maps.BatchedMap` / :class:`~skbary.nn.maps.BatchedGaussianMap`, an affine
skip at the identity plus a small MLP) and ``potential`` (the K functions g_k, ``d_out -> 1``;
default :class:`~skbary.nn.mlp.BatchedMLP`). The congruence and the optional quadratic part
``1/2 y^T A_k y + b_k^T y`` (diagonal A_k above :data:`FULL_MAX_FEATURES`) wrap
whatever g network is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nn.affine import DENSE_MAX_FEATURES
from ..nn.maps import (
    QUANTILE_AUTO_MAX_FEATURES,
    BatchedGaussianMap,
    BatchedMap,
    kl_to_gaussian,
    resolve_quantile_features,
)
from ..nn.mlp import BatchedMLP
from ..nn.potentials import CongruentPotentials, quadratic_at_own
from ..nn.roles import Role
from ..solvers import maxmin_step
from ..training.optim import ParameterAverage

__all__ = [
    "FULL_MAX_FEATURES",
    "QUANTILE_AUTO_MAX_FEATURES",
    "ROLES",
    "ParameterAverage",
    "Plans",
    "Potentials",
    "Prior",
    "default_map",
    "default_potential",
    "iteration",
    "transport_push",
]

#: Up to this barycenter dimension the quadratic part of the potentials and the KL prior's
#: covariance are full d x d matrices; above it diagonal (no d x d state for images).
FULL_MAX_FEATURES = DENSE_MAX_FEATURES

ROLES: dict[str, Role] = {
    "map": Role(
        "map",
        "the transport map T_k of each input",
        defaults={
            "hidden_layer_sizes": (128, 128),
            "activation": "relu",
            "skip": True,
            "quantile_features": "auto",
        },
        reserved=("noise_dim", "init_std", "min_log_std", "max_log_std"),
    ),
    "potential": Role(
        "potential",
        "the function g_k of each congruent potential f_k = g_k - sum_j a_j g_j",
        defaults={"hidden_layer_sizes": (128, 128), "activation": "celu"},
        reserved=("quadratic",),
    ),
}


# ---------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Plans:
    """How a map module parametrises the plans ``pi_k(. | x)`` (paper, section 4.2).

    ``"deterministic"``: ``T_k(x)``; ``"stochastic"``: ``T_k(x, s)`` on rows ``[x, s]`` with
    ``noise_dim`` columns of standard normal noise; ``"gaussian"``: the module outputs
    ``[mu_k(x), o_k(x)]`` and the plan is ``N(mu, diag sigma^2)`` with
    ``log sigma = clamp(o + log init_std, min_log_std, max_log_std)``. Works with any
    module with the stacked interface (``net(x)`` on ``(K, B, in)``, ``net.forward_one``).
    """

    kind: str
    n_features_out: int
    noise_dim: int = 0
    init_std: float = 0.1
    min_log_std: float = -10.0
    max_log_std: float = 5.0

    def in_features(self, n_features_in: int) -> int:
        return n_features_in + (self.noise_dim if self.kind == "stochastic" else 0)

    def out_features(self) -> int:
        return 2 * self.n_features_out if self.kind == "gaussian" else self.n_features_out

    def _gaussian(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        D = self.n_features_out
        log_std = (h[..., D:] + math.log(self.init_std)).clamp(self.min_log_std, self.max_log_std)
        return h[..., :D], log_std

    def draw(
        self, net: nn.Module, x: torch.Tensor, n_noise: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Draws of the plans for rows x (K, B, d_in).

        Returns y (K, B, S, d_out), x broadcastable to (K, B, S, d_in), and the Gaussian
        parameters (mu, log_std), each (K, B, d_out), for Gaussian plans (else None).
        """
        K, B, d = x.shape
        if self.kind == "deterministic":
            return net(x).unsqueeze(2), x.unsqueeze(2), None
        if self.kind == "gaussian":
            mu, log_std = self._gaussian(net(x))
            noise = torch.randn(
                (K, B, n_noise, self.n_features_out), generator=generator, device=x.device
            )
            y = mu.unsqueeze(2) + torch.exp(log_std).unsqueeze(2) * noise
            return y, x.unsqueeze(2), (mu, log_std)
        noise = torch.randn((K, B, n_noise, self.noise_dim), generator=generator, device=x.device)
        xr = x.unsqueeze(2).expand(K, B, n_noise, d)
        rows = torch.cat([xr.reshape(K, B * n_noise, d), noise.reshape(K, B * n_noise, -1)], dim=-1)
        return net(rows).view(K, B, n_noise, -1), xr, None

    def apply_one(
        self, net: nn.Module, x: torch.Tensor, k: int, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Plan k on rows x (n, d_in): a draw with noise (n, noise_dim); the mean without
        (deterministic and Gaussian plans only)."""
        if self.kind == "stochastic":
            return net.forward_one(torch.cat([x, noise], dim=-1), k)
        h = net.forward_one(x, k)
        if self.kind == "deterministic":
            return h
        mu, log_std = self._gaussian(h)
        return mu if noise is None else mu + torch.exp(log_std) * noise


def default_map(
    n_models: int, n_features_in: int, plans: Plans, quantile_auto: bool = False
) -> Callable[..., nn.Module]:
    """Builder of the default K maps (settings: the ``map__*`` of :data:`ROLES`).

    ``quantile_auto``: what ``map__quantile_features="auto"`` means, "axes+ica" (True) or
    False; the estimator decides (:data:`~skbary.nn.maps.QUANTILE_AUTO_MAX_FEATURES`).
    """

    def build(
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "relu",
        skip: bool = True,
        init_scale: float = 0.1,
        quantile_features: bool | str = "auto",
    ) -> nn.Module:
        D = plans.n_features_out
        quantile_features = resolve_quantile_features(
            quantile_features, quantile_auto, name="map__quantile_features"
        )
        if plans.kind == "gaussian":
            if quantile_features:
                raise ValueError(
                    "map__quantile_features=True is not available for plan='gaussian'."
                )
            return BatchedGaussianMap(
                n_models, n_features_in, D, hidden_layer_sizes, activation, skip, init_scale,
                init_std=plans.init_std, min_log_std=plans.min_log_std,
                max_log_std=plans.max_log_std,
            )  # fmt: skip
        return BatchedMap(
            n_models, n_features_in, D, hidden_layer_sizes, activation,
            noise_dim=plans.noise_dim if plans.kind == "stochastic" else 0,
            skip=skip, init_scale=init_scale, quantile_features=quantile_features,
        )  # fmt: skip

    return build


def default_potential(n_models: int, n_features: int) -> Callable[..., nn.Module]:
    """Builder of the default K functions g_k (settings: ``potential__*``)."""

    def build(hidden_layer_sizes: Sequence[int] = (128, 128), activation: str = "celu"):
        return BatchedMLP(n_models, n_features, 1, hidden_layer_sizes, activation)

    return build


# ---------------------------------------------------------------------- potentials
class Potentials(CongruentPotentials):
    """Congruent potentials ``f_k = g_k - sum_j a_j g_j`` with an optional quadratic part.

    ``g_k(y) = net_k(y) + 1/2 y^T A_k y + b_k^T y`` when ``quadratic``: the quadratic terms
    (zero at the start) make the potentials of Gaussian problems exactly representable.
    Congruence holds exactly for both parts. A_k is a full (d, d) matrix up to
    :data:`FULL_MAX_FEATURES` features and diagonal (its (d,) diagonal) above.

    Parameters
    ----------
    weights : sequence of float
        a.
    g : nn.Module
        The K networks g_k (the ``potential`` role).
    n_features : int
        d, the barycenter dimension.
    quadratic : bool
    """

    def __init__(self, weights: Sequence[float], g: nn.Module, n_features: int, quadratic: bool):
        super().__init__(weights, g=g)
        K, d = self.n_models, int(n_features)
        self.quadratic = bool(quadratic)
        self.diagonal = d > FULL_MAX_FEATURES
        if self.quadratic:
            shape = (K, d) if self.diagonal else (K, d, d)
            self.A = nn.Parameter(torch.zeros(shape))
            self.b = nn.Parameter(torch.zeros(K, d))

    def _centred(self) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.weights
        if self.diagonal:
            A = self.A - (a[:, None] * self.A).sum(0)
        else:
            A = 0.5 * (self.A + self.A.transpose(1, 2))
            A = A - (a[:, None, None] * A).sum(0)
        return A, self.b - (a[:, None] * self.b).sum(0)

    def all_at(self, y: torch.Tensor) -> torch.Tensor:
        """Every f_k at the same points: y (N, d) -> (K, N)."""
        f = super().all_at(y)
        if self.quadratic:
            A, b = self._centred()
            if self.diagonal:
                quad = A @ (y * y).T
            else:
                quad = torch.einsum("nd,kde,ne->kn", y, A, y)
            f = f + 0.5 * quad + b @ y.T
        return f

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """f_k at its own points: y (K, B, d) -> (K, B)."""
        f = super().forward(y)
        if self.quadratic:
            f = f + self._quadratic_at_own(y)
        return f

    def _quadratic_at_own(self, y: torch.Tensor) -> torch.Tensor:
        # the centred quadratic part of f_k at block k of y (K, B, d) -> (K, B)
        return quadratic_at_own(y, *self._centred())

    def mean_terms(self, y: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """As :meth:`CongruentPotentials.mean_terms`; the quadratic part is exact (its
        centred form costs O(K B))."""
        f = super().mean_terms(y, generator)
        if self.quadratic:
            f = f + self._quadratic_at_own(y)
        return f


# ---------------------------------------------------------------------- weak costs
class Prior(nn.Module):
    """The prior mu_0 of the weak costs, in the coordinates the networks work in.

    Samples (rows), or ``N(loc, std^2 I)`` (the default N(0, I) of the data coordinates,
    moved by the standardisation). ``kl`` is the closed-form KL of Gaussian plans to the
    Gaussian of the prior's mean and covariance (diagonal above
    :data:`FULL_MAX_FEATURES`); ``energy`` the sample estimate of the squared energy
    distance ``2 E|y - y0| - E|y - y'|`` from S draws per row and as many prior draws.
    """

    def __init__(
        self, n_features: int, rows: np.ndarray | None = None, loc: Any = 0.0, std: float = 1.0
    ) -> None:
        super().__init__()
        D = self.n_features = int(n_features)
        loc = np.broadcast_to(np.asarray(loc, dtype=np.float64), (D,))
        self.std, self.affine = float(std), bool(np.any(loc != 0) or std != 1.0)
        full = D <= FULL_MAX_FEATURES
        if rows is None:  # N(loc, std^2 I)
            mean, var = loc, np.full(D, float(std) ** 2)
            precision, logdet = np.diag(1 / var) if full else 1 / var, float(np.log(var).sum())
        elif full:  # the Gaussian of the rows' mean and covariance (slightly regularised)
            mean, C0 = rows.mean(axis=0), np.atleast_2d(np.cov(rows, rowvar=False))
            C0 = C0 + 1e-6 * np.trace(C0) / D * np.eye(D)
            precision, logdet = np.linalg.inv(C0), float(np.linalg.slogdet(C0)[1])
        else:  # ... with a diagonal covariance
            mean, var = rows.mean(axis=0), rows.var(axis=0, ddof=1)
            var = var + 1e-6 * var.mean()
            precision, logdet = 1 / var, float(np.log(var).sum())
        f32 = dict(dtype=torch.float32)
        self.register_buffer("rows", None if rows is None else torch.as_tensor(rows, **f32))
        self.register_buffer("loc", torch.as_tensor(loc.copy(), **f32))
        self.register_buffer("mean", torch.as_tensor(np.array(mean), **f32))
        self.register_buffer("precision", torch.as_tensor(precision, **f32))
        self.register_buffer("logdet", torch.tensor(logdet, **f32))

    def draw(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Prior draws of shape ``shape + (d,)``."""
        device = self.loc.device
        if self.rows is None:
            z = torch.randn((*shape, self.n_features), generator=generator, device=device)
            return z * self.std + self.loc if self.affine else z
        u = torch.rand(shape, generator=generator, device=device)
        return self.rows[(u * self.rows.shape[0]).long()]

    def kl(self, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """``KL(N(mu, diag sigma^2) || prior)`` per row: (..., d) -> (...)."""
        return kl_to_gaussian(mu, log_std, self.mean, self.precision, self.logdet)

    def energy(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Squared energy distance of the S draws y (K, B, S, d) of every row: (K, B)."""
        K, B, S, D = y.shape
        y0 = self.draw((K, B, S), generator)

        def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            sq = ((a.unsqueeze(-2) - b.unsqueeze(-3)) ** 2).sum(-1)
            return torch.sqrt(sq + 1e-12)

        cross = dist(y, y0).mean(dim=(-1, -2))
        self_d = dist(y, y).sum(dim=(-1, -2)) / (S * (S - 1))
        return 2.0 * cross - self_d


# ---------------------------------------------------------------------- the iteration
def transport_push(
    plans: Plans,
    maps: nn.Module,
    cost: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    n_noise: int,
    generator: torch.Generator,
    regularization: str | None = None,
    prior: Prior | None = None,
    reg_strength: float = 1.0,
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``push(x) -> (y (K, B*S, d_out), C^ (K, B))``: plan draws and the weak cost per row.

    ``with_cost=False`` (the potential step) skips the cost and the regulariser.
    """

    def push(x: torch.Tensor, with_cost: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        y, xr, gauss = plans.draw(maps, x, n_noise, generator)
        K, B, S, D = y.shape
        if not with_cost:
            return y.reshape(K, B * S, D), None
        c = cost(xr, y).mean(-1)  # (K, B)
        if regularization == "kl":
            c = c + reg_strength * prior.kl(*gauss)
        elif regularization == "energy":
            c = c + reg_strength * prior.energy(y, generator)
        return y.reshape(K, B * S, D), c

    return push


def iteration(
    *,
    draw: Callable[[int], torch.Tensor],
    push: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    potentials: Potentials,
    weights: torch.Tensor,
    batch_size: int,
    n_map_steps: int,
    map_optimizer: torch.optim.Optimizer,
    potential_optimizer: torch.optim.Optimizer,
    average: ParameterAverage | None = None,
    generator: torch.Generator | None = None,
) -> Callable[[int], Mapping[str, torch.Tensor]]:
    """One iteration of Algorithm 1: ``step(i) -> {"potential": V_f, "map": V_T,
    "transport_cost": sum_k a_k E C^_k}`` (congruent form of the max-min step; the
    potentials are averaged over all B*S plan draws of a minibatch).

    The congruent objective ``sum_k a_k E f_k(y_k)`` needs every g_j at the pooled draws of
    all inputs; with ``generator`` that pooled term is estimated without bias from B*S pooled
    draws (:func:`~skbary.nn.potentials.congruent_mean_terms`), so an iteration costs O(K)
    network evaluations instead of O(K^2); without it (or for K <= 2) it is exact.
    """
    return maxmin_step(
        draw_source=draw,
        push=push,
        potential=lambda y: potentials.mean_terms(y, generator),
        potential_params=list(potentials.parameters()),
        potential_optimizer=potential_optimizer,
        map_optimizer=map_optimizer,
        batch_size=batch_size,
        n_map_steps=n_map_steps,
        weights=weights,
        after_map_step=None if average is None else average.update,
    )
