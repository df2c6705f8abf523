"""Gaussian (Bures-Wasserstein) barycenter: the closed-form baseline."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.covariance import ledoit_wolf
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions

from ..base import ROUTING_FULL_COVARIANCE_MAX_FEATURES, BaseBarycenter, InverseTransformMixin
from ..bures import bures_barycenter, linear_ot_map, sqrtm_psd
from ..validation import _untensor, resolve_weights

__all__ = ["GaussianBarycenter"]


def _ridged(covs: NDArray) -> NDArray:
    """Covariances (K, d, d) plus a tiny ridge that keeps rank-deficient inputs (n_k <= d)
    invertible: 1e-12 of their mean variance, far below any metric's resolution (the
    smallest positive float for inputs that are single points)."""
    d = covs.shape[-1]
    ridge = max(1e-12 * np.trace(covs, axis1=-2, axis2=-1).mean() / d, np.finfo(float).tiny)
    return covs + ridge * np.eye(d)


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
        self._fit_moments(np.stack([self._covariance(X, w) for X, w in zip(Xs, rw)]), weights)

    def _fit_moments(self, covs: NDArray, weights: NDArray) -> None:
        """The barycenter of N(means_, covs): the closed form shared by fit and moments."""
        self.covariances_ = _ridged(covs)
        self.barycenter_mean_ = weights @ self.means_
        self.barycenter_covariance_ = bures_barycenter(self.covariances_, weights, tol=self.tol)
        self.maps_ = np.stack(
            [linear_ot_map(C, self.barycenter_covariance_) for C in self.covariances_]
        )
        self._barycenter_sqrt = sqrtm_psd(self.barycenter_covariance_)
        self._warn_if_stretching()

    #: A map that stretches some direction more than this many times (in standard deviation)
    #: comes from an input that barely varies there: :meth:`_warn_if_stretching`.
    MAX_MAP_STRETCH = 1e3

    def _warn_if_stretching(self) -> None:
        """Warn when a linear map stretches a direction over :attr:`MAX_MAP_STRETCH` times.

        An input whose covariance is (nearly) singular -- constant or collinear columns,
        fewer rows than columns, e.g. the always-black border pixels of MNIST -- gets a map
        that multiplies any held-out variation along those directions by up to the ratio of
        standard deviations: on flat 16 x 16 MNIST digits the maps' L2-UVP was 1.3e7 %
        (benchmarks/results/mnist.md), a silent wrong answer without this warning.
        """
        stretch = np.array([np.linalg.eigvalsh(A)[-1] for A in self.maps_])
        bad = np.flatnonzero(stretch > self.MAX_MAP_STRETCH)
        if len(bad):
            labels = np.asarray(self.input_labels_)[bad[:5]].tolist()
            warnings.warn(
                f"The covariances of inputs {labels} are (nearly) singular: their linear maps "
                f"stretch some directions up to {stretch.max():.3g} times, so rows that vary "
                "where the training rows did not (held-out rows, new data) are mapped far off. "
                "Use shrinkage='auto' (or a positive shrinkage), or drop the constant columns.",
                UserWarning,
                stacklevel=5,
            )

    @classmethod
    def from_moments(
        cls,
        means: ArrayLike,
        covariances: ArrayLike,
        weights: Any = None,
        **params: Any,
    ) -> GaussianBarycenter:
        """A fitted GaussianBarycenter from the inputs' means and covariances alone.

        For users who hold summaries only (POT's ``bures_wasserstein_barycenter(m, C,
        weights)``). The result is the estimator ``fit`` gives on rows with these moments:
        the same barycenter, maps, ``sample`` and ``transform`` (``shrinkage`` applies to
        the given covariances too; the routing model of ``unlabelled_rows="guess"`` takes
        the inputs as equally likely).

        Parameters
        ----------
        means : array-like of shape (K, d)
            The inputs' means.
        covariances : array-like of shape (K, d, d)
            The inputs' covariances: symmetric positive semi-definite.
        weights : {"uniform"}, dict or array-like of shape (K,), default=None
            Barycenter weights (uniform when None); "proportional" needs row counts and is
            refused here.
        **params
            Constructor parameters (``shrinkage``, ``tol``, ``random_state``, ...).

        Returns
        -------
        GaussianBarycenter
            Fitted; ``input_labels_`` are 0..K-1.

        Examples
        --------
        >>> import numpy as np
        >>> from skbary import GaussianBarycenter
        >>> est = GaussianBarycenter.from_moments(
        ...     [[0.0, 0.0], [4.0, 0.0]], [np.eye(2), 4 * np.eye(2)], weights=[0.5, 0.5])
        >>> est.barycenter_mean_, np.diag(est.barycenter_covariance_)
        (array([2., 0.]), array([2.25, 2.25]))
        """
        est = cls(**params)
        est._validate_hyperparameters()
        m = check_array(means, ensure_min_samples=1, input_name="means")
        C = np.asarray(_untensor(covariances), dtype=np.float64)
        K, d = m.shape
        if C.shape != (K, d, d):
            raise ValueError(
                f"covariances must have shape (K, d, d) = ({K}, {d}, {d}) to match means, "
                f"got {C.shape}."
            )
        if not np.all(np.isfinite(C)):
            raise ValueError("covariances contain NaN or inf.")
        if not np.allclose(C, np.swapaxes(C, 1, 2), rtol=1e-8, atol=1e-12 * np.abs(C).max()):
            raise ValueError("covariances must be symmetric matrices.")
        lowest = min(np.linalg.eigvalsh(c).min() / max(np.trace(c) / d, 1e-300) for c in C)
        if lowest < -1e-8:
            raise ValueError(
                "covariances must be positive semi-definite; one has an eigenvalue of "
                f"{lowest:.3g} times its mean variance."
            )
        if isinstance(weights, str) and weights == "proportional":
            raise ValueError("weights='proportional' needs row counts; give the weights.")
        a = resolve_weights(weights, np.arange(K), np.ones(K))
        if isinstance(est.shrinkage, str):
            raise ValueError("shrinkage='auto' (Ledoit-Wolf) needs rows; give a number.")
        s = float(est.shrinkage)
        shrunk = (1.0 - s) * C + s * (np.trace(C, axis1=1, axis2=2) / d)[:, None, None] * np.eye(d)
        est.n_features_in_ = d
        est.n_marginals_ = K
        est.weights_ = a
        est.input_labels_ = np.arange(K)
        est._fit_dtype = np.dtype(np.float64)
        est.means_ = m.astype(np.float64)
        unit = max(float(np.abs(m).max()), float(np.sqrt(np.abs(np.diagonal(C, 0, 1, 2)).max())))
        unit = unit if np.isfinite(unit) and unit > 0 else 1.0
        diag = d > ROUTING_FULL_COVARIANCE_MAX_FEATURES
        spreads = [np.diag(c) / unit**2 if diag else c / unit**2 for c in C]
        est._set_input_model(est.means_, spreads, np.ones(K), unit)
        est._fit_moments(shrunk, a)
        return est

    def _learn_input_map(
        self, X: NDArray, w: NDArray | None, max_iter: int | None, max_time: float | None
    ) -> tuple[NDArray, NDArray]:
        """The closed form: the linear OT map from the new input's Gaussian (its mean and
        shrunk covariance, with the fit's ridge) to the barycenter's."""
        X = X.astype(np.float64)
        mean = np.average(X, axis=0, weights=w)
        cov = _ridged(self._covariance(X, w)[None])[0]
        return mean, linear_ot_map(cov, self.barycenter_covariance_)

    def _map_added(self, X: NDArray, j: int) -> NDArray:
        mean, A = self._added_maps[j]
        return (X - mean) @ A + self.barycenter_mean_

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        z = rng.standard_normal((n, self.n_features_in_))
        return self.barycenter_mean_ + z @ self._barycenter_sqrt

    def _transform(self, X: NDArray, k: int) -> NDArray:
        return (X - self.means_[k]) @ self.maps_[k] + self.barycenter_mean_

    def _inverse_transform(self, Y: NDArray, k: int) -> NDArray:
        return np.linalg.solve(self.maps_[k], (Y - self.barycenter_mean_).T).T + self.means_[k]
