"""GenerativeBarycenter: small fits with known answers (W2 barycenter, MMD mixture)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skbary import GenerativeBarycenter, TrainingDivergedError
from skbary.datasets import make_gaussians, make_location_scatter
from skbary.estimators.generative import GaussianGenerator
from skbary.metrics import bw_uvp, energy_distance, weighted_l2_uvp

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def scatter():
    return make_location_scatter(3, 2, 1000, weights=[0.2, 0.3, 0.5], random_state=0)


@pytest.fixture(scope="module")
def two_blobs():
    # Two separated Gaussians: the MMD barycenter is their mixture, the W2 one a Gaussian.
    return make_gaussians(
        [[-3.0, 0.0], [3.0, 0.0]],
        [np.eye(2) * 0.5, np.diag([0.3, 1.0])],
        weights=[0.3, 0.7],
        n_samples=1000,
        random_state=0,
    )


def _mixture(bench, n, seed):
    fresh = bench.sample_marginals(n, random_state=seed)
    left = np.random.RandomState(seed + 1).rand(n) < bench.weights[0]
    return np.where(left[:, None], fresh[0], fresh[1])


def test_sinkhorn_recovers_w2_barycenter_and_maps(scatter):
    est = GenerativeBarycenter(max_iter=150, batch_size=128, map_iter=100, random_state=0)
    est.fit(scatter.marginals, scatter.weights)
    Y = est.sample(20000)
    assert Y.shape == (20000, 2) and Y.dtype == np.float64
    # Measured 0.4% (200 iterations) on this task; a broken loss gives tens of percent.
    assert bw_uvp(Y, scatter.barycenter_mean, scatter.barycenter_cov) < 2.0
    scores = weighted_l2_uvp(est, scatter, scatter.sample_marginals(2000, random_state=1))
    assert scores["l2_uvp_weighted"] < 10.0
    assert est.n_iter_ == 150 and est.n_map_iter_ == 100
    assert set(est.history_[:, "phase"]) == {"generator", "maps"}
    assert np.isfinite(est.history_[:, "sinkhorn"][:150]).all()


def test_mmd_barycenter_is_the_mixture(two_blobs):
    est = GenerativeBarycenter(
        divergence="mmd", max_iter=150, batch_size=128, map_iter=0, random_state=0
    )
    est.fit(two_blobs.marginals, two_blobs.weights)
    Y = est.sample(2000, random_state=1)
    mix = _mixture(two_blobs, 2000, 2)
    W2 = two_blobs.sample_barycenter(2000, random_state=4)
    ratio = energy_distance(Y, mix) / energy_distance(W2, mix)
    assert ratio < 0.15  # measured 0.02
    assert 0.2 < (Y[:, 0] < 0).mean() < 0.4  # the mass of the left input, 0.3


def test_gaussian_generator_learns_mean_and_covariance(scatter):
    est = GenerativeBarycenter(
        generator="gaussian", lr=0.05, max_iter=60, batch_size=64, map_iter=0, random_state=0
    )
    est.fit(scatter.marginals, scatter.weights)
    assert isinstance(est.generator_, GaussianGenerator)
    Y = est.sample(20000)
    assert bw_uvp(Y, scatter.barycenter_mean, scatter.barycenter_cov) < 2.0


@pytest.mark.parametrize("penalty", ["scaled", "gradient"])
def test_smmd_trains_critics_and_generator(two_blobs, penalty):
    est = GenerativeBarycenter(
        divergence="smmd",
        penalty=penalty,
        max_iter=10,
        critic_steps=2,
        batch_size=64,
        map_iter=0,
        random_state=0,
        critic__n_outputs=4,
    )
    est.fit(two_blobs.marginals, two_blobs.weights)
    assert est.critics_ is not None and est.critics_.n_models == 2
    assert np.isfinite(est.history_[:, "generator"]).all()
    assert np.isfinite(est.history_[:, "critic"]).all()
    assert np.isfinite(est.sample(10)).all()


def test_smmd_scaled_finds_both_modes(two_blobs):
    est = GenerativeBarycenter(
        divergence="smmd", max_iter=60, batch_size=128, map_iter=0, random_state=0
    )
    est.fit(two_blobs.marginals, two_blobs.weights)
    Y = est.sample(2000, random_state=1)
    mix = _mixture(two_blobs, 2000, 2)
    W2 = two_blobs.sample_barycenter(2000, random_state=4)
    assert energy_distance(Y, mix) / energy_distance(W2, mix) < 0.5


def test_user_module_generator_in_data_coordinates(scatter):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
    before = [p.detach().clone() for p in module.parameters()]
    est = GenerativeBarycenter(generator=module, max_iter=5, batch_size=32, map_iter=0)
    est.fit(scatter.marginals, scatter.weights)
    assert est.latent_dim_ == 3 and est.scale_ == 1.0
    assert np.all(est.center_ == 0)
    # The user's module is copied, not trained in place.
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))
    assert est.sample(7).shape == (7, 2)


@pytest.mark.parametrize(
    "module, kw, match",
    [
        (nn.Linear(3, 5), {}, r"\(n, 2\)"),
        (nn.Identity(), {}, "latent_dim"),
        (nn.Linear(3, 2), {"latent_dim": 4}, "failed on noise"),
    ],
)
def test_bad_user_module(scatter, module, kw, match):
    est = GenerativeBarycenter(generator=module, max_iter=2, map_iter=0, **kw)
    with pytest.raises(ValueError, match=match):
        est.fit(scatter.marginals)


def test_max_time_bounds_the_whole_fit(scatter):
    est = GenerativeBarycenter(max_time=2.0, max_iter=10**6, map_iter=10**6, batch_size=32)
    est.fit(scatter.marginals)
    assert est.fit_time_ < 2.0 + 1.0
    assert est.stop_reason_ == {"generator": "max_time", "maps": "max_time"}
    assert est.n_iter_ > 0 and est.n_map_iter_ > 0


def test_repeatable_and_single_input(scatter):
    X = scatter.marginals[2]
    kw = dict(max_iter=20, batch_size=64, map_iter=5, random_state=3)
    a = GenerativeBarycenter(**kw).fit([X])
    b = GenerativeBarycenter(**kw).fit([X])
    np.testing.assert_array_equal(a.sample(50), b.sample(50))
    np.testing.assert_array_equal(a.transform(X[:5]), b.transform(X[:5]))
    assert a.transform(X[:5]).shape == (5, 2)


def test_single_input_is_a_generative_model(scatter):
    # K = 1: the barycenter is the input itself (the EgBary engineer's use on digits).
    X = scatter.marginals[0]
    est = GenerativeBarycenter(max_iter=100, batch_size=64, map_iter=0, random_state=0)
    Y = est.fit([X]).sample(20000)
    assert bw_uvp(Y, X.mean(0), np.cov(X, rowvar=False)) < 3.0


def test_transform_without_maps_raises(scatter):
    est = GenerativeBarycenter(max_iter=2, map_iter=0).fit(scatter.marginals)
    with pytest.raises(ValueError, match="map_iter"):
        est.transform(scatter.marginals[0][:3], 0)


def test_divergence_names_the_learning_rate(scatter):
    est = GenerativeBarycenter(
        divergence="mmd", kernel="energy", generator="gaussian", lr=1e30, max_iter=100, map_iter=0
    )
    with pytest.raises(TrainingDivergedError, match="lr"):
        est.fit(scatter.marginals)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"divergence": "wasserstein"}, "divergence"),
        ({"generator": "cnn"}, "generator"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"blur": 0}, "blur"),
        ({"debias": "none"}, "debias"),
        ({"kernel": "cosine"}, "kernel"),
        ({"bandwidth": (1.0, -2.0)}, "bandwidth"),
        ({"penalty": "clip"}, "penalty"),
        ({"penalty_weight": -1}, "penalty_weight"),
        ({"critic_steps": 0}, "critic_steps"),
        ({"map_iter": -1}, "map_iter"),
        ({"map_time_fraction": 1.0}, "map_time_fraction"),
        ({"lr_decay": 0}, "lr_decay"),
        ({"batch_size": 1}, "batch_size"),
        ({"standardize": "yes"}, "standardize"),
        ({"generator": "gaussian", "latent_dim": 3}, "latent_dim"),
    ],
)
def test_bad_params_name_the_argument(scatter, params, match):
    with pytest.raises(ValueError, match=match):
        GenerativeBarycenter(max_iter=2, **params).fit(scatter.marginals)
