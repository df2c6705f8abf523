"""What every benchmark script records with its numbers: the machine and the command; the
``name=value`` settings of ``--set`` and the JSON lines diagnostics append."""

from __future__ import annotations

import ast
import json
import os
import platform
import sys

import torch


def machine() -> str:
    """Processor, cores, torch version and threads, accelerator, and the current load.

    The one-minute load average says whether other jobs shared the machine when the line
    was written (benchmarks write it when they record their results).
    """
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    accel = f"CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "CPU only"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {accel}, "
        f"torch {torch.__version__} (threads in this process {torch.get_num_threads()}; "
        f"fits use their n_threads, default 1), load average {load:.1f}"
    )


def command(module: str, argv: list[str] | None = None) -> str:
    """The command line that reproduces this run: ``python -m <module> <arguments>``."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m", module, *args])


def settings(pairs: list[str]) -> dict:
    """``name=value`` pairs (``--set``) as a dict, values read as Python literals where they
    parse (``max_iter=1500``, ``"potential__hidden_layer_sizes=(128,128)"``), else strings."""

    def value(text: str):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    return {k: value(v) for k, v in (s.split("=", 1) for s in pairs)}


def append_jsonl(path: str, row: dict) -> None:
    """Print ``row`` as one JSON line and append it to ``path``."""
    line = json.dumps(row)
    print(line, flush=True)
    with open(path, "a") as f:
        f.write(line + "\n")


def independent_projections(est, X, k: int, n_draws: int, seed: int = 0) -> tuple:
    """Two independent Monte Carlo barycentric projections of the rows X of input k (EgBary's
    map, ``n_draws`` draws each, seeds ``seed + 10`` and ``seed + 20``), for
    :func:`cross_squared_errors`."""
    return tuple(
        est.barycentric_projection(X, k, n_draws=n_draws, random_state=seed + r) for r in (10, 20)
    )


def cross_squared_errors(P1, P2, T):
    """Unbiased squared errors of a Monte Carlo barycentric projection against the map T.

    P1 and P2 are two independent projections (means of n draws each) of the same rows:
    their errors ``e = P - mu`` around the exact projection mu are independent with mean
    zero, so ``E[(P1 - T) (P2 - T)] = (mu - T)^2`` exactly (coordinatewise), while
    ``(P - T)^2`` adds the Monte Carlo variance ``Var(y | x) / n`` of the plan (about
    ``eps tr M / n``: 2.5 % of L2-UVP at eps = 1 with n = 32 on location-scatter D = 2).
    Returns the products, of the shape of the rows.
    """
    return (P1 - T) * (P2 - T)
