"""Peak memory of ``fit`` on image-sized inputs: 3 inputs of 500 rows x 12,288 columns.

3 x 64 x 64 images as flat rows are where dense d x d state (a covariance per input for
routing, NOT's quadratic potentials, ICNN's Q) would cost over a gigabyte each. Every neural
estimator is fitted for a few iterations with its default networks, each in its own process,
and the process's peak resident memory (and, on CUDA, the peak GPU memory) is recorded.
Target: under 3 GB for every estimator.

    python -m benchmarks.bench_memory [--features 12288] [--rows 500] [--device cpu]

Writes ``benchmarks/results/memory.md`` and ``memory.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import command, machine

RESULTS = Path(__file__).parent / "results"

#: A few iterations of every neural estimator, default networks.
FEW_ITERATIONS = {
    "NOTBarycenter": {"max_iter": 3, "batch_size": 64},
    "WINBarycenter": {
        "max_iter": 1,
        "n_generator_steps": 2,
        "n_potential_steps": 2,
        "batch_size": 64,
        "transform_max_iter": 2,
    },
    "ICNNBarycenter": {"max_iter": 3, "batch_size": 64},
    "GenerativeBarycenter": {"max_iter": 3, "batch_size": 64, "transform_max_iter": 2},
    "EnergyBarycenter": {"max_iter": 3, "batch_size": 32},
}

_CHILD = """
import json, resource, sys, time
import numpy as np, torch
import skbary
name, n, d, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
params = json.loads(sys.argv[5])
rng = np.random.RandomState(0)
# smooth random images (low-frequency patterns plus noise), three inputs
basis = rng.randn(16, d).astype(np.float32)
Xs = [(rng.randn(n, 16).astype(np.float32) + k) @ basis / 4
      + 0.1 * rng.randn(n, d).astype(np.float32) for k in range(3)]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
est = getattr(skbary, name)(random_state=0, device=device, **params)
t0 = time.perf_counter()
est.fit(Xs)
fit_s = time.perf_counter() - t0
Y = est.sample(8)
Z = est.transform(Xs[0][:8], k=0)
assert Y.shape == (8, d) and Z.shape == (8, d) and np.isfinite(Y).all() and np.isfinite(Z).all()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
gpu = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
print(json.dumps({"estimator": name, "peak_rss_gb": peak / 2**20, "data_rss_gb": base / 2**20,
                  "gpu_peak_gb": gpu, "fit_s": fit_s}))
"""


def run_one(name: str, n: int, d: int, device: str, timeout: float) -> dict:
    args = [sys.executable, "-c", _CHILD, name, str(n), str(d), device]
    args.append(json.dumps(FEW_ITERATIONS[name]))
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"estimator": name, "error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        return {"estimator": name, "error": last[:300], "children_peak_rss_gb": child_peak}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=12288)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--estimators", nargs="*", default=list(FEW_ITERATIONS))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)

    rows = []
    for name in args.estimators:
        t0 = time.perf_counter()
        row = run_one(name, args.rows, args.features, args.device, args.timeout)
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        print(json.dumps(row), flush=True)

    lines = [
        f"# Peak memory of fit: 3 inputs of {args.rows} x {args.features} ({args.device})",
        "",
        f"Command: `{command('benchmarks.bench_memory', argv)}`  ",
        f"Machine: {machine()}  ",
        "Few iterations, default networks, each estimator in its own process; peak resident "
        "memory of that process (data included) against the 3 GB target.",
        "",
        "| estimator | peak RSS (GB) | of which data + imports (GB) | peak GPU (GB) | fit (s) "
        "| < 3 GB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['estimator']} | error: {r['error']} | | | | no |")
            continue
        gpu = "-" if r["gpu_peak_gb"] is None else f"{r['gpu_peak_gb']:.2f}"
        ok = "yes" if r["peak_rss_gb"] < 3 and (r["gpu_peak_gb"] or 0) < 3 else "no"
        lines.append(
            f"| {r['estimator']} | {r['peak_rss_gb']:.2f} | {r['data_rss_gb']:.2f} | {gpu} | "
            f"{r['fit_s']:.1f} | {ok} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_record:
        RESULTS.mkdir(exist_ok=True)
        suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
        (RESULTS / f"memory{suffix}.md").write_text(text)
        (RESULTS / f"memory{suffix}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
