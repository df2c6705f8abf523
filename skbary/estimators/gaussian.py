"""Gaussian (Bures-Wasserstein) barycenter: the closed-form baseline."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.covariance import ledoit_wolf
from sklearn.utils._param_validation import Interval, StrOptions

from ..base import BaseBarycenter, InverseTransformMixin
from ..bures import bures_barycenter, linear_ot_map, sqrtm_psd

__all__ = ["GaussianBarycenter"]


class GaussianBarycenter(InverseTransformMixin, BaseBarycenter):
    """W2 barycenter of the Gaussian approximations of the inputs.

    Each input is summarised by its mean m_k and covariance Sigma_k (optionally shrunk);
    the barycenter is N(m, S) with ``m = sum_k a_k m_k`` and S the fixed point of
    ``S = sum_k a_k (S^1/2 Sigma_k S^1/2)^1/2`` (Alvarez-Esteban et al. 2016, tolerance
    1e-10). The OT map from input k is linear, ``T_k(x) = A_k (x - m_k) + m``. The result is
    exact when the inputs are affine images of one another (location-scatter families) and
    a fast first try on any data.

    Parameters
    ----------
    shrinkage : float in [0, 1] or "auto", default=0.0
        Shrinkage of each covariance toward ``tr(Sigma_k)/d * I``:
        ``(1 - s) Sigma_k + s tr(Sigma_k)/d I``. "auto" picks s per input by Ledoit-Wolf.
    {{weights}}
    {{unlabelled_rows}}
    {{dtype}}
    tol : float, default=1e-10
        Tolerance of the fixed-point iteration.
    random_state : int, RandomState or None, default=None
        Default seed of :meth:`sample`.

    Attributes
    ----------
    means_ : ndarray of shape (K, d)
        Input means.
    covariances_ : ndarray of shape (K, d, d)
        (Shrunk) input covariances.
    barycenter_mean_ : ndarray of shape (d,)
    barycenter_covariance_ : ndarray of shape (d, d)
    maps_ : ndarray of shape (K, d, d)
        The symmetric matrices A_k of the OT maps from the inputs to the barycenter.
    n_features_in_, n_marginals_, weights_, input_labels_ :
        See :class:`~skbary.base.BaseBarycenter`.

    Examples
    --------
    >>> from skbary import GaussianBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 2000, random_state=0)
    >>> est = GaussianBarycenter().fit(bench.marginals, bench.weights)
    >>> est.sample(5, random_state=0).shape
    (5, 2)
    """

    _parameter_constraints = {
        **BaseBarycenter._parameter_constraints,
        "shrinkage": [Interval(numbers.Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        shrinkage: float | str = 0.0,
        weights: Any = None,
        unlabelled_rows: str = "error",
        dtype: type | None = np.float64,
        tol: float = 1e-10,
        random_state: Any = None,
    ) -> None:
        self.shrinkage = shrinkage
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.dtype = dtype
        self.tol = tol
        self.random_state = random_state

    def _covariance(self, X: NDArray, w: NDArray | None = None) -> NDArray:
        """Sample covariance (unbiased), then shrunk.

        Row weights ``w`` count rows, as numpy's ``fweights``:
        ``sum_i w_i (x_i - m)(x_i - m)^T / (sum_i w_i - 1)``, so integer weights give the
        covariance of the repeated rows. Weights summing to at most 1 are probabilities:
        the weighted covariance is corrected by the effective sample size
        ``(sum w)^2 / sum w^2`` instead.
        """
        d = X.shape[1]
        if isinstance(self.shrinkage, str):  # "auto" (the constraints admit nothing else)
            if w is not None:
                raise ValueError(
                    "shrinkage='auto' (Ledoit-Wolf) does not take sample_weight; give the "
                    "shrinkage as a number in [0, 1]."
                )
            cov, _ = ledoit_wolf(X)
            return np.atleast_2d(cov)
        s = float(self.shrinkage)
        if w is None:
            cov = np.atleast_2d(np.cov(X, rowvar=False, bias=False))
        else:
            total = float(w.sum())
            n = total if total > 1 else total**2 / float(np.sum(w**2))
            biased = np.atleast_2d(np.cov(X, rowvar=False, bias=True, aweights=w))
            cov = biased * (n / (n - 1.0) if n > 1 else 1.0)
        return (1.0 - s) * cov + s * np.trace(cov) / d * np.eye(d)

    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        Xs = [m.astype(np.float64) for m in marginals]
        rw = self._row_weights_or_none() or [None] * len(Xs)
        self.means_ = np.stack([np.average(X, axis=0, weights=w) for X, w in zip(Xs, rw)])
        spread = max(np.abs(X - m).max() for X, m in zip(Xs, self.means_))
        with np.errstate(over="ignore", under="ignore"):
            squared = np.float64(spread) ** 2
        if spread > 0 and not (np.finfo(np.float64).tiny < squared < np.inf):
            raise ValueError(
                f"The inputs' covariances cannot be held in float64: the rows deviate from "
                f"their means by up to {spread:.3g}, whose square is outside 1e-308..1e308. "
                "Multiply the data by a constant c first: the barycenter of c X is c times "
                "the barycenter of X."
            )
        covs = np.stack([self._covariance(X, w) for X, w in zip(Xs, rw)])
        d = covs.shape[-1]
        # A tiny ridge keeps rank-deficient inputs (n_k <= d) invertible; it is 1e-12 of the
        # mean variance, far below any metric's resolution (the smallest positive float for
        # inputs that are single points).
        ridge = max(1e-12 * np.trace(covs, axis1=1, axis2=2).mean() / d, np.finfo(float).tiny)
        self.covariances_ = covs + ridge * np.eye(d)
        self.barycenter_mean_ = weights @ self.means_
        self.barycenter_covariance_ = bures_barycenter(self.covariances_, weights, tol=self.tol)
        self.maps_ = np.stack(
            [linear_ot_map(C, self.barycenter_covariance_) for C in self.covariances_]
        )
        self._barycenter_sqrt = sqrtm_psd(self.barycenter_covariance_)

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        z = rng.standard_normal((n, self.n_features_in_))
        return self.barycenter_mean_ + z @ self._barycenter_sqrt

    def _transform(self, X: NDArray, k: int) -> NDArray:
        return (X - self.means_[k]) @ self.maps_[k] + self.barycenter_mean_

    def _inverse_transform(self, Y: NDArray, k: int) -> NDArray:
        return np.linalg.solve(self.maps_[k], (Y - self.barycenter_mean_).T).T + self.means_[k]
