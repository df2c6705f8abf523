"""The benchmark grid: every estimator on tasks with a known barycenter.

``python -m benchmarks.run --quick`` (``make benchmark-quick``, under 20 minutes on 2 CPU
cores: location-scatter D = 2 and 8 and the Twister, short budgets) and
``python -m benchmarks.run`` (``make benchmark``: D in {2, 4, 8, 16, 32, 64}, both bases,
three seeds, a budget per cell). Each run writes ``benchmarks/results/<name>.md`` (a table
of metric, wall time, iterations per second, time to 1% and 0.1%, and the command),
``<name>.json`` (raw rows) and ``<name>.png`` (metric against wall time per method).

Maps are scored out of sample, on fresh rows of every input (``score_benchmark``). The
time-to-accuracy columns come from :class:`MetricTracker`, a skorch-style callback that
scores ``sample`` during training every ``track_every`` seconds; its evaluation time is
excluded from the times it reports but still spends part of ``max_time``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import skbary
from benchmarks.common import command, machine
from skbary.datasets import make_location_scatter, make_twister
from skbary.metrics import bw_uvp, score_benchmark

RESULTS = Path(__file__).parent / "results"

# The papers' numbers (BENCHMARKS.md): GPU, 10^4+ iterations.
PAPER_BW_UVP_K4 = {  # WIN paper, Table 5: BW2-UVP (%) of generated samples, K = 4
    "WIN": {2: 0.01, 4: 0.02, 8: 0.01, 16: 0.08, 32: 0.11, 64: 0.23, 128: 0.38},
    "SCW2B (NWB)": {2: 0.07, 4: 0.09, 8: 0.16, 16: 0.28, 32: 0.43, 64: 0.59, 128: 1.28},
}
PAPER_L2_UVP_K3 = {  # NOT paper, Table 3: weighted L2-UVP (%) of maps, K = 3
    "NOT": {2: 0.01, 4: 0.02, 8: 0.04, 16: 0.04, 64: 0.08},
    "EgBary": {2: 0.02, 4: 0.05, 8: 0.06, 16: 0.09, 64: 0.84},
    "WIN": {2: 0.03, 4: 0.08, 8: 0.13, 16: 0.25, 64: 0.75},
}


class MetricTracker:
    """skorch-style callback: score the estimator every ``every`` seconds during fit.

    Records ``(training seconds, value)`` pairs in ``records``; the time spent scoring is
    subtracted from the reported training seconds. The interval grows to three times the
    cost of one evaluation when that is longer than ``every``. The estimator's loop calls
    callbacks at least once a second (``TrainingLoop.log_seconds``), which bounds the
    resolution of the reported times.
    """

    def __init__(self, score: Callable[[Any], float], every: float = 5.0) -> None:
        self.score = score
        self.every = every

    def initialize(self) -> MetricTracker:
        self.records: list[tuple[float, float]] = []
        self._paused = 0.0
        return self

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self._t0 = time.perf_counter()
        self._next = self._t0 + self.every

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        if now < self._next:
            return
        try:
            value = float(self.score(net))
        except Exception:  # a method whose sampler needs the finished fit
            value = float("nan")
        self.records.append((now - self._t0 - self._paused, value))
        cost = time.perf_counter() - now
        self._paused += cost
        # a slow sampler (EgBary's Langevin chains) is scored less often, so that scoring
        # takes at most a quarter of the fit's max_time
        self._next = time.perf_counter() + max(self.every, 3.0 * cost)

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        pass

    def time_to(self, threshold: float) -> float | None:
        for t, v in self.records:
            if np.isfinite(v) and v < threshold:
                return t
        return None


@dataclass
class Method:
    """How the runner builds an estimator for a budget (seconds) and a task."""

    name: str
    class_name: str
    params: Callable[[float, Any], dict] = field(default=lambda budget, task: {})
    neural: bool = True
    general_cost: bool = False

    def build(self, budget: float, task: Any) -> Any:
        cls = getattr(skbary, self.class_name)
        params = self.params(budget, task)
        if self.neural:
            params.setdefault("max_time", budget)
            params.setdefault("random_state", 0)
        if task.cost is not None and self.general_cost:
            params["cost"] = task.cost
        return cls(**params)


METHODS = [
    Method("Gaussian", "GaussianBarycenter", neural=False),
    Method(
        "FreeSupport",
        "FreeSupportBarycenter",
        lambda b, t: {"n_support": 500, "max_samples_per_input": 1000, "random_state": 0},
        neural=False,
    ),
    Method("NOT", "NOTBarycenter", general_cost=True),
    Method("WIN", "WINBarycenter"),
    Method("ICNN (NWB-I)", "ICNNBarycenter"),
    Method(
        "Generative (Sinkhorn)", "GenerativeBarycenter", lambda b, t: {"divergence": "sinkhorn"}
    ),
    Method(
        "Energy (EgBary)", "EnergyBarycenter", lambda b, t: {"epsilon": 0.01}, general_cost=True
    ),
]


@dataclass
class Task:
    name: str
    dim: int
    bench: Any
    cost: Any = None
    seed: int = 0


def location_scatter_task(dim: int, base: str, seed: int, n_samples: int) -> Task:
    bench = make_location_scatter(
        4, dim, n_samples, base=base, weights=[0.1, 0.2, 0.3, 0.4], random_state=seed
    )
    return Task(f"location-scatter K=4 {base}", dim, bench, seed=seed)


def twister_task(seed: int, n_samples: int) -> Task:
    bench = make_twister(n_samples, random_state=seed)
    return Task("Twister", 2, bench, cost=bench.cost, seed=seed)


def _twister_scores(est: Any, bench: Any, method: Method) -> dict:
    """BW2-UVP, seen through u, of each input's mapped rows against N(0, I) (worst input)."""
    fresh = bench.sample_marginals(5000, random_state=123)
    worst = 0.0
    for k, X in enumerate(fresh):
        Z = bench.u(est.transform(X, k))
        worst = max(worst, bw_uvp(Z, np.zeros(2), np.eye(2)))
    return {
        "bw_uvp": bw_uvp(bench.u(est.sample(20000, random_state=0)), np.zeros(2), np.eye(2)),
        "l2_uvp_weighted": worst,
    }


