"""EnergyBarycenter (EgBary): small fits on inputs with a known barycenter.

The thresholds are a small fraction of what doing nothing scores (the identity map's L2-UVP
is ~33 % on these inputs, and an untrained EgBary maps every x to itself), so a broken
gradient, sampler or congruence fails them.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skbary import EnergyBarycenter, TrainingDivergedError
from skbary.datasets import make_location_scatter
from skbary.metrics import bw_uvp, l2_uvp

torch.set_num_threads(1)

WEIGHTS = (0.25, 0.25, 0.5)
SMALL = dict(
    epsilon=0.01,
    batch_size=128,
    potential__hidden_layer_sizes=(32, 32),
    random_state=0,
)


@pytest.fixture(scope="module")
def bench():
    return make_location_scatter(3, 2, 2000, weights=WEIGHTS, random_state=0)


@pytest.fixture(scope="module")
def fitted(bench):
    est = EnergyBarycenter(max_iter=100, langevin_steps=15, **SMALL)
    return est.fit(bench.marginals, bench.weights)


def _l2_uvps(est, bench, n=300, n_draws=16):
    out = []
    for k, X in enumerate(bench.marginals):
        P = est.barycentric_projection(X[:n], k, n_draws=n_draws)
        out.append(l2_uvp(P, bench.map_to_barycenter(X[:n], k), bench.barycenter_cov))
    return np.array(out)


def test_langevin_fit_recovers_location_scatter_maps(fitted, bench):
    identity = [
        l2_uvp(X[:300], bench.map_to_barycenter(X[:300], k), bench.barycenter_cov)
        for k, X in enumerate(bench.marginals)
    ]
    assert min(identity) > 25
    uvp = _l2_uvps(fitted, bench)
    assert np.all(uvp < 3.0), uvp  # measured 0.3-1.0 % (100 iterations)
    Y = fitted.sample(4000)
    assert Y.shape == (4000, 2)
    assert bw_uvp(Y, bench.barycenter_mean, bench.barycenter_cov) < 1.0
    h = fitted.history_
    assert len(h) == fitted.n_iter_ == 100
    assert np.all(np.isfinite(h[:, "potential"])) and np.all(np.isfinite(h[:, "cost"]))
    assert fitted.stop_reason_ == {"train": "max_iter"}


def test_transform_is_one_draw_from_the_plan(fitted, bench):
    X = bench.marginals[2][:200]
    Y1 = fitted.transform(X, 2)
    assert Y1.shape == (200, 2) and Y1.dtype == np.float64
    np.testing.assert_array_equal(Y1, fitted.transform(X, 2))  # seeded by random_state
    P = fitted.barycentric_projection(X, 2, n_draws=32)
    # one draw scatters around the projection with variance ~ eps per coordinate
    spread = np.mean(np.sum((Y1 - P) ** 2, axis=1))
    assert 0.2 * 2 * fitted.epsilon < spread < 5 * 2 * fitted.epsilon
    # rows from several inputs at once, routed by a label per row
    Xmix = np.vstack([bench.marginals[0][:5], bench.marginals[1][:5]])
    ks = np.array([0] * 5 + [1] * 5)
    assert fitted.transform(Xmix, ks).shape == (10, 2)


def test_importance_sampler_fit(bench):
    est = EnergyBarycenter(max_iter=100, sampler="importance", n_proposals=1024, **SMALL)
    est.fit(bench.marginals, bench.weights)
    uvp = _l2_uvps(est, bench)
    assert np.all(uvp < 3.0), uvp  # measured 0.6-0.9 % (150 iterations)
    assert est.transform(bench.marginals[0][:50], 0).shape == (50, 2)
    assert bw_uvp(est.sample(4000), bench.barycenter_mean, bench.barycenter_cov) < 1.0


def test_callable_cost_equals_named_quadratic(bench):
    def quad(x, y):
        return 0.5 * ((x - y) ** 2).sum(-1)

    kw = dict(max_iter=5, langevin_steps=5, **SMALL)
    a = EnergyBarycenter(**kw).fit(bench.marginals, bench.weights)
    b = EnergyBarycenter(cost=quad, **kw).fit(bench.marginals, bench.weights)
    np.testing.assert_allclose(a.history_[:, "potential"], b.history_[:, "potential"])
    X = bench.marginals[0][:20]
    np.testing.assert_allclose(a.transform(X, 0), b.transform(X, 0), atol=1e-6)


def test_congruence_holds_after_fit(fitted):
    y = torch.randn(100, 2)
    with torch.no_grad():
        f = fitted.potentials_.all_at(y)  # (K, N)
    a = torch.as_tensor(WEIGHTS, dtype=torch.float32)
    assert torch.allclose((a[:, None] * f).sum(0), torch.zeros(100), atol=1e-5)


class _LineGenerator(torch.nn.Module):
    """G(z) = (z, 0): a 1-D manifold in the plane."""

    n_latent = 1

    def forward(self, z):
        return torch.cat([z, torch.zeros_like(z)], dim=-1)


def test_generator_constrains_the_barycenter_to_the_latent_space():
    rng = np.random.RandomState(0)
    # two inputs off the manifold, left and right of it; their barycenter on the line
    X1 = np.c_[rng.normal(-2, 0.3, 1000), rng.normal(1.0, 0.3, 1000)]
    X2 = np.c_[rng.normal(2, 0.3, 1000), rng.normal(-1.0, 0.3, 1000)]
    est = EnergyBarycenter(
        generator=_LineGenerator(), max_iter=150, langevin_steps=20, lr=1e-2, **SMALL
    )
    est.fit([X1, X2])
    assert est.n_features_out_ == 1
    Z = est.sample(2000)
    assert Z.shape == (2000, 1)
    # W2 barycenter of the projections N(-2, .09), N(2, .09) on the line: N(0, 0.09)
    assert abs(Z.mean()) < 0.3 and 0.03 < Z.var() < 0.4, (Z.mean(), Z.var())
    Zk = est.barycentric_projection(X1[:200], 0, n_draws=8)
    # the map moves input 0 right by ~2 along the line, keeping the order
    assert abs(np.mean(Zk[:, 0] - X1[:200, 0]) - 2.0) < 0.4
    assert np.corrcoef(Zk[:, 0], X1[:200, 0])[0, 1] > 0.8
    D = est.decode(Z[:5])
    assert D.shape == (5, 2) and np.all(D[:, 1] == 0)


class _FakeGenerativeModel:
    """What EgBary reads from a fitted GenerativeBarycenter: its generator and scaling."""

    def __init__(self):
        self.generator_ = torch.nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.generator_.weight.copy_(torch.tensor([[1.0], [0.0]]))
        self.latent_dim_ = 1
        self.scale_ = 2.0
        self.center_ = np.array([1.0, 0.0])


def test_fitted_generative_model_as_generator():
    rng = np.random.RandomState(0)
    X1 = np.c_[rng.normal(-1, 0.2, 300), rng.normal(0.5, 0.2, 300)]
    X2 = np.c_[rng.normal(3, 0.2, 300), rng.normal(-0.5, 0.2, 300)]
    est = EnergyBarycenter(generator=_FakeGenerativeModel(), max_iter=3, **SMALL)
    est.fit([X1, X2])
    assert est.n_features_out_ == 1
    # G(z) = (2 z + 1, 0): the data-space generator includes the estimator's scaling
    np.testing.assert_allclose(est.decode(np.array([[0.0], [1.0]])), [[1.0, 0.0], [3.0, 0.0]])


def test_pickle_round_trip(fitted, bench):
    X = bench.marginals[1][:30]
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.transform(X, 1), fitted.transform(X, 1))


def test_max_time_bounds_fit(bench):
    est = EnergyBarycenter(max_iter=10**6, max_time=1.0, langevin_steps=5, **SMALL)
    est.fit(bench.marginals, bench.weights)
    assert est.stop_reason_["train"] == "max_time"
    assert est.fit_time_ < 2.5


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(epsilon=0), "epsilon"),
        (dict(epsilon="a"), "epsilon"),
        (dict(sampler="mcmc"), "sampler"),
        (dict(langevin_steps=0), "langevin_steps"),
        (dict(langevin_step_size=-1.0), "langevin_step_size"),
        (dict(langevin_init="middle"), "langevin_init"),
        (dict(inference_steps=2.5), "inference_steps"),
        (dict(n_proposals=0), "n_proposals"),
        (dict(lr_decay=0.0), "lr_decay"),
        (dict(cost="cosine"), "cost"),
        (dict(n_latent=3), "n_latent"),
        (dict(generator=_LineGenerator(), langevin_init="input"), "langevin_init"),
    ],
)
def test_bad_parameters_raise_before_training(bench, params, match):
    est = EnergyBarycenter(max_iter=1, **params)
    with pytest.raises((ValueError, TypeError), match=match):
        est.fit(bench.marginals, bench.weights)
    assert not hasattr(est, "history_")


def test_bad_n_draws(fitted, bench):
    with pytest.raises(ValueError, match="n_draws"):
        fitted.barycentric_projection(bench.marginals[0][:3], 0, n_draws=0)


def test_divergence_names_the_remedy(bench):
    est = EnergyBarycenter(max_iter=2, langevin_steps=3, langevin_step_size=1e8, **SMALL)
    with pytest.raises(TrainingDivergedError, match="langevin_step_size"):
        est.fit(bench.marginals, bench.weights)


def test_clone_keeps_nested_params():
    est = EnergyBarycenter(potential__hidden_layer_sizes=(8,), optimizer__betas=(0.5, 0.9))
    params = clone(est).get_params()
    assert params["potential__hidden_layer_sizes"] == (8,)
    assert params["optimizer__betas"] == (0.5, 0.9)
