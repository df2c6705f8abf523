"""Reversed max-min neural OT map solver ([MM:R]), K problems solved at once.

For a source law P and a target law Q, the squared W2 distance (cost ``c(x, y) = 1/2|x-y|^2``)
is the max-min problem (WIN paper, eq. 7; Korotin et al. 2021 "Do neural OT solvers work?")::

    max_v  min_T   E_{x~P} [ c(x, T(x)) - v(T(x)) ]  +  E_{y~Q} [ v(y) ]

whose optimal T is the OT map from P to Q. A map network T and a potential network v are
trained by alternating stochastic steps: one ascent step of v on
``L_v = E_P v(T(x)) - E_Q v(y)`` (minimised), then ``n_map_steps`` descent steps of T on
``L_T = E_P [c(x, T(x)) - v(T(x))]``. This is the inner solver of WIN's Algorithm 1 (maps from
the generated barycenter to every input) and its Algorithm 2 (maps from every input to the
learned barycenter); other estimators use it to learn maps onto a generator's law.

K independent problems (source_k, target_k) are solved together: the K maps and the K
potentials are :class:`~skbary.nn.BatchedMLP` stacks (one batched matrix product per layer
for all K), so a sample source is a callable ``draw(batch_size) -> Tensor (K, B, d)``.
The K losses are summed, so each problem receives exactly its own gradient.

API
---
:class:`MaxMinOTSolver` (an ``nn.Module``: store it as an estimator attribute and it pickles
with the estimator) holds the modules:

* ``solver.transport(x)``: (K, B, d) -> (K, B, d), map k applied to ``x[k]``;
* ``solver.transport_one(x, k)``: (B, d) -> (B, d), map k only (inference);
* ``solver.potential_value(y)``: (K, B, d) -> (K, B).

``solver.make_step(draw_source, draw_target, batch_size=..., n_map_steps=...,
potential_optimizer=..., map_optimizer=...)`` returns ``step(i) -> {"potential": L_v,
"map": L_T}`` (0-d tensors, mean over the K problems), one potential update followed by
``n_map_steps`` map updates, ready for ``NeuralBarycenter._run``, which brings history, time
limits and NaN checks. The optimisers are created by the caller (an estimator uses
``self._make_optimizer``) and may be reused by later ``make_step`` calls (warm start).

Inside an estimator's ``_fit``::

    with self._seeded(1):
        self.inv_ = MaxMinOTSolver(K, d, map_hidden_layer_sizes=(128, 128))
    self.inv_.to(self.device_)
    data = self._batches(marginals)                      # inputs: the sources

    def draw_generated(B):                               # the generator: the target
        z = torch.randn(B, h, generator=self._generator, device=self.device_)
        with torch.no_grad():
            return self.generator_(z).expand(K, B, d)

    step = self.inv_.make_step(
        data.draw, draw_generated, batch_size=256, n_map_steps=10,
        potential_optimizer=self._make_optimizer(self.inv_.potential.parameters(), 1e-3),
        map_optimizer=self._make_optimizer(self.inv_.map.parameters(), 1e-3),
    )
    self._run(step, n_iter=2000, deadline=self._deadline(0.95), phase="inverse_maps")
    Y = self._apply(lambda x: self.inv_.transport_one(x, k), X)   # transform(X, k)

Outside an estimator, :func:`fit_ot_maps` builds a solver and trains it in the shared
:class:`~skbary.training.TrainingLoop` (history, deadline, NaN checks) in one call.

Both the map and the potential are plain MLPs as in the paper. With ``residual=True``
(default) the map is ``T(x) = x + MLP(x)`` with the last layer zeroed, so training starts
from the identity map: between laws that are close (the barycenter and its inputs, a
generator and its data) this start is already a fair map and the solver converges faster
(measured in tests/test_ot_solver.py and docs/win.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from skorch.history import History
from torch import nn

from .costs import Cost, resolve_cost
from .nn.mlp import BatchedMLP
from .training import TrainingLoop

__all__ = ["MaxMinOTSolver", "fit_ot_maps"]

Draw = Callable[[int], torch.Tensor]


class MaxMinOTSolver(nn.Module):
    """K reversed max-min OT problems: maps T_k and potentials v_k, trained together.

    Parameters
    ----------
    n_problems : int
        K, the number of (source, target) pairs solved at once.
    n_features : int
        Dimension d of sources and targets.
    map_hidden_layer_sizes : sequence of int, default=(128, 128, 128)
        Hidden widths of every map network T_k.
    potential_hidden_layer_sizes : sequence of int, default=(128, 128, 128)
        Hidden widths of every potential network v_k.
    activation : str, default="relu"
        Hidden activation of the maps (the paper uses ReLU).
    potential_activation : str or None, default=None
        Hidden activation of the potentials; None uses ``activation``.
    residual : bool, default=True
        ``T_k(x) = x + MLP_k(x)`` starting at the identity (last layer zeroed); False gives a
        plain MLP map as in the paper.

    Attributes
    ----------
    map : BatchedMLP
        The K map networks, (K, B, d) -> (K, B, d).
    potential : BatchedMLP
        The K potentials, (K, B, d) -> (K, B, 1).
    """

    def __init__(
        self,
        n_problems: int,
        n_features: int,
        *,
        map_hidden_layer_sizes: Sequence[int] = (128, 128, 128),
        potential_hidden_layer_sizes: Sequence[int] = (128, 128, 128),
        activation: str = "relu",
        potential_activation: str | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.n_problems = int(n_problems)
        self.n_features = int(n_features)
        self.residual = bool(residual)
        self.map = BatchedMLP(
            n_problems, n_features, n_features, map_hidden_layer_sizes, activation
        )
        self.potential = BatchedMLP(
            n_problems,
            n_features,
            1,
            potential_hidden_layer_sizes,
            activation if potential_activation is None else potential_activation,
        )
        if self.residual:
            last = self.map.layers[-1]
            with torch.no_grad():
                last.weight.zero_()
                last.bias.zero_()

    # ------------------------------------------------------------------ evaluation
    def transport(self, x: torch.Tensor) -> torch.Tensor:
        """Apply map k to ``x[k]``: (K, B, d) -> (K, B, d)."""
        out = self.map(x)
        return x + out if self.residual else out

    def transport_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Apply map k alone: (B, d) -> (B, d)."""
        out = self.map.forward_one(x, k)
        return x + out if self.residual else out

    def potential_value(self, y: torch.Tensor) -> torch.Tensor:
        """Potential k at ``y[k]``: (K, B, d) -> (K, B)."""
        return self.potential(y)[..., 0]

    # ------------------------------------------------------------------ training
    def make_step(
        self,
        draw_source: Draw,
        draw_target: Draw,
        *,
        batch_size: int,
        n_map_steps: int,
        potential_optimizer: torch.optim.Optimizer,
        map_optimizer: torch.optim.Optimizer,
        cost: str | Cost = "quadratic",
    ) -> Callable[[int], Mapping[str, torch.Tensor]]:
        """One solver iteration as a ``step(i)`` function for the shared training loop.

        Parameters
        ----------
        draw_source, draw_target : callable
            ``draw(batch_size) -> Tensor (K, B, d)``: a minibatch of every source (the laws
            the maps push forward) and of every target. Called without gradient tracking
            of their own inputs needed (a generator should be evaluated under no_grad).
        batch_size : int
            Minibatch size per problem.
        n_map_steps : int
            Map updates per potential update (K_T of the paper; 10 there).
        potential_optimizer, map_optimizer : torch.optim.Optimizer
            Optimisers over ``self.potential.parameters()`` and ``self.map.parameters()``.
        cost : "quadratic" or callable, default="quadratic"
            Transport cost ``c(x, y)`` (:mod:`skbary.costs`); quadratic is ``1/2|x-y|^2``.

        Returns
        -------
        callable
            ``step(i) -> {"potential": L_v, "map": L_T}``, the losses averaged over the K
            problems (L_T of the last map update). ``-(L_v + L_T)`` estimates the mean of
            the K transport costs once the solver has converged.
        """
        c = resolve_cost(cost)
        n_map_steps = int(n_map_steps)
        B = int(batch_size)
        K = float(self.n_problems)
        pot_params = list(self.potential.parameters())

        def step(i: int) -> dict[str, torch.Tensor]:
            # Potential: minimise E_P v(T(x)) - E_Q v(y) (ascent on the dual).
            x = draw_source(B)
            y = draw_target(B)
            with torch.no_grad():
                tx = self.transport(x)
            loss_v = (self.potential_value(tx).mean(1) - self.potential_value(y).mean(1)).sum()
            potential_optimizer.zero_grad(set_to_none=True)
            loss_v.backward()
            potential_optimizer.step()
            # Maps: minimise E_P [c(x, T(x)) - v(T(x))], potential frozen.
            for p in pot_params:
                p.requires_grad_(False)
            try:
                for _ in range(n_map_steps):
                    x = draw_source(B)
                    tx = self.transport(x)
                    loss_t = (c(x, tx) - self.potential_value(tx)).mean(1).sum()
                    map_optimizer.zero_grad(set_to_none=True)
                    loss_t.backward()
                    map_optimizer.step()
            finally:
                for p in pot_params:
                    p.requires_grad_(True)
            out = {"potential": loss_v.detach() / K}
            if n_map_steps:
                out["map"] = loss_t.detach() / K
            return out

        return step

    # ------------------------------------------------------------------ diagnostics
    def _divergence_hint(self, loss_name: str) -> str:
        net = "potential networks v_k" if loss_name == "potential" else "map networks T_k"
        return (
            f"The {net} of the max-min OT solver diverged. Lower the learning rate "
            "(e.g. halve it) or enlarge batch_size."
        )


