"""Batched differentiable discrepancies: exact values where they are known, shapes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import skbary.divergences as div
from skbary.divergences import (
    energy_mmd2,
    entropic_ot,
    kernel_matrix,
    mmd2,
    sinkhorn_divergence,
    squared_distances,
)
from skbary.metrics import energy_distance

torch.set_num_threads(1)


def _clouds(K=3, n=40, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(K, n, d, generator=g)
    Y = 1.3 * torch.randn(n, d, generator=g) + 0.2
    return X, Y


def test_squared_distances_match_cdist():
    X, Y = _clouds()
    D = squared_distances(X, Y.expand(3, -1, -1))
    ref = torch.cdist(X, Y.expand(3, -1, -1)) ** 2
    assert torch.allclose(D, ref, atol=1e-4)
    assert (D >= 0).all()


@pytest.mark.parametrize("backend", ["geomloss", "pot"])
def test_sinkhorn_translation_is_half_squared_shift(backend):
    # For any blur, S(X, X + t) = |t|^2 / 2 exactly (the cross-term shifts by |t|^2/2, the
    # self-terms are translation invariant).
    X, _ = _clouds(K=2, n=30)
    t = torch.tensor([[[1.5, -0.5]], [[0.0, 2.0]]])
    S = sinkhorn_divergence(X, X + t, blur=0.3, backend=backend)
    expected = 0.5 * (t[:, 0] ** 2).sum(-1)
    assert torch.allclose(S, expected, rtol=0.02, atol=1e-3)


def test_sinkhorn_shared_y_equals_batched_and_pot():
    X, Y = _clouds()
    shared = sinkhorn_divergence(X, Y, blur=0.3, scaling=0.95)
    batched = sinkhorn_divergence(X, Y.expand(3, -1, -1), blur=0.3, scaling=0.95)
    pot = sinkhorn_divergence(X, Y, blur=0.3, backend="pot", max_iter=5000)
    assert shared.shape == (3,)
    assert torch.allclose(shared, batched, rtol=1e-4, atol=1e-5)
    assert torch.allclose(shared, pot, rtol=0.02, atol=1e-3)
    assert (shared > 0).all()


def test_sinkhorn_self_is_zero_and_grad_flows():
    X, Y = _clouds()
    assert float(sinkhorn_divergence(Y, Y, blur=0.2).abs()) < 1e-5
    Y = Y.clone().requires_grad_(True)
    S = sinkhorn_divergence(X, Y, blur=0.2)
    S.sum().backward()
    assert Y.grad is not None and torch.isfinite(Y.grad).all() and Y.grad.abs().sum() > 0


def test_entropic_ot_backends_agree():
    X, Y = _clouds(K=2, n=30)
    a = entropic_ot(X, Y, blur=0.5, scaling=0.95)
    b = entropic_ot(X, Y, blur=0.5, backend="pot", max_iter=5000)
    assert torch.allclose(a, b, rtol=0.01, atol=1e-3)


def test_kernel_values_at_zero_distance():
    x = torch.zeros(1, 1, 3)
    assert float(kernel_matrix(x, x, "gaussian", (0.5, 1.0, 2.0))) == pytest.approx(3.0)
    assert float(kernel_matrix(x, x, "rq", 1.0)) == pytest.approx(5.0)
    assert float(kernel_matrix(x, x, "energy")) == pytest.approx(0.0, abs=1e-5)


def test_mmd2_gaussian_matches_numpy():
    X, Y = _clouds(K=1, n=25)
    h = 0.7
    x, y = X[0].double().numpy(), Y.double().numpy()

    def k(a, b):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * h * h))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n = len(x)
    ref = (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )
    val = mmd2(X[0], Y, "gaussian", h)
    assert val.dim() == 0
    assert float(val) == pytest.approx(ref, rel=1e-4, abs=1e-6)


def test_energy_mmd2_matches_metrics_and_shares_y():
    X, Y = _clouds(K=3, n=50)
    batched = energy_mmd2(X, Y)
    assert batched.shape == (3,)
    for k in range(3):
        ref = energy_distance(X[k].numpy(), Y.numpy())
        assert float(batched[k]) == pytest.approx(ref, rel=1e-4, abs=1e-5)


def test_energy_distance_old_name_warns():
    with pytest.warns(FutureWarning, match="energy_mmd2"):
        assert div.energy_distance is energy_mmd2
    assert "energy_distance" not in div.__all__


def test_mmd_gradient_finite_with_duplicate_points():
    X, Y = _clouds(K=2, n=10)
    Y = torch.cat([Y, Y[:3]]).requires_grad_(True)  # coinciding points: |x - y| = 0
    for kernel in ("energy", "rq", "gaussian"):
        mmd2(X, Y, kernel).sum().backward()
        assert torch.isfinite(Y.grad).all()
        Y.grad = None


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, Y: sinkhorn_divergence(X, Y, blur=0.0), "blur"),
        (lambda X, Y: sinkhorn_divergence(X, Y, backend="keops"), "backend"),
        (lambda X, Y: mmd2(X, Y, kernel="cosine"), "kernel"),
        (lambda X, Y: mmd2(X, Y, bandwidth=-1.0), "bandwidth"),
        (lambda X, Y: mmd2(X, Y[:, :1]), "features"),
        (lambda X, Y: mmd2(X[:2], torch.randn(3, 40, 2)), "batch"),
        (lambda X, Y: mmd2(X[0, :, 0], Y), r"\(N, d\)"),
    ],
)
def test_errors(call, match):
    X, Y = _clouds()
    with pytest.raises(ValueError, match=match):
        call(X, Y)
