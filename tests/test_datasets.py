"""skbary.datasets and skbary.nn.icnn: every truth is checked against code written here.

The reference computations (fixed point with scipy's sqrtm, the linear OT map, closed
forms for commuting covariances, problem (11) by scipy.optimize, finite differences) share
nothing with the package beyond numpy.
"""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import torch

from skbary.datasets import (
    get_data_home,
    load_ave_digits,
    make_congruent,
    make_gaussians,
    make_location_scatter,
    make_twister,
    twister_cost,
    twister_u,
    twister_u_inverse,
)
from skbary.nn.icnn import FICNN


def _sqrtm(A):
    return np.real(scipy.linalg.sqrtm(A))


def _fixed_point(covs, weights, tol=1e-13, max_iter=5000):
    """Alvarez-Esteban et al. (2016) with scipy's sqrtm and explicit inverses."""
    S = np.eye(covs.shape[-1])
    for _ in range(max_iter):
        r = _sqrtm(S)
        ri = np.linalg.inv(r)
        M = sum(a * _sqrtm(r @ C @ r) for a, C in zip(weights, covs, strict=True))
        S_new = ri @ M @ M @ ri
        S_new = 0.5 * (S_new + S_new.T)
        if np.linalg.norm(S_new - S) <= tol * np.linalg.norm(S):
            return S_new
        S = S_new
    return S


def _linear_map(C, S):
    r = _sqrtm(C)
    ri = np.linalg.inv(r)
    return ri @ _sqrtm(r @ S @ r) @ ri


def _rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


# ------------------------------------------------------------------ location-scatter
@pytest.mark.parametrize("base", ["gaussian", "uniform"])
@pytest.mark.parametrize("d", [2, 8, 32])
def test_location_scatter_barycenter_cov_matches_independent_fixed_point(base, d):
    w = [0.1, 0.2, 0.3, 0.4]
    b = make_location_scatter(4, d, 50, base=base, weights=w, random_state=d)
    S = _fixed_point(b.marginal_covs, w)
    assert _rel(b.barycenter_cov, S) < 1e-7
    # S is a fixed point of S = sum_k a_k (S^1/2 Sigma_k S^1/2)^1/2 in the original form
    r = _sqrtm(S)
    lhs = sum(a * _sqrtm(r @ C @ r) for a, C in zip(w, b.marginal_covs, strict=True))
    assert _rel(lhs, S) < 1e-9
    # covariances as BENCHMARKS.md defines them: eigenvalues log-spaced from 0.25 to 4
    s = np.exp(np.linspace(np.log(0.5), np.log(2.0), d))
    for C in b.marginal_covs:
        assert np.allclose(np.linalg.eigvalsh(C), np.sort(s**2), rtol=1e-10)


@pytest.mark.parametrize("base", ["gaussian", "uniform"])
@pytest.mark.parametrize("d", [2, 8, 32])
def test_location_scatter_maps_are_the_linear_ot_maps(base, d):
    b = make_location_scatter(3, d, 200, base=base, means="random", random_state=1)
    S, m = b.barycenter_cov, b.barycenter_mean
    for k, X in enumerate(b.marginals):
        A = _linear_map(b.marginal_covs[k], S)
        assert _rel(A @ b.marginal_covs[k] @ A, S) < 1e-8  # A pushes Sigma_k to S
        expected = (X - b.marginal_means[k]) @ A.T + m
        assert _rel(b.map_to_barycenter(X, k), expected) < 1e-8
        assert np.allclose(b.map_from_barycenter(expected, k), X, atol=1e-8)
    # per-row k gives the same answer as one call per input
    assert np.allclose(
        b.map_to_barycenter(b.X, b.y),
        np.concatenate([b.map_to_barycenter(X, k) for k, X in enumerate(b.marginals)]),
    )
    # optimality of the barycenter (Agueh-Carlier): the maps from it average to the identity
    inv = sum(a * np.linalg.inv(_linear_map(C, S)) for a, C in zip(b.weights, b.marginal_covs))
    assert np.allclose(inv, np.eye(d), atol=1e-7)
    assert np.allclose(m, b.weights @ b.marginal_means)


