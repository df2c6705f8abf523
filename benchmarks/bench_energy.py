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
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import command, cross_squared_errors, independent_projections, machine
from skbary import EnergyBarycenter
from skbary.bures import bures_wasserstein_squared, entropic_bures_barycenter, linear_ot_map
from skbary.datasets import make_location_scatter, make_twister, twister_cost, twister_u
from skbary.metrics import bw_uvp, l2_uvp

RESULTS = Path(__file__).parent / "results"
WEIGHTS = [0.25, 0.25, 0.5]
PAPER_C4 = {  # EgBary paper, appendix C.4: weighted L2-UVP (%) of barycentric projections
    1.0: {2: 1.12, 4: 1.6, 8: 1.85, 16: 1.32, 64: 1.83},
    0.01: {2: 0.02, 4: 0.05, 8: 0.06, 16: 0.09, 64: 0.84},
}


def _cross_uvp(P1: np.ndarray, P2: np.ndarray, T: np.ndarray, cov: np.ndarray) -> float:
    """Unbiased L2-UVP (%) of a Monte Carlo barycentric projection against the map T
    (:func:`benchmarks.common.cross_squared_errors`)."""
    return float(100.0 * np.mean(np.sum(cross_squared_errors(P1, P2, T), axis=1)) / np.trace(cov))


def scatter_case(
    D: int,
    eps: float,
    budget: float,
    n_rows: int,
    n_eval: int,
    seed: int,
    n_draws: int = 32,
    init: str = "auto",
    steps: int = 30,
) -> dict:
    """One fit on location-scatter (K = 3, weights 1/4, 1/4, 1/2) and its scores.

    L2-UVP of ``barycentric_projection`` against the unregularised OT maps (the paper's
    appendix C.4 metric; ``weighted_l2_uvp``, Monte Carlo noise removed by
    :func:`_cross_uvp`, and ``weighted_l2_uvp_raw``, the plain figure of a 2 n-draw mean),
    against the exact entropic projections (``weighted_l2_uvp_vs_eot``: the method's own
    error) and the exact entropic projections' own L2-UVP (``weighted_eot_floor``, what a
    perfect EgBary scores), from :func:`skbary.bures.entropic_bures_barycenter`.
    """
    b = make_location_scatter(3, D, n_rows, weights=WEIGHTS, random_state=seed)
    S_eps, M = entropic_bures_barycenter(b.marginal_covs, b.weights, eps)
    est = EnergyBarycenter(
        epsilon=eps, max_time=budget, langevin_init=init, langevin_steps=steps, random_state=seed
    )
    t0 = time.perf_counter()
    est.fit(b.marginals, b.weights)
    fit_s = time.perf_counter() - t0
    fresh = b.sample_marginals(n_eval, random_state=seed + 1)
    cov0, m = b.barycenter_cov, b.barycenter_mean
    raw, unbiased, vs_eot, floor = [], [], [], []
    t0 = time.perf_counter()
    for k, X in enumerate(fresh):
        P1, P2 = independent_projections(est, X, k, n_draws, seed)
        T0 = b.map_to_barycenter(X, k)
        Te = m + (X - b.marginal_means[k]) @ M[k].T
        raw.append(l2_uvp(0.5 * (P1 + P2), T0, cov0))
        unbiased.append(_cross_uvp(P1, P2, T0, cov0))
        vs_eot.append(_cross_uvp(P1, P2, Te, cov0))
        G = M[k] - linear_ot_map(b.marginal_covs[k], cov0)
        floor.append(float(100 * np.trace(G @ b.marginal_covs[k] @ G.T) / np.trace(cov0)))
    proj_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    Y = est.sample(100_000)
    sample_s = time.perf_counter() - t0
    w = np.asarray(WEIGHTS)
    return {
        "D": D,
        "epsilon": eps,
        "seed": seed,
        "budget_s": budget,
        "fit_s": fit_s,
        "n_iter": est.n_iter_,
        "it_per_s": est.n_iter_ / fit_s,
        "langevin_steps": est.langevin_steps,
        "langevin_step_size": est._step_size(),
        "langevin_init": est._chain_init(),
        "n_draws": n_draws,
        "l2_uvp": unbiased,
        "weighted_l2_uvp": float(w @ unbiased),
        "weighted_l2_uvp_raw": float(w @ raw),
        "weighted_l2_uvp_vs_eot": float(w @ vs_eot),
        "weighted_eot_floor": float(w @ floor),
        "bw_uvp_sample_1e5": bw_uvp(Y, m, cov0),
        "bw_uvp_sample_1e5_vs_eot": float(
            100 * bures_wasserstein_squared(Y.mean(0), np.cov(Y.T), m, S_eps) / np.trace(S_eps)
        ),
        "projection_s": proj_s,
        "projection_rows": 3 * n_eval,
        "sample_1e5_s": sample_s,
        "stop_reason": est.stop_reason_,
        "standardized": bool(getattr(est, "standardized_", False)),
        "load_after": round(os.getloadavg()[0], 1),
    }


def run_scatter(args) -> list[dict]:
    return [
        scatter_case(
            D, 0.01, args.budget, args.rows, args.eval_rows, seed, init=args.init, steps=args.steps
        )
        for seed in args.seeds
        for D in args.dims
    ]


