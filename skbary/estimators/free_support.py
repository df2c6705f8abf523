"""POT's discrete free-support barycenter as an estimator (the discrete baseline)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import ot
from numpy.typing import NDArray
from sklearn.neighbors import KNeighborsRegressor
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from ..base import BaseBarycenter

__all__ = ["FreeSupportBarycenter"]


class FreeSupportBarycenter(BaseBarycenter):
    """Discrete W2 barycenter with free support points (POT ``free_support_barycenter``).

    The barycenter is ``n_support`` equally weighted points Y minimising
    ``sum_k a_k W2^2(Y, X_k)`` over their locations (Cuturi & Doucet 2014, Algorithm 2 with
    unit step), computed on at most ``max_samples_per_input`` rows of every input.

    Out-of-sample maps: after fit, the exact OT plan pi_k between each (subsampled) input and
    Y gives every training row x_i the barycentric projection
    ``T_k(x_i) = sum_j pi_k[i, j] y_j / sum_j pi_k[i, j]``. A new row is mapped by the
    average projection of its ``n_neighbors`` nearest training rows of the same input
    (k-nearest-neighbour regression). This is the discrete baseline the neural estimators
    must beat on rows they did not see.

    ``sample(n)`` draws support points uniformly: the barycenter is discrete, so ``n`` above
    ``n_support`` repeats points and warns (:class:`~skbary.exceptions.DiscreteSampleWarning`).

    Parameters
    ----------
    n_support : int, default=500
        Number of barycenter support points.
    {{weights}}
    {{unlabelled_rows}}
    {{dtype}}
    max_samples_per_input : int or None, default=2000
        Rows drawn (without replacement) from each larger input; None uses all rows (exact
        OT costs grow like n^3: keep it to a few thousand).
    max_iter : int, default=100
        Iterations of the fixed-point support update.
    tol : float, default=1e-7
        Stopping threshold on the support displacement.
    n_neighbors : int, default=5
        Neighbours averaged when mapping new rows.
    random_state : int, RandomState or None, default=None
        Seeds the subsampling, the initial support (drawn from the inputs in proportion to
        the weights) and :meth:`sample`.

    Attributes
    ----------
    support_ : ndarray of shape (n_support, d)
        The barycenter's support points (equal mass each).
    n_iter_ : int
        Support updates performed.
    n_features_in_, n_marginals_, weights_, input_labels_ :
        See :class:`~skbary.base.BaseBarycenter`.

    Examples
    --------
    >>> from skbary import FreeSupportBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 300, random_state=0)
    >>> est = FreeSupportBarycenter(n_support=50, random_state=0).fit(bench.marginals)
    >>> est.support_.shape
    (50, 2)
    >>> est.transform(bench.marginals[2][:3], k=2).shape
    (3, 2)
    """

    _parameter_constraints = {
        **BaseBarycenter._parameter_constraints,
        "n_support": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples_per_input": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_support: int = 500,
        weights: Any = None,
        unlabelled_rows: str = "error",
        dtype: type | None = np.float64,
        max_samples_per_input: int | None = 2000,
        max_iter: int = 100,
        tol: float = 1e-7,
        n_neighbors: int = 5,
        random_state: Any = None,
    ) -> None:
        self.n_support = n_support
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.dtype = dtype
        self.max_samples_per_input = max_samples_per_input
        self.max_iter = max_iter
        self.tol = tol
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        rng = check_random_state(self.random_state)
        rw = self._row_weights_or_none() or [None] * len(marginals)
        Xs, measures = map(list, zip(*(self._measure(X, w, rng) for X, w in zip(marginals, rw))))
        counts = rng.multinomial(self.n_support, weights)
        X_init = np.concatenate(
            [X[rng.choice(X.shape[0], c, replace=c > X.shape[0])] for X, c in zip(Xs, counts)]
        )
        b = np.full(self.n_support, 1.0 / self.n_support)
        self.support_, log = ot.lp.free_support_barycenter(
            Xs,
            measures,
            X_init,
            b=b,
            weights=weights,
            numItermax=self.max_iter,
            stopThr=self.tol,
            log=True,
        )
        self.n_iter_ = len(log["displacement_square_norms"])
        self._regressors = [self._plan_regressor(X, a) for X, a in zip(Xs, measures)]

    def _measure(
        self, X: NDArray, w: NDArray | None, rng: np.random.RandomState
    ) -> tuple[NDArray, NDArray]:
        """An input as POT's weighted point cloud: rows of positive weight, at most
        ``max_samples_per_input`` of them (a uniform subsample keeps its weights)."""
        X = X.astype(np.float64)
        if w is None:
            w = np.full(X.shape[0], 1.0 / X.shape[0])
        else:  # rows of zero weight are not part of the measure
            X, w = X[w > 0], w[w > 0] / w.sum()
        cap = self.max_samples_per_input
        if cap is not None and X.shape[0] > cap:
            rows = rng.choice(X.shape[0], cap, replace=False)
            X, w = X[rows], w[rows] / w[rows].sum()
        return X, w

    def _plan_regressor(self, X: NDArray, a: NDArray) -> KNeighborsRegressor:
        """The exact OT plan from the cloud (X, a) to the support, as a map: its barycentric
        projection at the rows, extended to any point by nearest neighbours."""
        b = np.full(self.support_.shape[0], 1.0 / self.support_.shape[0])
        plan = ot.emd(a, b, ot.dist(X, self.support_), numItermax=10_000_000)
        projection = (plan @ self.support_) / plan.sum(axis=1, keepdims=True)
        knn = KNeighborsRegressor(n_neighbors=min(self.n_neighbors, X.shape[0]))
        return knn.fit(X, projection)

    def _learn_input_map(
        self, X: NDArray, w: NDArray | None, max_iter: int | None, max_time: float | None
    ) -> KNeighborsRegressor:
        """Exact OT from the new input onto the fitted support, as in fit."""
        return self._plan_regressor(*self._measure(X, w, check_random_state(self.random_state)))

    def _map_added(self, X: NDArray, j: int) -> NDArray:
        return self._added_maps[j].predict(X)

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        return self.support_[rng.randint(0, self.support_.shape[0], size=n)]

    def _discrete_support(self) -> tuple[int, str] | None:
        return self.support_.shape[0], (
            "The free-support barycenter is a discrete measure on n_support points; raise "
            "n_support, or use a neural estimator for a continuous barycenter."
        )

    def _transform(self, X: NDArray, k: int) -> NDArray:
        return self._regressors[k].predict(X)
