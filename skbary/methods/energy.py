"""EgBary: entropic OT barycenters for general costs with energy-guided plans.

Kolesov, Mokrov et al., "Energy-Guided Continuous Entropic Barycenter Estimation for General
Costs", NeurIPS 2024.

Only K congruent potentials are learned, ``f_k = g_k - sum_j a_j g_j`` (so that
``sum_k a_k f_k = 0`` exactly; :class:`Congruent` around any stacked module g). The
conditional plan from a point x of input k to the barycenter is the energy-based model

    mu_x^{f_k}(y) ∝ exp((f_k(y) - c(x, E(y))) / eps)

(:class:`EnergyPlans`; E is the identity, or a frozen generator G for barycenters on its
manifold, their sections 5.2-5.3), sampled by unadjusted Langevin dynamics or by
self-normalised importance sampling (their appendix D).

Algorithm 1 (Theorem 4.3), one iteration (:func:`langevin_step`, :func:`importance_step`):

1. draw x from every input (one (K, B, d) batch);
2. draw y ~ mu_x^{f_k} for every x (B chains per input, all K*B at once, y detached);
3. take a gradient step that decreases ``sum_k a_k mean f_k(y)``: ascent on the dual
   objective ``sum_k a_k E_{P_k} f_k^C``.

Role (:data:`ROLES`): ``potential``, the K scalar networks g_k (default: batched SiLU MLPs
(64, 64); smooth potentials give smooth Langevin drifts). Inference draws from the plans
(:func:`draw_plans`) or averages them (:func:`plan_means`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..nn.mlp import BatchedMLP
from ..nn.roles import Role
from ..sampling import GaussianProposal, importance_sample, importance_weights, langevin, resample
from ..training.optim import descend

__all__ = [
    "ROLES",
    "Congruent",
    "EnergyPlans",
    "default_potentials",
    "draw_plans",
    "importance_step",
    "langevin_step",
    "plan_means",
]

Step = Callable[[int], Mapping[str, torch.Tensor]]
Cost = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ROLES: dict[str, Role] = {
    "potential": Role(
        "potential",
        "the scalar network g_k of the congruent potential f_k = g_k - sum_j a_j g_j",
        defaults={"hidden_layer_sizes": (64, 64), "activation": "silu"},
    ),
}


# ---------------------------------------------------------------------- networks
def default_potentials(
    n_models: int,
    n_features: int,
    hidden_layer_sizes: Sequence[int] = (64, 64),
    activation: str = "silu",
) -> nn.Module:
    """The default g: K batched MLPs R^d -> R."""
    return BatchedMLP(n_models, n_features, 1, hidden_layer_sizes, activation)


class Congruent(nn.Module):
    """K potentials ``f_k = g_k - sum_j a_j g_j``, congruent by construction.

    ``g`` is any stacked module mapping ``(K, B, d)`` to ``(K, B, 1)`` (the ``potential``
    role). For every y, ``sum_k a_k f_k(y) = 0``; for K = 1 the only congruent potential is 0.
    """

    def __init__(self, g: nn.Module, weights: Sequence[float] | torch.Tensor) -> None:
        super().__init__()
        self.g = g
        a = torch.as_tensor(weights, dtype=torch.float32)
        self.register_buffer("weights", a)
        self.n_models = a.shape[0]

    def all_at(self, y: torch.Tensor) -> torch.Tensor:
        """Every f_k at the same points: y (N, d) -> (K, N)."""
        g = self.g(y.unsqueeze(0).expand(self.n_models, -1, -1)).squeeze(-1)
        return g - (self.weights[:, None] * g).sum(dim=0, keepdim=True)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """f_k at its own points: y (K, B, d), block k for potential k -> (K, B).

        Every g_j is evaluated on all K*B points (congruence needs all of them wherever any
        f_k is evaluated), in one batched call.
        """
        K, B, d = y.shape
        f = self.all_at(y.reshape(K * B, d)).view(K, K, B)
        idx = torch.arange(K, device=y.device)
        return f[idx, idx]

    def one(self, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """f_k alone, on points of any leading shape: (..., d) -> (...)."""

        def f_k(y: torch.Tensor) -> torch.Tensor:
            return self.all_at(y.reshape(-1, y.shape[-1]))[k].reshape(y.shape[:-1])

        return f_k


# ---------------------------------------------------------------------- the plans
@dataclass
class EnergyPlans:
    """The conditional plans ``mu_x^f(y) ∝ exp((f(y) - c(x, embed(y))) / epsilon)``.

    Attributes
    ----------
    cost : callable
        ``c(x, e)`` on tensors (..., d_in), (..., d_in) -> (...).
    epsilon : float
        The temperature (in the units the cost is computed in).
    step_size : float
        ULA step in units of the energy ``f - c`` (see :func:`~skbary.sampling.langevin`).
    start : callable
        ``start(x, generator) -> y0``: where the chains for rows x (..., d_in) start.
    embed : callable or None
        Barycenter points in the inputs' space: a frozen generator, or None (identity).
    proposal : GaussianProposal or None
        The importance sampler's proposal q (None: the plans are sampled by Langevin).
    n_proposals : int
        M, proposals drawn per batch of rows.
    """

    cost: Cost
    epsilon: float
    step_size: float
    start: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None
    proposal: GaussianProposal | None = None
    n_proposals: int = 0

    def embedded(self, y: torch.Tensor) -> torch.Tensor:
        """``embed`` on points of any leading shape."""
        if self.embed is None:
            return y
        return self.embed(y.reshape(-1, y.shape[-1])).reshape(*y.shape[:-1], -1)

    def langevin(
        self,
        x: torch.Tensor,
        f: Callable[[torch.Tensor], torch.Tensor],
        n_steps: int,
        generator: torch.Generator,
        deadline: float | None = None,
    ) -> torch.Tensor:
        """Chains y ~ mu_x^f for every row of x (..., d_in); f maps (..., d) -> (...)."""

        def energy(y: torch.Tensor) -> torch.Tensor:
            return f(y) - self.cost(x, self.embedded(y))

        return langevin(
            energy,
            self.start(x, generator),
            n_steps=n_steps,
            step_size=float(self.step_size),
            temperature=float(self.epsilon),
            generator=generator,
            deadline=deadline,
        )

    def pair_costs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``c(x_i, embed(y_m))`` for rows x (..., d_in) and shared proposals y (M, d): (..., M)."""
        e = self.embedded(y)
        xe = x.unsqueeze(-2).expand(*x.shape[:-1], e.shape[0], x.shape[-1])
        return self.cost(xe, e.expand(*x.shape[:-1], *e.shape))

    def importance(
        self, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """M shared proposals y (M, d) and the weights (n, M) of every row x under mu_x^f."""
        return importance_sample(
            lambda y: f(y) - self.pair_costs(x, y),
            self.proposal,
            int(self.n_proposals),
            temperature=self.epsilon,
            generator=generator,
        )


# ---------------------------------------------------------------------- Algorithm 1
def langevin_step(
    *,
    potentials: Congruent,
    plans: EnergyPlans,
    draw_inputs: Callable[[int], torch.Tensor],
    weights: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    n_steps: int,
    generator: torch.Generator,
    deadline: float | None = None,
) -> Step:
    """One iteration of Algorithm 1 with Langevin plans, as ``step(i) -> losses``.

    Losses: ``potential`` (``sum_k a_k mean f_k(y)``, minimised) and ``cost``
    (``sum_k a_k mean c(x, y)`` of the sampled plans). The chains of the iteration running
    when ``deadline`` passes stop early (the fit's time limit is kept to one Langevin step).

    Cost: every Langevin step needs the drift ``grad f_k = grad g_k - sum_j a_j grad g_j``
    at each chain point of input k, so all K networks at all K B chain points, K^2 B
    evaluations per step. The algorithm needs these cross terms (an unbiased estimate of
    the drift would change the chains' law); :func:`importance_step` avoids them, its M
    proposals being shared by all inputs (K M evaluations).
    """
    B, a = int(batch_size), weights

    def step(i: int) -> dict[str, torch.Tensor]:
        x = draw_inputs(B)  # (K, B, d_in)
        y = plans.langevin(x, potentials, n_steps, generator, deadline)  # (K, B, d)
        loss = (a * potentials(y).mean(dim=1)).sum()
        descend(optimizer, loss)
        with torch.no_grad():
            cost = (a * plans.cost(x, plans.embedded(y)).mean(dim=1)).sum()
        return {"potential": loss, "cost": cost}

    return step


def importance_step(
    *,
    potentials: Congruent,
    plans: EnergyPlans,
    draw_inputs: Callable[[int], torch.Tensor],
    weights: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
) -> Step:
    """One iteration of Algorithm 1 with self-normalised importance plans (appendix D).

    M proposals y ~ q (``plans.proposal``) are shared by the whole batch; the plan of row x
    weighs them by ``softmax((f_k(y) - c(x, y)) / eps - log q(y))``
    (:func:`~skbary.sampling.importance_weights`), and the update lowers
    ``sum_k a_k sum_m mean_x(w_xm) f_k(y_m)``.
    """
    B, M, a, proposal = int(batch_size), int(plans.n_proposals), weights, plans.proposal

    def step(i: int) -> dict[str, torch.Tensor]:
        x = draw_inputs(B)  # (K, B, d_in)
        y = proposal.sample(M, generator)  # (M, d)
        F = potentials.all_at(y)  # (K, M)
        with torch.no_grad():
            C = plans.pair_costs(x, y)  # (K, B, M)
            w = importance_weights(
                (F.detach()[:, None, :] - C) / plans.epsilon, proposal.log_prob(y)
            )
            cost = (a * (w * C).sum(-1).mean(-1)).sum()
        loss = (a * (w.mean(dim=1) * F).sum(dim=-1)).sum()
        descend(optimizer, loss)
        return {"potential": loss, "cost": cost}

    return step


# ---------------------------------------------------------------------- inference
def draw_plans(
    potentials: Congruent,
    plans: EnergyPlans,
    x: torch.Tensor,
    k: int,
    n_draws: int,
    generator: torch.Generator,
    n_steps: int,
    chunk: int = 16384,
) -> torch.Tensor:
    """``n_draws`` draws from mu_x^{f_k} for every row of x (n, d_in): (n, n_draws, d).

    Langevin chains of ``n_steps``, or (importance sampler) one resample per row.
    """
    f_k = potentials.one(k)
    out = []
    for xc in x.split(max(1, chunk // n_draws)):
        if plans.proposal is None:
            xx = xc.unsqueeze(1).expand(-1, n_draws, -1)
            out.append(plans.langevin(xx, f_k, n_steps, generator))
        else:
            y, w = plans.importance(f_k, xc, generator)
            out.append(resample(y, w, generator)[:, None])
    return torch.cat(out)


def plan_means(
    potentials: Congruent,
    plans: EnergyPlans,
    x: torch.Tensor,
    k: int,
    n_draws: int,
    generator: torch.Generator,
    n_steps: int,
    chunk: int = 2048,
) -> torch.Tensor:
    """The barycentric projection ``E_{y ~ mu_x^{f_k}} y`` of every row: (n, d).

    Langevin: the mean of ``n_draws`` chains; importance: the self-normalised weighted mean
    of the proposals (drawn once per chunk of rows).
    """
    if plans.proposal is None:
        return draw_plans(potentials, plans, x, k, n_draws, generator, n_steps).mean(1)
    f_k, out = potentials.one(k), []
    with torch.no_grad():
        for xc in x.split(chunk):
            y, w = plans.importance(f_k, xc, generator)
            out.append(w @ y)
    return torch.cat(out)
