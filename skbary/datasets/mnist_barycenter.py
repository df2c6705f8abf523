"""A reference barycenter of two MNIST digits by exact discrete optimal transport.

For two inputs P_0, P_1, weights (a_0, a_1) and the quadratic cost, the W2 barycenter is
McCann's interpolant: the law of ``a_0 x + a_1 T(x)``, x ~ P_0, with T the OT map from P_0
to P_1 (with weights (1/2, 1/2), the midpoints ``x + 1/2 (T(x) - x)``). Between two
samples of the same size with uniform weights the exact OT plan is a permutation (POT's
``ot.emd``), so its interpolants are a sample of the barycenter of the two empirical laws:
the reference every estimator is scored against on MNIST 0/1, the experiment all five
papers headline. :func:`make_mnist_barycenter` draws the training inputs and a disjoint
reference set of both digits from MNIST's training images; the plan is computed on the
reference set only, so a fitted estimator never saw the rows it is scored on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import ot
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state

from ..validation import check_weights
from ._common import _as_rows, _Benchmark
from .mnist import load_mnist

__all__ = ["ImageBarycenterBenchmark", "discrete_barycenter_pairs", "make_mnist_barycenter"]


def discrete_barycenter_pairs(
    X0: ArrayLike, X1: ArrayLike, weights: Sequence[float] = (0.5, 0.5)
) -> tuple[NDArray[np.float64], NDArray[np.int64], float]:
    """The exact W2 barycenter of two equal-size samples: interpolants of the OT matching.

    Parameters
    ----------
    X0, X1 : array-like of shape (n, d)
        Two samples with uniform weights, of the same size.
    weights : sequence of 2 floats, default=(0.5, 0.5)
        Barycenter weights (a_0, a_1).

    Returns
    -------
    Z : ndarray of shape (n, d)
        ``a_0 X0[i] + a_1 X1[match[i]]``: the barycenter sample, row i the image of X0[i].
    match : ndarray of shape (n,)
        The optimal permutation: ``X0[i]`` is transported to ``X1[match[i]]``.
    cost : float
        ``W2^2`` between the two samples (mean squared distance of the matched pairs).
    """
    X0 = np.asarray(X0, dtype=np.float64)
    X1 = np.asarray(X1, dtype=np.float64)
    if X0.ndim != 2 or X0.shape != X1.shape:
        raise ValueError(f"X0 and X1 must be 2-D of the same shape, got {X0.shape}, {X1.shape}.")
    a = check_weights(weights, 2)
    n = len(X0)
    M = ot.dist(X0, X1)
    plan = ot.emd(np.full(n, 1.0 / n), np.full(n, 1.0 / n), M, numItermax=100 * n * n)
    match = np.asarray(plan.argmax(axis=1), dtype=np.int64)
    if len(np.unique(match)) != n:  # the simplex always ends on a vertex: a permutation
        raise RuntimeError("the exact OT plan is not a permutation; ot.emd did not converge.")
    Z = a[0] * X0 + a[1] * X1[match]
    return Z, match, float(M[np.arange(n), match].mean())


@dataclass
class ImageBarycenterBenchmark(_Benchmark):
    """Two image inputs and a sample of their W2 barycenter from exact discrete OT.

    Attributes
    ----------
    marginals, weights, X, y
        The training inputs (rows of ``image_shape`` images).
    image_shape : tuple of int
        ``(C, H, W)``.
    barycenter_samples : ndarray of shape (n_reference, d)
        The reference barycenter: interpolants of the OT matching of the reference rows.
    heldout_marginals : list of 2 ndarrays (n_reference, d)
        The reference rows of each input (never in ``marginals``).
    heldout_maps : list of 2 ndarrays (n_reference, d)
        ``heldout_maps[k][i]``: the barycenter point reference row i of input k goes to.
    ot_cost : float
        ``W2^2`` between the two reference sets.
    digits : tuple of int
        The digits of the two inputs.
    """

    image_shape: tuple[int, int, int] = (1, 16, 16)
    barycenter_samples: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    heldout_marginals: list = field(default_factory=list)
    heldout_maps: list = field(default_factory=list)
    ot_cost: float = float("nan")
    digits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self._index: list[dict[bytes, int]] | None = None

    def map_to_barycenter(self, X: ArrayLike, k: int) -> NDArray[np.float64]:
        """Where the reference rows X of input k go on the barycenter (rows must be among
        ``heldout_marginals[k]``: the discrete plan knows no other point).

        Parameters
        ----------
        X : array-like of shape (n, d)
        k : int
            0 or 1.

        Returns
        -------
        ndarray of shape (n, d)
        """
        X = _as_rows(X, self.n_features)
        if k not in (0, 1):
            raise ValueError(f"k must be 0 or 1, got {k!r}.")
        if self._index is None:
            self._index = [
                {row.tobytes(): i for i, row in enumerate(np.ascontiguousarray(H))}
                for H in self.heldout_marginals
            ]
        rows = [self._index[k].get(np.ascontiguousarray(r).tobytes()) for r in X]
        if any(i is None for i in rows):
            raise ValueError(
                "map_to_barycenter knows the reference rows only (heldout_marginals[k], or "
                "what sample_marginals returns); got rows outside them."
            )
        return self.heldout_maps[k][np.asarray(rows, dtype=np.int64)]

    def sample_marginals(
        self, n: int, random_state: int | np.random.RandomState | None = None
    ) -> list[NDArray[np.float64]]:
        """``min(n, n_reference)`` reference rows of each input (a finite benchmark)."""
        rng = check_random_state(random_state)
        out = []
        for H in self.heldout_marginals:
            if int(n) >= len(H):
                out.append(H.copy())
            else:
                out.append(H[np.sort(rng.choice(len(H), int(n), replace=False))])
        return out


def make_mnist_barycenter(
    digits: Sequence[int] = (0, 1),
    weights: Sequence[float] = (0.5, 0.5),
    *,
    n_samples: int = 3000,
    n_reference: int = 2500,
    image_size: int = 16,
    random_state: int | np.random.RandomState | None = 0,
) -> ImageBarycenterBenchmark:
    """MNIST 0/1 (or any two digits) with a reference barycenter from exact OT.

    Draws ``n_samples + n_reference`` images of each digit from MNIST's training set
    (without replacement); the first ``n_samples`` are the inputs to fit on, the others the
    reference sets, matched by exact OT (:func:`discrete_barycenter_pairs`: about 2 s for
    2,500 images of 16 x 16 on one core). Needs the extra ``skbary[images]``.

    Parameters
    ----------
    digits : sequence of 2 int, default=(0, 1)
    weights : sequence of 2 float, default=(0.5, 0.5)
    n_samples : int, default=3000
        Training rows per input.
    n_reference : int, default=2500
        Reference rows per input (the barycenter sample has as many).
    image_size : int, default=16
    random_state : int, RandomState instance or None, default=0

    Returns
    -------
    ImageBarycenterBenchmark
        Score samples with :func:`skbary.metrics.energy_distance` or
        :func:`skbary.scorers.make_energy_distance_scorer` against ``barycenter_samples``,
        maps with :func:`skbary.metrics.weighted_l2_uvp` (or all at once with
        :func:`skbary.metrics.score_benchmark`, whose BW2-UVP compares Gaussian fits).
    """
    digits = tuple(int(d) for d in digits)
    if len(digits) != 2:
        raise ValueError(f"digits must be two digits (the barycenter of two inputs), got {digits}.")
    a = check_weights(weights, 2)
    n, m = int(n_samples), int(n_reference)
    if n < 2 or m < 2:
        raise ValueError(f"n_samples and n_reference must be >= 2, got {n_samples}, {n_reference}.")
    data = load_mnist(digits, image_size=image_size, n_per_digit=n + m, random_state=random_state)
    rng = check_random_state(random_state)
    train, reference = [], []
    for rows in data.by_digit:
        perm = rng.permutation(len(rows))
        train.append(rows[perm[:n]])
        reference.append(rows[perm[n:]])
    Z, match, cost = discrete_barycenter_pairs(reference[0], reference[1], a)
    inverse = np.empty_like(match)
    inverse[match] = np.arange(m)
    return ImageBarycenterBenchmark(
        marginals=train,
        weights=a,
        image_shape=data.image_shape,
        barycenter_samples=Z,
        heldout_marginals=reference,
        heldout_maps=[Z, Z[inverse]],
        ot_cost=cost,
        digits=digits,
    )
