"""The disk cache of built benchmarks: its folder and the ``.npz`` form of a
:class:`~skbary.datasets.congruent.CongruentBenchmark` (arrays and potential weights)."""

from __future__ import annotations

import os

import numpy as np
import torch
from numpy.typing import NDArray

from .congruent import CongruentBenchmark


def get_data_home(data_home: str | os.PathLike | None = None) -> str:
    """Folder of skbary's cached datasets: ``data_home``, else ``$SKBARY_DATA``, else
    ``~/scikit_learn_data/skbary``. Created if missing."""
    if data_home is None:
        data_home = os.environ.get("SKBARY_DATA") or os.path.join(
            "~", "scikit_learn_data", "skbary"
        )
    path = os.path.expanduser(os.fspath(data_home))
    os.makedirs(path, exist_ok=True)
    return path


def _save_congruent(bench: CongruentBenchmark, path: str) -> None:
    arrays: dict[str, NDArray] = {
        "weights": bench.weights,
        "barycenter_samples": bench.barycenter_samples,
        "barycenter_mean": bench.barycenter_mean,
        "barycenter_cov": bench.barycenter_cov,
        "betas": bench.betas,
        "left": bench.left,
        "right": bench.right,
        "pairs": bench.pairs,
    }
    for k in range(bench.n_marginals):
        arrays[f"marginal_{k}"] = bench.marginals[k]
        arrays[f"source_{k}"] = bench.marginal_sources[k]
        arrays[f"heldout_{k}"] = bench.heldout_marginals[k]
    for m, pot in enumerate(bench.potentials):
        arrays[f"pot{m}__hidden_sizes"] = np.asarray(pot.hidden_sizes)
        arrays[f"pot{m}__strong_convexity"] = np.asarray(pot.strong_convexity)
        for name, t in pot.state_dict().items():
            arrays[f"pot{m}.{name}"] = t.numpy()
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # atomic: parallel jobs never read half a file


def _load_congruent(path: str) -> CongruentBenchmark:
    from ..nn.icnn import FICNN

    with np.load(path) as f:
        data = {key: f[key] for key in f.files}
    K = len(data["weights"])
    potentials = []
    for m in range(len(data["betas"])):
        hidden = tuple(int(h) for h in data[f"pot{m}__hidden_sizes"])
        d = data["barycenter_samples"].shape[1]
        pot = FICNN(d, hidden, activation="softplus", dtype=torch.float64)
        prefix = f"pot{m}."
        state = {
            k[len(prefix) :]: torch.as_tensor(v) for k, v in data.items() if k.startswith(prefix)
        }
        pot.load_state_dict(state)
        pot.strong_convexity = float(data[f"pot{m}__strong_convexity"])
        pot.requires_grad_(False)
        potentials.append(pot)
    return CongruentBenchmark(
        marginals=[data[f"marginal_{k}"] for k in range(K)],
        weights=data["weights"],
        marginal_sources=[data[f"source_{k}"] for k in range(K)],
        barycenter_samples=data["barycenter_samples"],
        heldout_marginals=[data[f"heldout_{k}"] for k in range(K)],
        barycenter_mean=data["barycenter_mean"],
        barycenter_cov=data["barycenter_cov"],
        potentials=potentials,
        betas=data["betas"],
        left=data["left"],
        right=data["right"],
        pairs=data["pairs"].astype(np.int64),
    )
