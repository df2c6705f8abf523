"""Where each neural estimator spends its training time, and how fast one iteration is.

For every neural estimator on location-scatter (K = 4, D = ``--dim``, 20,000 rows, Gaussian
base), single torch thread by default:

* **seconds per iteration**, from two fits of fixed length (``max_iter = n1`` and ``n2``):
  ``(t2 - t1) / (n2 - n1)``, so set-up (data to tensors, network building, compilation)
  cancels. The after-training phases (WIN's Algorithm 2, the generative maps) are switched
  off; they run the same shared solver.
* with ``--compile-check``, eager against ``torch.compile`` for one step of the shared
  batched networks.
* **a torch.profiler breakdown** of the ``n1``-iteration fit: the share of CPU time in the
  optimiser steps (``Optimizer.step#...``) and the operators with the most self time.

Each run appends a section to ``benchmarks/results/profile.md`` labelled ``--label`` with the
git commit, so a change to the shared machinery is recorded as a before/after pair::

    python -m benchmarks.profiling --label "before: ..."
    # change the code
    python -m benchmarks.profiling --label "after: ..."
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

import skbary
from benchmarks.common import command
from skbary.datasets import make_location_scatter

RESULTS = Path(__file__).parent / "results" / "profile.md"

# estimator, parameters that switch off after-training phases, (n1, n2) iterations
METHODS: dict[str, tuple[str, dict[str, Any], tuple[int, int]]] = {
    "NOT": ("NOTBarycenter", {}, (20, 220)),
    "WIN": ("WINBarycenter", {"learn_transform": False}, (2, 12)),
    "ICNN (NWB-I)": ("ICNNBarycenter", {}, (20, 220)),
    "Generative (Sinkhorn)": (
        "GenerativeBarycenter",
        {"divergence": "sinkhorn", "learn_transform": False},
        (20, 220),
    ),
    "Energy (EgBary)": ("EnergyBarycenter", {"epsilon": 0.01}, (3, 13)),
}


def _fit_seconds(name: str, n_iter: int, bench: Any, threads: int, device: str) -> float:
    class_name, params, _ = METHODS[name]
    est = getattr(skbary, class_name)(
        max_iter=n_iter, random_state=0, n_threads=threads, device=device, **params
    )
    start = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _breakdown(name: str, n_iter: int, bench: Any, threads: int, device: str, top: int):
    activities = [ProfilerActivity.CPU]
    if device != "cpu":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        _fit_seconds(name, n_iter, bench, threads, device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    optim = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#"))
    ops = sorted(
        (e for e in events if e.key.startswith("aten::")),
        key=lambda e: e.self_cpu_time_total,
        reverse=True,
    )[:top]
    top_ops = ", ".join(f"{e.key[6:]} {100 * e.self_cpu_time_total / total:.0f}%" for e in ops)
    return 100.0 * optim / total, top_ops


def compile_check(threads: int, device: str) -> list[str]:
    """Does ``torch.compile`` pay for the networks the estimators share?

    One optimiser step (forward, backward, fused Adam) of a ``BatchedMLP`` of K = 4 networks,
    D = 8, hidden (128, 128), batch 256, eager against compiled, for ReLU (WIN, the
    generators) and CELU (NOT's potentials).
    """
    from skbary.nn.mlp import BatchedMLP

    torch.set_num_threads(threads)
    lines = [
        "",
        "`torch.compile` of one BatchedMLP step (K=4, D=8, hidden (128, 128), batch 256, "
        "fused Adam):",
        "",
        "| activation | eager ms / step | compiled ms / step | first compiled call s |",
        "|---|---|---|---|",
    ]
    for act in ("relu", "celu"):
        torch.manual_seed(0)
        net = BatchedMLP(4, 8, 8, (128, 128), act).to(device)
        opt = torch.optim.Adam(net.parameters(), fused=True)
        x = torch.randn(4, 256, 8, device=device)

        def step(f: Any, net=net, opt=opt, x=x) -> None:
            loss = f(x).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        timings = []
        for f in (net, torch.compile(net)):
            start = time.perf_counter()
            step(f)
            first = time.perf_counter() - start
            for _ in range(20):
                step(f)
            start = time.perf_counter()
            for _ in range(300):
                step(f)
            if device != "cpu":
                torch.cuda.synchronize()
            timings.append(((time.perf_counter() - start) / 300 * 1000, first))
        lines.append(f"| {act} | {timings[0][0]:.2f} | {timings[1][0]:.2f} | {timings[1][1]:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--label", required=True, help="what this run measures (before/after ...)")
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--compile-check", action="store_true", help="also time torch.compile")
    args = p.parse_args(argv)

    bench = make_location_scatter(4, args.dim, 20_000, weights=[0.1, 0.2, 0.3, 0.4], random_state=0)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    cmd = command("benchmarks.profiling", argv)
    device = torch.cuda.get_device_name() if args.device != "cpu" else (platform.machine() + " CPU")
    lines = [
        f"\n## {args.label}\n",
        f"Commit {commit}{' + uncommitted changes' if dirty else ''}; {device}, "
        f"{args.threads} torch thread(s), torch {torch.__version__}; location-scatter K=4, "
        f"D={args.dim}, 20,000 rows. Command: "
        f"`{cmd}`\n",
        "| method | ms / iteration | iterations / s | optimiser step % of CPU | top operators "
        "(self CPU %) |",
        "|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for name in args.methods:
        n1, n2 = METHODS[name][2]
        _fit_seconds(name, n1, bench, args.threads, args.device)  # warm caches and imports
        t1 = _fit_seconds(name, n1, bench, args.threads, args.device)
        t2 = _fit_seconds(name, n2, bench, args.threads, args.device)
        per_iter = (t2 - t1) / (n2 - n1)
        optim, top_ops = _breakdown(name, n1, bench, args.threads, args.device, args.top)
        line = f"| {name} | {1000 * per_iter:.1f} | {1 / per_iter:.1f} | {optim:.0f} | {top_ops} |"
        lines.append(line)
        print(line, flush=True)
    if args.compile_check:
        extra = compile_check(args.threads, args.device)
        print("\n".join(extra), flush=True)
        lines += extra
    RESULTS.parent.mkdir(exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Profiles of the neural estimators\n\nWritten by `benchmarks/profiling.py`; "
            "each section is one run, so before/after pairs sit next to each other.\n"
        )
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
