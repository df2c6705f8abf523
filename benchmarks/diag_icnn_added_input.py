"""The convex maps of ``add_input`` with and without the quantile term, on a product measure.

``fit_convex_maps`` (what ``add_input`` trains under the quadratic cost, 1,000 iterations
by default) from input 0 of a product measure (``make_product_measures``: K = 3, weights
(0.2, 0.3, 0.5), 20,000 rows; family a axis-aligned, b under a rotation) onto 20,000 draws
of the true barycenter, both standardised by the barycenter's mean and its root mean
variance, once with the potentials' quantile term ("auto") and once without (False), one
torch thread: L2-UVP (% of the barycenter's total variance) of the learned map against
the true map on 5,000 fresh rows. One JSON line per fit is appended to ``--out``.

    python -m benchmarks.diag_icnn_added_input --family a --seed 0
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from benchmarks.common import append_jsonl
from skbary.datasets import make_product_measures
from skbary.solvers import fit_convex_maps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=["a", "b"], default="a")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--n-iter", type=int, default=1000)
    p.add_argument("--out", default="benchmarks/results/icnn_added_input.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    b = make_product_measures(
        3, args.d, 20_000, weights=[0.2, 0.3, 0.5], rotation=args.family == "b",
        random_state=args.seed,
    )  # fmt: skip
    Y = b.sample_barycenter(20_000, random_state=args.seed + 5)
    mean, scale = Y.mean(0), float(np.sqrt(np.trace(np.cov(Y.T)) / args.d))

    def std(A):
        return torch.as_tensor((A - mean) / scale, dtype=torch.float32)

    src, tgt = std(b.marginals[0]), std(Y)
    X = b.sample_marginals(5000, random_state=args.seed + 9)[0]
    truth = b.map_to_barycenter(X, 0)
    for qf in ("auto", False):
        gen = torch.Generator().manual_seed(args.seed)

        def draw(rows, gen=gen):
            return lambda B: rows[torch.randint(0, len(rows), (B,), generator=gen)][None]

        t = time.perf_counter()
        maps, _ = fit_convex_maps(
            draw(src), draw(tgt), 1, args.d, n_iter=args.n_iter, quantile_features=qf,
            random_state=args.seed,
        )  # fmt: skip
        with torch.no_grad():
            T = maps.transport_one(std(X), 0).numpy() * scale + mean
        err = ((T - truth) ** 2).sum(1).mean()
        row = {
            "family": args.family, "seed": args.seed, "d": args.d, "quantile_features": qf,
            "n_iter": args.n_iter, "fit_s": round(time.perf_counter() - t, 1),
            "load": round(os.getloadavg()[0], 1),
            "l2_uvp": round(float(100 * err / np.trace(b.barycenter_cov)), 4),
        }  # fmt: skip
        append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
