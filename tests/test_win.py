"""WINBarycenter: accuracy on a location-scatter task with a known barycenter, and its options."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from skbary import TrainingDivergedError, WINBarycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import bw_uvp, weighted_l2_uvp

SMALL = {
    "batch_size": 128,
    "n_potential_steps": 10,
    "n_generator_steps": 10,
    "n_map_steps": 3,
    "generator__hidden_layer_sizes": (32, 32),
    "map__hidden_layer_sizes": (32, 32),
    "potential__hidden_layer_sizes": (32, 32),
}


@pytest.fixture(scope="module")
def bench():
    return make_location_scatter(4, 2, 5000, weights=[0.1, 0.2, 0.3, 0.4], random_state=0)


@pytest.fixture(scope="module")
def fitted(bench):
    torch.set_num_threads(1)
    est = WINBarycenter(max_iter=25, transform_max_iter=400, random_state=0, **SMALL)
    return est.fit(bench.marginals, bench.weights)


def test_accuracy_location_scatter(fitted, bench):
    # Start (G = identity in standardised coordinates): BW2-UVP 8.9 %.
    Y = fitted.sample(20000)
    bw = bw_uvp(Y, bench.barycenter_mean, bench.barycenter_cov)
    assert bw < 1.5, bw
    l2 = weighted_l2_uvp(fitted, bench, bench.sample_marginals(5000, random_state=1))
    assert l2["l2_uvp_weighted"] < 4.0, l2
    # inverse_transform is T_k: barycenter -> input k.
    Z = bench.sample_barycenter(5000, random_state=2)
    err = [
        np.mean(np.sum((fitted.inverse_transform(Z, k) - bench.map_from_barycenter(Z, k)) ** 2, 1))
        for k in range(4)
    ]
    inv = 100 * float(np.dot(bench.weights, err)) / np.trace(bench.barycenter_cov)
    assert inv < 4.0, inv
    assert fitted.n_iter_ == 25 and fitted.n_transform_iter_ == 400
    assert set(fitted.stop_reason_) == {"barycenter", "transform"}
    rows = fitted.history_
    assert {"potential", "map", "generator"} <= set(rows[0])
    assert {"transform_potential", "transform_map"} <= set(rows[-1])


def test_sample_from_maps_and_repeatable(fitted, bench):
    Y1 = fitted.sample(500, random_state=3)
    np.testing.assert_array_equal(Y1, fitted.sample(500, random_state=3))
    est = WINBarycenter(**{**fitted.get_params(), "sample_from": "maps"})
    est.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    Ym = est.sample(500, random_state=3)
    assert Ym.shape == (500, 2) and not np.allclose(Ym, Y1)


def test_repeatable_fit(bench):
    kw = dict(max_iter=2, transform_max_iter=3, random_state=5, **SMALL)
    a = WINBarycenter(**kw).fit(bench.marginals, bench.weights)
    b = WINBarycenter(**kw).fit(bench.marginals, bench.weights)
    np.testing.assert_allclose(a.sample(50), b.sample(50))
    np.testing.assert_allclose(
        a.transform(bench.marginals[1][:20], 1), b.transform(bench.marginals[1][:20], 1)
    )


def test_skip_transform_and_max_time(bench):
    est = WINBarycenter(max_iter=10_000, max_time=3.0, learn_transform=False, **SMALL)
    t = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    assert time.perf_counter() - t < 4.5
    assert est.stop_reason_ == {"barycenter": "max_time"}
    assert est.sample(10).shape == (10, 2)
    with pytest.raises(RuntimeError, match="learn_transform"):
        est.transform(bench.marginals[0][:5], 0)
    est = WINBarycenter(max_iter=10_000, transform_max_iter=10**6, max_time=3.0, **SMALL)
    t = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    assert time.perf_counter() - t < 4.5
    assert est.stop_reason_ == {"barycenter": "max_time", "transform": "max_time"}


def test_callable_regression_loss_gets_data_coordinates(bench):
    seen = []

    def loss(pred, target):
        seen.append(float(target.mean(0).norm()))
        return ((pred - target) ** 2).sum(-1).mean()

    est = WINBarycenter(max_iter=1, regression_loss=loss, learn_transform=False, **SMALL)
    est.set_params(n_generator_steps=3)
    Xs = [m + 10.0 for m in bench.marginals]
    est.fit(Xs, bench.weights)
    assert len(seen) == 3 and min(seen) > 10  # targets live around the data mean (10, 10)


def test_diverged_generator_names_its_learning_rate(bench):
    def nan_loss(pred, target):
        return (pred * float("nan")).sum()

    est = WINBarycenter(max_iter=2, regression_loss=nan_loss, learn_transform=False, **SMALL)
    with pytest.raises(TrainingDivergedError, match="lr_generator"):
        est.fit(bench.marginals, bench.weights)


@pytest.mark.parametrize(
    "param",
    [
        {"sample_from": "both"},
        {"transform_time_fraction": 1.5},
        {"n_map_steps": 0},
        {"lr_map": -1.0},
        {"regression_loss": "l1"},
        {"latent_dim": 0},
    ],
)
def test_bad_parameters(param, bench):
    with pytest.raises(ValueError, match=next(iter(param))):
        WINBarycenter(**param).fit(bench.marginals, bench.weights)


def test_latent_dimension(bench):
    est = WINBarycenter(latent_dim=5, max_iter=2, learn_transform=False, **SMALL)
    est.fit(bench.marginals, bench.weights)
    assert est.sample(7).shape == (7, 2)