@pytest.mark.parametrize("base", ["gaussian", "uniform"])
def test_location_scatter_samples_match_their_moments(base):
    n, d = 20_000, 8
    b = make_location_scatter(3, d, n, base=base, means="random", random_state=2)
    for k, X in enumerate(b.marginals):
        assert X.shape == (n, d)
        # sampling error of a covariance is about sqrt(2 / n) relative
        assert _rel(np.cov(X, rowvar=False), b.marginal_covs[k]) < 0.04
        assert np.linalg.norm(X.mean(0) - b.marginal_means[k]) < 4 * np.sqrt(d * 4.0 / n)
    if base == "uniform":  # the base really is uniform: bounded by sqrt(3) |W_k| per axis
        z = np.linalg.solve(b.mixing[0], (b.marginals[0] - b.marginal_means[0]).T).T
        assert np.abs(z).max() <= np.sqrt(3) + 1e-9
        assert np.abs(z).max() > 0.99 * np.sqrt(3)
    Y = b.sample_barycenter(n, random_state=0)
    assert _rel(np.cov(Y, rowvar=False), b.barycenter_cov) < 0.04
    fresh = b.sample_marginals(100, random_state=5)
    assert [f.shape for f in fresh] == [(100, d)] * 3
    assert not np.allclose(fresh[0], b.marginals[0][:100])


def test_location_scatter_flat_form_and_reproducibility():
    b = make_location_scatter(3, 2, [10, 20, 30], random_state=0)
    assert b.X.shape == (60, 2) and b.y.tolist() == [0] * 10 + [1] * 20 + [2] * 30
    assert np.array_equal(b.X[b.y == 1], b.marginals[1])
    b2 = make_location_scatter(3, 2, [10, 20, 30], random_state=0)
    assert np.array_equal(b.X, b2.X) and np.array_equal(b.barycenter_cov, b2.barycenter_cov)
    assert np.allclose(b.weights, 1 / 3)
    pickle.loads(pickle.dumps(b))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"base": "laplace"}, "base"),
        ({"weights": [0.5, 0.5]}, "weights"),
        ({"weights": [0.5, 0.6, -0.1]}, "weights"),
        ({"means": "zeros"}, "means"),
        ({"means": np.zeros((2, 2))}, "means"),
        ({"n_samples": 1}, "n_samples"),
    ],
)
def test_location_scatter_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_location_scatter(3, 2, **{"n_samples": 10, **kwargs})


def test_make_gaussians_commuting_closed_form():
    # diagonal covariances commute: S^1/2 = sum_k a_k Sigma_k^1/2 exactly
    rng = np.random.RandomState(0)
    d, w = 5, np.array([0.2, 0.3, 0.5])
    diag = rng.uniform(0.2, 3.0, size=(3, d))
    covs = np.stack([np.diag(v) for v in diag])
    means = rng.normal(size=(3, d))
    b = make_gaussians(means, covs, weights=w, n_samples=50, random_state=0)
    assert np.allclose(b.barycenter_cov, np.diag((w @ np.sqrt(diag)) ** 2), rtol=1e-9)
    assert np.allclose(b.barycenter_mean, w @ means)
    X = b.marginals[1]
    expected = (X - means[1]) * (np.sqrt(b.barycenter_cov.diagonal()) / np.sqrt(diag[1]))
    assert np.allclose(b.map_to_barycenter(X, 1), expected + w @ means)
    with pytest.raises(ValueError, match="positive definite"):
        make_gaussians(means, -covs)


