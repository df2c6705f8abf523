"""Fits from streamed inputs against the same fits from in-memory arrays (issue 18).

Location-scatter, K=3, D=8, weights (0.2, 0.3, 0.5), random means, one instance (seed 0).
Every neural estimator is fitted with a fixed number of iterations (the work does not
depend on the machine's load) from three sources of the same laws:

* ``arrays`` -- 200,000 rows per input in memory;
* ``samplers`` -- three callables ``draw(n, random_state)`` (the truth's samplers);
* ``memmap`` -- three ``.npy`` files opened with ``mmap_mode="r"``, together ``--file-gb``
  GB on disk (4 by default: about 42 million rows per input), read a cache at a time.

Each fit runs in its own process, which reports its peak resident memory (``VmHWM``:
torch and the interpreter included). Scores: BW2-UVP of ``sample(50000)`` and the weighted
L2-UVP of ``transform`` on 10,000 fresh rows per input, in %.

Commands::

    python -m benchmarks.bench_streams                 # 4 GB files, seeds 0 and 1
    python -m benchmarks.bench_streams --quick         # 0.05 GB, one seed, short fits
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import command, machine

RESULTS = Path(__file__).parent / "results"
K, D, WEIGHTS, INSTANCE_SEED, N_ARRAYS = 3, 8, [0.2, 0.3, 0.5], 0, 200_000

#: Fixed budgets (iterations), about 25 s each on one unloaded core (benchmarks/results/quick.md).
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "NOT": ("NOTBarycenter", {"max_iter": 600}),
    "WIN": ("WINBarycenter", {"max_iter": 100, "transform_max_iter": 1000}),
    "ICNN": ("ICNNBarycenter", {"max_iter": 1000}),
    "Generative": ("GenerativeBarycenter", {"max_iter": 500, "divergence": "sinkhorn"}),
    "Energy": ("EnergyBarycenter", {"max_iter": 200, "epsilon": 0.01}),
}
QUICK_ITERS = {"NOT": 30, "WIN": 3, "ICNN": 30, "Generative": 20, "Energy": 10}


def _bench() -> Any:
    from skbary.datasets import make_location_scatter

    return make_location_scatter(
        K, D, N_ARRAYS, weights=WEIGHTS, means="random", random_state=INSTANCE_SEED
    )


def _files(data_dir: Path, file_gb: float) -> list[Path]:
    """The memmap inputs (written once, chunk by chunk; reused when present)."""
    bench = _bench()
    rows = int(file_gb * 1e9 / (K * D * 4))
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = [data_dir / f"scatter_k{k}_{rows}.npy" for k in range(K)]
    rng = np.random.RandomState(12345)
    for k, path in enumerate(paths):
        if path.exists():
            continue
        tmp = path.with_suffix(".part.npy")
        mm = np.lib.format.open_memmap(tmp, "w+", np.float32, (rows, D))
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            mm[start : start + n] = bench.sample_marginal(k, n, rng)
        mm.flush()
        del mm
        tmp.rename(path)
    return paths


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``, which on Linux keeps
    the parent's peak across fork and exec (the parent that wrote the 4 GB files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(method: str, source: str, seed: int, paths: list[str], quick: bool) -> dict:
    """One fit in this process; its scores, time and peak resident memory."""
    import torch

    import skbary
    from skbary.metrics import score_benchmark

    torch.set_num_threads(1)
    bench = _bench()
    if source == "arrays":
        inputs: list[Any] = bench.marginals
    elif source == "samplers":
        inputs = [functools.partial(bench.sample_marginal, k) for k in range(K)]
    else:
        inputs = [np.load(p, mmap_mode="r") for p in paths]
    class_name, params = CONFIGS[method]
    params = dict(params, random_state=seed)
    if quick:
        params["max_iter"] = QUICK_ITERS[method]
        params.pop("transform_max_iter", None)
    est = getattr(skbary, class_name)(**params)
    t0 = time.perf_counter()
    est.fit(inputs, WEIGHTS)
    fit_s = time.perf_counter() - t0
    rss_fit = _peak_rss_mb()
    scores = score_benchmark(est, bench, n_samples=50_000, n_heldout=10_000, energy_samples=0)
    return {
        "method": method,
        "source": source,
        "seed": seed,
        "fit_s": round(fit_s, 1),
        "iters": len(est.history_),
        "bw_uvp": scores["bw_uvp"],
        "l2_uvp": scores["l2_uvp_weighted"],
        "peak_rss_mb_fit": round(rss_fit, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--methods", nargs="*", default=list(CONFIGS))
    parser.add_argument("--sources", nargs="*", default=["arrays", "samplers", "memmap"])
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--file-gb", type=float, default=None)
    parser.add_argument("--data-dir", default="/tmp/skbary_streams")
    parser.add_argument("--out", default=None)
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "SOURCE", "SEED"), default=None)
    parser.add_argument("--paths", nargs="*", default=[])
    args = parser.parse_args(argv)
    if args.one:
        method, source, seed = args.one
        print(json.dumps(run_one(method, source, int(seed), args.paths, args.quick)))
        return 0

    file_gb = args.file_gb or (0.05 if args.quick else 4.0)
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1])
    out = args.out or ("streams_quick" if args.quick else "streams")
    t0 = time.perf_counter()
    paths = [str(p) for p in _files(Path(args.data_dir), file_gb)]
    on_disk = sum(Path(p).stat().st_size for p in paths) / 1e9
    print(f"memmap inputs: {on_disk:.2f} GB on disk ({time.perf_counter() - t0:.0f} s)")
    rows = []
    for method in args.methods:
        for seed in seeds:
            for source in args.sources:
                cmd = [sys.executable, "-m", "benchmarks.bench_streams", "--one", method]
                cmd += [source, str(seed), "--paths", *paths] + (["--quick"] if args.quick else [])
                res = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if res.returncode != 0:
                    raise RuntimeError(f"{method}/{source}/{seed} failed:\n{res.stderr[-3000:]}")
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row["load"] = round(os.getloadavg()[0], 1)
                rows.append(row)
                print(
                    f"{method:10s} {source:8s} seed {seed}: BW2-UVP {row['bw_uvp']:.3f}  "
                    f"L2-UVP {row['l2_uvp']:.3f}  fit {row['fit_s']} s  "
                    f"peak RSS {row['peak_rss_mb_fit']:.0f} MB  load {row['load']}",
                    flush=True,
                )
    lines = [
        f"Command: `{command('benchmarks.bench_streams', argv)}`  ",
        f"Machine: {machine()}  ",
        f"Memmap inputs: {on_disk:.2f} GB on disk (3 files of float32 rows, D={D}).",
        "",
        "| method | seed | source | BW2-UVP % | L2-UVP % | fit s | iters | peak RSS MB | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['seed']} | {r['source']} | {r['bw_uvp']:.3f} | "
            f"{r['l2_uvp']:.3f} | {r['fit_s']} | {r['iters']} | {r['peak_rss_mb_fit']:.0f} | "
            f"{r['load']} |"
        )
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps({"gb": on_disk, "rows": rows}, indent=1))
    (RESULTS / f"{out}.table.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