def run_epsilon(args) -> list[dict]:
    return [
        scatter_case(
            D, eps, args.budget, args.rows, args.eval_rows, seed, init=args.init, steps=args.steps
        )
        for seed in args.seeds
        for D in args.dims
        for eps in args.eps
    ]


def run_twister(args) -> list[dict]:
    b = make_twister(args.rows, random_state=args.seeds[0])
    est = EnergyBarycenter(
        epsilon=0.01, cost=twister_cost, max_time=args.budget, random_state=args.seeds[0]
    )
    t0 = time.perf_counter()
    est.fit(b.marginals, b.weights)
    fit_s = time.perf_counter() - t0
    fresh = b.sample_marginals(args.eval_rows, random_state=args.seeds[0] + 1)
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
        b = make_location_scatter(3, D, args.rows, weights=WEIGHTS, random_state=args.seeds[0])
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


UVP_COLUMNS = (
    "weighted_l2_uvp",
    "weighted_l2_uvp_raw",
    "weighted_eot_floor",
    "weighted_l2_uvp_vs_eot",
    "bw_uvp_sample_1e5",
    "bw_uvp_sample_1e5_vs_eot",
)


def _render_uvp_rows(rows: list[dict]) -> list[str]:
    """One line per fit, then the mean over seeds of every (D, eps)."""
    out = [
        "L2-UVP of `barycentric_projection` against the unregularised OT maps, as the paper "
        "scores it (appendix C.4), with the Monte Carlo noise of the projection removed "
        "(two independent projections of `n_draws` each, their errors' inner product); "
        "*raw*: the plain figure of their 2 x `n_draws` mean. *Exact EOT floor*: what the "
        "exact entropic projections score (`skbary.bures.entropic_bures_barycenter`; no "
        "EgBary can go below it, and it changes with the instance). *vs EOT*: the fit "
        "against those exact projections and the exact entropic barycenter (the method's "
        "own error). Load: one-minute load average after the fit.",
        "",
        "The paper reports eps = 0.01 and 1 only, on one random instance per D. The floor "
        "depends on the instance's rotations: over 300 random D=2 instances of this family "
        "it spans 0.02-4.5 % at eps = 1 (median 1.9 %; D=4: 0.4-2.4 %, D=8: 0.8-1.4 %), so "
        "the paper's 1.12 % at D=2 is one draw of it, and seeds 0-2 here draw 2.5-4.2 %.",
        "",
        "| D | eps | seed | weighted L2-UVP | raw | exact EOT floor | L2-UVP vs EOT | "
        "BW2-UVP sample(1e5) | BW2-UVP vs EOT | paper (C.4) | fit s | iterations | "
        "Langevin steps x step, start | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["D"], r["epsilon"]), []).append(r)
    for (D, eps), rs in groups.items():
        paper = PAPER_C4.get(eps, {}).get(D, "-")
        for r in rs:
            vals = " | ".join(f"{r[c]:.3f}" for c in UVP_COLUMNS)
            out.append(
                f"| {D} | {eps} | {r['seed']} | {vals} | {paper} | {r['fit_s']:.0f} | "
                f"{r['n_iter']} | {r['langevin_steps']} x {r['langevin_step_size']}, "
                f"{r.get('langevin_init', 'input')} | "
                f"{r.get('load_after', '-')} |"
            )
        if len(rs) > 1:
            vals = " | ".join(f"**{np.mean([r[c] for r in rs]):.3f}**" for c in UVP_COLUMNS)
            out.append(
                f"| {D} | {eps} | mean | {vals} | {paper} | "
                f"{np.mean([r['fit_s'] for r in rs]):.0f} | "
                f"{np.mean([r['n_iter'] for r in rs]):.0f} | | |"
            )
    return out


def render() -> str:
    out = [
        "# EnergyBarycenter (EgBary) benchmarks",
        "",
        "Generated by `benchmarks/bench_energy.py` from the JSON files next to this one.",
        "All metrics in percent (lower is better). Fits use the defaults plus the arguments",
        "shown; wall times are on the machine named in each section.",
        "",
    ]
    files = [(p, f) for p in PARTS for f in sorted(RESULTS.glob(f"energy_{p}*.json"))]
    for part, path in files:
        tag = path.stem[len(f"energy_{part}") :]
        blob = json.loads(path.read_text())
        out += [
            f"## {part}{f' ({tag.lstrip(chr(95))})' if tag else ''}",
            "",
            f"Machine: {blob['machine']}  ",
            f"Command: `{blob['command']}`",
            "",
        ]
        rows = blob["rows"]
        if part in ("scatter", "epsilon") and "weighted_l2_uvp_raw" in rows[0]:
            out += _render_uvp_rows(rows)
        elif part in ("scatter", "epsilon"):
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
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="instances (and fit seeds)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--init", default="auto", help="langevin_init of the location-scatter fits")
    p.add_argument("--steps", type=int, default=30, help="langevin_steps of those fits")
    p.add_argument(
        "--tag", default="", help="suffix of the JSON file (energy_<part><tag>.json), kept apart"
    )
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
            (RESULTS / f"energy_{part}{args.tag}.json").write_text(json.dumps(blob, indent=1))
            print(json.dumps(blob, indent=1), flush=True)
    (RESULTS / "energy.md").write_text(render())
    print(render())


if __name__ == "__main__":
    main()
