"""The Twister barycenter with NOTBarycenter, classical and regularised (paper's figure 1).

Three inputs ``u^-1 # N(m_k, I)`` and the cost ``1/2 |u(x) - u(y)|^2`` with
``u(x) = R(0.4 |x|) x``; the classical barycenter is ``u^-1 # N(0, I)``. With the eps-KL and
gamma-energy costs and the prior N((5, 5), I) the barycenter moves toward the prior.

    flock /tmp/skbary-heavy.lock .venv/bin/python examples/notb_twister.py

writes docs/images/notb_twister.png (about 8 minutes on 2 CPU cores with the default
budgets; ``--max-time 60`` gives a rougher picture in 2 minutes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skbary import NOTBarycenter
from skbary.datasets import make_twister

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "notb_twister.png"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-time", type=float, default=240.0, help="classical fit (s)")
    ap.add_argument("--reg-time", type=float, default=120.0, help="each regularised fit (s)")
    args = ap.parse_args()

    tw = make_twister(50_000, random_state=0)
    prior_mean = np.array([5.0, 5.0])
    prior = np.random.RandomState(0).randn(20_000, 2) + prior_mean
    fits = {
        "classical": NOTBarycenter(cost=tw.cost, max_time=args.max_time, random_state=0),
        "eps-KL, eps = 1": NOTBarycenter(
            cost=tw.cost,
            plan="gaussian",
            regularization="kl",
            prior=prior,
            max_time=args.reg_time,
            random_state=0,
        ),
        "gamma-energy, gamma = 1": NOTBarycenter(
            cost=tw.cost,
            plan="stochastic",
            regularization="energy",
            prior=prior,
            max_time=args.reg_time,
            random_state=0,
        ),
    }
    for name, est in fits.items():
        est.fit(tw.marginals)
        m = est.sample(100_000).mean(0)
        print(f"{name}: {est.n_iter_} iterations in {est.fit_time_:.0f} s, mean {m.round(2)}")

    n = 1000
    fig, axes = plt.subplots(1, 5, figsize=(20, 4), sharex=True, sharey=True)
    colors = plt.get_cmap("Dark2").colors
    for k, X in enumerate(tw.marginals):
        axes[0].scatter(*X[:n].T, s=3, color=colors[k], label=f"input {k + 1}")
    axes[0].set_title("inputs")
    axes[0].legend(loc="upper left", markerscale=4)
    axes[1].scatter(*tw.sample_barycenter(n, random_state=0).T, s=3, color="black")
    axes[1].set_title("true barycenter u^-1 # N(0, I)")
    t = np.linspace(0, 2 * np.pi, 100)
    for ax, (name, est) in zip(axes[2:], fits.items()):
        ax.scatter(*est.sample(n, random_state=0).T, s=3, color="tab:red")
        Y = est.transform(tw.marginals[0][:6], 0)
        X = tw.marginals[0][:6]
        ax.quiver(*X.T, *(Y - X).T, angles="xy", scale_units="xy", scale=1, width=0.004)
        if name != "classical":
            for r in (1, 2):
                ax.plot(
                    *(prior_mean[:, None] + r * np.stack([np.cos(t), np.sin(t)])), "k--", lw=0.7
                )
        ax.set_title(f"NOT, {name}")
    for ax in axes:
        ax.set_xlim(-7, 8)
        ax.set_ylim(-7, 8)
        ax.set_aspect("equal")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
