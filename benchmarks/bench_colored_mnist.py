"""A fit on 3 x 32 x 32 coloured MNIST with a convolutional map, and its peak memory (issue 20).

The NOT paper's shape-colour inputs at their resolution: grey 2s and coloured 3s
(:func:`skbary.datasets.load_colored_mnist`, 32 x 32, 3,072 columns), one
:class:`~skbary.NOTBarycenter` fit with the convolutional networks of
:func:`skbary.nn.image_networks` (a UNet map, a ResNet potential) under a time budget, in a
process of its own; reports the process's peak resident memory against the architecture
issue's 3 GB bound (``benchmarks/results/memory.md``), the time per iteration and the
samples' pixel range. The quadratic cost: this measures that the fit runs in bounded memory,
not the shape-colour barycenter (which needs a colour-preserving cost).

    python -m benchmarks.bench_colored_mnist [--budget 60] [--rows 1000] [--channels 8]

Needs ``skbary[images]``. Prints one line (JSON).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch

from benchmarks.common import machine
from skbary import NOTBarycenter
from skbary.datasets import load_colored_mnist
from skbary.nn import image_networks


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    grey = load_colored_mnist(2, color="grey", image_size=32, n_per_digit=args.rows, random_state=0)
    colour = load_colored_mnist(3, image_size=32, n_per_digit=args.rows, random_state=1)
    shape = grey.image_shape
    nets = image_networks(NOTBarycenter, shape)
    est = NOTBarycenter(
        **nets,
        **{f"{role}__channels": args.channels for role in nets},
        batch_size=args.batch_size,
        max_time=args.budget,
        random_state=0,
    )
    t0 = time.perf_counter()
    est.fit([grey.data, colour.data])
    fit_s = time.perf_counter() - t0
    Y = est.sample(256, random_state=0)
    out = {
        "image_shape": shape,
        "rows_per_input": args.rows,
        "fit_s": round(fit_s, 1),
        "n_iter": est.n_iter_,
        "s_per_iter": round(fit_s / max(est.n_iter_, 1), 3),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "pixel_range": [round(float(Y.min()), 2), round(float(Y.max()), 2)],
        "finite": bool(np.isfinite(Y).all()),
        "machine": machine(),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
