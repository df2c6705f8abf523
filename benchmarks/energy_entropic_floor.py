"""The exact EgBary solution on product measures: what a perfect EnergyBarycenter scores.

EgBary solves ``min_Q sum_k a_k EOT_eps(P_k, Q)`` with ``EOT_eps(P, Q) = min_pi E_pi c -
eps E_{x~P} H(pi(.|x))`` (the conditional entropy of the plan; quadratic cost ``c =
|x - y|^2 / 2``). On product measures (:func:`skbary.datasets.make_product_measures`; in
the rotated family in the frame of the independent axes) the cost, the entropy and the
inputs split over the coordinates, so the solution is the product of the 1-D solutions.
Each is computed on a grid: the plan from x is ``pi(y | x) ∝ exp((f_k(y) - c(x, y)) / eps)``,
the dual potentials are congruent (``sum_k a_k f_k = 0``), and at the optimum the plans'
second marginals ``q_k = E_{x~P_k} pi(. | x)`` agree (= Q_eps). The iteration

    f_k <- f_k + eps (sum_j a_j log q_j - log q_k)

keeps the congruence and stops where the q_k agree; it starts from the unregularised
potentials (``f_k' (y) = y - S_k(y)``, S_k the inverse of the true map T_k), so it only
has to find the O(eps) correction. The inputs are represented by ``--n-levels`` quantile
midpoints per coordinate.

Reported (in % of the true barycenter's total variance, as the benchmarks score):

* ``l2_floor``: weighted L2-UVP of the exact barycentric projections ``E[y | x]`` against
  the unregularised maps T_k: no EgBary (at this eps) scores below it with its
  ``barycentric_projection``;
* ``l2_draw``: the same for one draw of the plan per row (what ``transform`` returns):
  the floor plus the plans' conditional variance;
* ``marg_w2_floor``: the marginal W2 of Q_eps against the true barycenter (what draws of
  the exact plans, ``sample``, score with infinitely many draws).

    python -m benchmarks.energy_entropic_floor --family a --seeds 0 --n-levels 1000 --n-iter 200
    python -m benchmarks.energy_entropic_floor --check-gaussian   # against the closed form
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.special import logsumexp

from skbary.datasets import make_product_measures

WEIGHTS = (0.2, 0.3, 0.5)


def _levels(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def solve_1d(coords, weights, eps: float, n_levels: int, step: float, n_iter: int, tol: float):
    """Exact 1-D EgBary solution for the laws ``coords`` (one per input) on a grid.

    Returns the input levels x (K, n), the exact projections (K, n), the plans'
    conditional variances (K, n), the true map T (K, n), the grid y, Q_eps's masses on it
    and the final mismatch ``max_k |log q_k - sum_j a_j log q_j|`` on its bulk.
    """
    a = np.asarray(weights, dtype=np.float64)
    u = _levels(n_levels)
    x = np.stack([c.ppf(u) for c in coords])  # (K, n) quantile midpoints of every input
    T = (a[:, None] * x).sum(0)  # barycenter quantiles Q(u) = sum a_k F_k^-1(u): T_k(x_ki)
    lo, hi = min(x.min(), T.min()) - 8 * np.sqrt(eps), max(x.max(), T.max()) + 8 * np.sqrt(eps)
    y = np.arange(lo, hi + step, step)
    # unregularised start: f_k'(y) = y - S_k(y), S_k(y) = F_k^-1(G(y)) (G the barycenter cdf)
    S = np.stack([np.interp(y, T, xk) for xk in x])
    f = np.cumsum(y[None, :] - S, axis=1) * step
    f -= (a[:, None] * f).sum(0)  # exactly congruent
    mismatch = np.inf
    for _ in range(n_iter):
        logq, proj, var = [], [], []
        for k in range(len(a)):
            L = (f[k][None, :] - 0.5 * (x[k][:, None] - y[None, :]) ** 2) / eps
            L -= logsumexp(L, axis=1, keepdims=True)
            P = np.exp(L)  # (n, ny) plans pi(y | x_i)
            logq.append(np.log(P.mean(0) + 1e-300))
            m = P @ y
            proj.append(m)
            var.append(P @ y**2 - m**2)
        logq = np.stack(logq)
        bar = (a[:, None] * logq).sum(0)
        mass = np.exp(bar)
        bulk = mass > 1e-8 * mass.max()
        mismatch = float(np.abs(logq - bar)[:, bulk].max())
        if mismatch < tol:
            break
        f += eps * (bar[None, :] - logq)
    q = np.exp(bar)  # Q_eps on the grid (the q_k agree at the solution)
    q /= q.sum()
    return x, np.stack(proj), np.stack(var), np.broadcast_to(T, x.shape), y, q, mismatch


def floor(bench, eps: float, n_levels: int, step: float, n_iter: int, tol: float) -> dict:
    """The exact EgBary scores of one instance (see the module's docstring)."""
    a = np.asarray(bench.weights, dtype=np.float64)
    tv = float(np.sum(bench.barycenter_variances))
    d = bench.n_features
    l2 = np.zeros((len(a), d))
    noise = np.zeros((len(a), d))
    mw2 = np.zeros(d)
    worst = 0.0
    u = _levels(n_levels)
    for j in range(d):
        coords = [bench.coordinates[k][j] for k in range(len(a))]
        x, proj, var, T, y, q, mismatch = solve_1d(coords, a, eps, n_levels, step, n_iter, tol)
        worst = max(worst, mismatch)
        l2[:, j] = ((proj - T) ** 2).mean(1)
        noise[:, j] = var.mean(1)
        # W2 between Q_eps (grid masses q) and the true barycenter (quantiles T[0] at u)
        cdf = np.cumsum(q)
        q_eps = np.interp(u, cdf - q / 2, y)
        mw2[j] = np.mean((q_eps - T[0]) ** 2)
    pct = 100.0 / tv
    return {
        "eps": eps,
        "l2_floor": float(pct * (a @ l2.sum(1))),
        "l2_draw": float(pct * (a @ (l2 + noise).sum(1))),
        "marg_w2_floor": float(pct * mw2.sum()),
        "l2_floor_per_coord": (pct * (a @ l2)).round(4).tolist(),
        "noise_per_coord": (pct * (a @ noise)).round(4).tolist(),
        "max_log_mismatch": worst,
    }


def check_gaussian(eps: float = 0.1) -> dict:
    """The grid solver against the closed form on centred 1-D Gaussians
    (:func:`skbary.bures.entropic_bures_barycenter`): the exact projections are ``x ->
    M_k x`` and the plans' variances ``eps M_k``."""
    from scipy import stats

    from skbary.bures import entropic_bures_barycenter

    sds = (0.5, 1.0, 2.0)
    laws = [stats.norm(0.0, s) for s in sds]
    x, proj, var, _, _, _, mismatch = solve_1d(
        laws, WEIGHTS, eps, 1000, np.sqrt(eps) / 10, 400, 1e-6
    )
    _, M = entropic_bures_barycenter(np.array([[[s**2]] for s in sds]), np.array(WEIGHTS), eps)
    return {
        "eps": eps,
        "slopes": [float(np.polyfit(x[k], proj[k], 1)[0]) for k in range(3)],
        "exact_M": [float(M[k][0, 0]) for k in range(3)],
        "variances": [float(v.mean()) for v in var],
        "exact_eps_M": [float(eps * M[k][0, 0]) for k in range(3)],
        "max_log_mismatch": mismatch,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="a", choices=["a", "b"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--eps", nargs="+", type=float, default=[0.01])
    p.add_argument("--n-levels", type=int, default=2000)
    p.add_argument("--step", type=float, default=None, help="grid step (default sqrt(eps)/10)")
    p.add_argument("--n-iter", type=int, default=300)
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--check-gaussian", action="store_true", help="check against the closed form")
    args = p.parse_args(argv)
    if args.check_gaussian:
        print(json.dumps(check_gaussian()))
        return
    for seed in args.seeds:
        bench = make_product_measures(
            3, args.d, 2, weights=WEIGHTS, rotation=args.family == "b", random_state=seed
        )
        for eps in args.eps:
            step = args.step or np.sqrt(eps) / 10
            r = floor(bench, eps, args.n_levels, step, args.n_iter, args.tol)
            print(json.dumps({"family": args.family, "seed": seed, **r}), flush=True)


if __name__ == "__main__":
    main()
