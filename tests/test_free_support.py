"""FreeSupportBarycenter: POT's discrete barycenter with out-of-sample maps."""

from __future__ import annotations

import numpy as np

from skbary import FreeSupportBarycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import score_benchmark


def test_free_support_approximates_the_known_barycenter():
    bench = make_location_scatter(3, 2, 3000, weights=[0.25, 0.25, 0.5], random_state=0)
    est = FreeSupportBarycenter(n_support=300, max_samples_per_input=600, random_state=0)
    est.fit(bench.marginals, bench.weights)
    scores = score_benchmark(est, bench, n_samples=20_000, n_heldout=3000, energy_samples=0)
    # A 300-point barycenter from 600 rows per input: a few percent, not more.
    assert scores["bw_uvp"] < 3.0
    assert scores["l2_uvp_weighted"] < 5.0
    assert est.support_.shape == (300, 2)
    assert 1 <= est.n_iter_ <= est.max_iter


def test_out_of_sample_map_extends_the_plan_projection():
    bench = make_location_scatter(2, 2, 1000, random_state=1)
    est = FreeSupportBarycenter(n_support=100, max_samples_per_input=None, n_neighbors=1)
    est.fit(bench.marginals)
    X = bench.marginals[0]
    # with one neighbour, a training row maps to its own barycentric projection, which is
    # a convex combination of support points: inside their bounding box
    Z = est.transform(X, 0)
    lo, hi = est.support_.min(0), est.support_.max(0)
    assert np.all(Z >= lo - 1e-9) and np.all(Z <= hi + 1e-9)
