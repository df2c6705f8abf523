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
2. draw y ~ mu_x^{f_k} for every x (B chains per input, all K*B at once, y detached;
   above 4 inputs with an unbiased O(K B) estimate of f_k, :meth:`Congruent.at_chains`);
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
from ..nn.potentials import EXACT_MAX_MODELS, CongruentPotentials
from ..nn.roles import Role
from ..sampling import (
    GaussianProposal,
    energy_gradient,
    importance_sample,
    importance_weights,
    langevin,
    resample,
)
from ..training.optim import descend

__all__ = [
    "DRIFT_ROUNDS",
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


#: Other networks per chain point in the estimated potentials of the Langevin drift
#: (K > EXACT_MAX_MODELS; :meth:`Congruent.at_chains`). One keeps a step at 2 K B
#: evaluations, K / 2 times the exact 4 B at K = 2 (linear growth); two cost 3 K B (46 times
#: K = 2 at K = 50, against 23 with one) for an accuracy the location-scatter fits could
#: barely tell apart (docs/scaling.md).
DRIFT_ROUNDS = 1


# ---------------------------------------------------------------------- networks
def default_potentials(
    n_models: int,
    n_features: int,
    hidden_layer_sizes: Sequence[int] = (64, 64),
    activation: str = "silu",
) -> nn.Module:
    """The default g: K batched MLPs R^d -> R."""
    return BatchedMLP(n_models, n_features, 1, hidden_layer_sizes, activation)


class Congruent(CongruentPotentials):
    """K potentials ``f_k = g_k - sum_j a_j g_j``, congruent by construction.

    :class:`~skbary.nn.potentials.CongruentPotentials` around a given stacked module ``g``
    (``(K, B, d) -> (K, B, 1)``, the ``potential`` role), with what EgBary's chains need:
    one potential alone (:meth:`one`, inference) and every f_k at its own chain points in
    O(K B) network evaluations (:meth:`at_chains`, training). For every y,
    ``sum_k a_k f_k(y) = 0``; for K = 1 the only congruent potential is 0.
    """

    def __init__(self, g: nn.Module, weights: Sequence[float] | torch.Tensor) -> None:
        super().__init__(weights, g=g)

    def one(self, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """f_k alone, on points of any leading shape: (..., d) -> (...)."""

        def f_k(y: torch.Tensor) -> torch.Tensor:
            return self.all_at(y.reshape(-1, y.shape[-1]))[k].reshape(y.shape[:-1])

        return f_k

    def at_chains(
        self,
        y: torch.Tensor,
        generator: torch.Generator | None,
        n_rounds: int = DRIFT_ROUNDS,
    ) -> torch.Tensor:
        """f_k at its own points, y (K, B, d) -> (K, B): exact, or unbiased in O(K B).

        The exact value (:meth:`forward`) needs every g_j at every point, K^2 B
        evaluations. Since ``sum_j a_j = 1``, ``f_k = sum_{j != k} a_j (g_k - g_j)``, so
        with J uniform on the K - 1 other networks ::

            E_J[(K - 1) a_J (g_k(y) - g_J(y))] = f_k(y)

        and the mean of M = ``n_rounds`` such terms (distinct J per point) is an unbiased
        estimate from g_k and M other networks at each point, M + 1 evaluations a point.
        The J are balanced: in round m the chains of column b of all inputs go to the
        networks shifted by one random r_mb in 1..K-1 (point (k, b) to network
        (k + r_mb) mod K, a bijection), so every network gets exactly B points and each
        round is one batched (K, B, d) evaluation; all rounds and the own points go in
        one call of (K, (M + 1) B, d). The terms are differences ``g_k - g_J = f_k - f_J``,
        so the estimate ignores whatever the g_j share (which congruence cancels) and its
        variance is that of the potentials' spread ``f_k - f_J`` alone.

        For K <= :data:`~skbary.nn.potentials.EXACT_MAX_MODELS`, or ``generator`` None,
        the exact value is returned (at K <= 4 it costs at most twice the estimate with
        M = 1), with no random draw.
        """
        K, B, d = y.shape
        if generator is None or K <= EXACT_MAX_MODELS:
            return self(y)
        M, dev = int(n_rounds), y.device
        if not 1 <= M < K:
            raise ValueError(f"n_rounds must be in 1..K-1 = {K - 1}, got {n_rounds!r}.")
        # shifts r (M, B): per column, M distinct values in 1..K-1
        if M == 1:
            r = torch.randint(1, K, (1, B), generator=generator, device=dev)
        else:
            u = torch.rand((B, K - 1), generator=generator, device=dev)
            r = (u.argsort(dim=1)[:, :M] + 1).T
        ks, cols = torch.arange(K, device=dev), torch.arange(B, device=dev)
        src = (ks[None, :, None] - r[:, None, :]) % K  # (M, K, B): block of network j's point b
        pts = y[src, cols]  # (M, K, B, d)
        z = torch.cat([y, pts.transpose(0, 1).reshape(K, M * B, d)], dim=1)
        out = self.g(z).squeeze(-1)  # (K, (M + 1) B)
        own, cross = out[:, :B], out[:, B:].view(K, M, B).transpose(0, 1)  # cross (M, K, B)
        J = (ks[None, :, None] + r[:, None, :]) % K  # (M, K, B): network of point (k, b)
        g_J = cross.gather(1, J)  # g_J at point (k, b) in round m
        return (K - 1) / M * (self.weights[J] * (own - g_J)).sum(dim=0)


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
    drift_start : bool
        Move every chain's start by one noiseless unit step of the energy's gradient,
        ``y0 + grad_y (f(y0) - c(x, y0))``, before the Langevin steps. For the quadratic
        cost from ``y0 = x`` this is ``x + grad f(x)``, the first Picard iterate of the
        mode equation ``y = x + grad f(y)``: it carries the chains most of the way along
        the slow (expanding) directions of the plan, where short chains from x stop short.
    """

    cost: Cost
    epsilon: float
    step_size: float
    start: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None
    proposal: GaussianProposal | None = None
    n_proposals: int = 0
    drift_start: bool = False

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

        y0 = self.start(x, generator)
        if self.drift_start:
            y0 = y0 + energy_gradient(energy, y0)
        return langevin(
            energy,
            y0,
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

    Losses: ``potential`` (``sum_k a_k mean f_k(y)``, minimised; for K > 4 its unbiased
    estimate) and ``cost``
    (``sum_k a_k mean c(x, y)`` of the sampled plans). The chains of the iteration running
    when ``deadline`` passes stop early (the fit's time limit is kept to one Langevin step).

    Cost: a Langevin step needs the drift of ``f_k = g_k - sum_j a_j g_j`` at every chain
    point of input k; exactly, that is all K networks at all K B points, K^2 B
    evaluations (kept for K <= :data:`~skbary.nn.potentials.EXACT_MAX_MODELS`, where it
    costs at most twice the estimate). Above, f_k is replaced at each step by the unbiased
    estimate of :meth:`Congruent.at_chains` (g_k and :data:`DRIFT_ROUNDS` other random
    networks per point, (M + 1) K B evaluations), and the loss by the unbiased pooled
    estimate of :func:`~skbary.nn.potentials.congruent_mean_terms` (2 K B), so an
    iteration costs O(K B). The chains then run stochastic-gradient Langevin dynamics
    (SGLD, Welling and Teh 2011): the drift is unbiased, and its noise, of variance
    ``(s/2)^2 V`` per step for V the variance of the estimated gradient, adds to the
    diffusion's ``s eps``: O(h^2) against O(h) as the step ``h = s eps`` shrinks, so the
    chains target the same plans in the small-step limit. At a finite step the extra
    noise widens the plans as a higher temperature ``eps + s V / 4`` would; V is the
    spread of the potentials' gradients across inputs (the estimate's terms are
    differences ``f_k - f_J``), small when the inputs are close. The importance sampler
    (:func:`importance_step`) needs no estimate: its M proposals are shared by all
    inputs (K M evaluations).
    """
    B, a = int(batch_size), weights

    def f_at_chains(y: torch.Tensor) -> torch.Tensor:
        return potentials.at_chains(y, generator)

    def step(i: int) -> dict[str, torch.Tensor]:
        x = draw_inputs(B)  # (K, B, d_in)
        y = plans.langevin(x, f_at_chains, n_steps, generator, deadline)  # (K, B, d)
        loss = (a * potentials.mean_terms(y, generator).mean(dim=1)).sum()
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
