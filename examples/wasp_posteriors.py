"""Subset posteriors (WASP): combine posteriors computed on data shards by their barycenter.

Srivastava, Li & Dunson (2018, "Scalable Bayes via barycenter in Wasserstein space", JMLR)
split the data into S shards, sample each shard's *subset posterior* with the likelihood
raised to the power S (so that each subset posterior has roughly the spread of the full
posterior instead of being S times too wide), and combine the S subset posteriors by their
W2 barycenter. This example does it for Bayesian logistic regression on scikit-learn's
bundled breast-cancer data and compares the barycenter with the full-data posterior.

Model: 569 tumours, ``malignant`` against an intercept and five standardised "mean"
features that are not near-copies of one another (radius, texture, smoothness, symmetry,
fractal dimension; radius, perimeter and area are almost collinear), d = 6 coefficients,
prior N(0, 2^2 I). Sampler (inside the example, numpy):
preconditioned MALA (Metropolis-adjusted Langevin) with the Laplace covariance at the mode as
preconditioner, 32 chains vectorised, step size adapted during burn-in to an acceptance rate
near 0.57. The same sampler draws the full-data posterior (the reference) and, with another
seed, a second full-data sample whose distance to the first is the Monte-Carlo noise floor.

For S = 2, 4 and 8 shards, compared with the full-data posterior: one subset posterior;
the pooled draws of all subset posteriors (their mixture, the naive combination); the WASP
barycenter with ``GaussianBarycenter`` and with ``FreeSupportBarycenter``. Metrics: energy
distance, the error of the mean in posterior standard deviations (``|m - m_full|`` in the
Mahalanobis norm of the full posterior), and the relative Frobenius error of the covariance.
The mean of the barycenter is the mean of the subset means, so WASP inherits the small-shard
bias of each subset posterior (logistic regression on a few hundred rows over-estimates
|theta|); the barycenter fixes the spread, not that bias. The table shows where it bites.

Run: ``python examples/wasp_posteriors.py`` (a few minutes on 2 CPU cores) or ``--quick``
(seconds). Writes ``docs/images/wasp_posteriors.png`` and a JSON summary (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import expit, log_expit
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import StratifiedKFold

from skbary import FreeSupportBarycenter, GaussianBarycenter
from skbary.metrics import energy_distance

ROOT = Path(__file__).resolve().parents[1]
PRIOR_SD = 2.0


FEATURES = ["radius", "texture", "smoothness", "symmetry", "fractal dimension"]


def load_data():
    """Intercept and five standardised 'mean' features; y = 1 for malignant."""
    data = load_breast_cancer()
    names = list(data.feature_names)
    cols = [names.index(f"mean {f}") for f in FEATURES]
    F = data.data[:, cols]
    F = (F - F.mean(0)) / F.std(0)
    X = np.column_stack([np.ones(len(F)), F])
    y = (data.target == 0).astype(np.float64)  # target 0 is malignant in sklearn
    names = ["intercept"] + [data.feature_names[i].removeprefix("mean ") for i in cols]
    return X, y, names


class Posterior:
    """log p(theta) = S * sum_i log p(y_i | x_i, theta) + log N(theta; 0, PRIOR_SD^2 I)."""

    def __init__(self, X, y, power=1.0):
        self.X, self.y, self.power = X, y, float(power)

    def logp_grad(self, theta):
        """theta: (C, d) -> log density (C,) and gradient (C, d)."""
        z = theta @ self.X.T  # (C, n)
        loglik = (self.y * log_expit(z) + (1 - self.y) * log_expit(-z)).sum(axis=1)
        logp = self.power * loglik - 0.5 * (theta**2).sum(axis=1) / PRIOR_SD**2
        grad = self.power * (self.y - expit(z)) @ self.X - theta / PRIOR_SD**2
        return logp, grad

    def laplace(self, n_newton=50):
        """Mode and inverse Hessian (the Laplace covariance) by Newton's method."""
        theta = np.zeros(self.X.shape[1])
        for _ in range(n_newton):
            p = expit(self.X @ theta)
            grad = self.power * self.X.T @ (self.y - p) - theta / PRIOR_SD**2
            H = self.power * (self.X.T * (p * (1 - p))) @ self.X + np.eye(len(theta)) / PRIOR_SD**2
            step = np.linalg.solve(H, grad)
            theta = theta + step
            if np.abs(step).max() < 1e-10:
                break
        return theta, np.linalg.inv(H)


