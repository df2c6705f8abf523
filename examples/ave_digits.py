"""Ave, digits!: three inputs built so that their barycenter is the 8x8 digits distribution.

``load_ave_digits`` applies the congruent-potential recipe of the WIN paper (section 5) to
scikit-learn's bundled digits: two random strongly convex potentials (input-convex network
plus a small quadratic), their beta-left/right pairs, and their combination (12) give maps
``grad psi_k`` with ``1/4 grad psi_1 + 1/2 grad psi_2 + 1/4 grad psi_3 = id``. Each input is
the pushforward of a disjoint part of the digits, so the digits themselves are the
barycenter for weights (1/4, 1/2, 1/4).

The figure shows held-out digits (the barycenter), the same digits pushed to each input,
and the weighted average of the three, which gives the digits back. It also prints how far
each input is from the barycenter and how exactly the maps average to the identity.

Run: ``python examples/ave_digits.py`` (a few seconds; the dataset is cached after the first
build). Writes ``docs/images/ave_digits.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skbary.datasets import load_ave_digits

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path, n_show: int = 10) -> None:
    bench = load_ave_digits(random_state=0)
    Z = bench.barycenter_samples[:n_show]
    inputs = [bench.map_from_barycenter(Z, k) for k in range(3)]
    avg = sum(a * X for a, X in zip(bench.weights, inputs, strict=True))

    spread = np.sqrt(np.trace(bench.barycenter_cov) / 64)
    for k, (Xk, Sk) in enumerate(zip(bench.marginals, bench.marginal_sources, strict=True)):
        moved = np.sqrt(np.mean((Xk - Sk) ** 2))
        print(
            f"input {k + 1}: {len(Xk)} images, rms pixel change {moved:.3f} "
            f"({moved / spread:.2f} x the digits' pixel std)"
        )
    err = np.linalg.norm(avg - Z) / np.linalg.norm(Z)
    print(f"sum_k a_k grad psi_k(z) = z to relative error {err:.1e}")

    rows = [
        ("barycenter\n(digits)", Z),
        ("input 1\n(a = 1/4)", inputs[0]),
        ("input 2\n(a = 1/2)", inputs[1]),
        ("input 3\n(a = 1/4)", inputs[2]),
        ("weighted\naverage", avg),
    ]
    fig, axes = plt.subplots(len(rows), n_show, figsize=(1.0 * n_show + 1.2, 1.05 * len(rows)))
    for r, (label, images) in enumerate(rows):
        for c in range(n_show):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(8, 8), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(
        "Ave, digits!: inputs grad psi_k # digits; their W2 barycenter is the digits", fontsize=10
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"saved {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "ave_digits.png")
    args = parser.parse_args()
    main(args.out)
