"""Matplotlib helpers: inputs and barycenter samples, maps, training curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["plot_barycenter", "plot_maps", "plot_history"]


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 5))
    return ax


def plot_barycenter(
    marginals: Sequence[ArrayLike],
    samples: ArrayLike,
    *,
    ax: Any = None,
    max_points: int = 2000,
    title: str | None = None,
    input_names: Sequence[str] | None = None,
) -> Any:
    """Scatter the inputs (first two coordinates) and barycenter samples on one axis.

    Parameters
    ----------
    marginals : sequence of array-like (n_k, d)
        The inputs.
    samples : array-like (n, d)
        Draws from the barycenter.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    max_points : int, default=2000
        Points shown per cloud.
    title : str, optional
    input_names : sequence of str, optional
        Legend labels of the inputs (e.g. a fitted estimator's ``input_labels_`` or the
        groups' names); "input 0", "input 1", ... when None.

    Returns
    -------
    ax : matplotlib Axes
    """
    if input_names is not None and len(input_names) != len(marginals):
        raise ValueError(f"input_names has {len(input_names)} names for {len(marginals)} inputs.")
    ax = _axes(ax)
    for k, X in enumerate(marginals):
        X = np.asarray(X)[:max_points]
        label = f"input {k}" if input_names is None else str(input_names[k])
        ax.scatter(X[:, 0], X[:, 1], s=2, alpha=0.25, label=label)
    Y = np.asarray(samples)[:max_points]
    ax.scatter(Y[:, 0], Y[:, 1], s=2, c="black", alpha=0.5, label="barycenter")
    ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_maps(
    X: ArrayLike, Z: ArrayLike, *, ax: Any = None, max_arrows: int = 200, color: str = "C0"
) -> Any:
    """Arrows from rows of an input ``X`` to their images ``Z`` on the barycenter."""
    ax = _axes(ax)
    X, Z = np.asarray(X)[:max_arrows], np.asarray(Z)[:max_arrows]
    ax.quiver(
        X[:, 0],
        X[:, 1],
        Z[:, 0] - X[:, 0],
        Z[:, 1] - X[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        width=0.002,
        color=color,
        alpha=0.5,
    )
    ax.scatter(Z[:, 0], Z[:, 1], s=8, c=color, edgecolors="black", linewidths=0.3)
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def plot_history(estimator: Any, *, ax: Any = None, keys: Sequence[str] | None = None) -> Any:
    """Every loss in ``estimator.history_`` against the iteration."""
    ax = _axes(ax)
    history = estimator.history_
    skip = {"epoch", "phase", "iteration", "time", "batches"}
    names = keys or [k for k in history[-1] if k not in skip]
    epochs = history[:, "epoch"]
    for name in names:
        ax.plot(epochs, history[:, name], label=name, lw=1)
    ax.set_xlabel("iteration")
    ax.legend(fontsize=8)
    return ax
