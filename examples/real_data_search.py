"""Hyperparameter search on real data with ``barycenter_cost_scorer`` (no ground truth).

On real data nobody knows the true barycenter, so a grid search cannot score BW2-UVP. What
can be measured on held-out rows is the barycenter *cost*: ``sum_k a_k W2^2(Y, X_k)`` between
draws Y from the fitted barycenter and the held-out rows X_k of every input (exact OT
between equal-size subsamples). The barycenter minimises this cost, so a lower held-out cost
means a better fit that is not an artefact of the training rows. ``skbary.scorers
.barycenter_cost_scorer`` returns its negative for ``GridSearchCV``, which then needs the
flat form: ``X`` all rows, ``y`` the input of each row, split by ``StratifiedKFold`` so
every input has held-out rows.

Data: the four scanner domains of ``examples/domain_adaptation.py`` (scikit-learn's
digits, 64 pixels; original, blurred, bold, shifted). Searched: the covariance shrinkage of
``GaussianBarycenter`` and the number of support points of ``FreeSupportBarycenter``, each
by 5-fold cross-validation. As an outside check of what the cost selects, every candidate
is also used for the domain-adaptation task of that example (mean target-domain accuracy
over the four leave-one-domain-out splits; labels are not used by the search).

Run: ``python examples/real_data_search.py`` (a few minutes on 2 CPU cores) or ``--quick``
(seconds). Writes ``docs/images/real_data_search.png`` and a JSON summary (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skbary import BarycenterMapper, FreeSupportBarycenter, GaussianBarycenter
from skbary.scorers import barycenter_cost_scorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from domain_adaptation import make_domains, target_accuracies

ROOT = Path(__file__).resolve().parents[1]


def searches(quick):
    if quick:
        return {
            "GaussianBarycenter": (GaussianBarycenter(), {"shrinkage": [1e-3, 0.1, "auto"]}),
            "FreeSupportBarycenter": (
                FreeSupportBarycenter(max_iter=10, random_state=0),
                {"n_support": [30, 120]},
            ),
        }
    return {
        "GaussianBarycenter": (
            GaussianBarycenter(),
            {"shrinkage": [1e-3, 1e-2, 0.05, 0.1, 0.3, "auto"]},
        ),
        "FreeSupportBarycenter": (
            FreeSupportBarycenter(max_iter=20, random_state=0),
            {"n_support": [50, 150, 450, 1350]},
        ),
    }


def run(quick):
    X, y, domain, _ = make_domains(0, n_rows=600 if quick else None)
    cv = StratifiedKFold(3 if quick else 5, shuffle=True, random_state=0)
    rows = []
    for name, (est, grid) in searches(quick).items():
        t0 = time.perf_counter()
        search = GridSearchCV(est, grid, scoring=barycenter_cost_scorer, cv=cv, refit=False)
        search.fit(X, domain)  # flat form: y = the input (domain) of each row
        seconds = time.perf_counter() - t0
        res = search.cv_results_
        (param,) = grid
        for i, value in enumerate(res[f"param_{param}"]):
            candidate = est.__class__(**{**est.get_params(), param: value})
            Z = BarycenterMapper(candidate).fit_transform(X, groups=domain)
            rows.append(
                {
                    "estimator": name,
                    "param": param,
                    "value": value.item() if hasattr(value, "item") else value,
                    "cost": float(-res["mean_test_score"][i]),
                    "cost_sd": float(res["std_test_score"][i]),
                    "fit_s": float(res["mean_fit_time"][i]),
                    "score_s": float(res["mean_score_time"][i]),
                    "rank": int(res["rank_test_score"][i]),
                    "da_accuracy": float(np.mean(target_accuracies(Z, y, domain))),
                    "search_seconds": seconds,
                }
            )
    costs = [r["cost"] for r in rows]
    accs = [r["da_accuracy"] for r in rows]
    rho = float(spearmanr(costs, accs).statistic)
    best = min(rows, key=lambda r: r["cost"])
    return rows, {"spearman_cost_vs_accuracy": rho, "best": best, "n_rows": len(y)}


def figure(rows, info, path):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    labels = [f"{r['estimator'][:-10]}\n{r['param']}={r['value']}" for r in rows]
    colors = ["C0" if r["estimator"] == "GaussianBarycenter" else "C1" for r in rows]
    ax.barh(
        np.arange(len(rows)), [r["cost"] for r in rows], xerr=[r["cost_sd"] for r in rows],
        color=colors,
    )  # fmt: skip
    ax.set_yticks(np.arange(len(rows)), labels, fontsize=7)
    lo = min(r["cost"] - r["cost_sd"] for r in rows)
    hi = max(r["cost"] + r["cost_sd"] for r in rows)
    ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.invert_yaxis()
    ax.set(xlabel="held-out barycenter cost (5-fold mean, sd)", title="GridSearchCV scores")
    ax = axes[1]
    for r, c in zip(rows, colors):
        ax.scatter(r["cost"], r["da_accuracy"], color=c)
        ax.annotate(str(r["value"]), (r["cost"], r["da_accuracy"]), fontsize=7)
    ax.set(
        xlabel="held-out barycenter cost (lower is better)",
        ylabel="domain-adaptation accuracy (mean target)",
        title=f"outside check: Spearman rho = {info['spearman_cost_vs_accuracy']:.2f}",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds, on 600 images")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("SKBARY_EXAMPLES_QUICK") == "1"
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, info = run(quick)
    print(f"digits scanner domains: {info['n_rows']} rows, 64 pixels, 4 inputs")
    print(f"{'candidate':<40}{'held-out cost':>15}{'sd':>8}{'fit s':>8}{'DA acc':>8}")
    for r in rows:
        cand = f"{r['estimator']}({r['param']}={r['value']})"
        print(f"{cand:<40}{r['cost']:>15.2f}{r['cost_sd']:>8.2f}{r['fit_s']:>8.2f}"
              f"{r['da_accuracy']:>8.3f}")  # fmt: skip
    b = info["best"]
    rho = info["spearman_cost_vs_accuracy"]
    print(f"lowest held-out cost: {b['estimator']}({b['param']}={b['value']}); Spearman "
          f"rank correlation of cost and DA accuracy: {rho:.2f}")  # fmt: skip
    figure(rows, info, args.out / "real_data_search.png")
    summary = {"quick": quick, "results": rows, "info": info,
               "seconds": time.perf_counter() - t0}  # fmt: skip
    (args.out / "real_data_search.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {args.out / 'real_data_search.png'} ({summary['seconds']:.0f} s)")
    return summary


if __name__ == "__main__":
    main()
