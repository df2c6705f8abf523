"""Quickstart: the barycenter of three 2-D inputs whose barycenter is known.

Fits the closed-form Gaussian barycenter, the discrete free-support baseline and (when
available) a neural barycenter, prints each one's accuracy against the truth, and saves
``quickstart.png`` (inputs, barycenter samples, mapped points). Run with ``make demo``.
"""

from __future__ import annotations

import os
import time

import matplotlib.pyplot as plt

import skbary
from skbary.datasets import make_location_scatter
from skbary.metrics import score_benchmark
from skbary.plotting import plot_barycenter, plot_maps

NEURAL_BUDGET_S = float(os.environ.get("SKBARY_QUICKSTART_SECONDS", "60"))


def main() -> None:
    # Three rotated and scaled copies of N(0, I), moved apart so the picture reads.
    bench = make_location_scatter(
        n_marginals=3,
        n_features=2,
        n_samples=20_000,
        weights=[0.25, 0.25, 0.5],
        means=[[-6.0, 4.0], [6.0, 4.0], [0.0, -6.0]],
        random_state=0,
    )
    estimators = {
        "GaussianBarycenter": skbary.GaussianBarycenter(),
        "FreeSupportBarycenter": skbary.FreeSupportBarycenter(
            n_support=300, max_samples_per_input=1000, random_state=0
        ),
    }
    if hasattr(skbary, "NOTBarycenter"):
        estimators["NOTBarycenter"] = skbary.NOTBarycenter(max_time=NEURAL_BUDGET_S, random_state=0)

    print(f"{'estimator':<24}{'BW2-UVP %':>11}{'L2-UVP %':>10}{'fit s':>8}")
    fitted = {}
    for name, est in estimators.items():
        start = time.perf_counter()
        est.fit(bench.marginals, bench.weights)
        seconds = time.perf_counter() - start
        s = score_benchmark(est, bench, n_samples=100_000, energy_samples=0)
        print(f"{name:<24}{s['bw_uvp']:>11.4f}{s['l2_uvp_weighted']:>10.4f}{seconds:>8.1f}")
        fitted[name] = est

    fig, axes = plt.subplots(1, len(fitted), figsize=(5 * len(fitted), 5))
    fresh = bench.sample_marginals(300, random_state=1)
    for ax, (name, est) in zip(axes, fitted.items()):
        plot_barycenter(
            bench.marginals, est.sample(1000, random_state=0), ax=ax, title=name, max_points=1000
        )
        for k, X in enumerate(fresh):
            plot_maps(X[:40], est.transform(X[:40], k), ax=ax, color=f"C{k}")
    fig.tight_layout()
    fig.savefig("quickstart.png", dpi=110)
    print("saved quickstart.png (inputs, barycenter samples, arrows: rows mapped onto it)")


if __name__ == "__main__":
    main()