# ------------------------------------------------------------------ Twister
def test_twister_feature_map_cost_and_truth():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(500, 2)) * 3
    r = np.linalg.norm(x, axis=1)
    t = 0.4 * r
    u_ref = np.stack(
        [np.cos(t) * x[:, 0] - np.sin(t) * x[:, 1], np.sin(t) * x[:, 0] + np.cos(t) * x[:, 1]], 1
    )
    assert np.allclose(twister_u(x), u_ref)
    assert np.allclose(twister_u_inverse(twister_u(x)), x, atol=1e-12)
    xt = torch.as_tensor(x, dtype=torch.float64)
    assert np.allclose(twister_u(xt).numpy(), u_ref)
    # the cost: 1/2 |u(x) - u(y)|^2, batched over leading dims and differentiable
    y = torch.tensor(rng.normal(size=(500, 2)), dtype=torch.float64, requires_grad=True)
    c = twister_cost(xt, y)
    assert c.shape == (500,)
    u_y = twister_u(y.detach().numpy())
    assert np.allclose(c.detach().numpy(), 0.5 * ((u_ref - u_y) ** 2).sum(1))
    c.sum().backward()
    assert torch.isfinite(y.grad).all()
    c3 = twister_cost(xt[:, None, :], y.detach()[None, :10, :])
    assert c3.shape == (500, 10)
    zero = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    twister_cost(xt[:3], zero).sum().backward()
    assert torch.isfinite(zero.grad).all()

    b = make_twister(3000, random_state=0)
    assert b.cost is twister_cost and len(b.marginals) == 3 and b.X.shape == (9000, 2)
    # inputs: u(X_k) ~ N(m_k, I)
    for k, X in enumerate(b.marginals):
        U = twister_u(X)
        assert np.linalg.norm(U.mean(0) - b.marginal_means[k]) < 0.1
        assert _rel(np.cov(U, rowvar=False), np.eye(2)) < 0.1
    # truth: u^-1 # N(0, I), whose mean is 0 and covariance I
    Z = b.sample_barycenter(200_000, random_state=1)
    assert np.allclose(twister_u(Z).mean(0), 0, atol=0.01)
    assert np.allclose(Z.mean(0), 0, atol=0.01) and np.allclose(np.cov(Z.T), np.eye(2), atol=0.02)
    assert np.allclose(b.barycenter_mean, 0) and np.allclose(b.barycenter_cov, np.eye(2))
    # maps: translations in u-space; they average to the identity in u-space
    for k, X in enumerate(b.marginals):
        T = b.map_to_barycenter(X, k)
        assert np.allclose(twister_u(T), twister_u(X) - b.marginal_means[k], atol=1e-12)
        assert np.allclose(b.map_from_barycenter(T, k), X, atol=1e-10)
    zs = b.sample_barycenter(100, random_state=2)
    avg = sum(a * twister_u(b.map_from_barycenter(zs, k)) for k, a in enumerate(b.weights))
    assert np.allclose(avg, twister_u(zs), atol=1e-12)
    pickle.loads(pickle.dumps(b))


# ------------------------------------------------------------------ FICNN
@pytest.mark.parametrize("activation", ["celu", "softplus", "leaky_relu"])
@pytest.mark.parametrize("positivity", ["clip", "softplus"])
def test_ficnn_is_convex_and_its_derivatives_are_right(activation, positivity):
    torch.manual_seed(0)
    f = FICNN(4, (16, 8, 16), activation, 0.05, positivity, dtype=torch.float64)
    x, y = torch.randn(2000, 4, dtype=torch.float64), torch.randn(2000, 4, dtype=torch.float64)
    t = torch.rand(2000, dtype=torch.float64)
    with torch.no_grad():
        gap = t * f(x) + (1 - t) * f(y) - f(t[:, None] * x + (1 - t[:, None]) * y)
    assert gap.min() >= -1e-12 and f(x).shape == (2000,)
    assert f(x[0]).shape == ()  # (..., d) -> (...)
    g = f.gradient(x[:50])
    fd = torch.stack(
        [
            (f(x[:50] + 1e-6 * e) - f(x[:50] - 1e-6 * e)) / 2e-6
            for e in torch.eye(4, dtype=torch.float64)
        ],
        1,
    )
    assert torch.allclose(g, fd.detach(), atol=1e-6)
    H = torch.stack([torch.autograd.functional.hessian(f, xi) for xi in x[:50]])
    v, g2, h2 = f.value_grad_hessian(x[:50])
    assert torch.allclose(h2, H, atol=1e-10) and torch.allclose(g2, g, atol=1e-12)
    V = torch.randn(50, 4, dtype=torch.float64)
    _, g3, hvp = f.linearize(x[:50])
    assert torch.allclose(hvp(V), (H @ V[..., None])[..., 0], atol=1e-10)
    assert torch.allclose(g3, g, atol=1e-12)
    # create_graph lets a loss train through the map grad psi
    p = f.gradient(x[:10], create_graph=True).pow(2).sum()
    p.backward()
    assert any(q.grad is not None for q in f.parameters())


