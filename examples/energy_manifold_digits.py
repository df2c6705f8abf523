"""Manifold-constrained EgBary barycenter of the digits 0 and 1 (EgBary paper, section 5.2).

The W2 barycenter of two image distributions, computed pixel by pixel, is a blend of a 0 and
a 1 plus the entropic noise of the plan: not a digit. EgBary can instead look for the
barycenter on the manifold spanned by a generator G: with the cost ``1/2 |x - G(z)|^2`` the
barycenter is a distribution of latent codes z, and every mapped image G(z) is a generated
digit. The generator comes from the package itself: a barycenter of one input is a
generative model of that input, so ``GenerativeBarycenter().fit([digits])`` is one. The
generator is not trained by EgBary (it is a frozen constraint, not a network role); the one
trained network is the potential (``potential=``). The pixel-space fit works in standard
units (quadratic cost: ``standardize="auto"`` rescales epsilon with them); the manifold fit
does not (its barycenter lives in the generator's latent space).

Run (about 5 minutes on 2 CPU cores; writes docs/images/energy_manifold_digits.png)::

    MPLBACKEND=Agg .venv/bin/python examples/energy_manifold_digits.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skbary import EnergyBarycenter
from skbary.estimators.generative import GenerativeBarycenter

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "energy_manifold_digits.png"


def nearest_distance(Y: np.ndarray, X: np.ndarray) -> float:
    """Mean Euclidean distance from each row of Y to its nearest row of X."""
    d2 = (Y**2).sum(1)[:, None] + (X**2).sum(1)[None, :] - 2 * Y @ X.T
    return float(np.sqrt(np.maximum(d2.min(axis=1), 0)).mean())


def main(quick: bool = False) -> None:
    digits = load_digits()
    X = digits.data / 16.0  # 8x8 images in [0, 1]
    zeros, ones = X[digits.target == 0], X[digits.target == 1]
    budget = 20 if quick else 90

    t0 = time.perf_counter()
    gen = GenerativeBarycenter(  # Sinkhorn generator (defaults), a lighter network
        latent_dim=8,
        learn_transform=False,
        batch_size=128,
        generator__hidden_layer_sizes=(128, 128),
        max_time=budget,
        random_state=0,
    )
    gen.fit([np.vstack([zeros, ones])])  # one input: a generative model of 0s and 1s
    print(f"generator: {gen.n_iter_} iterations in {time.perf_counter() - t0:.0f} s")

    common = dict(epsilon=0.01, max_time=budget, random_state=0)
    t0 = time.perf_counter()
    on_manifold = EnergyBarycenter(generator=gen, batch_size=64, **common)
    on_manifold.fit([zeros, ones], [0.5, 0.5])
    print(f"manifold EgBary: {on_manifold.n_iter_} iterations in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    in_data = EnergyBarycenter(**common).fit([zeros, ones], [0.5, 0.5])
    print(f"data-space EgBary: {in_data.n_iter_} iterations in {time.perf_counter() - t0:.0f} s")

    n = 10
    rows = [("input: 0", zeros[:n])]
    rows.append(("manifold", on_manifold.decode(on_manifold.transform(zeros[:n], 0))))
    rows.append(("data space", in_data.transform(zeros[:n], 0)))
    rows.append(("input: 1", ones[:n]))
    rows.append(("manifold", on_manifold.decode(on_manifold.transform(ones[:n], 1))))
    rows.append(("data space", in_data.transform(ones[:n], 1)))

    # How far are the barycenter images from real digits? (nearest 0/1 training image)
    pool = np.vstack([zeros, ones])
    man = on_manifold.decode(on_manifold.sample(500))
    dat = in_data.sample(500)
    dist = {
        "manifold": nearest_distance(man, pool),
        "data space": nearest_distance(dat, pool),
        "generator samples": nearest_distance(gen.sample(500), pool),
    }
    print("mean distance to the nearest real 0/1 digit:", {k: round(v, 2) for k, v in dist.items()})

    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 1.0))
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(imgs[c].reshape(8, 8), 0, 1), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(
        "EgBary barycenter of digits 0 and 1 (eps=0.01): on a generator's manifold "
        "vs in pixel space",
        fontsize=9,
    )
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=120)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short budgets (smoke test)")
    main(parser.parse_args().quick)
