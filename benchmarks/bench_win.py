"""WINBarycenter on the WIN paper's tasks, next to the papers' numbers.

Tasks (BENCHMARKS.md):

* ``acceptance``: location-scatter, K = 4, weights (0.1, 0.2, 0.3, 0.4), Gaussian base,
  50,000 rows per input, ``WINBarycenter(max_time=300, random_state=0)`` with defaults,
  D = 2 and 8: BW2-UVP of ``sample(100000)`` (G(z) and the averaged maps), weighted L2-UVP of
  ``transform`` on 10,000 fresh rows per input, wall time.
* ``table``: the same family for D in ``--dims`` at ``--max-time`` seconds per fit: WIN's
  rows of the WIN paper's Table 5 (BW2-UVP, K = 4) and of the NOT paper's Table 3 (weighted
  L2-UVP of the maps to the barycenter; there K = 3, weights (0.25, 0.25, 0.5): ``--l2-k3``
  runs that variant too).
* ``small-sample``: location-scatter D = 64, K = 3 with Ave-digits' 449 rows per input, to
  tell a sample-size effect from a dimension effect.
* ``digits``: Ave, digits! (``skbary.datasets.load_ave_digits``, 64 pixels, K = 3): BW2-UVP
  of samples and L2-UVP of ``transform`` against the known barycenter, next to
  GaussianBarycenter.
* ``small-inputs``: Ave, digits! with the settings that help WIN on a few hundred rows
  per input (docs/win.md, "What helps on small inputs") next to the defaults.

Run under the shared lock (2-core machine)::

    flock /tmp/skbary-heavy.lock .venv/bin/python -m benchmarks.bench_win --tasks acceptance
    flock /tmp/skbary-heavy.lock .venv/bin/python -m benchmarks.bench_win --tasks table \
        --dims 2 4 8 16 32 64 --max-time 150

Every row is appended to ``benchmarks/results/win.md`` as soon as it is measured.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from benchmarks.common import command, machine
from skbary import GaussianBarycenter, WINBarycenter
from skbary.datasets import load_ave_digits, make_location_scatter
from skbary.metrics import bw_uvp, score_benchmark, weighted_l2_uvp

RESULTS = os.environ.get(
    "SKBARY_WIN_RESULTS", os.path.join(os.path.dirname(__file__), "results", "win.md")
)
PAPER_BW = {2: 0.01, 4: 0.02, 8: 0.01, 16: 0.08, 32: 0.11, 64: 0.23, 128: 0.38}
PAPER_L2_K3 = {2: 0.03, 4: 0.08, 8: 0.13, 16: 0.25, 64: 0.75}


def emit(line: str) -> None:
    print(line, flush=True)
    with open(RESULTS, "a") as fh:
        fh.write(line + "\n")


def location_scatter_row(D: int, max_time: float, K: int = 4, weights=None, **params) -> dict:
    weights = [0.1, 0.2, 0.3, 0.4] if weights is None else weights
    bench = make_location_scatter(K, D, 50_000, weights=weights, random_state=0)
    est = WINBarycenter(max_time=max_time, random_state=0, **params)
    wall = timed_fit(est, bench)
    m, S = bench.barycenter_mean, bench.barycenter_cov
    bw_g = bw_uvp(est.sample(100_000), m, S)
    est.set_params(sample_from="maps")
    bw_m = bw_uvp(est.sample(100_000), m, S)
    est.set_params(sample_from=params.get("sample_from", "generator"))
    fresh = bench.sample_marginals(10_000, random_state=1)
    l2 = weighted_l2_uvp(est, bench, fresh)["l2_uvp_weighted"]
    h = est.history_
    t_bar = [r["time"] for r in h if r["phase"] == "barycenter"]
    it_s = est.n_iter_ / t_bar[-1] if t_bar else float("nan")
    updates = est.n_potential_steps * (1 + est.n_map_steps) + est.n_generator_steps
    return {
        "D": D,
        "K": K,
        "bw_gen": bw_g,
        "bw_maps": bw_m,
        "l2w": l2,
        "wall": wall,
        "outer": est.n_iter_,
        "outer_per_s": it_s,
        "updates_per_s": it_s * updates,
        "transform_iter": est.n_transform_iter_,
    }


def task_acceptance(args) -> None:
    emit(f"\n## Acceptance: location-scatter K=4, 50,000 rows, max_time={args.max_time:g}\n")
    emit(f"Machine: {machine()}. Command: `{command('benchmarks.bench_win')}`\n")
    emit(
        "| D | BW2-UVP G(z) % | BW2-UVP sum a_k T_k(G(z)) % | weighted L2-UVP transform % "
        "| fit s | outer iters (it/s) | updates/s | Alg. 2 iters |"
    )
    emit("|---|---|---|---|---|---|---|---|")
    for D in args.dims or [2, 8]:
        r = location_scatter_row(D, args.max_time)
        emit(
            f"| {D} | {r['bw_gen']:.3f} | {r['bw_maps']:.3f} | {r['l2w']:.3f} | {r['wall']:.0f} "
            f"| {r['outer']} ({r['outer_per_s']:.2f}) | {r['updates_per_s']:.0f} "
            f"| {r['transform_iter']} |"
        )


def task_table(args) -> None:
    dims = args.dims or [2, 4, 8, 16, 32, 64]
    emit(f"\n## WIN paper Table 5 (BW2-UVP %, K=4, Gaussian base), max_time={args.max_time:g}\n")
    emit(f"Machine: {machine()}. Command: `{command('benchmarks.bench_win')}`\n")
    emit("| D | ours G(z) | ours averaged maps | paper WIN (GPU, 12K iters) | fit s |")
    emit("|---|---|---|---|---|")
    rows = []
    for D in dims:
        r = location_scatter_row(D, args.max_time)
        rows.append(r)
        emit(
            f"| {D} | {r['bw_gen']:.3f} | {r['bw_maps']:.3f} | {PAPER_BW.get(D, '-')} "
            f"| {r['wall']:.0f} |"
        )
    emit("\nWeighted L2-UVP (%) of `transform` on the same fits (K=4):\n")
    emit("| D | ours K=4 | paper WIN, K=3 (NOT paper Table 3) |")
    emit("|---|---|---|")
    for r in rows:
        emit(f"| {r['D']} | {r['l2w']:.3f} | {PAPER_L2_K3.get(r['D'], '-')} |")
    if args.l2_k3:
        emit("\nK=3, weights (0.25, 0.25, 0.5) as in the NOT paper:\n")
        emit("| D | ours weighted L2-UVP | paper WIN | BW2-UVP G(z) | fit s |")
        emit("|---|---|---|---|---|")
        for D in dims:
            r = location_scatter_row(D, args.max_time, K=3, weights=[0.25, 0.25, 0.5])
            emit(
                f"| {D} | {r['l2w']:.3f} | {PAPER_L2_K3.get(D, '-')} | {r['bw_gen']:.3f} "
                f"| {r['wall']:.0f} |"
            )


SWEEP = [
    ("defaults: nets 2 x max(64, 2D), (K_G, K_v, K_T) = (20, 20, 3), batch 256", {}),
    (
        "paper's (K_G, K_v, K_T) = (50, 50, 10)",
        {"n_generator_steps": 50, "n_potential_steps": 50, "n_map_steps": 10},
    ),
    (
        "nets 3 x 64",
        {
            "generator__hidden_layer_sizes": (64,) * 3,
            "inverse_map__hidden_layer_sizes": (64,) * 3,
            "map__hidden_layer_sizes": (64,) * 3,
            "potential__hidden_layer_sizes": (64,) * 3,
        },
    ),
    ("lr_generator=1e-4 (paper)", {"lr_generator": 1e-4}),
]


def task_defaults(args) -> None:
    """The comparison behind the defaults (docs/win.md), at ``--max-time`` per fit."""
    for D in args.dims or [8]:
        emit(f"\n## Defaults sweep: location-scatter K=4, D={D}, max_time={args.max_time:g}\n")
        emit(f"Machine: {machine()}. Command: `{command('benchmarks.bench_win')}`\n")
        emit("| setting | BW2-UVP G(z) % | BW2-UVP maps % | L2-UVP transform % | outer iters |")
        emit("|---|---|---|---|---|")
        for name, params in SWEEP:
            r = location_scatter_row(D, args.max_time, **params)
            emit(
                f"| {name} | {r['bw_gen']:.3f} | {r['bw_maps']:.3f} | {r['l2w']:.3f} "
                f"| {r['outer']} |"
            )


def timed_fit(est, bench) -> float:
    """Fit ``est`` on the benchmark's inputs; the wall seconds it took."""
    start = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    return time.perf_counter() - start