def test_ficnn_clipping_restores_convexity():
    torch.manual_seed(1)
    f = FICNN(3, (8, 8), "celu")
    with torch.no_grad():
        f.z_weights[0].sub_(1.0)
    assert not f.is_convex() and f.convexity_penalty() > 0
    f.clip_weights_()
    assert f.is_convex() and float(f.convexity_penalty()) == 0.0
    g = FICNN(3, (8, 8), positivity="softplus")
    with torch.no_grad():
        g.z_weights[0].sub_(5.0)
    assert g.is_convex()  # softplus-parametrised weights stay non-negative
    with pytest.raises(ValueError, match="activation"):
        FICNN(3, activation="relu6")


# ------------------------------------------------------------------ congruent potentials
@pytest.fixture(scope="module")
def congruent_2d():
    base = np.random.RandomState(0).normal(size=(1200, 2)) * [1.0, 2.0]
    return make_congruent(base, n_marginals=4, weights=[0.1, 0.2, 0.3, 0.4], random_state=0)


def _solve_11_scipy(pot, beta, x):
    """Problem (11) by scipy's trust-region Newton with autograd derivatives, point by point."""
    xt = torch.as_tensor(x, dtype=torch.float64)

    def obj(yt):
        return 0.5 * beta * (yt * yt).sum() + (1 - beta) * pot(yt) - (yt * xt).sum()

    def fun(y):
        yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
        val = obj(yt)
        (g,) = torch.autograd.grad(val, yt)
        return float(val), g.numpy()

    def hess(y):
        return torch.autograd.functional.hessian(obj, torch.as_tensor(y)).numpy()

    res = scipy.optimize.minimize(
        fun, x, jac=True, hess=hess, method="trust-exact", options={"gtol": 1e-12}
    )
    return res.x


def test_congruent_maps_follow_lemmas_2_and_3(congruent_2d):
    b = congruent_2d
    assert np.allclose(b.weights, [0.1, 0.2, 0.3, 0.4]) and len(b.potentials) == 3
    # Lemma 3 masses reproduce the weights: alpha_n = sum over the pairs touching n
    alpha = np.zeros(4)
    for (kl, kr), L, R in zip(b.pairs, b.left, b.right, strict=True):
        alpha[kl] += L
        alpha[kr] += R
    assert np.allclose(alpha, b.weights)
    Z = b.barycenter_samples[:200]
    # congruence: sum_k a_k grad psi_k(z) = z
    avg = sum(a * b.map_from_barycenter(Z, k) for k, a in enumerate(b.weights))
    assert np.abs(avg - Z).max() < 1e-9
    # grad psi^l of pair 0 is the solution of (11), found independently here
    beta, pot = float(b.betas[0]), b.potentials[0]
    for z in Z[:5]:
        y = _solve_11_scipy(pot, beta, z)
        assert np.allclose(b.map_from_barycenter(z[None], 0)[0], y, atol=1e-9)
    # map_from_barycenter is the gradient of the potential (12) (central differences)
    for k in range(4):
        z = Z[:20]
        fd = np.stack(
            [
                (b.potential(z + h * e, k) - b.potential(z - h * e, k)) / (2 * h)
                for e, h in zip(np.eye(2), [1e-5, 1e-5], strict=True)
            ],
            1,
        )
        assert np.allclose(b.map_from_barycenter(z, k), fd, atol=1e-6)


