"""Every estimator on Ave, digits! (small inputs: about 449 rows per input, 64 pixels).

Ave, digits! (``skbary.datasets.load_ave_digits(seed)``, K = 3, weights (1/4, 1/2, 1/4)):
three inputs pushed from disjoint parts of scikit-learn's 8x8 digits by congruent
potentials, so the barycenter (the digits) and the maps are known. Each instance ``seed``
is its own dequantisation, potentials and split, and seeds the estimator too.

Scores (``skbary.metrics.score_benchmark``): BW2-UVP of ``sample(100000)`` against the
digits' mean and covariance, weighted L2-UVP of ``transform`` on the held-out rows of every
input (rows no estimator saw), both in % of the barycenter's variance.

Settings (``--settings``): ``gaussian``, ``free-support`` (1,000 support points, every row),
and the neural ``win``, ``not``, ``icnn``, ``generative``, ``energy`` with their defaults and
``max_time=--max-time`` (``early_stopping="auto"``: on here for WIN only), each also as
``<name>-es`` (``early_stopping=True``: a tenth of the rows held out, the best held-out
iterate kept) and ``<name>-no-es`` (``early_stopping=False``: every row trains); WIN also as
``win-identity`` and ``win-identity-no-es`` (``init="identity"``: the paper's start, the
default before the Gaussian start of small inputs).

One line of JSON per fit goes to ``--log`` (default ``benchmarks/results/ave_digits.jsonl``);
``--summary`` prints the table of mean, min and max over the seeds of every setting in it::

    python -m benchmarks.bench_ave_digits --settings win win-no-es --seeds 0 1 2 --max-time 120
    python -m benchmarks.bench_ave_digits --settings win win-no-es --max-time none \
        --win-max-iter 300 --win-transform-max-iter 1000
    python -m benchmarks.bench_ave_digits --summary
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import torch

from benchmarks.common import command, machine

LOG = os.path.join(os.path.dirname(__file__), "results", "ave_digits.jsonl")
# <name>-<variant>: the estimator's parameters that the variant sets (init: WIN's only)
VARIANTS = {
    "es": {"early_stopping": True},
    "no-es": {"early_stopping": False},
    "identity": {"init": "identity"},
    "identity-no-es": {"init": "identity", "early_stopping": False},
}


def make(setting: str, seed: int, max_time: float | None, counts: dict):
    import skbary

    neural = {"max_time": max_time, "random_state": seed, **counts}
    if setting == "gaussian":
        return skbary.GaussianBarycenter(random_state=seed)
    if setting == "free-support":
        return skbary.FreeSupportBarycenter(
            n_support=1000, max_samples_per_input=None, random_state=seed
        )
    name, _, variant = setting.partition("-")
    cls = {
        "win": skbary.WINBarycenter,
        "not": skbary.NOTBarycenter,
        "icnn": skbary.ICNNBarycenter,
        "generative": skbary.GenerativeBarycenter,
        "energy": skbary.EnergyBarycenter,
    }[name]
    if variant:
        neural.update(VARIANTS[variant])
    return cls(**neural)


def run(setting: str, seed: int, max_time: float | None, counts: dict) -> dict:
    from skbary.datasets import load_ave_digits
    from skbary.metrics import score_benchmark

    bench = load_ave_digits(seed)
    est = make(setting, seed, max_time, counts if setting.startswith("win") else {})
    start = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    wall = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # free support's discrete sample
        s = score_benchmark(est, bench, energy_samples=0)
    return {
        "setting": setting,
        "seed": seed,
        "max_time": max_time,
        "counts": counts if setting.startswith("win") else {},
        "bw_uvp": s["bw_uvp"],
        "l2_uvp": s["l2_uvp_weighted"],
        "fit_s": wall,
        "n_iter": getattr(est, "n_iter_", None),
        "n_transform_iter": getattr(est, "n_transform_iter_", None),
        "stop_reason": getattr(est, "stop_reason_", None),
        "machine": machine(),
        "command": command("benchmarks.bench_ave_digits"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def summary(log: str) -> None:
    rows = [json.loads(line) for line in open(log) if line.strip()]
    by: dict[tuple, list[dict]] = {}
    for r in rows:
        counts = ",".join(f"{k}={v}" for k, v in r.get("counts", {}).items())
        by.setdefault(
            (r["setting"] + (f" ({counts})" if counts else ""), r["max_time"]), []
        ).append(r)
    print(
        "| setting | max_time s | seeds | BW2-UVP % mean (min-max) | L2-UVP % mean (min-max) "
        "| fit s | main-phase iterations | stop reasons |"
    )
    print("|---|---|---|---|---|---|---|---|")

    def cell(values):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        return f"{np.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    for (setting, max_time), rs in by.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        its = "/".join(str(r["n_iter"]) for r in rs) if rs[0]["n_iter"] is not None else "-"
        reasons = sorted(
            {",".join(f"{k}:{v}" for k, v in (r["stop_reason"] or {}).items()) for r in rs} - {""}
        )
        print(
            f"| {setting} | {'none' if max_time is None else f'{max_time:g}'} "
            f"| {','.join(str(r['seed']) for r in rs)} "
            f"| {cell([r['bw_uvp'] for r in rs])} | {cell([r['l2_uvp'] for r in rs])} "
            f"| {np.mean([r['fit_s'] for r in rs]):.0f} | {its} | {'; '.join(reasons) or '-'} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--settings", nargs="+", default=["gaussian", "win", "win-no-es"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--max-time", default="120", help="seconds, or 'none'")
    p.add_argument("--win-max-iter", type=int, default=None, help="WIN's max_iter")
    p.add_argument("--win-transform-max-iter", type=int, default=None)
    p.add_argument("--log", default=LOG)
    p.add_argument("--summary", action="store_true")
    args = p.parse_args()
    if args.summary:
        summary(args.log)
        return
    torch.set_num_threads(1)
    max_time = None if args.max_time.lower() == "none" else float(args.max_time)
    counts = {
        k: v
        for k, v in (
            ("max_iter", args.win_max_iter),
            ("transform_max_iter", args.win_transform_max_iter),
        )
        if v is not None
    }
    for seed in args.seeds:
        for setting in args.settings:
            row = run(setting, seed, max_time, counts)
            print(json.dumps(row), flush=True)
            with open(args.log, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