def task_digits(args) -> None:
    bench = load_ave_digits(0)
    emit(
        f"\n## Ave, digits! (64 pixels, K=3, weights (1/4, 1/2, 1/4)), max_time={args.max_time:g}\n"
    )
    emit(f"Machine: {machine()}. Command: `{command('benchmarks.bench_win')}`\n")
    emit("| method | BW2-UVP samples % | weighted L2-UVP transform % | fit s |")
    emit("|---|---|---|---|")
    for name, est in [
        ("GaussianBarycenter", GaussianBarycenter(random_state=0)),
        ("WINBarycenter (G(z))", WINBarycenter(max_time=args.max_time, random_state=0)),
    ]:
        wall = timed_fit(est, bench)
        s = score_benchmark(est, bench, energy_samples=0)
        emit(f"| {name} | {s['bw_uvp']:.3f} | {s['l2_uvp_weighted']:.3f} | {wall:.1f} |")
        if isinstance(est, WINBarycenter):
            est.set_params(sample_from="maps")
            s = score_benchmark(est, bench, energy_samples=0)
            emit(f"| WINBarycenter (averaged maps) | {s['bw_uvp']:.3f} | - | (same fit) |")


SMALL_INPUTS = [
    ("defaults", {}),
    (
        "early stop: max_iter=30, transform_max_iter=500",
        {"max_iter": 30, "transform_max_iter": 500},
    ),
    (
        "lr_generator = lr_potential = lr_map = 1e-4",
        {"lr_generator": 1e-4, "lr_potential": 1e-4, "lr_map": 1e-4},
    ),
]