class _InFeatureSpace:
    """A quadratic-cost estimator solving the Twister through its known feature map u.

    With c(x, y) = 1/2 |u(x) - u(y)|^2 the barycenter is u^-1 of the quadratic barycenter
    of the u#P_k, so any estimator can be fitted on u(X_k) and its outputs mapped back by
    u^-1. This needs u^-1, which the general-cost methods (NOT, EgBary) never use.
    """

    def __init__(self, est: Any, bench: Any) -> None:
        self.est, self.bench = est, bench

    def set_params(self, **params: Any) -> _InFeatureSpace:
        self.est.set_params(**params)
        return self

    def fit(self, marginals: list, weights: Any) -> _InFeatureSpace:
        self.est.fit([self.bench.u(X) for X in marginals], weights)
        self.n_iter_ = getattr(self.est, "n_iter_", None)
        self.stop_reason_ = getattr(self.est, "stop_reason_", None)
        return self

    def sample(self, n: int, random_state: Any = None) -> np.ndarray:
        return self.bench.u_inverse(self.est.sample(n, random_state=random_state))

    def transform(self, X: np.ndarray, k: int) -> np.ndarray:
        return self.bench.u_inverse(self.est.transform(self.bench.u(X), k))


def run_cell(method: Method, task: Task, budget: float, track_every: float) -> dict:
    est = method.build(budget, task)
    if task.cost is not None and not method.general_cost:
        est = _InFeatureSpace(est, task.bench)
    tracker = None
    if method.neural:
        mean, cov = task.bench.barycenter_mean, task.bench.barycenter_cov
        if task.cost is None:
            tracker = MetricTracker(
                lambda net: bw_uvp(net.sample(20000, random_state=0), mean, cov), track_every
            )
            est.set_params(callbacks=[tracker])
    start = time.perf_counter()
    est.fit(task.bench.marginals, task.bench.weights)
    wall = time.perf_counter() - start
    if task.cost is None:
        scores = score_benchmark(est, task.bench, n_samples=100_000, energy_samples=0)
    else:
        scores = _twister_scores(est, task.bench, method)
    n_iter = getattr(est, "n_iter_", None)
    row = {
        "task": task.name,
        "dim": task.dim,
        "seed": task.seed,
        "method": method.name + (" (in u-space)" if isinstance(est, _InFeatureSpace) else ""),
        "bw_uvp": scores["bw_uvp"],
        "l2_uvp": scores.get("l2_uvp_weighted"),
        "wall_s": wall,
        "iters_per_s": (n_iter / wall) if (method.neural and n_iter) else None,
        "stop_reason": getattr(est, "stop_reason_", None),
        "t_1pct": tracker.time_to(1.0) if tracker else None,
        "t_01pct": tracker.time_to(0.1) if tracker else None,
        "curve": tracker.records if tracker else [],
    }
    return row


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return format(v, spec)


