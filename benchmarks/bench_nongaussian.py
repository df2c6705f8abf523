"""Non-Gaussian inputs with an exact truth (issue 15): method x family x D.

Families: ``a`` product measures (:func:`skbary.datasets.make_product_measures`, skewed,
heavy-tailed, bounded and bimodal 1-D laws), ``b`` the same under one shared random
rotation. K = 3, weights (0.2, 0.3, 0.5). Every estimator is fitted with its defaults plus
``max_time`` on one CPU thread; the table reports the weighted L2-UVP of ``transform`` on
10,000 fresh rows per input (for Energy, whose ``transform`` is one draw of its entropic
plan, also that of its map, the plans' mean ``barycentric_projection``, without its
Monte Carlo noise: ``l2_uvp_projection``) and the marginal W2 of ``sample(n_sample)``
(:func:`skbary.metrics.marginal_w2`), both in % of the barycenter's total variance, with the
fit's wall time, its iterations and the load average at the end of the fit.

Full protocol of the issue: ``--n-rows 50000 --max-time 240 --n-sample 100000``; ``--quick``
runs 5,000 rows, 20 s, one seed, D=8. ``--set name=value`` (repeatable) changes a setting of
the neural estimators, e.g. equal iterations with ``--set max_iter=1500``; ``--tag`` names
the variant in the rows.

    python -m benchmarks.bench_nongaussian --quick
    python -m benchmarks.bench_nongaussian --methods not icnn gaussian free_support \
        --families a b --dims 8 --seeds 0 1 --max-time 240 --n-rows 50000
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    command,
    cross_squared_errors,
    independent_projections,
    machine,
    settings,
)
from skbary import (
    DiscreteSampleWarning,
    EnergyBarycenter,
    FreeSupportBarycenter,
    GaussianBarycenter,
    GenerativeBarycenter,
    ICNNBarycenter,
    NOTBarycenter,
    WINBarycenter,
)
from skbary.datasets import make_product_measures
from skbary.metrics import marginal_w2, weighted_l2_uvp

RESULTS = Path(__file__).parent / "results"
WEIGHTS = (0.2, 0.3, 0.5)
METHODS = {
    "gaussian": lambda t, s: GaussianBarycenter(),
    "free_support": lambda t, s: FreeSupportBarycenter(random_state=s),
    "not": lambda t, s: NOTBarycenter(max_time=t, random_state=s),
    "not_plain": lambda t, s: NOTBarycenter(
        max_time=t, random_state=s, map__quantile_features=False
    ),  # the default before quantile_features="auto"
    "not_qf": lambda t, s: NOTBarycenter(max_time=t, random_state=s, map__quantile_features=True),
    "icnn": lambda t, s: ICNNBarycenter(max_time=t, random_state=s),
    "icnn_plain": lambda t, s: ICNNBarycenter(
        max_time=t, random_state=s, f__quantile_features=False, g__quantile_features=False
    ),  # the default before the potentials' quantile terms
    "win": lambda t, s: WINBarycenter(max_time=t, random_state=s),
    "win_plain": lambda t, s: WINBarycenter(
        max_time=t, random_state=s, map__quantile_features=False, ema_decay=0.0
    ),  # the default before quantile features and the EMA of Algorithm 2's maps
    "generative": lambda t, s: GenerativeBarycenter(max_time=t, random_state=s),
    "energy": lambda t, s: EnergyBarycenter(max_time=t, random_state=s),
    "energy_plain": lambda t, s: EnergyBarycenter(
        max_time=t, random_state=s, ema_decay=0.0, langevin_step_size=0.2
    ),  # the default before the averaged potentials and the quadratic cost's step 0.4
}


def _iterations(est) -> int | None:
    for name in ("n_iter_", "n_iter"):
        v = getattr(est, name, None)
        if v is not None:
            return int(np.sum(v)) if np.ndim(v) else int(v)
    return None


def projection_l2_uvp(est, bench, fresh, n_draws: int, seed: int) -> float:
    """Weighted L2-UVP (%) of EgBary's ``barycentric_projection`` (the paper's map, the mean
    of its plan), without the Monte Carlo noise of its ``n_draws``-draw means
    (:func:`benchmarks.common.cross_squared_errors`)."""
    tv, total = np.trace(bench.barycenter_cov), 0.0
    for k, (a, X) in enumerate(zip(bench.weights, fresh)):
        P1, P2 = independent_projections(est, X, k, n_draws, seed)
        err = cross_squared_errors(P1, P2, bench.map_to_barycenter(X, k))
        total += a * 100.0 * err.sum(1).mean() / tv
    return float(total)


def run_one(method: str, family: str, d: int, seed: int, args) -> dict:
    bench = make_product_measures(
        3, d, args.n_rows, weights=WEIGHTS, rotation=family == "b", random_state=seed
    )
    est = METHODS[method](args.max_time, seed)
    if args.set and method not in ("gaussian", "free_support"):
        est.set_params(**settings(args.set))
    t0 = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    fit_s = time.perf_counter() - t0
    load = os.getloadavg()[0]
    fresh = bench.sample_marginals(10_000, random_state=seed + 1000)
    l2 = weighted_l2_uvp(est, bench, fresh)["l2_uvp_weighted"]
    Y = est.sample(args.n_sample, random_state=seed)
    mw2 = marginal_w2(Y, bench)["marginal_w2"]
    floor = marginal_w2(bench.sample_barycenter(args.n_sample, seed + 2000), bench)
    extra = {}
    if isinstance(est, EnergyBarycenter):  # its map: the plans' means (transform: one draw)
        extra["l2_uvp_projection"] = projection_l2_uvp(est, bench, fresh, args.n_draws, seed)
    if isinstance(est, ICNNBarycenter):  # its other sampler: the maps' image of its rows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiscreteSampleWarning)
            Ym = est.sample(args.n_sample, random_state=seed, source="maps")
        extra["marginal_w2_maps"] = marginal_w2(Ym, bench)["marginal_w2"]
    return {
        "method": method + args.tag,
        **({"settings": settings(args.set)} if args.set else {}),
        "family": family,
        "d": d,
        "seed": seed,
        "n_rows": args.n_rows,
        "max_time": args.max_time,
        "fit_s": round(fit_s, 1),
        "n_iter": _iterations(est),
        **(
            {"n_transform_iter": int(est.n_transform_iter_)}
            if hasattr(est, "n_transform_iter_")
            else {}
        ),
        "load": round(load, 1),
        "l2_uvp_weighted": l2,
        "marginal_w2": mw2,
        "marginal_w2_truth_floor": floor["marginal_w2"],
        **extra,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--families", nargs="+", default=["a", "b"], choices=["a", "b"])
    p.add_argument("--dims", nargs="+", type=int, default=[8, 32])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--max-time", type=float, default=240.0)
    p.add_argument("--n-rows", type=int, default=50_000)
    p.add_argument("--n-sample", type=int, default=100_000)
    p.add_argument(
        "--n-draws", type=int, default=4,
        help="draws of each of the two barycentric projections that score Energy's map",
    )  # fmt: skip
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="nongaussian")
    p.add_argument(
        "--set", action="append", default=[],
        help="name=value: a setting of the neural estimators (e.g. max_iter=1500)",
    )  # fmt: skip
    p.add_argument("--tag", default="", help="appended to the method's name in the rows")
    args = p.parse_args(argv)
    if args.quick:
        args.dims, args.seeds, args.max_time, args.n_rows = [8], [0], 20.0, 5000
        args.n_sample = 20_000
    torch.set_num_threads(1)
    rows = []
    head = "| method | family | D | seed | max_time | fit s | iters | load | L2-UVP % | marg W2 % |"
    print(head)
    for d in args.dims:
        for fam in args.families:
            for seed in args.seeds:
                for m in args.methods:
                    r = run_one(m, fam, d, seed, args)
                    rows.append(r)
                    print(
                        f"| {r['method']} | {fam} | {d} | {seed} | {r['max_time']:g} | "
                        f"{r['fit_s']} | "
                        f"{r['n_iter']} | {r['load']} | {r['l2_uvp_weighted']:.3f} | "
                        f"{r['marginal_w2']:.3f} (truth {r['marginal_w2_truth_floor']:.3f})"
                        + (
                            f", projection L2-UVP {r['l2_uvp_projection']:.3f}"
                            if "l2_uvp_projection" in r
                            else ""
                        )
                        + (
                            f", maps' image {r['marginal_w2_maps']:.3f}"
                            if "marginal_w2_maps" in r
                            else ""
                        )
                        + " |",
                        flush=True,
                    )
    RESULTS.mkdir(exist_ok=True)
    out = {
        "command": command("benchmarks.bench_nongaussian", argv),
        "machine": machine(),
        "rows": rows,
    }
    (RESULTS / f"{args.out}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
