"""How the neural estimators' training cost grows with K (inputs), n (rows per input) and D.

For every neural estimator on location-scatter inputs (Gaussian base), one torch thread:

* **seconds per iteration**, from the training-time stamps of the fit's history (first to
  last iteration, so set-up -- data to tensors, standardisation, networks -- drops out);
  the after-training phases (WIN's Algorithm 2, the generative maps) are switched off;
* **peak memory of the fit**: the largest resident set size sampled every 5 ms during the
  fit, less the resident size just before it (the data given to ``fit`` is already
  resident then, so this is what the fit adds: its padded device copy, networks, batches).

Three sweeps from the point K = 2, n = 1,000, D = 2: K in 2..64, n in 10^3..10^7 (the
largest inputs are generated in memory: D = 2 keeps them at 160 MB each), D in 2..1,024.
A fourth sweep gives the inputs as samplers (``skbary.streams``: minibatches from
a device cache of fresh rows, refilled from the sampler once used) at D = 2, 32, 256, to
compare with the in-memory rows at the same D. The criterion of issue 18 is linear growth
in K: time per iteration at K = 50 at most 25 times that at K = 2.

Writes ``benchmarks/results/scaling.{md,json,png}`` (``--quick``: fewer points, same
files with ``_quick``)::

    python -m benchmarks.bench_scaling            # a few minutes per method on 2 cores
    python -m benchmarks.bench_scaling --quick --methods NOT
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import importlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

import skbary
from benchmarks.common import command, machine
from skbary.datasets import make_location_scatter

RESULTS = Path(__file__).parent / "results"

# estimator, parameters that switch off after-training phases, iterations timed
METHODS: dict[str, tuple[str, dict[str, Any], int]] = {
    "NOT": ("NOTBarycenter", {}, 8),
    "WIN": ("WINBarycenter", {"learn_transform": False}, 3),
    "ICNN": ("ICNNBarycenter", {}, 8),
    "Generative": ("GenerativeBarycenter", {"learn_transform": False}, 8),
    "Energy": ("EnergyBarycenter", {"epsilon": 0.01}, 3),
}

FULL = {
    "K": [2, 10, 25, 50, 64],
    "n": [10**3, 10**4, 10**5, 10**6, 10**7],
    "D": [2, 32, 256, 1024],
    "sampler": [2, 32, 256],  # D, with the inputs given as samplers
}
QUICK = {"K": [2, 50], "n": [10**3, 10**6], "D": [2, 256], "sampler": [2]}


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """The largest resident set size seen while the block runs, less the size at its start."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def mb(self) -> float:
        return (self.peak - self.start) / 2**20


def _trim() -> None:
    # hand freed heap back to the system, so the next fit's peak is its own
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


def measure(
    name: str, K: int, n: int, D: int, device: str, source: str = "array"
) -> dict[str, Any]:
    bench = make_location_scatter(K, D, n, random_state=0)
    if source == "sampler":  # the inputs' laws as samplers (skbary.streams): n is unbounded
        marginals: list[Any] = [functools.partial(bench.sample_marginal, k) for k in range(K)]
    else:
        marginals = [np.asarray(m, dtype=np.float32) for m in bench.marginals]
        del bench
    class_name, params, n_iter = METHODS[name]
    est = getattr(skbary, class_name)(
        max_iter=n_iter, random_state=0, n_threads=1, device=device, **params
    )
    gc.collect()
    _trim()
    with PeakRSS() as mem:
        est.fit(marginals)
        if device != "cpu":
            torch.cuda.synchronize()
    # the history's training-seconds stamps: set-up before the first iteration drops out
    # (of the training phase: "train", or WIN's outer "barycenter" iterations)
    phase = est.history_[0].get("phase")
    t = [row["time"] for row in est.history_ if row.get("phase") == phase]
    return {
        "method": name,
        "source": source,
        "K": K,
        "n": n,
        "D": D,
        "s_per_iter": (t[-1] - t[0]) / (len(t) - 1),
        "peak_mb": mem.mb,
    }