def write_results(
    name: str, rows: list[dict], cmd: str, budget: float, twister_budget: float
) -> Path:
    RESULTS.mkdir(exist_ok=True)
    lines = [
        f"# Benchmark `{name}`",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine()}; skbary {skbary.__version__}  ",
        f"Budget per neural fit: {budget:g} s (`max_time`); NOT and EgBary on the Twister: "
        f"{twister_budget:g} s. Maps are scored on fresh rows.  ",
        "BW2-UVP: samples vs the true barycenter. L2-UVP: weighted over inputs, maps vs the "
        "true OT maps. Twister rows: BW2-UVP through u of `sample` / worst input of "
        "`transform` against N(0, I).",
        "",
        "| task | D | method | BW2-UVP % | L2-UVP % | fit s | it/s | t(<1%) s | t(<0.1%) s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['task']} | {r['dim']} | {r['method']} | error: {r['error']} |||||||"
            )
            continue
        lines.append(
            f"| {r['task']} | {r['dim']} | {r['method']} | {_fmt(r['bw_uvp'])} | "
            f"{_fmt(r['l2_uvp'])} | {_fmt(r['wall_s'], '.1f')} | {_fmt(r['iters_per_s'], '.1f')} | "
            f"{_fmt(r['t_1pct'], '.1f')} | {_fmt(r['t_01pct'], '.1f')} |"
        )
    if any(r["task"] == "Twister" for r in rows):
        lines += [
            "",
            "Twister: NOT and EgBary solve it with its cost c(x, y) = 1/2 |u(x) - u(y)|^2, the "
            "quadratic-only methods solve the Gaussian problem of the u(X_k) and map back "
            "with u^-1 (the rows marked *in u-space*, which need u^-1). The general-cost "
            "fits need about 2,000 iterations, hence their longer budget; their paper-level "
            "runs are in `notb.md` and `energy.md`.",
        ]
    lines += _comparison(rows)
    lines += ["", "## The papers' numbers (GPU, 10^4+ iterations)", ""]
    dims = sorted({d for t in PAPER_BW_UVP_K4.values() for d in t})
    lines += [
        "BW2-UVP % of samples, K = 4 (WIN paper, Table 5):",
        "",
        "| method | " + " | ".join(f"D={d}" for d in dims) + " |",
        "|---" * (len(dims) + 1) + "|",
    ]
    for m, t in PAPER_BW_UVP_K4.items():
        lines.append(f"| {m} | " + " | ".join(_fmt(t.get(d), "g") for d in dims) + " |")
    dims = sorted({d for t in PAPER_L2_UVP_K3.values() for d in t})
    lines += [
        "",
        "Weighted L2-UVP % of maps, K = 3 (NOT paper, Table 3):",
        "",
        "| method | " + " | ".join(f"D={d}" for d in dims) + " |",
        "|---" * (len(dims) + 1) + "|",
    ]
    for m, t in PAPER_L2_UVP_K3.items():
        lines.append(f"| {m} | " + " | ".join(_fmt(t.get(d), "g") for d in dims) + " |")
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1, default=str))
    _plot(name, rows)
    return path


# which paper row each method is measured against (BENCHMARKS.md)
PAPER_ROW = {"WIN": "WIN", "ICNN (NWB-I)": "SCW2B (NWB)", "NOT": "NOT", "Energy (EgBary)": "EgBary"}


