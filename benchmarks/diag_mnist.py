"""Under-trained or biased? One neural fit on flat MNIST 0/1 with a score curve (issue 20).

One fit of a neural estimator with its defaults plus ``--set name=value`` overrides on the
task of :mod:`benchmarks.bench_mnist` (3,000 flat 16 x 16 0s and 1s, weights (1/2, 1/2));
every ``--every`` iterations (WIN: outer iterations of Algorithm 1) the Frechet distance and
the energy distance of ``sample(--n-score)`` against the exact discrete barycenter and the
share of its pixels outside [0, 1], so the curve says under-trained (still falling) or
biased (flat). The networks the curve scores are the iterates (ICNN's and WIN's averages
are applied at the end of fit only); the last point is the fitted estimator. One JSON line
per fit is appended to ``--out``.

    python -m benchmarks.diag_mnist --method win --max-time 300 --every 10
    python -m benchmarks.diag_mnist --method energy --max-iter 400 --set epsilon=0.001
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from skorch.callbacks import Callback

import skbary
from benchmarks.bench_mnist import NEURAL
from benchmarks.common import append_jsonl
from benchmarks.common import settings as parse_settings
from skbary.datasets import load_mnist_classifier, make_mnist_barycenter
from skbary.metrics import energy_distance, frechet_distance


def scores(Y, bench, clf) -> dict:
    """Frechet and energy distances of rows ``Y`` to the reference, share outside [0, 1]."""
    Y = np.asarray(Y, dtype=np.float64)
    Z = bench.barycenter_samples
    return {
        "frechet": round(float(frechet_distance(Y, Z, features=clf.features)), 3),
        "energy": round(float(energy_distance(Y, Z)), 5),
        "outside": round(float(np.mean((Y < -0.05) | (Y > 1.05))), 4),
    }


class Curve(Callback):
    """Scores of ``sample(n)`` every ``every`` iterations of the first phase."""

    def __init__(self, bench, clf, every: int, n: int) -> None:
        self.bench, self.clf, self.every, self.n, self.points = bench, clf, every, n, []

    def on_epoch_end(self, net, **kwargs) -> None:
        row = net.history[-1]
        if row.get("phase", "barycenter") not in ("barycenter", "train", None):
            return
        i = len(net.history)
        if i % self.every:
            return
        Y = net.sample(self.n, random_state=0)
        point = {"iter": i, "time": round(float(row["time"]), 1)}
        point.update(scores(Y, self.bench, self.clf))
        self.points.append(point)
        print(point, flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", required=True, choices=[m.lower() for m in NEURAL])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iter", type=int, default=None)
    p.add_argument("--max-time", type=float, default=None)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--n-score", type=int, default=1000)
    p.add_argument("--set", action="append", default=[], help="estimator setting name=value")
    p.add_argument("--tag", default="")
    p.add_argument("--out", default="/tmp/diag_mnist.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    bench = make_mnist_barycenter(n_samples=3000, n_reference=2500, random_state=0)
    clf = load_mnist_classifier(16)
    name = {m.lower(): cls for m, cls in NEURAL.items()}[args.method]
    settings = parse_settings(args.set)
    curve = Curve(bench, clf, args.every, args.n_score)
    est = getattr(skbary, name)(
        max_iter=args.max_iter, max_time=args.max_time, random_state=args.seed,
        callbacks=[curve], **settings,
    )  # fmt: skip
    t0 = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    fit_s = time.perf_counter() - t0
    final = scores(est.sample(2500, random_state=0), bench, clf)
    row = {
        "tag": args.tag, "method": args.method, "seed": args.seed, "settings": settings,
        "max_iter": args.max_iter, "max_time": args.max_time,
        "n_iter": getattr(est, "n_iter_", None), "fit_s": round(fit_s, 1),
        "load": round(os.getloadavg()[0], 1), **final, "curve": curve.points,
    }  # fmt: skip
    append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
