"""ICNN's quantile terms on location-scatter: a no-regression check at equal iterations.

The acceptance task of ``bench_icnn --part nwb1`` (K = 4, weights (0.1, 0.2, 0.3, 0.4),
Gaussian base, 20,000 rows per input, seed 0) at a fixed number of outer iterations
instead of ``max_time``, fitted with the default potentials (``quantile_features="auto"``)
and without the term (``f__quantile_features=False, g__quantile_features=False``), one
after the other in one process on one torch thread: BW2-UVP of ``sample(100000)`` and
weighted L2-UVP of ``transform`` on 10,000 fresh rows per input. One JSON line per fit is
appended to ``--out``.

    python -m benchmarks.diag_icnn_scatter --dims 8 --max-iter 2000
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from benchmarks.bench_icnn import nwb1_task
from benchmarks.common import append_jsonl
from benchmarks.common import settings as parse_settings
from skbary import ICNNBarycenter
from skbary.metrics import bw_uvp, weighted_l2_uvp


def _nonlinear_rms(x: torch.Tensor, v: torch.Tensor) -> float:
    """RMS of what is left of v (B, d) after its least-squares affine fit in x (B, d)."""
    A = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    coef = torch.linalg.lstsq(A, v).solution
    return float((v - A @ coef).pow(2).sum(-1).mean().sqrt())


@torch.no_grad()
def term_report(est: ICNNBarycenter, bench, held: list, Y) -> dict:
    """Where the maps bend on Gaussian inputs, whose true maps are affine (standardised
    units, mean over the K potentials): ``{role}_nonlin``, the RMS of the map's non-affine
    part; ``{role}_term`` and ``{role}_term_nonlin``, the RMS of the quantile term's
    gradient and of its non-affine part (absent without a term). g on the held rows of
    each input, f on the barycenter sample Y. ``err_nonaffine``: the share of the
    weighted squared error of ``transform`` that is not affine in x."""
    c, s = (torch.as_tensor(v, dtype=torch.float64) for v in (est.center_, est.scale_))
    xs = {
        "g": [(torch.as_tensor(x, dtype=torch.float64) - c) / s for x in held],
        "f": [(torch.as_tensor(Y[:10_000], dtype=torch.float64) - c) / s] * len(held),
    }
    out = {}
    for role in "gf":
        net = getattr(est, f"{role}_")
        x = torch.stack(xs[role]).float()
        grad = net.gradient(x).double()
        xd = x.double()
        out[f"{role}_nonlin"] = sum(_nonlinear_rms(a, b) for a, b in zip(xd, grad)) / len(xd)
        term = getattr(net, "quantile_term", None)
        if term is not None:
            tg = term.value_and_gradient(x)[1].double()
            out[f"{role}_term"] = float(tg.pow(2).sum(-1).mean().sqrt())
            nl = sum(_nonlinear_rms(a, b) for a, b in zip(xd, tg)) / len(xd)
            out[f"{role}_term_nonlin"] = nl
    total = nonaffine = 0.0
    for k, (a, x) in enumerate(zip(bench.weights, held)):
        x = torch.as_tensor(x, dtype=torch.float64)
        err = torch.as_tensor(est.transform(x.numpy(), k) - bench.map_to_barycenter(x.numpy(), k))
        total += a * float(err.pow(2).sum(-1).mean())
        nonaffine += a * _nonlinear_rms(x, err) ** 2
    out["err_nonaffine"] = nonaffine / total
    return {k: round(v, 5) for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", nargs="+", type=int, default=[8])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iter", type=int, default=2000)
    p.add_argument("--out", default="benchmarks/results/icnn_quantiles_scatter.jsonl")
    p.add_argument("--set", action="append", default=[], help="setting name=value (both fits)")
    p.add_argument("--only", choices=["auto", "none"], default=None, help="one of the two fits")
    p.add_argument(
        "--qf", default="auto", help='quantile_features of the "auto" fit (auto, axes, ica, ...)'
    )
    p.add_argument("--roles", default="fg", help="roles whose term the first fit turns on")
    p.add_argument("--note", default=None, help="a note stored with every row")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = parse_settings(args.set)
    for D in args.dims:
        b = nwb1_task(D, args.seed)
        held = b.sample_marginals(10_000, random_state=args.seed + 2)
        for name, qf in (("auto", args.qf), ("none", False)):
            if args.only not in (None, name):
                continue
            terms = {f"{r}__quantile_features": qf if r in args.roles else False for r in "fg"}
            est = ICNNBarycenter(
                max_iter=args.max_iter, random_state=args.seed, **terms, **settings
            )
            t = time.perf_counter()
            est.fit(b.marginals, b.weights)
            fit_s = time.perf_counter() - t
            Y = est.sample(100_000, random_state=args.seed + 1)
            row = {
                "D": D, "seed": args.seed, "quantile_features": name, "settings": args.set,
                "n_iter": int(est.n_iter_), "fit_s": round(fit_s, 1),
                "load": round(os.getloadavg()[0], 1),
                "bw_uvp": float(bw_uvp(Y, b.barycenter_mean, b.barycenter_cov)),
                "l2_uvp_weighted": float(weighted_l2_uvp(est, b, held)["l2_uvp_weighted"]),
                **({} if name == "none" else {"qf": args.qf, "roles": args.roles}),
                **term_report(est, b, held, Y),
                **({} if args.note is None else {"note": args.note}),
            }  # fmt: skip
            append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