def test_congruent_inverse_and_monotonicity(congruent_2d):
    b = congruent_2d
    rng = np.random.RandomState(3)
    Z = b.barycenter_samples[:100] + 0.01 * rng.normal(size=(100, 2))  # not cached rows
    for k in range(4):
        X = b.map_from_barycenter(Z, k)
        assert _rel(b.map_to_barycenter(X, k), Z) < 1e-8
        Z2 = rng.normal(size=(100, 2)) * 2
        X2 = b.map_from_barycenter(Z2, k)
        assert np.all(np.sum((X - X2) * (Z - Z2), axis=1) > 0)
    # rows the benchmark produced map back to their sources
    for k in range(4):
        assert np.allclose(b.map_to_barycenter(b.marginals[k], k), b.marginal_sources[k])
        assert np.allclose(
            b.map_from_barycenter(b.marginal_sources[k][:50], k), b.marginals[k][:50]
        )
    # disjoint parts: no base row feeds two inputs or the held-out sample
    rows = np.concatenate(b.marginal_sources + [b.barycenter_samples])
    assert len(np.unique(rows, axis=0)) == len(rows) == 1200
    fresh = b.sample_marginals(50, random_state=0)
    assert [f.shape for f in fresh] == [(50, 2)] * 4


# ------------------------------------------------------------------ Ave, digits!
@pytest.fixture(scope="module")
def ave_digits(tmp_path_factory):
    home = tmp_path_factory.mktemp("skbary_data")
    t0 = time.perf_counter()
    bench = load_ave_digits(random_state=0, data_home=home)
    build = time.perf_counter() - t0
    return bench, build, home


def test_ave_digits_build_and_cache(ave_digits, monkeypatch):
    b, build, home = ave_digits
    assert build < 180.0, f"the build took {build:.0f} s"
    assert len(b.marginals) == 3 and np.allclose(b.weights, [0.25, 0.5, 0.25])
    assert all(m.shape[1] == 64 for m in b.marginals)
    assert sum(len(m) for m in b.marginals) + len(b.barycenter_samples) == 1797
    files = os.listdir(home)
    assert len(files) == 1 and files[0].endswith(".npz")
    t0 = time.perf_counter()
    again = load_ave_digits(random_state=0, data_home=home)
    assert time.perf_counter() - t0 < 5.0
    for m1, m2 in zip(b.marginals, again.marginals, strict=True):
        assert np.array_equal(m1, m2)
    z = b.barycenter_samples[:5]
    assert np.array_equal(b.map_from_barycenter(z, 1), again.map_from_barycenter(z, 1))
    monkeypatch.setenv("SKBARY_DATA", str(home))
    assert get_data_home() == str(home)
    with pytest.raises(OSError):
        load_ave_digits(random_state=1, data_home=home, download_if_missing=False)


def test_ave_digits_maps_are_congruent_invertible_and_monotone(ave_digits):
    b = ave_digits[0]
    rng = np.random.RandomState(0)
    Z = b.barycenter_samples[:40] + 0.02 * rng.normal(size=(40, 64))  # fresh points
    maps = [b.map_from_barycenter(Z, k) for k in range(3)]
    avg = sum(a * M for a, M in zip(b.weights, maps, strict=True))
    assert _rel(avg, Z) < 1e-3
    for k in range(3):
        assert _rel(b.map_to_barycenter(maps[k], k), Z) < 1e-3
        # monotone: <T(z) - T(z'), z - z'> > 0 over many pairs
        i, j = rng.randint(0, 40, size=(2, 500))
        keep = i != j
        inner = np.sum((maps[k][i] - maps[k][j]) * (Z[i] - Z[j]), axis=1)[keep]
        assert inner.min() > 0
    # the held-out inputs really are grad psi_k of the held-out base rows
    assert (
        _rel(b.map_from_barycenter(b.barycenter_samples[:20], 2), b.heldout_marginals[2][:20])
        < 1e-10
    )
    # problem (11) at full size, solved independently
    y = _solve_11_scipy(b.potentials[0], float(b.betas[0]), b.barycenter_samples[0])
    assert np.allclose(b.map_from_barycenter(b.barycenter_samples[:1], 0)[0], y, atol=1e-9)


def test_ave_digits_inputs_differ_visibly_from_the_barycenter(ave_digits):
    b = ave_digits[0]
    spread = np.sqrt(np.trace(b.barycenter_cov) / 64)  # per-pixel std of the digits
    for k in range(3):
        moved = np.sqrt(np.mean((b.marginals[k] - b.marginal_sources[k]) ** 2))
        assert moved > 0.3 * spread, (k, moved, spread)
    # and they differ from one another, not only from the barycenter
    assert np.abs(b.marginals[0].mean(0) - b.marginals[2].mean(0)).mean() > 0.1