def _comparison(rows: list[dict]) -> list[str]:
    """Each neural method against FreeSupportBarycenter (same task, maps out of sample) and
    the papers' number for its dimension."""
    ok = [r for r in rows if "error" not in r and r["task"].startswith("location-scatter")]
    base = {(r["task"], r["dim"], r["seed"]): r for r in ok if r["method"] == "FreeSupport"}
    out = [
        "",
        "## Against FreeSupportBarycenter and the papers",
        "",
        "Ratios below 1 mean the method beats POT's free-support barycenter (500 points, "
        "1,000 rows per input) on the same task; both are scored out of sample. The papers' "
        "BW2-UVP is WIN Table 5 (K = 4, as here); their L2-UVP is NOT Table 3 (K = 3, "
        "weights (0.25, 0.25, 0.5)), so it is indicative only.",
        "",
        "| task | D | method | BW2-UVP % | / FreeSupport | paper BW2-UVP % | L2-UVP % "
        "| / FreeSupport | paper L2-UVP % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ok:
        fs = base.get((r["task"], r["dim"], r["seed"]))
        if fs is None or r["method"] in ("FreeSupport", "Gaussian"):
            continue
        paper = PAPER_ROW.get(r["method"])
        paper_bw = PAPER_BW_UVP_K4.get(paper, {}).get(r["dim"])
        paper_l2 = PAPER_L2_UVP_K3.get(paper, {}).get(r["dim"])

        def ratio(key: str, fs=fs, r=r) -> str:
            if r.get(key) is None or not fs.get(key):
                return "-"
            return f"{r[key] / fs[key]:.2f}"

        out.append(
            f"| {r['task']} | {r['dim']} | {r['method']} | {_fmt(r['bw_uvp'])} | "
            f"{ratio('bw_uvp')} | {_fmt(paper_bw, 'g')} | {_fmt(r['l2_uvp'])} | "
            f"{ratio('l2_uvp')} | {_fmt(paper_l2, 'g')} |"
        )
    return out


def _plot(name: str, rows: list[dict]) -> None:
    import matplotlib.pyplot as plt

    dims = sorted({r["dim"] for r in rows if r.get("curve")})
    if not dims:
        return
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4), squeeze=False)
    for ax, d in zip(axes[0], dims):
        for r in rows:
            if r["dim"] == d and r.get("curve"):
                t, v = zip(*r["curve"])
                ax.plot(t, v, marker=".", label=r["method"])
        ax.set_yscale("log")
        ax.set_xlabel("training seconds")
        ax.set_ylabel("BW2-UVP % of samples")
        ax.set_title(f"location-scatter D={d}")
        ax.axhline(1.0, color="gray", lw=0.5)
        ax.axhline(0.1, color="gray", lw=0.5, ls="--")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="D = 2, 8 and the Twister, short budgets"
    )
    parser.add_argument("--budget", type=float, default=None, help="seconds per neural fit")
    parser.add_argument(
        "--twister-budget",
        type=float,
        default=None,
        help="seconds for the general-cost methods (NOT, EgBary) on the Twister (default: "
        "100 with --quick, else --budget): they solve it with its cost and need about 2,000 "
        "iterations (NOT: BW2-UVP 111%% after 37 s, 0.84%% after 86 s, 0.07%% at 120 s)",
    )
    parser.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    parser.add_argument("--dims", nargs="*", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--name", default=None, help="results file name")
    args = parser.parse_args(argv)

    quick = args.quick
    budget = args.budget or (25.0 if quick else 300.0)
    twister_budget = args.twister_budget or (100.0 if quick else budget)
    dims = args.dims or ([2, 8] if quick else [2, 4, 8, 16, 32, 64])
    bases = ["gaussian"] if quick else ["gaussian", "uniform"]
    seeds = range(args.seeds or (1 if quick else 3))
    n_samples = 20_000 if quick else 50_000
    name = args.name or ("quick" if quick else "full")
    methods = [m for m in METHODS if args.methods is None or m.name in args.methods]
    cmd = command("benchmarks.run", argv)

    tasks = [location_scatter_task(d, b, s, n_samples) for s in seeds for b in bases for d in dims]
    tasks += [twister_task(s, n_samples) for s in seeds]
    rows = []
    for task in tasks:
        for method in methods:
            if not hasattr(skbary, method.class_name):
                rows.append(
                    {
                        "task": task.name,
                        "dim": task.dim,
                        "method": method.name,
                        "error": f"{method.class_name} is not in this build",
                    }
                )
                continue
            print(
                f"[{time.strftime('%H:%M:%S')}] {task.name} D={task.dim} {method.name}", flush=True
            )
            try:
                cell_budget = (
                    twister_budget if task.cost is not None and method.general_cost else budget
                )
                row = run_cell(method, task, cell_budget, track_every=max(cell_budget / 20, 1.0))
            except Exception as exc:  # record, keep going
                row = {
                    "task": task.name,
                    "dim": task.dim,
                    "method": method.name,
                    "error": f"{type(exc).__name__}: {exc}"[:200],
                }
            rows.append(row)
            print({k: v for k, v in row.items() if k != "curve"}, flush=True)
            write_results(name, rows, cmd, budget, twister_budget)
    path = write_results(name, rows, cmd, budget, twister_budget)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
