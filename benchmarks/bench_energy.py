"""EnergyBarycenter (EgBary) on the tasks of its paper (Kolesov, Mokrov et al., NeurIPS 2024).

Parts (each writes ``benchmarks/results/energy_<part>.json``; every run re-renders
``benchmarks/results/energy.md`` from all the JSON files present):

* ``scatter`` -- location-scatter, K = 3, weights (0.25, 0.25, 0.5), Gaussian base,
  ``EnergyBarycenter(epsilon=0.01, max_time=BUDGET, random_state=0)`` with the defaults:
  weighted L2-UVP of ``barycentric_projection`` on fresh rows of every input and BW2-UVP of
  ``sample(100000)`` (the paper's appendix C.4 / NOT paper Table 3 row). The quadratic cost
  is fitted in standard units (``standardize="auto"``, epsilon rescaled; results written
  before that redesign were not); rows record ``standardized``.
* ``twister`` -- the 2-D Twister with the cost ``1/2 |u(x) - u(y)|^2``: BW2-UVP of
  ``u(transform(X_k, k))`` against N(0, I) for every input (their section 5.1).
* ``epsilon`` -- how the L2-UVP grows with epsilon (their appendix C.4 table: 1e-2 and 1).
* ``timing`` -- inference time per 1,000 mapped points, EgBary (Langevin chains) next to
  NOTBarycenter (one network pass): the trade-off of the NOT paper's Table 5.

Run under the shared lock (timings are only honest with the machine to ourselves)::

    flock /tmp/skbary-heavy.lock .venv/bin/python -m benchmarks.bench_energy \
        --part scatter twister --budget 600
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import command, machine
from skbary import EnergyBarycenter
from skbary.datasets import make_location_scatter, make_twister, twister_cost, twister_u
from skbary.metrics import bw_uvp, l2_uvp

RESULTS = Path(__file__).parent / "results"
WEIGHTS = [0.25, 0.25, 0.5]
PAPER_C4 = {  # EgBary paper, appendix C.4: weighted L2-UVP (%) of barycentric projections
    1.0: {2: 1.12, 4: 1.6, 8: 1.85, 16: 1.32, 64: 1.83},
    0.01: {2: 0.02, 4: 0.05, 8: 0.06, 16: 0.09, 64: 0.84},
}


def scatter_case(D: int, eps: float, budget: float, n_rows: int, n_eval: int, seed: int) -> dict:
    b = make_location_scatter(3, D, n_rows, weights=WEIGHTS, random_state=seed)
    est = EnergyBarycenter(epsilon=eps, max_time=budget, random_state=seed)
    t0 = time.perf_counter()
    est.fit(b.marginals, b.weights)
    fit_s = time.perf_counter() - t0
    fresh = b.sample_marginals(n_eval, random_state=seed + 1)
    t0 = time.perf_counter()
    uvps = [
        l2_uvp(
            est.barycentric_projection(X, k, n_draws=32),
            b.map_to_barycenter(X, k),
            b.barycenter_cov,
        )
        for k, X in enumerate(fresh)
    ]
    proj_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    Y = est.sample(100_000)
    sample_s = time.perf_counter() - t0
    return {
        "D": D,
        "epsilon": eps,
        "budget_s": budget,
        "fit_s": fit_s,
        "n_iter": est.n_iter_,
        "it_per_s": est.n_iter_ / fit_s,
        "l2_uvp": uvps,
        "weighted_l2_uvp": float(np.dot(WEIGHTS, uvps)),
        "bw_uvp_sample_1e5": bw_uvp(Y, b.barycenter_mean, b.barycenter_cov),
        "projection_s": proj_s,
        "projection_rows": 3 * n_eval,
        "sample_1e5_s": sample_s,
        "stop_reason": est.stop_reason_,
        "standardized": bool(getattr(est, "standardized_", False)),
    }


def run_scatter(args) -> list[dict]:
    return [
        scatter_case(D, 0.01, args.budget, args.rows, args.eval_rows, args.seed) for D in args.dims
    ]


def run_epsilon(args) -> list[dict]:
    return [
        scatter_case(D, eps, args.budget, args.rows, args.eval_rows, args.seed)
        for D in args.dims
        for eps in args.eps
    ]


def run_twister(args) -> list[dict]:
    b = make_twister(args.rows, random_state=args.seed)
    est = EnergyBarycenter(
        epsilon=0.01, cost=twister_cost, max_time=args.budget, random_state=args.seed
    )
    t0 = time.perf_counter()
    est.fit(b.marginals, b.weights)
    fit_s = time.perf_counter() - t0
    fresh = b.sample_marginals(args.eval_rows, random_state=args.seed + 1)
    t0 = time.perf_counter()
    bw = [
        bw_uvp(twister_u(est.transform(X, k)), np.zeros(2), np.eye(2)) for k, X in enumerate(fresh)
    ]
    tr_s = time.perf_counter() - t0
    return [
        {
            "budget_s": args.budget,
            "fit_s": fit_s,
            "n_iter": est.n_iter_,
            "it_per_s": est.n_iter_ / fit_s,
            "bw_uvp_per_input": bw,
            "transform_s": tr_s,
            "transform_rows": 3 * args.eval_rows,
        }
    ]


def _time_per_1000(fn, X, repeats: int = 3) -> float:
    fn(X[:50])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(X)
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / len(X)


def run_timing(args) -> list[dict]:
    rows = []
    for D in args.dims:
        b = make_location_scatter(3, D, args.rows, weights=WEIGHTS, random_state=args.seed)
        X = b.sample_marginals(1000, random_state=1)[0]
        ests = {"EgBary": EnergyBarycenter(epsilon=0.01, max_time=args.budget, random_state=0)}
        try:
            from skbary import NOTBarycenter

            ests["NOT"] = NOTBarycenter(max_time=args.budget, random_state=0)
        except ImportError:  # NOTBarycenter not exported yet
            pass
        for name, est in ests.items():
            est.fit(b.marginals, b.weights)
            row = {
                "D": D,
                "method": name,
                "fit_budget_s": args.budget,
                "transform_ms_per_1000": 1000
                * _time_per_1000(lambda Z, e=est: e.transform(Z, 0), X),
            }
            if name == "EgBary":
                row["inference_steps"] = est.inference_steps or est.langevin_steps
                row["projection64_ms_per_1000"] = 1000 * _time_per_1000(
                    lambda Z, e=est: e.barycentric_projection(Z, 0, n_draws=64), X, repeats=1
                )
            rows.append(row)
    return rows


PARTS = {
    "scatter": run_scatter,
    "twister": run_twister,
    "epsilon": run_epsilon,
    "timing": run_timing,
}


def render() -> str:
    out = [
        "# EnergyBarycenter (EgBary) benchmarks",
        "",
        "Generated by `benchmarks/bench_energy.py` from the JSON files next to this one.",
        "All metrics in percent (lower is better). Fits use the defaults plus the arguments",
        "shown; wall times are on the machine named in each section.",
        "",
    ]
    for part in PARTS:
        path = RESULTS / f"energy_{part}.json"
        if not path.exists():
            continue
        blob = json.loads(path.read_text())
        out += [
            f"## {part}",
            "",
            f"Machine: {blob['machine']}  ",
            f"Command: `{blob['command']}`",
            "",
        ]
        rows = blob["rows"]
        if part in ("scatter", "epsilon"):
            out += [
                "| D | eps | weighted L2-UVP | L2-UVP per input | BW2-UVP sample(1e5) | paper "
                "(C.4) | fit s | iterations | it/s | projection s (rows) | sample(1e5) s |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for r in rows:
                paper = PAPER_C4.get(r["epsilon"], {}).get(r["D"], "-")
                per = ", ".join(f"{v:.3f}" for v in r["l2_uvp"])
                out.append(
                    f"| {r['D']} | {r['epsilon']} | **{r['weighted_l2_uvp']:.3f}** | {per} | "
                    f"**{r['bw_uvp_sample_1e5']:.3f}** | {paper} | {r['fit_s']:.0f} | "
                    f"{r['n_iter']} | {r['it_per_s']:.1f} | {r['projection_s']:.1f} "
                    f"({r['projection_rows']}) | {r['sample_1e5_s']:.1f} |"
                )
        elif part == "twister":
            out += [
                "| BW2-UVP of u(transform(X_k, k)) vs N(0, I), k = 1, 2, 3 | fit s | iterations "
                "| it/s | transform s (rows) |",
                "|---|---|---|---|---|",
            ]
            for r in rows:
                bw = ", ".join(f"**{v:.2f}**" for v in r["bw_uvp_per_input"])
                out.append(
                    f"| {bw} | {r['fit_s']:.0f} | {r['n_iter']} | {r['it_per_s']:.1f} | "
                    f"{r['transform_s']:.1f} ({r['transform_rows']}) |"
                )
        elif part == "timing":
            out += [
                "| D | method | transform, ms per 1,000 points | barycentric_projection "
                "(64 draws), ms per 1,000 | Langevin steps |",
                "|---|---|---|---|---|",
            ]
            for r in rows:
                proj = r.get("projection64_ms_per_1000")
                out.append(
                    f"| {r['D']} | {r['method']} | {r['transform_ms_per_1000']:.1f} | "
                    f"{'-' if proj is None else f'{proj:.0f}'} | {r.get('inference_steps', '-')} |"
                )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", nargs="+", choices=list(PARTS), default=list(PARTS))
    p.add_argument("--budget", type=float, default=600.0, help="max_time of every fit (s)")
    p.add_argument("--dims", type=int, nargs="+", default=[2])
    p.add_argument("--eps", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--rows", type=int, default=50_000, help="training rows per input")
    p.add_argument("--eval-rows", type=int, default=1000, help="fresh rows per input")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--render-only", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    if not args.render_only:
        for part in args.part:
            rows = PARTS[part](args)
            blob = {
                "machine": machine(),
                "command": command("benchmarks.bench_energy"),
                "rows": rows,
            }
            (RESULTS / f"energy_{part}.json").write_text(json.dumps(blob, indent=1))
            print(json.dumps(blob, indent=1), flush=True)
    (RESULTS / "energy.md").write_text(render())
    print(render())


if __name__ == "__main__":
    main()
