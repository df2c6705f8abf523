"""ICNN's generator along one long location-scatter fit: BW2-UVP of its samples every 1,000
iterations (does it converge or swing?).

bench_icnn's nwb1 task (K = 4, weights (0.1, 0.2, 0.3, 0.4), Gaussian base, 20,000 rows per
input, seed 0) at a fixed number of iterations, one torch thread; BW2-UVP of 20,000 draws
along the fit and of 100,000 at its end. One JSON line is appended to ``--out``.

    python -m benchmarks.diag_icnn_generator --d 2 --max-iter 17400
"""

from __future__ import annotations

import argparse
import os

import torch
from skorch.callbacks import Callback

from benchmarks.bench_icnn import nwb1_task
from benchmarks.common import append_jsonl
from skbary import ICNNBarycenter
from skbary.metrics import bw_uvp


class GeneratorCurve(Callback):
    """BW2-UVP of 20,000 generator draws every ``every`` iterations."""

    def __init__(self, bench, every: int) -> None:
        self.bench, self.every, self.points = bench, every, []

    def on_epoch_end(self, net, **kwargs) -> None:
        i = len(net.history)
        if i % self.every == 0:
            Y = net.sample(20_000, random_state=1)
            b = self.bench
            self.points.append((i, round(bw_uvp(Y, b.barycenter_mean, b.barycenter_cov), 4)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, default=2)
    p.add_argument("--max-iter", type=int, default=17_400)
    p.add_argument("--every", type=int, default=1000)
    p.add_argument("--out", default="benchmarks/results/icnn_generator_curve.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    b = nwb1_task(args.d, 0)
    curve = GeneratorCurve(b, args.every)
    est = ICNNBarycenter(max_iter=args.max_iter, random_state=0, callbacks=[curve])
    est.fit(b.marginals, b.weights)
    Y = est.sample(100_000, random_state=1)
    row = {
        "D": args.d, "n_iter": args.max_iter,
        "bw_uvp_end": bw_uvp(Y, b.barycenter_mean, b.barycenter_cov),
        "curve": curve.points, "load": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    print(row)
    append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
