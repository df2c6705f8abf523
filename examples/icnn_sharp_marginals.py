"""NWB-I on sharp inputs: the appendix C.2 experiments of Fan, Taghvaei and Chen (2021).

Two cases from Claici et al. (2018, figures 4 and 6), whose inputs have no density:

* 10 uniform laws on random segments of the plane; the paper's generator is linear and
  its latent law uniform, so the barycenter it can express is a uniform law on a segment;
* 20 uniform laws on random ellipses (uniform in the angle parameter).

Each case is fitted with ``ICNNBarycenter`` (NWB-I) and compared with the discrete
free-support barycenter (POT, ``FreeSupportBarycenter``) on the barycenter cost
``sum_k a_k W2^2(Y, X_k)`` (exact OT on held-out rows; lower is better). The figure
``docs/images/icnn_sharp_marginals.png`` shows inputs, NWB-I samples and the discrete
support.

Run (about ``2 * SKBARY_ICNN_SECONDS`` plus a minute; 150 s per case by default)::

    flock /tmp/skbary-heavy.lock .venv/bin/python examples/icnn_sharp_marginals.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skbary import FreeSupportBarycenter, ICNNBarycenter
from skbary.metrics import barycenter_cost

BUDGET_S = float(os.environ.get("SKBARY_ICNN_SECONDS", "150"))
OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "icnn_sharp_marginals.png"


def random_segments(K: int, n: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """Uniform laws on K random segments: centre in [-2, 2]^2, length in [1, 4]."""
    out = []
    for _ in range(K):
        c = rng.uniform(-2, 2, size=2)
        theta = rng.uniform(0, np.pi)
        length = rng.uniform(1, 4)
        t = rng.uniform(-0.5, 0.5, size=(n, 1)) * length
        out.append(c + t * np.array([np.cos(theta), np.sin(theta)]))
    return out


def random_ellipses(K: int, n: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """Uniform (in angle) laws on K random ellipses: centre in [-3, 3]^2, axes in [0.5, 2]."""
    out = []
    for _ in range(K):
        c = rng.uniform(-3, 3, size=2)
        ax = rng.uniform(0.5, 2.0, size=2)
        rot = rng.uniform(0, np.pi)
        R = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
        phi = rng.uniform(0, 2 * np.pi, size=n)
        pts = np.stack([ax[0] * np.cos(phi), ax[1] * np.sin(phi)], axis=1)
        out.append(c + pts @ R.T)
    return out


# lr=1e-2: within a CPU budget of a minute or two, sharp inputs need a larger step than the
# default (measured on the segments, 25 s: the generator collapses onto a segment, barycenter
# cost 2.696 as the discrete one, at lr=1e-2; still a parallelogram, 2.737, at 3e-3)
CASES = {
    "10 segments": (
        random_segments,
        10,
        # the paper's choice: linear generator, uniform latent law
        {"latent_distribution": "uniform", "generator__hidden_layer_sizes": (), "lr": 1e-2},
    ),
    "20 ellipses": (random_ellipses, 20, {"lr": 1e-2}),
}


def main() -> None:
    rng = np.random.RandomState(0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    for ax, (name, (make, K, params)) in zip(axes, CASES.items()):
        rows = make(K, 6000, rng)
        train, held_out = [X[:5000] for X in rows], [X[5000:] for X in rows]
        est = ICNNBarycenter(max_time=BUDGET_S, random_state=0, **params)
        t = time.perf_counter()
        est.fit(train)
        fit_s = time.perf_counter() - t
        ref = FreeSupportBarycenter(n_support=100, max_samples_per_input=500, random_state=0)
        ref.fit(train)
        Y = est.sample(10_000, random_state=0)
        cost_nwb = barycenter_cost(Y, held_out, n_samples=1000, random_state=0)
        # the discrete law repeated to 1000 rows, so both costs use 1000-row OT problems
        atoms = np.repeat(ref.support_, 10, axis=0)
        cost_ref = barycenter_cost(atoms, held_out, n_samples=1000, random_state=0)
        print(
            f"{name}: NWB-I {est.n_iter_} iterations in {fit_s:.0f} s, barycenter cost "
            f"{cost_nwb:.4f}; free-support (100 points) {cost_ref:.4f}",
            flush=True,
        )
        for X in train:
            ax.scatter(*X[:400].T, s=1, color="0.6", alpha=0.5)
        ax.scatter(*ref.support_.T, s=30, color="tab:red", label="free-support barycenter")
        ax.scatter(*Y[:5000].T, s=1, color="tab:blue", alpha=0.3, label="NWB-I samples")
        ax.set_title(f"{name}: cost NWB-I {cost_nwb:.3f}, discrete {cost_ref:.3f}")
        ax.set_aspect("equal")
        ax.legend(loc="lower right", fontsize=8, markerscale=4)
    fig.suptitle(f"ICNNBarycenter (NWB-I) on sharp inputs, {BUDGET_S:.0f} s per fit on CPU")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
