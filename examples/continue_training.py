"""Training the way skorch users train: watch, continue, checkpoint, resume.

A NOT barycenter of three 2-D inputs with a known barycenter is trained in rounds:

1. ``warm_start=True``: every ``fit`` continues the networks, Adam's moments and the history
   (``n_iter_`` counts on), with a held-out score written into the history by
   :class:`skbary.callbacks.HeldOutScoring` (here the benchmark's BW2-UVP);
2. ``partial_fit(X, n_iter=...)``: a given number of further iterations;
3. ``Checkpoint`` saves networks, optimisers and history during a fit; a *new* estimator
   with ``LoadInitState`` resumes it (after a crash, or a fit stopped with Ctrl-C).

Saves ``continue_training.png`` (the loss and the held-out score against the iteration
number, across all rounds) and ``continue_training.json``. Run
``python examples/continue_training.py`` (``--quick`` for a small budget).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from skorch.callbacks import Checkpoint, LoadInitState

from skbary import NOTBarycenter
from skbary.callbacks import HeldOutScoring
from skbary.datasets import make_location_scatter
from skbary.scorers import make_bw_uvp_scorer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budget")
    parser.add_argument("--out", default=".", help="directory of the figure and summary")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rounds = 60 if args.quick else 500  # iterations per round
    bench = make_location_scatter(
        n_marginals=3, n_features=2, n_samples=5_000, weights=[0.25, 0.25, 0.5], random_state=0
    )
    uvp = make_bw_uvp_scorer(bench, n_samples=2_000 if args.quick else 20_000)  # -BW2-UVP
    score = HeldOutScoring(uvp, name="neg_bw_uvp", every=max(rounds // 6, 1))
    settings = dict(batch_size=256, random_state=0)

    # 1. warm starts: two fits, one continued model
    est = NOTBarycenter(max_iter=rounds, warm_start=True, callbacks=[score], **settings)
    est.fit(bench.marginals, bench.weights)
    est.fit(bench.marginals, bench.weights)
    # 2. a given number of further iterations
    est.partial_fit(bench.marginals, weights=bench.weights, n_iter=rounds // 2)
    n_continued = est.n_iter_

    # 3. checkpoint a fit, resume it in a new estimator
    with tempfile.TemporaryDirectory() as directory:
        every = max(rounds // 10, 1)  # save every `every` iterations
        cp = Checkpoint(monitor=lambda net: len(net.history) % every == 0, dirname=directory)
        first = NOTBarycenter(max_iter=rounds, callbacks=[cp], **settings)
        first.fit(bench.marginals, bench.weights)
        resumed = NOTBarycenter(max_iter=rounds, callbacks=[LoadInitState(cp)], **settings)
        resumed.fit(bench.marginals, bench.weights)

    h = est.history_
    scored = [(r["epoch"], -r["neg_bw_uvp"]) for r in h if "neg_bw_uvp" in r]
    summary = {
        "quick": bool(args.quick),
        "iterations_per_round": rounds,
        "n_iter_continued": int(n_continued),
        "history_rows": len(h),
        "bw_uvp_by_iteration": scored,
        "bw_uvp_final": float(-uvp(est)),
        "resumed_n_iter": int(resumed.n_iter_),
        "resumed_bw_uvp": float(-uvp(resumed)),
        "first_half_bw_uvp": float(-uvp(first)),
    }

    fig, (ax_loss, ax_uvp) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.array(h[:, "epoch"])
    ax_loss.plot(epochs, h[:, "train_loss"], lw=0.8)
    for boundary in (rounds, 2 * rounds):
        for ax in (ax_loss, ax_uvp):
            ax.axvline(boundary, color="0.6", ls="--", lw=0.8)
    ax_loss.set(xlabel="iteration (history_ 'epoch')", ylabel="train_loss (V_T)",
                title="three calls of fit/partial_fit, one history")  # fmt: skip
    x, y = zip(*scored, strict=True)
    ax_uvp.semilogy(x, y, "o-")
    ax_uvp.set(xlabel="iteration", ylabel="BW2-UVP % (HeldOutScoring)", title="held-out score")
    fig.tight_layout()
    fig.savefig(out / "continue_training.png", dpi=110)
    plt.close(fig)
    (out / "continue_training.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
