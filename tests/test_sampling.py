"""Langevin and importance samplers of skbary.sampling on targets with known moments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skbary.sampling import (
    GaussianProposal,
    importance_sample,
    importance_weights,
    langevin,
    resample,
)

torch.set_num_threads(1)

MEANS = torch.tensor([[0.0, 0.0], [3.0, -1.0], [-2.0, 4.0]])
PREC = torch.tensor([[2.0, 0.5], [0.5, 1.0]])  # precision matrix of every target
COV = torch.linalg.inv(PREC)


def gaussian_energy(y: torch.Tensor) -> torch.Tensor:
    """Log-density of N(MEANS[k], COV) for chains y of shape (3, n, 2), block k for mean k."""
    diff = y - MEANS[:, None, :]
    return -0.5 * torch.einsum("kni,ij,knj->kn", diff, PREC, diff)


def test_langevin_batched_gaussians_moments():
    g = torch.Generator().manual_seed(0)
    y0 = torch.zeros(3, 4000, 2)
    y = langevin(gaussian_energy, y0, n_steps=300, step_size=0.1, generator=g)
    assert y.shape == y0.shape and not y.requires_grad
    mean = y.mean(dim=1)
    assert torch.allclose(mean, MEANS, atol=0.06)
    for k in range(3):
        cov = torch.cov(y[k].T)
        # ULA's stationary covariance is inflated by O(step): 0.1 * lambda_max / 4 < 6 %
        assert torch.allclose(cov, COV, atol=0.08), cov


def test_langevin_temperature_scales_variance():
    g = torch.Generator().manual_seed(1)
    y0 = MEANS[:, None, :].expand(3, 4000, 2).clone()
    y = langevin(gaussian_energy, y0, n_steps=200, step_size=0.1, temperature=0.01, generator=g)
    cov = torch.cov(y[0].T)
    assert torch.allclose(cov, 0.01 * COV, atol=0.002)


def test_langevin_score_matches_autograd_and_is_repeatable():
    y0 = torch.randn(3, 50, 2, generator=torch.Generator().manual_seed(2))

    def score(y):
        return -torch.einsum("ij,knj->kni", PREC, y - MEANS[:, None, :])

    kw = dict(n_steps=20, step_size=0.2)
    a = langevin(gaussian_energy, y0, generator=torch.Generator().manual_seed(3), **kw)
    b = langevin(gaussian_energy, y0, generator=torch.Generator().manual_seed(3), **kw)
    c = langevin(gaussian_energy, y0, generator=torch.Generator().manual_seed(3), score=score, **kw)
    assert torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-5)
    assert torch.equal(langevin(gaussian_energy, y0, n_steps=0, step_size=0.1), y0)
    with pytest.raises(ValueError, match="n_steps"):
        langevin(gaussian_energy, y0, n_steps=-1, step_size=0.1)


def test_langevin_does_not_touch_parameter_gradients():
    net = torch.nn.Linear(2, 1)
    langevin(lambda y: net(y).squeeze(-1), torch.zeros(10, 2), n_steps=3, step_size=0.1)
    assert all(p.grad is None for p in net.parameters())


def test_gaussian_proposal_log_prob_and_sampling():
    mean = torch.tensor([1.0, -2.0])
    cov = torch.tensor([[2.0, 0.3], [0.3, 0.5]])
    q = GaussianProposal(mean, cov)
    ref = torch.distributions.MultivariateNormal(mean, cov)
    y = torch.randn(7, 5, 2)
    assert torch.allclose(q.log_prob(y), ref.log_prob(y), atol=1e-5)
    s = q.sample(20000, torch.Generator().manual_seed(0))
    assert torch.allclose(s.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(s.T), cov, atol=0.06)
    fitted = GaussianProposal.fit(s, scale=2.0)
    assert torch.allclose(fitted.chol @ fitted.chol.T, 4 * cov, atol=0.25)


def test_self_normalised_importance_recovers_target_means():
    q = GaussianProposal(torch.zeros(2), 16.0 * torch.eye(2))

    def log_target(y):  # (M, 2) -> (3, M): the three Gaussian targets at the proposals
        return gaussian_energy(y.unsqueeze(0).expand(3, -1, -1))

    g = torch.Generator().manual_seed(0)
    y, w = importance_sample(log_target, q, 8000, generator=g)
    assert y.shape == (8000, 2) and w.shape == (3, 8000)
    assert torch.allclose(w.sum(-1), torch.ones(3))
    assert torch.allclose(w @ y, MEANS, atol=0.1)
    draws = resample(y, w.repeat_interleave(500, dim=0), generator=g).view(3, 500, 2)
    assert torch.allclose(draws.mean(1), MEANS, atol=0.15)
    # weights are a softmax of log p - log q
    w2 = importance_weights(log_target(y), q.log_prob(y))
    assert torch.allclose(w, w2)


def test_importance_temperature():
    q = GaussianProposal(torch.zeros(1), torch.eye(1))
    g = torch.Generator().manual_seed(0)
    # target exp(-y^2 / 2 / T) with T = 0.25: variance 0.25
    y, w = importance_sample(lambda y: -0.5 * y[:, 0] ** 2, q, 50000, temperature=0.25, generator=g)
    var = float((w * y[:, 0] ** 2).sum())
    assert math.isclose(var, 0.25, rel_tol=0.05)
    assert np.isfinite(var)


def test_diagonal_gaussian_proposal_matches_the_dense_one():
    mean = torch.tensor([1.0, -2.0, 0.5])
    var = torch.tensor([2.0, 0.5, 1.5])
    diag, dense = GaussianProposal(mean, var), GaussianProposal(mean, torch.diag(var))
    assert diag.diagonal and not dense.diagonal
    y = torch.randn(4, 6, 3)
    assert torch.allclose(diag.log_prob(y), dense.log_prob(y), atol=1e-5)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(diag.sample(5, g), dense.sample(5, torch.Generator().manual_seed(0)))
    # fit: diagonal above max_dense_features, dense (and positive definite) below it, even
    # with fewer rows than features
    Y = torch.randn(30, 40, generator=g)
    assert GaussianProposal.fit(Y, max_dense_features=20).chol.shape == (40,)
    assert GaussianProposal.fit(Y).chol.shape == (40, 40)


def test_langevin_stops_at_the_deadline():
    import time

    y0 = torch.zeros(3, 10, 2)
    start = time.perf_counter()
    y = langevin(gaussian_energy, y0, n_steps=10**7, step_size=0.1, deadline=start + 0.3)
    assert time.perf_counter() - start < 1.0
    assert y.shape == y0.shape and not torch.equal(y, y0)
    past = langevin(gaussian_energy, y0, n_steps=5, step_size=0.1, deadline=start)
    assert torch.equal(past, y0)