def _rows(r: dict[str, Any]) -> str:
    """The n column: rows per input, or "sampler" (drawn, unbounded)."""
    return "sampler" if r.get("source") == "sampler" else f"{r['n']:,}"


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for col, axis in enumerate(("K", "n", "D")):  # the sampler rows are in the table
        for name in dict.fromkeys(r["method"] for r in rows):
            pts = sorted((r for r in rows if r["method"] == name and r["sweep"] == axis),
                         key=lambda r: r[axis])  # fmt: skip
            if not pts:
                continue
            x = [r[axis] for r in pts]
            axes[0, col].loglog(x, [r["s_per_iter"] for r in pts], "o-", label=name)
            axes[1, col].loglog(x, [max(r["peak_mb"], 0.1) for r in pts], "o-", label=name)
        if axis == "K":
            k = np.array([2, 64])
            axes[0, col].loglog(k, 1e-3 * k / 2, "k--", lw=0.8, label="slope 1")
        axes[0, col].set_title(f"time per iteration vs {axis}")
        axes[1, col].set_title(f"peak memory added by fit vs {axis}")
        axes[1, col].set_xlabel(axis)
    axes[0, 0].set_ylabel("s / iteration")
    axes[1, 0].set_ylabel("MB")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    p.add_argument("--sweeps", nargs="*", default=["K", "n", "D", "sampler"])
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the recorded rows of the methods not run now (re-measure one method)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    importlib.import_module("torch._dynamo")  # every fit imports it: not the first row's 80 MB

    grid = QUICK if args.quick else FULL
    base = {"K": 2, "n": 1000, "D": 2}
    rows = []
    header = "| method | sweep | K | n | D | ms / iteration | peak MB added by fit |"
    print(header + "\n|---|---|---|---|---|---|---|", flush=True)
    for name in args.methods:
        for axis in args.sweeps:
            for value in grid[axis]:
                stream = axis == "sampler"
                cfg = {**base, ("D" if stream else axis): value}
                src = "sampler" if stream else "array"
                r = measure(name, cfg["K"], cfg["n"], cfg["D"], args.device, src)
                r["sweep"] = axis
                rows.append(r)
                print(
                    f"| {name} | {axis} | {r['K']} | {_rows(r)} | {r['D']} | "
                    f"{1000 * r['s_per_iter']:.1f} | {r['peak_mb']:.0f} |",
                    flush=True,
                )
    suffix = "_quick" if args.quick else ""
    if args.merge and (RESULTS / f"scaling{suffix}.json").exists():
        kept = json.loads((RESULTS / f"scaling{suffix}.json").read_text())
        rows = [r for r in kept if r["method"] not in args.methods] + rows
    ratios = []
    for name in dict.fromkeys(r["method"] for r in rows):
        t = {r["K"]: r["s_per_iter"] for r in rows if r["method"] == name and r["sweep"] == "K"}
        if 2 in t and 50 in t:
            ratios.append(
                f"| {name} | {t[50] / t[2]:.1f} | {'yes' if t[50] / t[2] <= 25 else 'NO'} |"
            )
    md = [
        f"# Scaling of the neural estimators{' (quick)' if args.quick else ''}\n",
        f"Machine: {machine()}; device {args.device}. Command: "
        f"`{command('benchmarks.bench_scaling', argv)}`.\n",
        "Time per iteration from the fit's history stamps (set-up drops out); peak memory is "
        "the resident set the fit adds (sampled every 5 ms). Each sweep varies one of "
        "K, n, D from K = 2, n = 1,000, D = 2; the sampler rows give the inputs as "
        "samplers (skbary.streams) at the D shown.\n",
        *(
            [
                f"Merged: {', '.join(args.methods)} measured by this command, the other methods' "
                "rows kept from the recorded run (their machine line is in git history).\n"
            ]
            if args.merge
            else []
        ),
        header,
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['method']} | {r['sweep']} | {r['K']} | {_rows(r)} | {r['D']} | "
            f"{1000 * r['s_per_iter']:.1f} | {r['peak_mb']:.0f} |"
            for r in rows
        ),
        "",
        "Time per iteration at K = 50 over K = 2 (criterion: at most 25, linear growth):\n",
        "| method | ratio | linear |",
        "|---|---|---|",
        *ratios,
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scaling{suffix}.md").write_text("\n".join(md) + "\n")
    (RESULTS / f"scaling{suffix}.json").write_text(json.dumps(rows, indent=1))
    _plot(rows, RESULTS / f"scaling{suffix}.png")
    print("\n".join(md[-4 - len(ratios) :]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
