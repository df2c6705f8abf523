"""ICNN's quantile terms on location-scatter: a no-regression check at equal iterations.

The acceptance task of ``bench_icnn --part nwb1`` (K = 4, weights (0.1, 0.2, 0.3, 0.4),
Gaussian base, 20,000 rows per input, seed 0) at a fixed number of outer iterations
instead of ``max_time``, fitted with the default potentials (``quantile_features="auto"``)
and without the term (``f__quantile_features=False, g__quantile_features=False``), one
after the other in one process on one torch thread: BW2-UVP of ``sample(100000)`` and
weighted L2-UVP of ``transform`` on 10,000 fresh rows per input. One JSON line per fit is
appended to ``--out``.

    python -m benchmarks.diag_icnn_scatter --dims 8 --max-iter 2000
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from benchmarks.common import append_jsonl
from benchmarks.common import settings as parse_settings
from skbary import ICNNBarycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import bw_uvp, weighted_l2_uvp


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", nargs="+", type=int, default=[8])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iter", type=int, default=2000)
    p.add_argument("--out", default="benchmarks/results/icnn_quantiles_scatter.jsonl")
    p.add_argument("--set", action="append", default=[], help="setting name=value (both fits)")
    p.add_argument("--only", choices=["auto", "none"], default=None, help="one of the two fits")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = parse_settings(args.set)
    for D in args.dims:
        b = make_location_scatter(
            4, D, 20_000, weights=[0.1, 0.2, 0.3, 0.4], base="gaussian", random_state=args.seed
        )
        held = b.sample_marginals(10_000, random_state=args.seed + 2)
        for name, qf in (("auto", "auto"), ("none", False)):
            if args.only not in (None, name):
                continue
            est = ICNNBarycenter(
                max_iter=args.max_iter, random_state=args.seed,
                f__quantile_features=qf, g__quantile_features=qf, **settings,
            )  # fmt: skip
            t = time.perf_counter()
            est.fit(b.marginals, b.weights)
            fit_s = time.perf_counter() - t
            Y = est.sample(100_000, random_state=args.seed + 1)
            row = {
                "D": D, "seed": args.seed, "quantile_features": name, "settings": args.set,
                "n_iter": int(est.n_iter_), "fit_s": round(fit_s, 1),
                "load": round(os.getloadavg()[0], 1),
                "bw_uvp": float(bw_uvp(Y, b.barycenter_mean, b.barycenter_cov)),
                "l2_uvp_weighted": float(weighted_l2_uvp(est, b, held)["l2_uvp_weighted"]),
            }  # fmt: skip
            append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
