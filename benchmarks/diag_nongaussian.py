"""Where the error of a neural map sits on a product-measure instance (issue 15 diagnostic).

One fit of NOT, ICNN, WIN or Energy with its defaults plus ``--set name=value`` overrides;
every ``--every`` iterations the weighted L2-UVP of the current maps (NOT, ICNN, Energy: of
the averaged networks that fit would keep; Energy's map is its barycentric projection,
scored without its Monte Carlo noise, and the row adds ``l2_transform``, that of
``transform``, one draw of the plan) on fresh rows, so the curve says under-trained (still
falling) or biased (flat); at the end the L2-UVP split by coordinate and by the input rows'
quantile band (tails against bulk) in % of the barycenter's total variance, and the marginal
W2 of ``sample``. For WIN the curve holds, in Algorithm 1 (``--max-iter`` outer iterations),
the marginal W2 of the generator's samples (``gen``) and, in Algorithm 2 (``--set
transform_max_iter=N``), the L2-UVP of the maps (``map``); with ``--max-iter`` fixed the
generator is the same, bit for bit, whatever the ``map__*`` settings. One JSON line per fit
is appended to ``--out``.

    python -m benchmarks.diag_nongaussian --method not --family a --seed 0 --max-iter 1500
    python -m benchmarks.diag_nongaussian --method not --set lr_decay=0.1 --set map__activation=celu
    python -m benchmarks.diag_nongaussian --method win --max-iter 800 --set transform_max_iter=3000
    python -m benchmarks.diag_nongaussian --method energy --max-iter 2000 --every 500
"""

from __future__ import annotations

import argparse
import os
import time

import joblib
import numpy as np
import torch
from skorch.callbacks import Callback

from benchmarks.common import append_jsonl, cross_squared_errors, independent_projections
from benchmarks.common import settings as parse_settings
from skbary import (
    EnergyBarycenter,
    GaussianBarycenter,
    ICNNBarycenter,
    NOTBarycenter,
    WINBarycenter,
)
from skbary.datasets import make_product_measures
from skbary.metrics import marginal_w2, weighted_l2_uvp

BANDS = (0.0, 0.01, 0.05, 0.25, 0.75, 0.95, 0.99, 1.0)
WEIGHTS = (0.2, 0.3, 0.5)


#: Draws per row of each of the two independent barycentric projections of EgBary.
PROJECTION_DRAWS = 4


def squared_errors(est, X: np.ndarray, k: int, bench) -> np.ndarray:
    """Squared error of the map per row and axis-frame coordinate, (n, d).

    EgBary (its map is the barycentric projection, the mean of its plan): the products of
    the errors of two independent Monte Carlo projections
    (:func:`benchmarks.common.cross_squared_errors`), whose expectation is the exact
    projection's squared error (no Monte Carlo variance). Other methods:
    ``(transform - T)^2``.
    """
    T = bench.to_axes(bench.map_to_barycenter(X, k))
    if isinstance(est, EnergyBarycenter):
        P1, P2 = map(bench.to_axes, independent_projections(est, X, k, PROJECTION_DRAWS))
        return cross_squared_errors(P1, P2, T)
    return (bench.to_axes(est.transform(X, k)) - T) ** 2


def l2_parts(est, bench, fresh) -> tuple[np.ndarray, np.ndarray]:
    """Weighted squared error per (axis-frame) coordinate, per quantile band of the rows in
    that coordinate and per (input, coordinate), in % of the barycenter's total variance."""
    tv = np.trace(bench.barycenter_cov)
    coord = np.zeros(bench.n_features)
    band = np.zeros(len(BANDS) - 1)
    per_input = np.zeros((bench.n_marginals, bench.n_features))
    for k, (a, X) in enumerate(zip(bench.weights, fresh)):
        err = squared_errors(est, X, k, bench)
        coord += a * 100 * err.mean(0) / tv
        per_input[k] = a * 100 * err.mean(0) / tv
        Z = bench.to_axes(X)
        u = np.argsort(np.argsort(Z, axis=0), axis=0) / len(Z)
        for b in range(len(BANDS) - 1):
            inside = (u >= BANDS[b]) & (u < BANDS[b + 1])
            band[b] += a * 100 * (err * inside).sum() / len(Z) / tv
    return coord, band, per_input