def fit_ot_maps(
    draw_source: Draw,
    draw_target: Draw,
    n_problems: int,
    n_features: int,
    *,
    n_iter: int = 2000,
    deadline: float | None = None,
    batch_size: int = 256,
    n_map_steps: int = 10,
    lr: float = 1e-3,
    cost: str | Cost = "quadratic",
    optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
    optimizer_kwargs: Mapping[str, Any] | None = None,
    solver: MaxMinOTSolver | None = None,
    device: torch.device | str = "cpu",
    random_state: int = 0,
    **solver_kwargs: Any,
) -> tuple[MaxMinOTSolver, History]:
    """Train K max-min OT maps between sample sources outside an estimator, in one call.

    Parameters
    ----------
    draw_source, draw_target : callable
        ``draw(batch_size) -> Tensor (K, B, d)`` on ``device``.
    n_problems, n_features : int
        K and d.
    n_iter : int, default=2000
        Potential updates (each followed by ``n_map_steps`` map updates).
    deadline : float or None
        ``time.perf_counter()`` value after which no new iteration starts.
    batch_size : int, default=256
    n_map_steps : int, default=10
    lr : float, default=1e-3
        Learning rate of both networks (the paper's, Adam).
    cost : "quadratic" or callable, default="quadratic"
    optimizer : torch optimiser class, default=torch.optim.Adam
    optimizer_kwargs : dict, optional
        Extra arguments of the optimiser (``betas`` ...).
    solver : MaxMinOTSolver, optional
        Continue training this solver (warm start) instead of building a new one.
    device : str or torch.device, default="cpu"
    random_state : int, default=0
        Seeds the network initialisation.
    **solver_kwargs
        Passed to :class:`MaxMinOTSolver` (hidden sizes, activation, residual).

    Returns
    -------
    solver : MaxMinOTSolver
        The trained solver, in eval mode.
    history : skorch.history.History
        One row per iteration with the ``potential`` and ``map`` losses.
    """
    device = torch.device(device)
    if solver is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(random_state))
            solver = MaxMinOTSolver(n_problems, n_features, **solver_kwargs)
    solver.to(device).train()
    kw = dict(optimizer_kwargs or {})
    kw.setdefault("lr", lr)
    step = solver.make_step(
        draw_source,
        draw_target,
        batch_size=batch_size,
        n_map_steps=n_map_steps,
        potential_optimizer=optimizer(solver.potential.parameters(), **kw),
        map_optimizer=optimizer(solver.map.parameters(), **kw),
        cost=cost,
    )
    history = History()
    loop = TrainingLoop(solver, history, time.perf_counter())
    loop.run(step, n_iter=int(n_iter), deadline=deadline, phase="ot_maps")
    return solver.eval(), history
