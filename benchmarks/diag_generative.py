"""Where the error of GenerativeBarycenter's generator sits on product measures (issue 15).

The generator alone (``learn_transform=False``) at a fixed number of iterations, one torch
thread, defaults plus ``--set name=value``; marginal W2 of ``sample(100000)`` in % of the
barycenter's total variance, in total and per coordinate. ``--k 1`` fits a single input
(no barycenter: the truth is the input itself), which separates the generative fit from
the barycenter. ``--sinkhorn-scaling`` changes GeomLoss's epsilon-scaling ratio (0.5 in
the library; diagnostic only, not an estimator parameter). One JSON line per fit is
appended to ``--out``.

    python -m benchmarks.diag_generative --family a --seed 0 --k 1 --max-iter 2000
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import torch

from benchmarks.common import append_jsonl, settings
from skbary import GenerativeBarycenter
from skbary.datasets import make_product_measures
from skbary.metrics import marginal_w2


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=("a", "b"), default="a")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--k", type=int, default=3, help="inputs (3: weights 0.2, 0.3, 0.5)")
    p.add_argument("--n-rows", type=int, default=50_000)
    p.add_argument("--max-iter", type=int, default=2000)
    p.add_argument("--set", action="append", default=[], help="estimator setting name=value")
    p.add_argument("--sinkhorn-scaling", type=float, default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--out", default="benchmarks/results/nongaussian_diag_generator.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.sinkhorn_scaling is not None:
        from skbary import divergences
        from skbary.methods import generative

        generative.entropic_ot = functools.partial(
            divergences.entropic_ot, scaling=args.sinkhorn_scaling
        )
    weights = (0.2, 0.3, 0.5) if args.k == 3 else (1.0 / args.k,) * args.k
    bench = make_product_measures(
        args.k, args.d, args.n_rows, weights=weights, rotation=args.family == "b",
        random_state=args.seed,
    )  # fmt: skip
    est = GenerativeBarycenter(max_iter=args.max_iter, random_state=args.seed)
    est.set_params(learn_transform=False, **settings(args.set))
    t0 = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    fit_s = time.perf_counter() - t0
    m = marginal_w2(est.sample(100_000, random_state=args.seed), bench)
    floor = marginal_w2(bench.sample_barycenter(100_000, args.seed + 2000), bench)
    row = {
        "tag": args.tag, "family": args.family, "seed": args.seed, "k": args.k, "d": args.d,
        "settings": settings(args.set), "sinkhorn_scaling": args.sinkhorn_scaling,
        "n_iter": int(est.n_iter_), "fit_s": round(fit_s, 1),
        "load": round(os.getloadavg()[0], 1),
        "marginal_w2": round(m["marginal_w2"], 4),
        "per_coordinate": [round(x, 4) for x in m["marginal_w2_per_coordinate"]],
        "truth_floor": round(floor["marginal_w2"], 4),
        "laws": bench.law_names.T.tolist() if args.family == "a" else None,
    }  # fmt: skip
    append_jsonl(args.out, row)
    return row


if __name__ == "__main__":
    main()
