"""What every benchmark shares: the ``_Benchmark`` base and the checks of its methods.

``_Benchmark`` holds ``marginals`` and ``weights`` and derives the flat form ``X, y`` from
them; ``_per_row_k``, ``_as_rows`` and ``_n_per_input`` check the arguments of the truth
methods (``map_to_barycenter(X, k)``, ``sample_marginals(n)``) of every family.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..validation import stack


def _per_row_k(k: ArrayLike | int, n: int, n_marginals: int) -> NDArray[np.int64]:
    """Broadcast ``k`` (an int or a per-row array) to n input indices, checking the range."""
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        ks = np.full(n, int(k), dtype=np.int64)
    else:
        ks = np.asarray(k)
        if ks.ndim != 1 or ks.shape[0] != n or not np.issubdtype(ks.dtype, np.integer):
            raise ValueError(
                f"k must be an int or an integer array of length {n} (one input per row), "
                f"got {k!r}."
            )
        ks = ks.astype(np.int64)
    if n and (ks.min() < 0 or ks.max() >= n_marginals):
        raise ValueError(f"k must lie in [0, {n_marginals - 1}], got {np.unique(ks)}.")
    return ks


def _as_rows(X: ArrayLike, n_features: int, name: str = "X") -> NDArray[np.float64]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"{name} must have shape (n, {n_features}), got {X.shape}.")
    return X


def _n_per_input(n_samples: int | Sequence[int], n_marginals: int) -> list[int]:
    if isinstance(n_samples, numbers.Integral):
        sizes = [int(n_samples)] * n_marginals
    else:
        sizes = [int(s) for s in n_samples]
        if len(sizes) != n_marginals:
            raise ValueError(
                f"n_samples must be an int or {n_marginals} ints (one per input), "
                f"got {n_samples!r}."
            )
    if min(sizes) < 2:
        raise ValueError(f"n_samples must be at least 2 per input, got {n_samples!r}.")
    return sizes


@dataclass
class _Benchmark:
    """Fields every benchmark shares; the flat form is derived from ``marginals``."""

    marginals: list[NDArray[np.float64]]
    weights: NDArray[np.float64]

    @property
    def X(self) -> NDArray[np.float64]:
        """All rows of all inputs, input after input (the flat form).

        The flat form carries no barycenter weights: fit with
        ``fit(bench.X, bench.y, weights=bench.weights)`` (or ``fit(bench.marginals,
        bench.weights)``). ``fit(bench.X, bench.y)`` alone solves the uniform-weight
        barycenter, which is not this benchmark's truth when its weights are not uniform
        (benchmarks/results/nongaussian.md withdrew rows measured that way).
        """
        return stack(self.marginals)[0]

    @property
    def y(self) -> NDArray[np.int64]:
        """The input index of each row of ``X``."""
        return stack(self.marginals)[1]

    @property
    def n_marginals(self) -> int:
        """Number of inputs K."""
        return len(self.weights)

    @property
    def n_features(self) -> int:
        """Dimension d of every input."""
        return int(self.marginals[0].shape[1])