class Curve(Callback):
    """L2-UVP of the current (NOT, ICNN: averaged) maps every ``every`` iterations."""

    def __init__(self, bench, fresh, every: int) -> None:
        self.bench, self.fresh, self.every, self.points = bench, fresh, every, []

    def on_epoch_end(self, net, **kwargs) -> None:
        if isinstance(net, WINBarycenter):
            return self._win(net)
        i = len(net.history)
        if i % self.every:
            return
        ema = getattr(net, "_ema", None)
        saved = None
        if ema is not None:  # the averaged networks: NOT's maps, ICNN's potentials g
            name = next(n for n in ("maps_", "potentials_", "g_") if hasattr(net, n))
            params = list(getattr(net, name).parameters())
            saved = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, e in zip(params, ema):
                    p.copy_(e)
        try:
            coord, _, _ = l2_parts(net, self.bench, self.fresh)
        finally:
            if saved is not None:
                with torch.no_grad():
                    for p, s in zip(params, saved):
                        p.copy_(s)
        self.points.append((i, round(float(net.history[-1]["time"]), 1), round(coord.sum(), 3)))

    def _win(self, net) -> None:
        # Algorithm 1: marginal W2 of G's samples; Algorithm 2: L2-UVP of the current maps
        row = net.history[-1]
        i = sum(1 for r in net.history if r.get("phase") == row["phase"])
        if i % self.every:
            return
        point = [row["phase"], i, round(float(row["time"]), 1)]
        if row["phase"] == "barycenter":
            Y = net.sample(20000, random_state=0)
            point.append(round(marginal_w2(Y, self.bench)["marginal_w2"], 3))
        else:  # the averaged maps that fit would keep
            ema, params = getattr(net, "_ema", None), list(net.maps_.map.parameters())
            kept = [p.detach().clone() for p in params]
            saved, net.n_transform_iter_ = getattr(net, "n_transform_iter_", 0), i
            try:
                with torch.no_grad():
                    for p, e in zip(params, ema or params):
                        p.copy_(e)
                coord, _, _ = l2_parts(net, self.bench, self.fresh)
            finally:
                net.n_transform_iter_ = saved
                with torch.no_grad():
                    for p, k in zip(params, kept):
                        p.copy_(k)
            point.append(round(coord.sum(), 3))
        self.points.append(point)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="not", choices=["not", "icnn", "win", "energy", "gaussian"])
    p.add_argument("--family", default="a", choices=["a", "b"])
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-rows", type=int, default=5000)
    p.add_argument("--max-iter", type=int, default=1500)
    p.add_argument("--max-time", type=float, default=None)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--laws", nargs="+", default=None, help="law names (default: all)")
    p.add_argument("--set", action="append", default=[], help="estimator setting name=value")
    p.add_argument("--tag", default="")
    p.add_argument("--out", default="/tmp/diag_nongaussian.jsonl")
    p.add_argument("--save", default=None, help="pickle the fitted estimator here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    bench = make_product_measures(
        3, args.d, args.n_rows, laws=args.laws, weights=WEIGHTS,
        rotation=args.family == "b", random_state=args.seed,
    )  # fmt: skip
    fresh = bench.sample_marginals(5000, random_state=args.seed + 1000)
    settings = parse_settings(args.set)
    curve = Curve(bench, fresh, args.every)
    if args.method == "gaussian":
        est = GaussianBarycenter()
    else:
        cls = {
            "not": NOTBarycenter, "icnn": ICNNBarycenter, "win": WINBarycenter,
            "energy": EnergyBarycenter,
        }[args.method]  # fmt: skip
        est = cls(
            max_iter=args.max_iter, max_time=args.max_time, random_state=args.seed,
            callbacks=[curve], **settings,
        )  # fmt: skip
    t0 = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    fit_s = time.perf_counter() - t0
    coord, band, per_input = l2_parts(est, bench, fresh)
    mw2 = marginal_w2(est.sample(20000, random_state=args.seed), bench)["marginal_w2"]
    extra = {}
    if isinstance(est, EnergyBarycenter):  # one draw of the plan per row, as transform maps
        extra["l2_transform"] = round(weighted_l2_uvp(est, bench, fresh)["l2_uvp_weighted"], 3)
    row = {
        "tag": args.tag, "method": args.method, "family": args.family, "d": args.d,
        "seed": args.seed, "n_rows": args.n_rows, "settings": settings,
        "n_iter": getattr(est, "n_iter_", None), "fit_s": round(fit_s, 1),
        "n_transform_iter": getattr(est, "n_transform_iter_", None),
        "load": round(os.getloadavg()[0], 1), "l2": round(coord.sum(), 3),
        "marg_w2": round(mw2, 3), "coord": np.round(coord, 3).tolist(),
        "band": np.round(band, 3).tolist(),
        "per_input": np.round(per_input, 3).tolist(), "curve": curve.points,
        "laws": bench.law_names.tolist(), **extra,
    }  # fmt: skip
    if args.save:
        joblib.dump(est, args.save)
    append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
