"""Scorers: each equals minus its metric, and GridSearchCV / cross_val_score run with them."""

from __future__ import annotations

import ast
import inspect
import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

import skbary.metrics
from skbary.datasets import make_location_scatter
from skbary.estimators.gaussian import GaussianBarycenter
from skbary.metrics import barycenter_cost, bw_uvp, energy_distance, l2_uvp
from skbary.model_selection import train_test_split_marginals
from skbary.scorers import (
    barycenter_cost_scorer,
    make_barycenter_cost_scorer,
    make_bw_uvp_scorer,
    make_energy_distance_scorer,
    make_l2_uvp_scorer,
)

WEIGHTS = [0.25, 0.25, 0.5]


@pytest.fixture(scope="module")
def bench():
    return make_location_scatter(3, 4, 600, weights=WEIGHTS, means="random", random_state=0)


def _scorers(bench):
    return {
        "bw_uvp": make_bw_uvp_scorer(bench),
        "l2_uvp": make_l2_uvp_scorer(bench),
        "energy": make_energy_distance_scorer(bench, n_samples=1500),
        "cost": barycenter_cost_scorer,
    }


def test_scorers_are_minus_their_metrics(bench):
    est = GaussianBarycenter(shrinkage=0.3).fit(bench.marginals, bench.weights)
    held = bench.sample_marginals(300, random_state=1)
    X, y = np.concatenate(held), np.repeat([0, 1, 2], 300)
    S, m = bench.barycenter_cov, bench.barycenter_mean
    assert make_bw_uvp_scorer(bench, n_samples=50_000)(est, X, y) == pytest.approx(
        -bw_uvp(est.sample(50_000, random_state=0), m, S)
    )
    expected = sum(
        a * l2_uvp(est.transform(Xk, k), bench.map_to_barycenter(Xk, k), S)
        for k, (a, Xk) in enumerate(zip(WEIGHTS, held, strict=True))
    )
    assert make_l2_uvp_scorer(bench)(est, X, y) == pytest.approx(-expected)
    Z = bench.sample_barycenter(1000, random_state=0)
    assert make_energy_distance_scorer(bench, n_samples=1000)(est, X, y) == pytest.approx(
        -energy_distance(est.sample(1000, random_state=0), Z)
    )
    cost = barycenter_cost(est.sample(300, random_state=0), held, est.weights_, random_state=0)
    assert barycenter_cost_scorer(est, X, y) == pytest.approx(-cost)
    assert make_barycenter_cost_scorer(n_samples=200)(est, X, y) < 0
    # the scorers survive pickling (GridSearchCV with n_jobs sends them to workers)
    for scorer in _scorers(bench).values():
        assert pickle.loads(pickle.dumps(scorer))(est, X, y) == pytest.approx(scorer(est, X, y))


def test_barycenter_cost_scorer_follows_the_fitted_labels_and_weights(bench):
    # labels 10, 20, 30 instead of 0, 1, 2: rows are grouped by input_labels_
    X, y = bench.X, 10 * (bench.y + 1)
    est = GaussianBarycenter(weights=WEIGHTS).fit(X, y)
    held = bench.sample_marginals(200, random_state=3)
    Xh, yh = np.concatenate(held), np.repeat([10, 20, 30], 200)
    cost = barycenter_cost(est.sample(200, random_state=0), held, WEIGHTS, random_state=0)
    assert barycenter_cost_scorer(est, Xh, yh) == pytest.approx(-cost)
    with pytest.raises(ValueError, match="StratifiedKFold"):
        barycenter_cost_scorer(est, Xh[yh != 20], yh[yh != 20])


@pytest.mark.parametrize("name", ["bw_uvp", "l2_uvp", "energy", "cost"])
def test_grid_search_selects_no_shrinkage(bench, name):
    scorer = _scorers(bench)[name]
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(
        GaussianBarycenter(weights=WEIGHTS),
        {"shrinkage": [0.0, 0.9]},
        scoring=scorer,
        cv=cv,
        n_jobs=2,
    ).fit(bench.X, bench.y)
    assert search.best_params_ == {"shrinkage": 0.0}
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and scores[0] > scores[1]
    assert search.best_estimator_.n_marginals_ == 3
    cv_scores = cross_val_score(
        GaussianBarycenter(weights=WEIGHTS), bench.X, bench.y, scoring=scorer, cv=cv
    )
    assert cv_scores.shape == (3,) and np.all(np.isfinite(cv_scores))
    assert cv_scores.mean() > scores[1]


def test_stratified_split_keeps_every_input(bench):
    for train, test in StratifiedKFold(3, shuffle=True, random_state=0).split(bench.X, bench.y):
        assert set(bench.y[train]) == set(bench.y[test]) == {0, 1, 2}
    tr, te = train_test_split_marginals(bench.marginals, test_size=0.25, random_state=0)
    assert [len(t) for t in tr] == [450] * 3 and [len(t) for t in te] == [150] * 3
    both = np.concatenate([tr[1], te[1]])
    assert np.array_equal(np.sort(both, axis=0), np.sort(bench.marginals[1], axis=0))


def test_metrics_does_not_import_scorers():
    # scorers are built on metrics; the reverse import would make a cycle
    tree = ast.parse(inspect.getsource(skbary.metrics))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        assert not any("scorers" in n for n in names), ast.dump(node)
    assert not hasattr(skbary.metrics, "make_bw_uvp_scorer")
