"""Grid search over a barycenter's hyperparameters, end to end, with the skbary scorers.

Inputs with a known barycenter (``make_location_scatter``: three rotated, scaled copies of
N(0, I) in 8-D, weights (1/4, 1/4, 1/2)) go into ``GridSearchCV`` in the flat form: X all
rows, y the input of each row. ``StratifiedKFold`` then holds out rows of *every* input in
each fold. The grid is the covariance shrinkage of ``GaussianBarycenter``; on this family the
unshrunk estimate is exact, so every scorer should pick ``shrinkage=0``:

* ``make_bw_uvp_scorer(bench)``: BW2-UVP of samples against the true barycenter;
* ``make_l2_uvp_scorer(bench)``: weighted L2-UVP of ``transform`` on the held-out rows;
* ``make_energy_distance_scorer(bench)``: energy distance to true barycenter samples;
* ``barycenter_cost_scorer``: the held-out barycenter cost, which needs no truth at all
  (the one to use on real data).

Run: ``python examples/grid_search.py`` (about 10 s on 2 CPU cores).
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from skbary import GaussianBarycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import score_benchmark
from skbary.scorers import (
    barycenter_cost_scorer,
    make_bw_uvp_scorer,
    make_energy_distance_scorer,
    make_l2_uvp_scorer,
)


def main() -> None:
    t0 = time.perf_counter()
    weights = [0.25, 0.25, 0.5]
    bench = make_location_scatter(
        n_marginals=3,
        n_features=8,
        n_samples=1000,
        weights=weights,
        means="random",
        random_state=0,
    )
    X, y = bench.X, bench.y  # the flat form: 3000 rows, y in {0, 1, 2}
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    grid = {"shrinkage": [0.0, 0.1, 0.5, 0.9]}
    scorers = {
        "BW2-UVP": make_bw_uvp_scorer(bench),
        "L2-UVP": make_l2_uvp_scorer(bench),
        "energy distance": make_energy_distance_scorer(bench, n_samples=2000),
        "barycenter cost": barycenter_cost_scorer,
    }
    print(f"{'scorer':<16} {'best shrinkage':>14}   mean held-out score per candidate")
    for name, scorer in scorers.items():
        search = GridSearchCV(
            GaussianBarycenter(weights=weights), grid, scoring=scorer, cv=cv, n_jobs=2
        ).fit(X, y)
        scores = "  ".join(f"{s:9.4f}" for s in search.cv_results_["mean_test_score"])
        print(f"{name:<16} {search.best_params_['shrinkage']:>14}   {scores}")

    # cross_val_score works the same way, here with the truth-free barycenter cost
    cv_scores = cross_val_score(
        GaussianBarycenter(weights=weights), X, y, scoring=barycenter_cost_scorer, cv=cv
    )
    print(f"\ncross_val_score, barycenter cost: {np.round(cv_scores, 3)}")

    # and a fitted estimator against the truth, on fresh rows, in one call
    best = GaussianBarycenter(weights=weights).fit(X, y)
    report = score_benchmark(best, bench, n_samples=100_000, energy_samples=2000)
    print(
        f"refit, shrinkage=0: BW2-UVP {report['bw_uvp']:.3f} %, "
        f"weighted L2-UVP {report['l2_uvp_weighted']:.3f} %, "
        f"energy distance {report['energy_distance']:.4f}"
    )
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