def task_small_inputs(args) -> None:
    """Ave, digits! (about 449 rows per input): settings that help WIN on small inputs."""
    bench = load_ave_digits(0)
    emit(f"\n## Small inputs: Ave, digits! (449 rows per input), max_time={args.max_time:g}\n")
    emit(f"Machine: {machine()}. Command: `{command('benchmarks.bench_win')}`\n")
    emit("| setting | BW2-UVP G(z) % | weighted L2-UVP transform % | fit s | outer iters |")
    emit("|---|---|---|---|---|")
    est = GaussianBarycenter(random_state=0)
    wall = timed_fit(est, bench)
    s = score_benchmark(est, bench, energy_samples=0)
    emit(
        f"| GaussianBarycenter | {s['bw_uvp']:.3f} | {s['l2_uvp_weighted']:.3f} | {wall:.1f} | - |"
    )
    for name, params in SMALL_INPUTS:
        est = WINBarycenter(max_time=args.max_time, random_state=0, **params)
        wall = timed_fit(est, bench)
        s = score_benchmark(est, bench, energy_samples=0)
        emit(
            f"| WIN, {name} | {s['bw_uvp']:.3f} | {s['l2_uvp_weighted']:.3f} | {wall:.0f} "
            f"| {est.n_iter_} |"
        )


def task_small_sample(args) -> None:
    """Location-scatter with Ave-digits' sample size: is WIN's digits error the data size?"""
    D, n = 64, 449
    weights = [0.25, 0.5, 0.25]
    bench = make_location_scatter(3, D, n, weights=weights, random_state=0)
    fresh = bench.sample_marginals(10_000, random_state=1)
    emit(
        f"\n## Location-scatter D={D}, K=3, weights (1/4, 1/2, 1/4), {n} rows per input "
        f"(Ave-digits' size), max_time={args.max_time:g}\n"
    )
    emit(f"Machine: {machine()}. Command: `{command('benchmarks.bench_win')}`\n")
    emit("| method | BW2-UVP samples % | weighted L2-UVP transform (fresh rows) % | fit s |")
    emit("|---|---|---|---|")
    for name, est in [
        ("GaussianBarycenter", GaussianBarycenter(random_state=0)),
        ("WINBarycenter (G(z))", WINBarycenter(max_time=args.max_time, random_state=0)),
    ]:
        wall = timed_fit(est, bench)
        bw = bw_uvp(
            est.sample(100_000, random_state=0), bench.barycenter_mean, bench.barycenter_cov
        )
        l2 = weighted_l2_uvp(est, bench, fresh)["l2_uvp_weighted"]
        emit(f"| {name} | {bw:.3f} | {l2:.3f} | {wall:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=["acceptance", "digits", "table"])
    p.add_argument("--dims", nargs="+", type=int, default=None)
    p.add_argument("--max-time", type=float, default=300.0)
    p.add_argument("--l2-k3", action="store_true")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: on a shared, oversubscribed 2-core machine two "
        "threads ran the solver 2-80x slower, see docs/win.md)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    if not os.path.exists(RESULTS):
        with open(RESULTS, "w") as fh:
            fh.write("# WINBarycenter benchmark results\n\nWritten by benchmarks/bench_win.py.\n")
    for task in args.tasks:
        tasks = {
            "acceptance": task_acceptance,
            "table": task_table,
            "digits": task_digits,
            "defaults": task_defaults,
            "small-sample": task_small_sample,
            "small-inputs": task_small_inputs,
        }
        tasks[task](args)
    np.set_printoptions()


if __name__ == "__main__":
    main()
