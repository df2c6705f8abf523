"""Sampling from unnormalised densities: unadjusted Langevin and self-normalised importance.

Energy-based plans (EgBary's conditional plans ``mu_x^f(y) ∝ exp((f(y) - c(x, y)) / eps)``,
energy-based generative models, posterior draws) are known only through an unnormalised
log-density. This module holds the two samplers once, generic and batched:

* :func:`langevin` -- unadjusted Langevin dynamics (ULA) on any number of chains at once.
  The chains are a tensor of shape ``(..., d)`` (for EgBary ``(K, B, d)``: B chains for each
  of the K inputs); the energy is one callable evaluated on all of them in one call, so
  there is no Python loop over chains or inputs.
* :func:`importance_weights`, :func:`importance_sample` and :func:`resample` --
  self-normalised importance sampling from a proposal (:class:`GaussianProposal`) shared by
  a batch of conditions, and sampling-importance-resampling for single draws.

Conventions: the target is ``p(y) ∝ exp(energy(y) / temperature)``; ``energy`` returns one
value per chain (shape ``y.shape[:-1]``) and must be differentiable in ``y`` for Langevin.
Every random draw goes through the ``generator`` argument, so seeded calls repeat exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

__all__ = [
    "Energy",
    "GaussianProposal",
    "langevin",
    "importance_weights",
    "importance_sample",
    "resample",
    "energy_gradient",
]

Energy = Callable[[torch.Tensor], torch.Tensor]


def energy_gradient(energy: Energy, y: torch.Tensor) -> torch.Tensor:
    """``grad_y energy(y)`` for every chain (the chains are independent, so one backward)."""
    with torch.enable_grad():
        y = y.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(y).sum(), y)
    return grad


def langevin(
    energy: Energy,
    y0: torch.Tensor,
    *,
    n_steps: int,
    step_size: float | torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    score: Callable[[torch.Tensor], torch.Tensor] | None = None,
    deadline: float | None = None,
) -> torch.Tensor:
    """Run unadjusted Langevin dynamics on a batch of chains.

    Targets ``p(y) ∝ exp(energy(y) / temperature)`` with the update ::

        y <- y + (step_size / 2) * grad energy(y) + sqrt(step_size * temperature) * xi

    which is the usual ULA step ``y + (h/2) grad log p + sqrt(h) xi`` with
    ``h = step_size * temperature``. Measuring the step in units of the energy keeps a good
    ``step_size`` independent of the temperature (for EgBary the energy is ``f - c`` and the
    temperature is epsilon: the drift contracts without oscillating for ``step_size <= 2 / L``
    and is stable for ``step_size < 4 / L``, L the curvature of the energy; both ranges
    depend only on the cost and the potential).

    Parameters
    ----------
    energy : callable
        ``energy(y)`` for y of shape ``(..., d)`` returns shape ``(...)``: the unnormalised
        log-density times ``temperature``. Evaluated once per step on all chains.
    y0 : Tensor of shape (..., d)
        Starting points, one per chain (any leading shape: chains, inputs x chains, ...).
    n_steps : int
        Number of Langevin steps (0 returns ``y0``).
    step_size : float or Tensor broadcastable to ``y0``
        Step in units of the energy (see above); a tensor gives every chain its own step.
    temperature : float, default=1.0
        Noise level; the target is ``exp(energy / temperature)``.
    generator : torch.Generator, optional
        Source of the Gaussian noise (on ``y0``'s device).
    score : callable, optional
        ``score(y) = grad_y energy(y)`` when it is known in closed form; skips autograd.
    deadline : float, optional
        A ``time.perf_counter()`` value: no step starts after it (the chains stop early and
        their current states are returned), so that a fit's time limit holds to one step.

    Returns
    -------
    Tensor of the shape of ``y0``
        The chains' final states, detached from any graph.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}.")
    grad_fn = score if score is not None else (lambda y: energy_gradient(energy, y))
    y = y0.detach().clone()
    noise_scale = torch.sqrt(torch.as_tensor(step_size * temperature, dtype=y.dtype))
    noise_scale = noise_scale.to(y.device)
    half = 0.5 * step_size
    for _ in range(n_steps):
        if deadline is not None and time.perf_counter() >= deadline:
            break
        xi = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        g = grad_fn(y)
        with torch.no_grad():
            y = y + half * g + noise_scale * xi
    return y.detach()


class GaussianProposal:
    """A Gaussian proposal ``N(mean, cov)`` for importance sampling.

    Parameters
    ----------
    mean : Tensor of shape (d,)
    cov : Tensor of shape (d, d) or (d,)
        Symmetric positive definite, or the variances of a diagonal covariance (no d x d
        state: what :meth:`fit` uses above ``max_dense_features``).

    Attributes
    ----------
    chol : Tensor of shape (d, d) or (d,)
        The lower Cholesky factor L (``cov = L L^T``), or the standard deviations.
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor) -> None:
        self.mean = mean
        self.chol = torch.sqrt(cov) if cov.dim() == 1 else torch.linalg.cholesky(cov)
        d = mean.shape[0]
        diag = self.chol if self.diagonal else torch.diagonal(self.chol)
        self._log_norm = -0.5 * d * math.log(2 * math.pi) - torch.log(diag).sum()

    @property
    def diagonal(self) -> bool:
        """Whether the covariance is diagonal."""
        return self.chol.dim() == 1

    @classmethod
    def fit(
        cls,
        Y: torch.Tensor,
        scale: float = 1.0,
        jitter: float = 1e-6,
        max_dense_features: int | None = None,
    ) -> GaussianProposal:
        """Gaussian with the mean of the rows of ``Y`` and ``scale**2`` times their covariance.

        ``jitter * (trace / d + 1)`` is added to the diagonal; it is raised (x100, twice at
        most) when the covariance is still not numerically positive definite (fewer rows
        than features). Above ``max_dense_features`` features (None: never) the covariance
        is diagonal.
        """
        mean = Y.mean(dim=0)
        Z = Y - mean
        d = Y.shape[1]
        if max_dense_features is not None and d > max_dense_features:
            var = (Z**2).sum(dim=0) / max(Y.shape[0] - 1, 1)
            return cls(mean, scale**2 * var + jitter * (var.mean() + 1.0))
        cov = Z.T @ Z / max(Y.shape[0] - 1, 1)
        eye = torch.eye(d, dtype=Y.dtype, device=Y.device)
        for attempt in range(3):
            full = scale**2 * cov + jitter * 100**attempt * (torch.trace(cov) / d + 1.0) * eye
            if attempt == 2 or torch.linalg.cholesky_ex(full).info == 0:
                break
        return cls(mean, full)

    def transform(self, z: torch.Tensor) -> torch.Tensor:
        """``mean + L z`` for standard normal rows z (..., d): draws of the proposal."""
        return self.mean + (z * self.chol if self.diagonal else z @ self.chol.T)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws, shape (n, d)."""
        z = torch.randn(
            (n, self.mean.shape[0]),
            generator=generator,
            device=self.mean.device,
            dtype=self.mean.dtype,
        )
        return self.transform(z)

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        """Log-density at y (..., d) -> (...)."""
        d = self.mean.shape[0]
        diff = (y - self.mean).reshape(-1, d)
        if self.diagonal:
            z2 = ((diff / self.chol) ** 2).sum(dim=1)
        else:
            z2 = (torch.linalg.solve_triangular(self.chol, diff.T, upper=False) ** 2).sum(dim=0)
        return self._log_norm - 0.5 * z2.reshape(y.shape[:-1])

    def to(self, device: torch.device) -> GaussianProposal:
        out = GaussianProposal.__new__(GaussianProposal)
        out.mean = self.mean.to(device)
        out.chol = self.chol.to(device)
        out._log_norm = self._log_norm.to(device)
        return out


def importance_weights(
    log_target: torch.Tensor, log_proposal: torch.Tensor, dim: int = -1
) -> torch.Tensor:
    """Self-normalised importance weights ``w_i ∝ p(y_i) / q(y_i)`` along ``dim``.

    Parameters
    ----------
    log_target : Tensor
        Unnormalised log-density of the target at the proposals (any batch shape).
    log_proposal : Tensor broadcastable to ``log_target``
        Log-density of the proposal at the same points.
    dim : int, default=-1
        The axis of the proposals; the weights sum to 1 along it.
    """
    return torch.softmax(log_target - log_proposal, dim=dim)


def importance_sample(
    log_target: Callable[[torch.Tensor], torch.Tensor],
    proposal: GaussianProposal,
    n_proposals: int,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposals shared by a batch of targets, and each target's self-normalised weights.

    Parameters
    ----------
    log_target : callable
        ``log_target(y)`` for the M proposals y (M, d) returns the energies of every target
        of the batch at them, shape ``(..., M)`` (for EgBary: rows x proposals).
    proposal : GaussianProposal
        Proposal q, shared by all targets.
    n_proposals : int
        M.
    temperature : float, default=1.0
        The target is ``exp(log_target / temperature)``.
    generator : torch.Generator, optional

    Returns
    -------
    y : Tensor of shape (M, d)
        The proposals.
    weights : Tensor of shape (..., M)
        Weights of each target, summing to 1 over the last axis.
    """
    y = proposal.sample(n_proposals, generator)
    with torch.no_grad():
        w = importance_weights(log_target(y) / temperature, proposal.log_prob(y))
    return y, w


def resample(
    y: torch.Tensor, weights: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One draw per target from its weighted proposals (sampling-importance-resampling).

    Parameters
    ----------
    y : Tensor of shape (M, d)
        Proposals shared by the targets.
    weights : Tensor of shape (N, M)
        Normalised weights of each of N targets.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor of shape (N, d)
    """
    idx = torch.multinomial(weights, 1, generator=generator).squeeze(-1)
    return y[idx]