def mala(post, n_draws, n_chains=32, burn=400, thin=4, seed=0):
    """Preconditioned MALA; returns (n_draws, d) draws and the mean acceptance rate."""
    rng = np.random.RandomState(seed)
    mode, cov = post.laplace()
    L = np.linalg.cholesky(cov)
    d = len(mode)
    theta = mode + rng.standard_normal((n_chains, d)) @ L.T
    logp, grad = post.logp_grad(theta)
    h = 1.2 / d ** (1 / 6)  # step in units of the preconditioner; adapted during burn-in
    n_keep = -(-n_draws // n_chains)
    draws, accepted, steps = [], 0.0, 0
    for it in range(burn + n_keep * thin):
        drift = 0.5 * h**2 * grad @ cov  # cov is symmetric
        prop = theta + drift + h * rng.standard_normal((n_chains, d)) @ L.T
        logp_p, grad_p = post.logp_grad(prop)
        # log q(theta | prop) - log q(prop | theta), with metric cov^-1
        fwd = theta - prop - 0.5 * h**2 * grad_p @ cov
        bwd = prop - theta - drift
        Linv_f = np.linalg.solve(L, fwd.T)
        Linv_b = np.linalg.solve(L, bwd.T)
        log_q = -0.5 * ((Linv_f**2).sum(0) - (Linv_b**2).sum(0)) / h**2
        accept = np.log(rng.uniform(size=n_chains)) < logp_p - logp + log_q
        theta[accept], logp[accept], grad[accept] = prop[accept], logp_p[accept], grad_p[accept]
        rate = accept.mean()
        if it < burn:
            h *= np.exp(0.5 * (rate - 0.57))  # Robbins-Monro style step adaptation
        else:
            accepted += rate
            steps += 1
            if (it - burn) % thin == thin - 1:
                draws.append(theta.copy())
    out = np.concatenate(draws)[:n_draws]
    return out, accepted / steps


def compare(Y, ref):
    """Energy distance, mean error (posterior sds, Mahalanobis) and covariance error."""
    m_ref, C_ref = ref.mean(0), np.cov(ref, rowvar=False)
    dm = Y.mean(0) - m_ref
    return {
        "energy": energy_distance(Y, ref),
        "mean_err_sd": float(np.sqrt(dm @ np.linalg.solve(C_ref, dm))),
        "cov_err_rel": float(
            np.linalg.norm(np.cov(Y, rowvar=False) - C_ref) / np.linalg.norm(C_ref)
        ),
    }


def run(shard_counts, n_draws, seed=0, fs_support=1000, fs_samples=2000):
    """Full-data posterior, then for each S: S subset posteriors and their combinations."""
    X, y, names = load_data()
    t0 = time.perf_counter()
    full, acc_full = mala(Posterior(X, y), n_draws, seed=seed)
    floor, _ = mala(Posterior(X, y), n_draws, seed=seed + 100)
    info = {
        "n": len(y),
        "d": X.shape[1],
        "n_draws": n_draws,
        "acceptance_full": acc_full,
        "sampling_seconds_full_x2": time.perf_counter() - t0,
        "noise_floor": compare(floor, full),
    }
    results, keep = {}, {}
    for n_shards in shard_counts:
        # stratified shards: each sees both classes in the same proportion
        cv = StratifiedKFold(n_shards, shuffle=True, random_state=seed)
        t0 = time.perf_counter()
        subsets, acc_sub = [], []
        for s, (_, rows) in enumerate(cv.split(X, y)):
            post = Posterior(X[rows], y[rows], power=n_shards)  # likelihood^S, as WASP does
            draws, rate = mala(post, n_draws, seed=seed + 1000 * n_shards + s)
            subsets.append(draws)
            acc_sub.append(rate)
        t_sub = time.perf_counter() - t0

        estimates, seconds = {}, {}
        t0 = time.perf_counter()
        gauss = GaussianBarycenter(random_state=seed).fit(subsets)
        estimates["WASP, GaussianBarycenter"] = gauss.sample(n_draws)
        seconds["WASP, GaussianBarycenter"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        free = FreeSupportBarycenter(
            n_support=fs_support, max_samples_per_input=fs_samples, max_iter=30,
            random_state=seed,
        ).fit(subsets)  # fmt: skip
        estimates["WASP, FreeSupportBarycenter"] = free.sample(n_draws)
        seconds["WASP, FreeSupportBarycenter"] = time.perf_counter() - t0
        estimates["one subset posterior"] = subsets[0]
        pooled = np.concatenate(subsets)
        pick = np.random.RandomState(seed).choice(len(pooled), n_draws, replace=False)
        estimates["pooled subset draws (mixture)"] = pooled[pick]
        rows = {name: compare(Y, full) for name, Y in estimates.items()}
        for name in rows:
            rows[name]["seconds"] = seconds.get(name)
        results[n_shards] = {
            "rows": rows,
            "shard_size": int(len(y) // n_shards),
            "acceptance_subsets": acc_sub,
            "sampling_seconds_subsets": t_sub,
        }
        keep[n_shards] = (subsets, estimates)
    return results, info, full, keep, names


def figure(full, keep, results, info, names, path):
    shown = 4 if 4 in keep else max(keep)
    subsets, estimates = keep[shown]
    sd = full.std(0)
    i, j = np.argsort(-np.abs(full.mean(0)) / sd)[:2]  # the two best-determined coefficients
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    ax = axes[0]
    for s, Y in enumerate(subsets):
        ax.scatter(Y[:400, i], Y[:400, j], s=3, alpha=0.3, color=f"C{s + 2}",
                   label=f"{shown} subset posteriors" if s == 0 else None)  # fmt: skip
    ax.scatter(full[:800, i], full[:800, j], s=3, color="k", alpha=0.4, label="full posterior")
    W = estimates["WASP, GaussianBarycenter"]
    ax.scatter(W[:800, i], W[:800, j], s=3, color="C0", alpha=0.4, label="WASP (Gaussian)")
    ax.set(xlabel=names[i], ylabel=names[j], title=f"{shown} shards: subsets, full, barycenter")
    ax.legend(markerscale=4, fontsize=8)
    ax = axes[1]
    S = sorted(results)
    curves = {
        "WASP, GaussianBarycenter": "C0",
        "WASP, FreeSupportBarycenter": "C1",
        "pooled subset draws (mixture)": "C2",
        "one subset posterior": "C3",
    }
    for name, c in curves.items():
        ax.plot(S, [results[k]["rows"][name]["energy"] for k in S], "o-", color=c, label=name)
    noise = abs(info["noise_floor"]["energy"])
    ax.axhline(noise, color="k", ls=":", label="|2nd full run| (Monte-Carlo noise)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(S, [str(k) for k in S])
    ax.set(xlabel="number of shards S", ylabel="energy distance to the full posterior",
           title="error against the number of shards")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("SKBARY_EXAMPLES_QUICK") == "1"
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if quick:
        results, info, full, keep, names = run([2], 1000, fs_support=200, fs_samples=500)
    else:
        results, info, full, keep, names = run([2, 4, 8], 8000)
    print(
        f"breast cancer: n={info['n']}, d={info['d']}, {info['n_draws']} draws per posterior, "
        f"MALA acceptance (full data) {info['acceptance_full']:.2f}"
    )
    head = f"{'against the full-data posterior':<34}{'energy':>9}{'mean err (sd)':>15}"
    print(f"{head}{'cov err':>9}{'fit s':>7}")
    nf = info["noise_floor"]
    print(f"{'2nd full-data run (noise floor)':<34}{nf['energy']:>9.4f}"
          f"{nf['mean_err_sd']:>15.3f}{nf['cov_err_rel']:>9.3f}")  # fmt: skip
    for n_shards, res in results.items():
        acc = ", ".join(f"{a:.2f}" for a in res["acceptance_subsets"])
        print(f"S = {n_shards} shards of ~{res['shard_size']} rows (MALA acceptance {acc})")
        for name, r in res["rows"].items():
            fit = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
            print(f"  {name:<32}{r['energy']:>9.4f}{r['mean_err_sd']:>15.3f}"
                  f"{r['cov_err_rel']:>9.3f}{fit:>7}")  # fmt: skip
    figure(full, keep, results, info, names, args.out / "wasp_posteriors.png")
    summary = {"quick": quick, "results": results, "info": info,
               "seconds": time.perf_counter() - t0}  # fmt: skip
    (args.out / "wasp_posteriors.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {args.out / 'wasp_posteriors.png'} ({summary['seconds']:.0f} s)")
    return summary


if __name__ == "__main__":
    main()
