"""Barycenters of the 8x8 digits 0 and 1: interpolation (Sinkhorn) versus mixture (MMD).

Cohen et al. (2021), figure 4: the Sinkhorn (W2-like) barycenter of the 0s and the 1s is a
set of images each *between* a 0 and a 1 (Proposition 1: a barycenter sample is the average
of coupled samples), the MMD barycenter is the *mixture* of the two sets (Proposition 2):
every sample is a 0 or a 1. The 8x8 digits of scikit-learn (bundled, no download) stand in
for MNIST; one fit per divergence with the default MLP generator and ``learn_transform=False``.

To quantify the two behaviours a logistic regression trained on the real 0s and 1s scores
every generated image: the mixture gives confident 0-or-1 probabilities in proportion to the
weights, the interpolation gives probabilities in between.

Saves ``docs/images/generative_digits.png``.

    .venv/bin/python examples/generative_digits.py     # ~2 x GEN_EXAMPLE_SECONDS (40 s)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from skbary import GenerativeBarycenter

SECONDS = float(os.environ.get("GEN_EXAMPLE_SECONDS", "40"))
OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "generative_digits.png"


def main() -> None:
    X, y = load_digits(return_X_y=True)
    zeros, ones = X[y == 0], X[y == 1]
    clf = LogisticRegression(max_iter=2000).fit(
        np.r_[zeros, ones], np.r_[0 * zeros[:, 0], 1 + 0 * ones[:, 0]]
    )

    samples = {}
    for divergence in ("sinkhorn", "mmd"):
        est = GenerativeBarycenter(
            divergence=divergence,
            max_time=SECONDS,
            max_iter=10**6,
            learn_transform=False,
            random_state=0,
        )
        t0 = time.perf_counter()
        est.fit([zeros, ones])  # uniform weights
        wall = time.perf_counter() - t0
        Y = np.clip(est.sample(2000, random_state=0), 0, 16)
        p = clf.predict_proba(Y)[:, 1]
        between = float(np.mean((p > 0.1) & (p < 0.9)))
        samples[divergence] = (Y, p)
        print(
            f"{divergence}: {est.n_iter_} steps in {wall:.0f} s; P(1) of the samples: "
            f"mean {p.mean():.2f}, share in (0.1, 0.9) {between:.2f}, "
            f"share > 0.9 {np.mean(p > 0.9):.2f}, share < 0.1 {np.mean(p < 0.1):.2f}"
        )

    n_show = 10
    fig, axs = plt.subplots(4, n_show, figsize=(n_show * 0.9, 4 * 1.0))
    rows = [
        ("input: 0s", zeros[:n_show]),
        ("input: 1s", ones[:n_show]),
        ("Sinkhorn barycenter", samples["sinkhorn"][0][:n_show]),
        ("MMD barycenter", samples["mmd"][0][:n_show]),
    ]
    for r, (title, imgs) in enumerate(rows):
        for c in range(n_show):
            ax = axs[r, c]
            ax.imshow(imgs[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
            ax.set_xticks([])
            ax.set_yticks([])
        axs[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(
        f"Barycenters of the 8x8 digits 0 and 1 (weights 1/2, {SECONDS:.0f} s per fit, "
        "2-core CPU): interpolation (Sinkhorn) vs mixture (MMD)",
        fontsize=10,
    )
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110, bbox_inches="tight")
    print("saved", OUT)


if __name__ == "__main__":
    main()
