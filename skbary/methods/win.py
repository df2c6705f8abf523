"""Wasserstein Iterative Networks (WIN).

Korotin, Egiazarian, Li and Burnaev, "Wasserstein Iterative Networks for Barycenter
Estimation", NeurIPS 2022.

A generator G pushes the latent law S = N(0, I_H) to the barycenter, moved by the fixed-point
iteration of Alvarez-Esteban et al. (2016), ``P <- [sum_k a_k T_{P -> P_k}] # P``, carried
out with networks (cost ``1/2 |x - y|^2``, standardised coordinates).

Algorithm 1 (the barycenter), repeated ``max_iter`` times (:func:`fixed_point_step`):

1. OT solvers: K_v times, for every input k at once, one update of the potential v_k, then
   K_T updates of the map T_k (G#S -> P_k), on the reversed max-min problem between G#S and
   P_k (:func:`~skbary.solvers.maxmin_step`; maps and potentials warm-started from the
   previous outer iteration);
2. generator regression: G_0 <- copy(G); K_G times, z ~ S and one update of G on
   ``l(G(z), sum_k a_k T_k(G_0(z)))``.

The G kept is an exponential moving average of the outer iterations' G (not in the paper:
the fixed-point iterates swing around the barycenter, and their average is closer to it;
``generator_ema_decay``).

Algorithm 2 (maps to the barycenter, for ``transform``; :func:`maps_to_barycenter_step`):
the same solver from every input P_k (source) to the learned G#S (target); the maps kept
are an exponential moving average of the iterates (as NOT's).

Roles (:data:`ROLES`): ``generator`` (G), ``inverse_map`` (Algorithm 1's T_k, barycenter ->
input k), ``map`` (Algorithm 2's maps, input k -> barycenter), ``potential`` (the v_k of
both solvers). The default networks are ReLU MLPs of :func:`hidden_sizes` widths, but for
Algorithm 2's potentials: CELU, at least :data:`TRANSFORM_MIN_WIDTH` wide, with a learned
quadratic form; the default maps and, when H = D, the default generator are residual and
start at the identity.
The source of Algorithm 2 is input k itself, so its default maps may also take the normal
scores of x under input k's marginals (``map__quantile_features``,
:class:`~skbary.nn.maps.MarginalQuantiles`, set from the training rows), as NOT's maps do.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ..bures import sqrtm_psd
from ..nn.affine import PlusAffine, affine_layer
from ..nn.init import last_linear, zero_
from ..nn.maps import residual_maps, resolve_quantile_features
from ..nn.mlp import MLP, BatchedMLP, check_hidden_layer_sizes
from ..nn.potentials import WithQuadratic
from ..nn.roles import Role
from ..solvers import MaxMinOTSolver
from ..training.optim import ParameterAverage, descend, freeze_

__all__ = [
    "ROLES",
    "Generator",
    "average_of_maps",
    "default_generator",
    "default_maps",
    "default_potentials",
    "fixed_point_step",
    "gaussian_start_",
    "generated_sampler",
    "hidden_sizes",
    "maps_to_barycenter_step",
    "mse",
    "ot_solver",
    "potentials_of_linear_maps",
]

Step = Callable[[int], Mapping[str, torch.Tensor]]
_MAP_SETTINGS = {"hidden_layer_sizes": None, "activation": "relu", "residual": True}

ROLES: dict[str, Role] = {
    "generator": Role(
        "generator",
        "the generator G (latent noise -> barycenter)",
        defaults={"hidden_layer_sizes": None, "activation": "relu"},
        stacked=False,
    ),
    "inverse_map": Role(
        "inverse_map",
        "the map T_k from the barycenter to input k (Algorithm 1)",
        defaults=_MAP_SETTINGS,
    ),
    "map": Role(
        "map",
        "the map from input k to the barycenter (Algorithm 2)",
        defaults={**_MAP_SETTINGS, "quantile_features": "auto"},
    ),
    "potential": Role(
        "potential",
        "the potential v_k of a max-min OT solver (both algorithms)",
        defaults={"hidden_layer_sizes": None, "activation": None, "quadratic": "auto"},
        reserved=("quadratic",),
    ),
}

#: Losses of one solver iteration (:func:`~skbary.solvers.maxmin_step`).
SOLVER_LOSSES = ("potential", "map", "transport_cost")


# ---------------------------------------------------------------------- networks
#: The default width ``2D`` stops growing here: at image sizes (D = 12,288) it would make
#: every layer a D x 2D matrix (gigabytes); the paper's MLP runs stop at D = 64.
MAX_DEFAULT_WIDTH = 512


#: Algorithm 2's default potentials are at least this wide (:func:`default_potentials`).
TRANSFORM_MIN_WIDTH = 128


def hidden_sizes(setting: Sequence[int] | None, d: int, min_width: int = 64) -> tuple[int, ...]:
    """Hidden widths; None is ``[min(max(min_width, 2D), 512)] * 2`` (paper: ``[max(100, 2D)]
    * 3``; ``min_width`` 64 in Algorithm 1, :data:`TRANSFORM_MIN_WIDTH` in Algorithm 2)."""
    if setting is None:
        return (min(max(min_width, 2 * d), MAX_DEFAULT_WIDTH),) * 2
    return check_hidden_layer_sizes(setting)


class Generator(nn.Module):
    """G: R^H -> R^D, an MLP; residual (``z + MLP(z)``, starting at the identity) if H = D."""

    def __init__(
        self,
        latent_dim: int,
        n_features: int,
        hidden_layer_sizes: Sequence[int] | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.residual = latent_dim == n_features
        self.net = MLP(
            latent_dim, n_features, hidden_sizes(hidden_layer_sizes, n_features), activation
        )
        if self.residual:
            zero_(last_linear(self.net))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        return z + out if self.residual else out


def default_generator(latent_dim: int, n_features: int) -> Callable[..., nn.Module]:
    """Builder of the default G from its settings (``generator__*``)."""

    def mlp_generator(hidden_layer_sizes=None, activation="relu") -> nn.Module:
        return Generator(latent_dim, n_features, hidden_layer_sizes, activation)

    return mlp_generator


def default_maps(
    n_models: int, n_features: int, quantile_auto: bool | None = None
) -> Callable[..., nn.Module]:
    """Builder of the default K maps (either map role): batched MLPs, residual by default.

    ``quantile_auto`` (the ``map`` role only, whose source is input k's own rows): what
    ``map__quantile_features="auto"`` means, "axes+ica" (True) or False, as the estimator
    decides (:func:`~skbary.nn.maps.quantile_features_auto`); with features the MLP is a
    :class:`~skbary.nn.maps.BatchedMap` without skip that takes ``[x, z(x)]``. None: the
    builder takes no ``quantile_features`` (the ``inverse_map`` role, whose source G#S
    moves during training).
    """

    def batched_mlp_maps(hidden_layer_sizes=None, activation="relu", residual=True):
        sizes = hidden_sizes(hidden_layer_sizes, n_features)
        return residual_maps(n_models, n_features, sizes, activation, residual)

    def quantile_maps(
        hidden_layer_sizes=None, activation="relu", residual=True, quantile_features="auto"
    ):
        features = resolve_quantile_features(
            quantile_features, bool(quantile_auto), name="map__quantile_features"
        )
        sizes = hidden_sizes(hidden_layer_sizes, n_features)
        return residual_maps(n_models, n_features, sizes, activation, residual, features)

    return batched_mlp_maps if quantile_auto is None else quantile_maps


def default_potentials(
    n_models: int, n_features: int, algorithm2: bool = False
) -> Callable[..., nn.Module]:
    """Builder of the default K potentials: batched MLPs R^D -> R.

    Unset settings (None) are the algorithm's: ReLU of :func:`hidden_sizes` widths in
    Algorithm 1 (the paper's), CELU at least :data:`TRANSFORM_MIN_WIDTH` wide in Algorithm 2
    (``algorithm2``), whose maps from the inputs must follow their shapes; with the
    exact barycenter as target (``benchmarks/diag_win_oracle.py``, product measures D = 8,
    5,000 rows per input, 3,000 iterations) these and the quadratic form
    (:class:`~skbary.nn.potentials.WithQuadratic`) took the maps' weighted L2-UVP from
    1.57 % to 0.73 % (family b, seed 1) and from 1.55 % to 0.87 % (family a, seed 0); the
    quadratic form alone 1.13 % and 1.36 %; 128-wide maps did not add (0.73 %, 0.89 %).
    """

    def batched_mlp_potentials(hidden_layer_sizes=None, activation=None):
        min_width = TRANSFORM_MIN_WIDTH if algorithm2 else 64
        sizes = hidden_sizes(hidden_layer_sizes, n_features, min_width)
        if activation is None:
            activation = "celu" if algorithm2 else "relu"
        return BatchedMLP(n_models, n_features, 1, sizes, activation)

    return batched_mlp_potentials


def ot_solver(
    build: Callable[..., nn.Module],
    map_role: str,
    n_models: int,
    n_features: int,
    quantile_auto: bool | None = None,
    quadratic: bool = False,
) -> MaxMinOTSolver:
    """K max-min OT problems: the maps of ``map_role`` and their potentials.

    ``build(role, in_features=, out_features=, default=)`` builds a role's network (the
    estimator's ``_network``); the maps are built first, then the potentials (the order of
    the solver's own defaults, so that a seed gives the same networks). ``quantile_auto``:
    see :func:`default_maps`. ``quadratic``: each potential also holds a learned quadratic
    form (:class:`~skbary.nn.potentials.WithQuadratic`).
    """
    K, d = n_models, n_features
    maps = build(map_role, in_features=d, out_features=d, default=default_maps(K, d, quantile_auto))
    default = default_potentials(K, d, algorithm2=map_role == "map")
    potentials = build("potential", in_features=d, out_features=1, default=default)
    if quadratic:
        potentials = WithQuadratic(potentials, K, d)
    return MaxMinOTSolver(K, d, map=maps, potential=potentials)


# ---------------------------------------------------------------------- Gaussian start
@torch.no_grad()
def potentials_of_linear_maps(potential: nn.Module, M: NDArray, t: NDArray) -> WithQuadratic:
    """K potentials at which the max-min solver's optimal maps are ``x -> x M_k + t_k``.

    The solver's map for a potential v is ``T(x) = argmin_y 1/2 |x - y|^2 - v(y)``, i.e.
    ``x = y - grad v(y)``; for the linear map ``y = x M + t`` (M symmetric, invertible) that
    is ``v(y) = 1/2 y^T (I - M^-1) y + (M^-1 t)^T y``. ``potential`` (K networks) gets this
    quadratic form (wrapped in :class:`~skbary.nn.potentials.WithQuadratic` unless it is
    one) and its output layer zeroed, so v starts at the form and the network learns the
    rest. M (K, d, d), t (K, d).
    """
    K, d, _ = M.shape
    if not isinstance(potential, WithQuadratic):
        potential = WithQuadratic(potential, K, d)
    zero_(last_linear(potential.net))
    M_inv = np.linalg.inv(M)
    potential.A.copy_(torch.as_tensor(np.eye(d) - M_inv, dtype=torch.float32))
    potential.b.copy_(torch.as_tensor(np.einsum("kij,kj->ki", M_inv, t), dtype=torch.float32))
    return potential


def gaussian_start_(
    generator: nn.Module,
    inverse_maps: MaxMinOTSolver,
    maps: MaxMinOTSolver | None,
    mean: NDArray,
    covariance: NDArray,
    input_means: NDArray,
    input_maps: NDArray,
) -> nn.Module:
    """Start WIN's default networks at the closed-form Gaussian barycenter; returns G.

    The Gaussian barycenter N(m, S) of the inputs' Gaussian approximations N(m_k, S_k) (in
    model coordinates: :class:`~skbary.GaussianBarycenter` fitted to the training rows) and
    its linear maps ``x -> (x - m_k) M_k + m`` from input k (``input_maps`` M_k, symmetric)
    give every network a start: G ``z -> z S^1/2 + m``; Algorithm 1's maps
    ``y -> (y - m) M_k^-1 + m_k``; Algorithm 2's ``x -> (x - m_k) M_k + m``; and both
    solvers' potentials the quadratic forms whose optimal maps these are
    (:func:`potentials_of_linear_maps`), so that the first solver steps do not push the
    maps off the start. G and the maps must start at the identity (the default residual
    networks): each gets a learnable affine part (:class:`~skbary.nn.affine.PlusAffine`)
    from the identity to its start. The modules are replaced in place on the solvers.
    """
    d = mean.shape[0]
    eye = np.eye(d)
    to_input = np.linalg.inv(input_maps)  # barycenter -> input k
    t_inv = input_means - np.einsum("j,kji->ki", mean, to_input)
    inverse_maps.map = PlusAffine(inverse_maps.map, affine_layer(to_input - eye, t_inv))
    inverse_maps.potential = potentials_of_linear_maps(inverse_maps.potential, to_input, t_inv)
    if maps is not None:
        t_fwd = mean - np.einsum("kj,kji->ki", input_means, input_maps)
        maps.map = PlusAffine(maps.map, affine_layer(input_maps - eye, t_fwd))
        maps.potential = potentials_of_linear_maps(maps.potential, input_maps, t_fwd)
    return PlusAffine(generator, affine_layer(sqrtm_psd(covariance) - eye, mean))


# ---------------------------------------------------------------------- pieces of the steps
def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's regression loss ``1/2 |x - x'|^2``, averaged over the batch."""
    return 0.5 * ((pred - target) ** 2).sum(-1).mean()


def average_of_maps(solver: MaxMinOTSolver, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k a_k T_k(y)`` for rows ``y`` (B, D); ``weights`` of shape (K,)."""
    K = weights.shape[0]
    return (weights[:, None, None] * solver.transport(y.expand(K, *y.shape))).sum(0)


def generated_sampler(
    generator: nn.Module, latent: Callable[[int], torch.Tensor], n_copies: int
) -> Callable[[int], torch.Tensor]:
    """``draw(B) -> (K, B, D)``: B points of G#S (no gradient), seen by all K problems."""

    def draw(n: int) -> torch.Tensor:
        with torch.no_grad():
            y = generator(latent(n))
        return y.expand(n_copies, *y.shape)

    return draw


def _out_of_time(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


# ---------------------------------------------------------------------- Algorithm 1
def fixed_point_step(
    *,
    generator: nn.Module,
    inverse_maps: MaxMinOTSolver,
    draw_inputs: Callable[[int], torch.Tensor],
    latent: Callable[[int], torch.Tensor],
    weights: torch.Tensor,
    generator_optimizer: torch.optim.Optimizer,
    potential_optimizer: torch.optim.Optimizer,
    map_optimizer: torch.optim.Optimizer,
    regression_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    n_potential_steps: int,
    n_map_steps: int,
    n_generator_steps: int,
    batch_size: int,
    deadline: float | None = None,
    average: ParameterAverage | None = None,
) -> Step:
    """One outer iteration of Algorithm 1 as ``step(i) -> losses``.

    ``draw_inputs(B) -> (K, B, D)`` draws every input, ``latent(B) -> (B, H)`` the noise z,
    ``weights`` are the a_k (K,). An outer iteration holds K_v (1 + K_T) + K_G updates: it
    stops inside when ``deadline`` (a ``time.perf_counter()`` value) has passed, so that the
    fit's time limit is tight. ``average``: an exponential moving average of G's parameters,
    updated once per outer iteration (the iteration itself moves the raw G only).
    """
    K_v, K_G, B = int(n_potential_steps), int(n_generator_steps), int(batch_size)
    solver_step = inverse_maps.make_step(  # the max-min problems G#S -> P_k
        generated_sampler(generator, latent, weights.shape[0]),
        draw_inputs,
        batch_size=B,
        n_map_steps=n_map_steps,
        potential_optimizer=potential_optimizer,
        map_optimizer=map_optimizer,
    )
    generator_old = freeze_(copy.deepcopy(generator))  # G_0
    zero = torch.zeros((), device=weights.device)

    def step(i: int) -> dict[str, torch.Tensor]:
        # 1. OT solvers: K_v potential updates, each followed by K_T map updates.
        sums = dict.fromkeys(SOLVER_LOSSES, zero)
        n_v = 0
        for _ in range(K_v):
            if _out_of_time(deadline):
                break
            for name, value in solver_step(i).items():
                sums[name] = sums.get(name, zero) + value
            n_v += 1
        # 2. Generator regression: G_0 <- copy(G), then K_G updates of G towards
        #    sum_k a_k T_k(G_0(z)).
        generator_old.load_state_dict(generator.state_dict())
        loss_sum, n_g = zero, 0
        for _ in range(K_G):
            if _out_of_time(deadline):
                break
            z = latent(B)
            with torch.no_grad():
                target = average_of_maps(inverse_maps, generator_old(z), weights)
            loss = regression_loss(generator(z), target)
            descend(generator_optimizer, loss)
            loss_sum = loss_sum + loss.detach()
            n_g += 1
        if average is not None and n_g:
            average.update()
        out = {name: value / max(n_v, 1) for name, value in sums.items()}
        out["inverse_map"] = out.pop("map")
        out["generator"] = loss_sum / max(n_g, 1)
        return out

    return step


# ---------------------------------------------------------------------- Algorithm 2
def maps_to_barycenter_step(
    *,
    maps: MaxMinOTSolver,
    generator: nn.Module,
    draw_inputs: Callable[[int], torch.Tensor],
    latent: Callable[[int], torch.Tensor],
    potential_optimizer: torch.optim.Optimizer,
    map_optimizer: torch.optim.Optimizer,
    n_map_steps: int,
    batch_size: int,
    average: ParameterAverage | None = None,
) -> Step:
    """One iteration of Algorithm 2: the max-min step of the maps P_k -> G#S (G fixed).

    Its losses are recorded as ``transform_potential``, ``transform_map`` and
    ``transform_transport_cost``. ``average``: an exponential moving average of the maps'
    parameters, updated after every map step.
    """
    solver_step = maps.make_step(
        draw_inputs,
        generated_sampler(generator, latent, maps.n_problems),
        batch_size=batch_size,
        n_map_steps=n_map_steps,
        potential_optimizer=potential_optimizer,
        map_optimizer=map_optimizer,
        average=average,
    )

    def step(i: int) -> dict[str, torch.Tensor]:
        return {f"transform_{name}": value for name, value in solver_step(i).items()}

    return step
