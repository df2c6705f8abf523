"""Where an ICNNBarycenter iteration's time goes, and how many iterations a second it runs.

The inputs are those of ``bench_nongaussian`` (``make_product_measures``, K = 3, weights
(0.2, 0.3, 0.5), family a or b, 50,000 rows per input), the estimator its defaults with a
fixed ``max_iter`` and ``max_time=None`` on one torch thread.

``--mode rate``: seconds per iteration from fits of ``--short`` and ``--short + --iters``
iterations, ``(t2 - t1) / iters``, so set-up (standardisation, the quantile terms' knots,
network building) cancels; ``--repeats`` pairs.

``--mode breakdown``: one fit of ``--iters`` iterations with inclusive timers wrapped
around the pieces of an iteration (the NWB steps, the networks' forward/gradient passes,
the quantile term and its knot lookup, backward, the optimiser steps and ``zero_grad``,
the convexity clip and penalty, the parameter average, the learning-rate schedule, data
and latent draws, the loop's history writes); every piece is reported by its *exclusive*
time (its own, less the pieces nested in it), so the shares add up to the fit's time.
The wrappers cost about a microsecond a call (about 100 calls an iteration).

    python -m benchmarks.profile_icnn --mode breakdown --dim 8 --iters 1500
    python -m benchmarks.profile_icnn --mode rate --dim 8 --iters 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from benchmarks.common import command, machine


def _data(family: str, d: int, seed: int, n_rows: int):
    from skbary.datasets import make_product_measures

    return make_product_measures(
        3, d, n_rows, weights=(0.2, 0.3, 0.5), rotation=family == "b", random_state=seed
    )


def _fit(bench, n_iter: int, seed: int):
    from skbary import ICNNBarycenter

    est = ICNNBarycenter(max_iter=n_iter, random_state=seed, n_threads=1)
    start, cpu = time.perf_counter(), time.process_time()
    est.fit(bench.marginals, bench.weights)
    est.cpu_seconds = time.process_time() - cpu
    return time.perf_counter() - start, est


class _Timers:
    """Inclusive timers with a stack, so that each label also gets its exclusive time."""

    def __init__(self) -> None:
        self.inclusive: dict[str, float] = defaultdict(float)
        self.exclusive: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[list[Any]] = []  # [label, start, time of children]

    def wrap(self, owner: Any, name: str, label: Any) -> None:
        """Replace ``owner.name`` by a timed version; ``label`` a string or ``f(args)``."""
        fn = getattr(owner, name)
        timers = self

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            lab = label(args) if callable(label) else label
            timers.stack.append([lab, time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                lab, start, children = timers.stack.pop()
                spent = time.perf_counter() - start
                timers.inclusive[lab] += spent
                timers.exclusive[lab] += spent - children
                timers.calls[lab] += 1
                if timers.stack:
                    timers.stack[-1][2] += spent

        setattr(owner, name, timed)


def breakdown(bench, n_iter: int, seed: int) -> list[str]:
    """Exclusive time per piece of a fit of ``n_iter`` iterations (see the module doc)."""
    import skbary.methods.icnn as nwb
    from skbary.estimators.icnn import ICNNBarycenter
    from skbary.nn.icnn import BatchedICNN, ConvexQuantileTerm, InputConvexNetwork
    from skbary.training import optim, sources
    from skbary.training.loop import TrainingLoop
    from skbary.training.schedules import LRDecay

    roles: dict[int, str] = {}
    build = ICNNBarycenter._build_networks

    def build_and_name(self, *args):
        build(self, *args)
        roles[id(self.f_)], roles[id(self.g_)] = "f", "g"
        if self.f_.quantile_term is not None:
            roles[id(self.f_.quantile_term)] = "f"
            roles[id(self.g_.quantile_term)] = "g"

    ICNNBarycenter._build_networks = build_and_name

    def role(prefix: str):
        def label(args: tuple) -> str:
            grad = "grad on" if torch.is_grad_enabled() else "no grad"
            return f"{prefix} [{roles.get(id(args[0]), '?')}, {grad}]"

        return label

    t = _Timers()
    t.wrap(TrainingLoop, "run", "training loop (Python: its own lines)")
    t.wrap(TrainingLoop, "_flush", "loop: history rows, host copies of the losses")
    t.wrap(LRDecay, "update", "learning-rate schedule")
    t.wrap(optim.ParameterAverage, "update", "EMA of g and h (foreach lerp)")
    t.wrap(sources.MarginalBatches, "draw", "data: minibatch draw (K, B, d)")
    t.wrap(nwb, "draw_latent", "latent draw z")
    t.wrap(nwb.NWBIteration, "__call__", "NWB iteration (Python: its own lines)")
    t.wrap(nwb.NWBIteration, "_potential_steps", "potential steps (own lines: no-grad G)")
    t.wrap(nwb.NWBIteration, "g_step", "g step (own lines: surrogate)")
    t.wrap(nwb.NWBIteration, "f_step", "f step (own lines: cat, loss)")
    t.wrap(nwb.NWBIteration, "h_step", "h step (own lines: direction, loss)")
    t.wrap(nwb.Generator, "forward", "generator h forward")
    t.wrap(BatchedICNN, "value_and_gradient", role("ICNN value+gradient"))
    t.wrap(BatchedICNN, "forward", role("ICNN forward (value)"))
    t.wrap(ConvexQuantileTerm, "value_and_gradient", role("quantile term"))
    t.wrap(ConvexQuantileTerm, "_lookup", role("quantile term: knot lookup"))
    t.wrap(InputConvexNetwork, "clip_", "clip f's z-weights")
    t.wrap(InputConvexNetwork, "convexity_penalty", "convexity penalty R(g)")
    t.wrap(torch.Tensor, "backward", "backward")
    t.wrap(torch.optim.Optimizer, "zero_grad", "optimiser zero_grad")
    t.wrap(torch.optim.Adam, "step", "optimiser step (fused Adam)")
    _fit(bench, 10, seed)  # warm caches and imports
    for d in (t.inclusive, t.exclusive, t.calls):
        d.clear()
    seconds, est = _fit(bench, n_iter, seed)
    loop = t.inclusive["training loop (Python: its own lines)"]
    lines = [
        f"fit {seconds:.2f} s, of which the training loop {loop:.2f} s "
        f"({1000 * loop / n_iter:.2f} ms / iteration); the rest is set-up "
        "(standardisation, knots, networks) and the kept rows",
        "",
        "| piece | ms / iteration | % of the loop | calls / iteration |",
        "|---|---|---|---|",
    ]
    rows = sorted(t.exclusive.items(), key=lambda kv: -kv[1])
    for lab, ex in rows:
        lines.append(
            f"| {lab} | {1000 * ex / n_iter:.2f} | {100 * ex / loop:.1f} | "
            f"{t.calls[lab] / n_iter:g} |"
        )
    return lines


def rate(bench, short: int, iters: int, repeats: int, seed: int) -> list[str]:
    """Wall-clock and CPU (``time.process_time``: this process's, so less sensitive to
    other jobs on a loaded machine) milliseconds per iteration."""
    _fit(bench, short, seed)
    wall, cpu = [], []
    for _ in range(repeats):
        t1, e1 = _fit(bench, short, seed)
        t2, e2 = _fit(bench, short + iters, seed)
        wall.append(1000 * (t2 - t1) / iters)
        cpu.append(1000 * (e2.cpu_seconds - e1.cpu_seconds) / iters)
    return [
        f"wall ms / iteration {' '.join(f'{m:.2f}' for m in wall)} (median "
        f"{np.median(wall):.2f}, {1000 / np.median(wall):.1f} it/s); CPU ms / iteration "
        f"{' '.join(f'{m:.2f}' for m in cpu)} (median {np.median(cpu):.2f}, "
        f"{1000 / np.median(cpu):.1f} it/s)"
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["rate", "breakdown"], default="rate")
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--family", choices=["a", "b"], default="a")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--n-rows", type=int, default=50_000)
    p.add_argument("--iters", type=int, default=1500)
    p.add_argument("--short", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    import skbary

    bench = _data(args.family, args.dim, args.seed, args.n_rows)
    head = [
        f"`{command('benchmarks.profile_icnn', argv)}`",
        f"skbary from {skbary.__file__}; {machine()}",
    ]
    print("\n".join(head), flush=True)
    if args.mode == "rate":
        lines = rate(bench, args.short, args.iters, args.repeats, args.seed)
    else:
        lines = breakdown(bench, args.iters, args.seed)
    import os

    lines.append(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
