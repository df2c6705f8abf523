"""GaussianBarycenter: exact on location-scatter inputs (issue 2's acceptance figures)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skbary import GaussianBarycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import score_benchmark


@pytest.fixture(scope="module")
def bench16():
    return make_location_scatter(
        4, 16, 50_000, base="gaussian", weights=[0.1, 0.2, 0.3, 0.4], random_state=0
    )


def test_location_scatter_d16_is_exact(bench16):
    est = GaussianBarycenter(random_state=0).fit(bench16.marginals, bench16.weights)
    scores = score_benchmark(est, bench16, n_samples=100_000, energy_samples=0)
    # Sampling error of mean/cov from 1e5 draws is ~0.01%; any error in the fixed point,
    # the maps or the weights shows up orders of magnitude above these thresholds.
    assert scores["bw_uvp"] < 0.05
    assert scores["l2_uvp_weighted"] < 0.1


def test_inverse_transform_inverts_transform(bench16):
    est = GaussianBarycenter().fit(bench16.marginals, bench16.weights)
    X = bench16.marginals[2][:1000]
    np.testing.assert_allclose(est.inverse_transform(est.transform(X, 2), 2), X, atol=1e-8)


def test_barycenter_covariance_is_the_fixed_point():
    bench = make_location_scatter(3, 4, 20_000, weights=[0.2, 0.3, 0.5], random_state=1)
    est = GaussianBarycenter().fit(bench.marginals, bench.weights)
    S = est.barycenter_covariance_
    w, V = np.linalg.eigh(S)
    root = (V * np.sqrt(w)) @ V.T
    rhs = np.zeros_like(S)
    for a, C in zip(est.weights_, est.covariances_):
        wi, Vi = np.linalg.eigh(root @ C @ root)
        rhs += a * (Vi * np.sqrt(np.clip(wi, 0, None))) @ Vi.T
    np.testing.assert_allclose(S, rhs, rtol=1e-8, atol=1e-10)
    # transform pushes input k's covariance onto S
    for k in range(3):
        Z = est.transform(bench.marginals[k], k)
        np.testing.assert_allclose(np.cov(Z, rowvar=False), S, rtol=1e-6, atol=1e-8)


def test_shrinkage_moves_covariances_toward_scaled_identity():
    bench = make_location_scatter(2, 3, 5_000, random_state=2)
    full = GaussianBarycenter(shrinkage=1.0).fit(bench.marginals)
    for C in full.covariances_:
        np.testing.assert_allclose(C, np.trace(C) / 3 * np.eye(3), atol=1e-9)
    auto = GaussianBarycenter(shrinkage="auto").fit(bench.marginals)
    assert np.isfinite(auto.barycenter_covariance_).all()
    for bad in (-0.1, 1.5, "ledoit"):
        with pytest.raises(ValueError, match="shrinkage"):
            GaussianBarycenter(shrinkage=bad).fit(bench.marginals)


def test_singular_covariance_warns_that_maps_stretch():
    """A constant column makes input 0's map stretch held-out variation there by ~1e5:
    the fit says so instead of serving maps that are silently far off."""
    rng = np.random.RandomState(0)
    X0, X1 = rng.randn(500, 3), rng.randn(500, 3)
    X0[:, 2] = 1.0
    with pytest.warns(UserWarning, match=r"inputs \[0\] are \(nearly\) singular.*shrinkage='auto'"):
        GaussianBarycenter().fit([X0, X1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianBarycenter(shrinkage="auto").fit([X0, X1])
        scatter = make_location_scatter(3, 8, 500, random_state=0)
        GaussianBarycenter().fit(scatter.marginals, scatter.weights)
