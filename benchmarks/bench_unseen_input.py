"""Inputs unseen in fit (issue 19): location-scatter K=4, D=8, 20,000 rows per input.

Fit on inputs 0-2 (weights 0.2, 0.3, 0.5), then ``add_input`` the fourth; compare the
weighted L2-UVP of the fitted maps with the L2-UVP of the new map, both against the true OT
maps onto the three-input barycenter. The neural estimators' added maps are gradients of
input-convex potentials (``skbary.solvers.fit_convex_maps``). Results:
``benchmarks/results/unseen_input.md``.

Run: ``python benchmarks/bench_unseen_input.py {gauss,free,not,icnn,win} SEEDS BUDGET``,
e.g. ``python benchmarks/bench_unseen_input.py not 0,1 60``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from skbary import (
    FreeSupportBarycenter,
    GaussianBarycenter,
    ICNNBarycenter,
    NOTBarycenter,
    WINBarycenter,
)
from skbary.bures import bures_barycenter, linear_ot_map
from skbary.datasets import make_location_scatter
from skbary.metrics import l2_uvp

WEIGHTS = np.array([0.2, 0.3, 0.5])


def make(which: str, seed: int, budget: float):
    return {
        "gauss": lambda: GaussianBarycenter(),
        "free": lambda: FreeSupportBarycenter(random_state=0),
        "not": lambda: NOTBarycenter(max_time=budget, random_state=seed),
        "icnn": lambda: ICNNBarycenter(max_time=budget, random_state=seed),
        "win": lambda: WINBarycenter(max_time=budget, random_state=seed),
    }[which]()


def run(name: str, est, seed: int, n: int = 20_000) -> None:
    b = make_location_scatter(4, 8, n, means="random", random_state=seed)
    S = bures_barycenter(b.marginal_covs[:3], WEIGHTS)
    m = WEIGHTS @ b.marginal_means[:3]

    def true_map(X, k):
        return (X - b.marginal_means[k]) @ linear_ot_map(b.marginal_covs[k], S) + m

    t = time.time()
    est.fit(b.marginals[:3], WEIGHTS)
    t_fit = time.time() - t
    test = [b.sample_marginal(k, 4000, random_state=100 + k) for k in range(4)]
    fitted = sum(
        a * l2_uvp(est.transform(test[k], k), true_map(test[k], k), S)
        for k, a in enumerate(WEIGHTS)
    )
    t = time.time()
    est.add_input(b.marginals[3], "new")
    t_add = time.time() - t
    new = l2_uvp(est.transform(test[3], "new"), true_map(test[3], 3), S)
    print(
        f"{name} seed={seed} fit {t_fit:.0f}s weighted L2-UVP of fitted maps {fitted:.3f}% | "
        f"add_input {t_add:.0f}s L2-UVP new map {new:.3f}% ratio {new / max(fitted, 1e-9):.2f}",
        flush=True,
    )


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    which, seeds = argv[0], [int(s) for s in argv[1].split(",")]
    budget = float(argv[2]) if len(argv) > 2 else 60.0
    for seed in seeds:
        run(which, make(which, seed, budget), seed)


if __name__ == "__main__":
    main(sys.argv[1:])
