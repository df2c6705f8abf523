"""Barycenters as generative models: Cohen, Arbel and Deisenroth (2021), Algorithm 1.

*Estimating barycenters of measures in high dimensions* (arXiv:2007.07105). The barycenter
of P_1..P_K with weights a is parametrised by a generator: a draw is ``G_theta(z)``,
``z ~ rho = N(0, I)``, and theta minimises the barycentric loss (their eq. 10)::

    L(theta) = sum_k a_k D(G_theta # rho, P_k)

Algorithm 1 (one generator update per iteration)::

    repeat
        x_k ~ P_k (B points each),  z ~ rho (B points)
        [SMMD only] n_critic_steps ascent steps of the critics phi_k on the regularised
                    MMD^2 of the features phi_k(x_k), phi_k(G(z))
        theta <- theta - lr * grad_theta sum_k a_k D(G_theta(z), x_k)

with D one of

* the debiased Sinkhorn divergence (:func:`sinkhorn_step`), whose barycenter approaches the
  W2 barycenter as the blur goes to 0;
* the squared MMD of a fixed kernel (:func:`mmd_step`), whose barycenter is the mixture
  ``sum_k a_k P_k`` (their Proposition 2);
* the MMD of a learned deep kernel ``k(phi_k(x), phi_k(y))`` (:func:`smmd_step`), the critics
  trained adversarially with the scaling regulariser of Arbel et al. (2018) or the gradient
  penalty of Binkowski et al. (2018) (their eq. 8 and appendix D.3).

The method learns no transport plans. The maps used by ``transform`` are fitted after
Algorithm 1, from every input onto ``G # rho``, with the shared max-min OT solver
(:func:`transform_step`, WIN's Algorithm 2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..divergences import entropic_ot, kernel_matrix, mmd2
from ..nn.affine import DENSE_MAX_FEATURES
from ..nn.maps import residual_maps, resolve_quantile_features
from ..nn.mlp import MLP, BatchedMLP
from ..nn.roles import Role
from ..solvers import MaxMinOTSolver
from ..training.optim import ParameterAverage, descend, frozen

__all__ = [
    "ROLES",
    "GaussianGenerator",
    "mmd_step",
    "sinkhorn_step",
    "smmd_step",
    "transform_step",
]

Draw = Callable[[int], torch.Tensor]
Step = Callable[[int], dict[str, torch.Tensor]]

N_SELF = 8  # minibatches that estimate the inputs' Sinkhorn self-terms
#: Above this many features the Gaussian generator's factor is diagonal.
GAUSSIAN_FULL_MAX_FEATURES = DENSE_MAX_FEATURES

ROLES = {
    "generator": Role(
        "generator",
        "the generator G, from latent_dim noise features to a barycenter point",
        defaults={"hidden_layer_sizes": (256, 256, 256), "activation": "relu"},
        stacked=False,
    ),
    "critic": Role(
        "critic",
        "the SMMD feature network phi_k of input k (critic__n_outputs features)",
        defaults={"hidden_layer_sizes": (128, 128), "activation": "relu"},
        reserved=("n_outputs",),
    ),
    "map": Role(
        "map",
        "the transform's map T_k from input k to the barycenter",
        defaults={
            "hidden_layer_sizes": (128, 128, 128),
            "activation": "relu",
            "residual": True,
            "quantile_features": "auto",
        },
    ),
    "potential": Role(
        "potential",
        "the transform's potential v_k (one output)",
        defaults={"hidden_layer_sizes": (128, 128, 128), "activation": "relu", "quadratic": False},
        reserved=("quadratic",),
    ),
}


# ---------------------------------------------------------------------------- networks
class GaussianGenerator(nn.Module):
    """The Gaussian family ``G(z) = m + L z``: a mean and a covariance factor.

    Starts at N(0, I) (``m = 0``, ``L = I``); the covariance is ``L L^T``. With
    ``diagonal=True`` L is a diagonal (a vector of d scales), the form used for image-sized
    rows where a d x d factor is too large.

    Parameters
    ----------
    n_features : int
        Dimension of the samples (and of the latent noise).
    diagonal : bool, default=False
        A diagonal factor instead of a full one.
    """

    def __init__(self, n_features: int, diagonal: bool = False) -> None:
        super().__init__()
        self.diagonal = bool(diagonal)
        self.mean = nn.Parameter(torch.zeros(n_features))
        eye = torch.ones(n_features) if self.diagonal else torch.eye(n_features)
        self.factor = nn.Parameter(eye)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.diagonal:
            return torch.addcmul(self.mean, z, self.factor)
        return torch.addmm(self.mean, z, self.factor.T)


def default_generator(latent_dim: int, n_features: int) -> Callable[..., nn.Module]:
    """The default G: an MLP from the noise to the data space."""

    def build(hidden_layer_sizes: Sequence[int], activation: str) -> nn.Module:
        return MLP(latent_dim, n_features, hidden_layer_sizes, activation)

    return build


def default_stack(n_models: int, n_in: int, n_out: int) -> Callable[..., nn.Module]:
    """K MLPs fused into one batched module (the critics and the transform's potentials)."""

    def build(hidden_layer_sizes: Sequence[int], activation: str) -> nn.Module:
        return BatchedMLP(n_models, n_in, n_out, hidden_layer_sizes, activation)

    return build


def default_maps(
    n_models: int, n_features: int, quantile_auto: bool = False
) -> Callable[..., nn.Module]:
    """K maps fused into one batched MLP, ``x + MLP(x)`` starting at the identity by default.

    The maps' source is input k's own rows, so they may also take the normal scores of x
    under input k's marginals (``map__quantile_features``, as WIN's and NOT's maps);
    ``quantile_auto``: what its "auto" means ("axes+ica" or False,
    :func:`~skbary.nn.maps.quantile_features_auto`).
    """

    def build(
        hidden_layer_sizes: Sequence[int],
        activation: str,
        residual: bool,
        quantile_features: bool | str = "auto",
    ) -> nn.Module:
        features = resolve_quantile_features(
            quantile_features, quantile_auto, name="map__quantile_features"
        )
        return residual_maps(
            n_models, n_features, hidden_layer_sizes, activation, residual, features
        )

    return build


# ---------------------------------------------------------------------------- Algorithm 1
def sinkhorn_step(
    *,
    generator: nn.Module,
    draw_inputs: Draw,
    draw_noise: Draw,
    weights: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    blur: float,
    debias: str = "independent",
) -> Step:
    """Algorithm 1 with the debiased Sinkhorn divergence (cost ``|x - y|^2 / 2``).

    ``S(x_k, y) = OT(x_k, y) - OT(x_k, x_k') / 2 - OT(y, y') / 2``. With
    ``debias="independent"`` y' is a second generator batch and x_k' a second input batch, so
    the expected loss vanishes at ``G # rho = P_k`` whatever B; ``"same"`` takes ``y' = y``,
    ``x' = x`` (the divergence of one minibatch pair, as in the paper). The K cross terms are
    one batched problem, the generator's self-term is solved once, and the inputs' self-terms
    (no gradient) are their mean over ``N_SELF`` minibatches drawn here, before training.
    """
    B = int(batch_size)
    independent = debias == "independent"
    with torch.no_grad():
        self_x = torch.stack(
            [
                entropic_ot(x, draw_inputs(B) if independent else x, blur)
                for x in (draw_inputs(B) for _ in range(N_SELF))
            ]
        ).mean(0)
    const = 0.5 * (weights * self_x).sum()

    def step(i: int) -> dict[str, torch.Tensor]:
        x = draw_inputs(B)  # (K, B, d)
        y = generator(draw_noise(B))  # (B, d), shared by the K terms
        y2 = generator(draw_noise(B)) if independent else y
        if not bool(torch.isfinite(y.square().sum() + y2.square().sum())):
            # G diverged (NaN, or a cloud whose size overflows): GeomLoss cannot set its
            # temperature schedule; report a NaN loss, which the training loop turns into
            # TrainingDivergedError, instead of crashing inside GeomLoss.
            return {"sinkhorn": torch.full((), float("nan"), device=y.device)}
        loss = (weights * entropic_ot(x, y, blur)).sum() - 0.5 * entropic_ot(y, y2, blur) - const
        descend(optimizer, loss)
        return {"sinkhorn": loss}

    return step


def mmd_step(
    *,
    generator: nn.Module,
    draw_inputs: Draw,
    draw_noise: Draw,
    weights: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    kernel: str,
    bandwidth: float | Sequence[float],
) -> Step:
    """Algorithm 1 with the squared MMD of a fixed kernel: descend ``sum_k a_k MMD^2``."""
    B = int(batch_size)

    def step(i: int) -> dict[str, torch.Tensor]:
        x = draw_inputs(B)
        y = generator(draw_noise(B))
        loss = (weights * mmd2(x, y, kernel, bandwidth)).sum()
        descend(optimizer, loss)
        return {"mmd": loss}

    return step


def smmd_step(
    *,
    generator: nn.Module,
    critics: nn.Module,
    draw_inputs: Draw,
    draw_noise: Draw,
    weights: torch.Tensor,
    generator_optimizer: torch.optim.Optimizer,
    critic_optimizer: torch.optim.Optimizer,
    batch_size: int,
    n_critic_steps: int,
    kernel: str,
    bandwidth: float | Sequence[float],
    penalty: str,
    penalty_weight: float,
    rng: torch.Generator,
) -> Step:
    """Algorithm 1 with learned kernels: ``n_critic_steps`` critic ascents, one G descent.

    The critic k maximises the MMD^2 of its features ``phi_k`` between input k and G's
    batch, regularised by ``penalty``: ``"scaled"`` divides it by
    ``1 + lambda E_{P_k} |J phi_k|_F^2`` (Arbel et al. 2018; |J|_F^2 by one Gaussian
    projection per point, drawn from ``rng``), ``"gradient"`` subtracts
    ``lambda E (|grad w_k(x_hat)| - 1)^2`` of the witness w_k at random interpolates x_hat
    (Binkowski et al. 2018). G then descends ``sum_k a_k`` of the (scaled) feature MMD^2.
    """
    B = int(batch_size)
    lam = float(penalty_weight)
    scaled = penalty == "scaled"
    critic_params = list(critics.parameters())

    def shared(y: torch.Tensor) -> torch.Tensor:  # G's batch (B, d) for every critic
        return y.unsqueeze(0).expand(weights.shape[0], -1, -1)

    def feature_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (K,)
        return mmd2(critics(x), critics(shared(y)), kernel, bandwidth)

    def scale_of(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        f = critics(x)
        v = torch.randn(f.shape, generator=rng, device=f.device)
        (g,) = torch.autograd.grad((f * v).sum(), x, create_graph=True)
        return 1.0 / (1.0 + lam * g.pow(2).sum(-1).mean(-1))

    def gradient_penalty(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        u = torch.rand((x.shape[0], B, 1), generator=rng, device=x.device)
        t = (u * x + (1 - u) * y.unsqueeze(0)).detach().requires_grad_(True)
        ft, fx, fy = critics(t), critics(x), critics(shared(y))
        witness = kernel_matrix(ft, fx, kernel, bandwidth).mean(-1) - kernel_matrix(
            ft, fy, kernel, bandwidth
        ).mean(-1)
        (g,) = torch.autograd.grad(witness.sum(), t, create_graph=True)
        return ((g.pow(2).sum(-1) + 1e-12).sqrt() - 1.0).pow(2).mean(-1)

    def step(i: int) -> dict[str, torch.Tensor]:
        for _ in range(int(n_critic_steps)):
            x = draw_inputs(B)
            with torch.no_grad():
                y = generator(draw_noise(B))
            m = feature_mmd(x, y)
            objective = scale_of(x) * m if scaled else m - lam * gradient_penalty(x, y)
            c_loss = -(weights * objective).sum()
            descend(critic_optimizer, c_loss)
        with frozen(critic_params):  # the generator step (critics fixed)
            x = draw_inputs(B)
            y = generator(draw_noise(B))
            m = feature_mmd(x, y)
            if scaled:
                m = scale_of(x).detach() * m
            g_loss = (weights * m).sum()
            descend(generator_optimizer, g_loss)
        return {"generator": g_loss, "critic": c_loss}

    return step


# ---------------------------------------------------------------------------- transform
def transform_step(
    *,
    maps: MaxMinOTSolver,
    generator: nn.Module,
    draw_inputs: Draw,
    draw_noise: Draw,
    n_features: int,
    map_optimizer: torch.optim.Optimizer,
    potential_optimizer: torch.optim.Optimizer,
    batch_size: int,
    n_map_steps: int,
    average: ParameterAverage | None = None,
) -> Step:
    """The maps T_k: P_k -> G # rho, by the reversed max-min OT solver (G frozen).

    ``average``: an exponential moving average of the maps' parameters, updated after every
    map step.
    """
    K, d = int(maps.n_problems), int(n_features)

    def draw_generated(n: int) -> torch.Tensor:
        with torch.no_grad():
            return generator(draw_noise(n)).expand(K, n, d)

    return maps.make_step(
        draw_inputs,
        draw_generated,
        batch_size=int(batch_size),
        n_map_steps=int(n_map_steps),
        potential_optimizer=potential_optimizer,
        map_optimizer=map_optimizer,
        average=average,
    )
