"""WIN's Algorithm-2 solver towards the exact barycenter (issue 15 diagnostic).

Trains WIN's default Algorithm-2 maps and potentials (:func:`skbary.methods.win.ot_solver`'s
networks, the max-min solver) from every input of a product-measure instance to rows of the
*true* barycenter instead of a learned G#S, so that the maps' error is the solver's alone;
compared with ``diag_nongaussian --method win`` (the same solver towards G#S) it separates
the generator's share of WIN's ``transform`` error from the solver's. Standardised
coordinates (the truth's mean, one pooled scale), Adam, batch 256, 3 map steps per
potential step; the weighted L2-UVP of the (averaged) maps on 5,000 fresh rows per input
every 250 iterations. One JSON line per run is appended to ``--out``.

    python -m benchmarks.diag_win_oracle --family a --seed 0 --n-iter 3000
    python -m benchmarks.diag_win_oracle --quantile-features False --ema 0
    python -m benchmarks.diag_win_oracle --potential-activation celu --potential-hidden 128 128
    python -m benchmarks.diag_win_oracle --potential-activation celu --potential-hidden 128 128 \
        --quadratic      # the learned quadratic form of WIN's Algorithm 2 potentials
    python -m benchmarks.diag_win_oracle --map-kind not --lr 3e-3 --lr-decay 0.1

The networks are built here from the flags (``win.default_potentials`` with the flags'
settings): the committed defaults of Algorithm 2 are ``--potential-activation celu
--potential-hidden 128 128 --quadratic``.
"""

from __future__ import annotations

import argparse
import ast
import os
import time

import numpy as np
import torch

from benchmarks.common import append_jsonl
from skbary.datasets import make_product_measures
from skbary.methods import win
from skbary.metrics import weighted_l2_uvp
from skbary.nn.maps import BatchedMap, set_quantiles_
from skbary.nn.potentials import WithQuadratic
from skbary.solvers import MaxMinOTSolver
from skbary.training.optim import ParameterAverage

WEIGHTS = (0.2, 0.3, 0.5)


class _Maps:
    """``transform(X, k)`` of the solver's (averaged) maps in data coordinates."""

    def __init__(self, solver, average, center, scale):
        self.solver, self.average, self.center, self.scale = solver, average, center, scale

    @torch.no_grad()
    def transform(self, X, k):
        params = list(self.solver.map.parameters())
        kept = [p.detach().clone() for p in params]
        if self.average is not None:
            for p, a in zip(params, self.average.average):
                p.copy_(a)
        x = torch.as_tensor((X - self.center) / self.scale, dtype=torch.float32)
        y = self.solver.transport_one(x, k).numpy() * self.scale + self.center
        for p, s in zip(params, kept):
            p.copy_(s)
        return y


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="a", choices=["a", "b"])
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-rows", type=int, default=5000)
    p.add_argument("--n-iter", type=int, default=3000)
    p.add_argument("--quantile-features", default="auto")
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--map-hidden", nargs="+", type=int, default=None)
    p.add_argument("--potential-hidden", nargs="+", type=int, default=None)
    p.add_argument("--potential-activation", default="relu")
    p.add_argument("--quadratic", action="store_true", help="a quadratic part in v_k")
    p.add_argument("--lr-decay", type=float, default=1.0, help="linear decay to lr * this")
    p.add_argument(
        "--map-kind", default="win", choices=["win", "not"],
        help="win: WIN's default maps; not: NOT's (affine skip, last layer at 0.1)",
    )  # fmt: skip
    p.add_argument("--out", default="/tmp/diag_win_oracle.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    K, d = 3, args.d
    bench = make_product_measures(
        K, d, args.n_rows, weights=WEIGHTS, rotation=args.family == "b", random_state=args.seed
    )
    truth = bench.sample_barycenter(50_000, args.seed + 77)
    center = truth.mean(0)
    scale = float(np.sqrt(np.trace(np.cov(truth.T)) / d))
    X = [torch.as_tensor((m - center) / scale, dtype=torch.float32) for m in bench.marginals]
    T = torch.as_tensor((truth - center) / scale, dtype=torch.float32)
    g = torch.Generator().manual_seed(args.seed)

    def draw_inputs(B: int) -> torch.Tensor:
        return torch.stack([x[torch.randint(len(x), (B,), generator=g)] for x in X])

    def draw_truth(B: int) -> torch.Tensor:
        return T[torch.randint(len(T), (B,), generator=g)].expand(K, B, d)

    qf = args.quantile_features
    qf = ast.literal_eval(qf) if qf in ("True", "False") else qf
    if args.map_kind == "not":
        maps = BatchedMap(
            K,
            d,
            d,
            tuple(args.map_hidden or (128, 128)),
            quantile_features="axes+ica" if qf == "auto" else qf,
        )
    else:
        maps = win.default_maps(K, d, quantile_auto=True)(
            hidden_layer_sizes=args.map_hidden, quantile_features=qf
        )
    potentials = win.default_potentials(K, d)(
        hidden_layer_sizes=args.potential_hidden, activation=args.potential_activation
    )
    if args.quadratic:
        potentials = WithQuadratic(potentials, K, d)
    solver = MaxMinOTSolver(K, d, map=maps, potential=potentials)
    set_quantiles_(solver.map, X)
    average = ParameterAverage(solver.map.parameters(), args.ema) if args.ema else None
    optimizers = [
        torch.optim.Adam(solver.potential.parameters(), args.lr),
        torch.optim.Adam(solver.map.parameters(), args.lr),
    ]
    step = solver.make_step(
        draw_inputs, draw_truth, batch_size=256, n_map_steps=3,
        potential_optimizer=optimizers[0], map_optimizer=optimizers[1], average=average,
    )  # fmt: skip
    fresh = bench.sample_marginals(5000, random_state=args.seed + 1000)
    scored = _Maps(solver, average, center, scale)
    curve, t0 = [], time.perf_counter()
    for i in range(1, args.n_iter + 1):
        step(i)
        for opt in optimizers:  # linear decay from lr to lr * lr_decay
            for group in opt.param_groups:
                group["lr"] = args.lr * (1 - (1 - args.lr_decay) * i / args.n_iter)
        if i % 250 == 0:
            curve.append(round(weighted_l2_uvp(scored, bench, fresh)["l2_uvp_weighted"], 3))
    row = {
        "family": args.family, "d": d, "seed": args.seed, "n_rows": args.n_rows,
        "n_iter": args.n_iter, "quantile_features": qf, "ema": args.ema, "lr": args.lr,
        "lr_decay": args.lr_decay, "quadratic": args.quadratic,
        "map_hidden": args.map_hidden, "potential_hidden": args.potential_hidden,
        "potential_activation": args.potential_activation, "map_kind": args.map_kind,
        "s": round(time.perf_counter() - t0, 1), "load": round(os.getloadavg()[0], 1),
        "l2_every_250": curve,
    }  # fmt: skip
    append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
