"""Gaussian and location-scatter inputs: affine images of one base law.

:func:`make_location_scatter` (random rotations and fixed scales, the benchmark of the
CW2B/WIN papers) and :func:`make_gaussians` (given means and covariances) both return a
:class:`GaussianBenchmark`, whose truth is the Bures-Wasserstein barycenter of
:mod:`skbary.bures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import ortho_group
from sklearn.utils import check_random_state

from ..bures import bures_barycenter, linear_ot_map, sqrtm_psd
from ..validation import check_weights
from ._common import _as_rows, _Benchmark, _n_per_input, _per_row_k


def _draw_base(base: str, n: int, d: int, rng: np.random.RandomState) -> NDArray[np.float64]:
    if base == "gaussian":
        return rng.standard_normal((n, d))
    if base == "uniform":
        s3 = np.sqrt(3.0)
        return rng.uniform(-s3, s3, size=(n, d))
    raise ValueError(f"base must be 'gaussian' or 'uniform', got {base!r}.")


@dataclass
class GaussianBenchmark(_Benchmark):
    """Inputs that are affine images ``W_k z + m_k`` of one base law P_0 (zero mean, unit cov).

    The truth is that of the Gaussian (Bures-Wasserstein) barycenter: mean ``sum_k a_k m_k``
    and covariance S, the fixed point of Alvarez-Esteban et al. (2016); the OT map from input
    k is ``x -> A_k (x - m_k) + m`` with ``A_k`` the linear OT map from Sigma_k to S.

    Attributes
    ----------
    marginals : list of ndarray of shape (n_k, d)
    weights : ndarray of shape (K,)
    marginal_means : ndarray of shape (K, d)
    marginal_covs : ndarray of shape (K, d, d)
    barycenter_mean : ndarray of shape (d,)
    barycenter_cov : ndarray of shape (d, d)
    maps : ndarray of shape (K, d, d)
        The symmetric positive definite matrices ``A_k`` of the maps to the barycenter.
    mixing : ndarray of shape (K, d, d)
        ``W_k``; input k is the law of ``W_k z + m_k`` with z drawn from ``base``.
    base : {"gaussian", "uniform"}
        The base law P_0: N(0, I) or uniform on ``[-sqrt 3, sqrt 3]^d``.
    """

    marginal_means: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    marginal_covs: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0, 0)))
    barycenter_mean: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    barycenter_cov: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    maps: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0, 0)))
    mixing: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0, 0)))
    base: str = "gaussian"

    def map_to_barycenter(self, X: ArrayLike, k: ArrayLike | int) -> NDArray[np.float64]:
        """The true OT map from input k to the barycenter, ``A_k (x - m_k) + m``.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Rows of input k.
        k : int or array-like of int of shape (n,)
            The input of every row.

        Returns
        -------
        ndarray of shape (n, d)
        """
        X = _as_rows(X, self.n_features)
        ks = _per_row_k(k, len(X), self.n_marginals)
        Xc = X - self.marginal_means[ks]
        return np.einsum("nij,nj->ni", self.maps[ks], Xc) + self.barycenter_mean

    def map_from_barycenter(self, Y: ArrayLike, k: ArrayLike | int) -> NDArray[np.float64]:
        """The true OT map from the barycenter to input k (inverse of ``map_to_barycenter``)."""
        Y = _as_rows(Y, self.n_features, "Y")
        ks = _per_row_k(k, len(Y), self.n_marginals)
        inv = np.linalg.inv(self.maps)
        return np.einsum("nij,nj->ni", inv[ks], Y - self.barycenter_mean) + self.marginal_means[ks]

    def sample_barycenter(self, n: int, random_state=None) -> NDArray[np.float64]:
        """Draw n points ``S^1/2 z + m`` from the barycenter, z from the base law."""
        rng = check_random_state(random_state)
        z = _draw_base(self.base, int(n), self.n_features, rng)
        return z @ sqrtm_psd(self.barycenter_cov) + self.barycenter_mean

    def sample_marginal(self, k: int, n: int, random_state=None) -> NDArray[np.float64]:
        """Draw n fresh rows of input k (held out from ``marginals``)."""
        rng = check_random_state(random_state)
        z = _draw_base(self.base, int(n), self.n_features, rng)
        return z @ self.mixing[k].T + self.marginal_means[k]

    def sample_marginals(self, n: int | Sequence[int], random_state=None) -> list[NDArray]:
        """Draw fresh rows of every input: n per input (or ``n[k]`` for input k)."""
        rng = check_random_state(random_state)
        sizes = _n_per_input(n, self.n_marginals)
        return [self.sample_marginal(k, sizes[k], rng) for k in range(self.n_marginals)]


def _finish_gaussian(
    mixing: NDArray,
    means: NDArray,
    weights: NDArray,
    sizes: list[int],
    base: str,
    rng: np.random.RandomState,
) -> GaussianBenchmark:
    covs = np.einsum("kij,klj->kil", mixing, mixing)
    covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))
    S = bures_barycenter(covs, weights, tol=1e-12, max_iter=10_000)
    maps = np.stack([linear_ot_map(C, S) for C in covs])
    marginals = [
        _draw_base(base, sizes[k], mixing.shape[1], rng) @ mixing[k].T + means[k]
        for k in range(len(covs))
    ]
    return GaussianBenchmark(
        marginals=marginals,
        weights=weights,
        marginal_means=means,
        marginal_covs=covs,
        barycenter_mean=weights @ means,
        barycenter_cov=S,
        maps=maps,
        mixing=mixing,
        base=base,
    )


def make_location_scatter(
    n_marginals: int = 3,
    n_features: int = 2,
    n_samples: int | Sequence[int] = 1000,
    base: str = "gaussian",
    weights: ArrayLike | None = None,
    means: ArrayLike | str | None = None,
    random_state=None,
) -> GaussianBenchmark:
    """Location-scatter inputs with a known barycenter (BENCHMARKS.md; WIN paper, App. C.2).

    For every input k a Haar-random rotation R_k (``scipy.stats.ortho_group``) and the scales
    ``s_i = exp(linspace(log 0.5, log 2, d))`` give the symmetric positive definite matrix
    ``W_k = R_k diag(s) R_k^T``; input k is the law of ``W_k z + m_k`` with z drawn from the
    base law, so ``Sigma_k = W_k^2``. (For the Gaussian base this is the same law as
    ``R_k diag(s) z``; the symmetric form is that of the CW2B/WIN code, which the reference
    numbers for the uniform base were measured on.)

    Parameters
    ----------
    n_marginals : int, default=3
        Number of inputs K.
    n_features : int, default=2
        Dimension d.
    n_samples : int or sequence of int, default=1000
        Rows per input.
    base : {"gaussian", "uniform"}, default="gaussian"
        Base law: N(0, I), or uniform on ``[-sqrt 3, sqrt 3]^d`` (zero mean, unit covariance).
    weights : array-like of shape (K,), default=None
        Barycenter weights; uniform when None.
    means : None, "random" or array-like of shape (K, d), default=None
        Input means: zero when None; "random" draws every m_k from N(0, I).
    random_state : int, RandomState instance or None, default=None
        Seeds the rotations, the means and the samples.

    Returns
    -------
    GaussianBenchmark
        ``marginals``, ``weights``, ``X``, ``y`` and the truth ``marginal_means``,
        ``marginal_covs``, ``barycenter_mean``, ``barycenter_cov``,
        ``map_to_barycenter(X, k)``, ``map_from_barycenter(Y, k)``,
        ``sample_barycenter(n, random_state)``, ``sample_marginals(n, random_state)``.

    Notes
    -----
    For the Gaussian base the truth is exact. For the uniform base it is the convention of
    the papers (Alvarez-Esteban et al. 2016, section 4, as used by CW2B and WIN): the
    barycenter is taken to be ``S^1/2 z + m``; its mean and covariance are what BW2-UVP
    compares against.
    """
    K, d = int(n_marginals), int(n_features)
    if K < 1 or d < 1:
        raise ValueError(f"n_marginals and n_features must be >= 1, got {K}, {d}.")
    rng = check_random_state(random_state)
    if base not in ("gaussian", "uniform"):
        raise ValueError(f"base must be 'gaussian' or 'uniform', got {base!r}.")
    a = np.full(K, 1.0 / K) if weights is None else check_weights(weights, K)
    sizes = _n_per_input(n_samples, K)
    s = np.exp(np.linspace(np.log(0.5), np.log(2.0), d))
    rots = []
    for _ in range(K):
        R = ortho_group.rvs(d, random_state=rng) if d > 1 else np.ones((1, 1))
        rots.append(np.asarray(R).reshape(d, d))
    mixing = np.stack([(R * s) @ R.T for R in rots])
    mixing = 0.5 * (mixing + np.swapaxes(mixing, -1, -2))
    if means is None:
        m = np.zeros((K, d))
    elif isinstance(means, str):
        if means != "random":
            raise ValueError(f"means must be None, 'random' or an array, got {means!r}.")
        m = rng.standard_normal((K, d))
    else:
        m = np.asarray(means, dtype=np.float64)
        if m.shape != (K, d):
            raise ValueError(f"means must have shape ({K}, {d}), got {m.shape}.")
    return _finish_gaussian(mixing, m, a, sizes, base, rng)


def make_gaussians(
    means: ArrayLike,
    covs: ArrayLike,
    weights: ArrayLike | None = None,
    n_samples: int | Sequence[int] = 1000,
    random_state=None,
) -> GaussianBenchmark:
    """Gaussian inputs N(m_k, Sigma_k) and their W2 barycenter.

    Parameters
    ----------
    means : array-like of shape (K, d)
    covs : array-like of shape (K, d, d)
        Symmetric positive definite covariances.
    weights : array-like of shape (K,), default=None
        Barycenter weights; uniform when None.
    n_samples : int or sequence of int, default=1000
        Rows per input.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    GaussianBenchmark
        The same fields as :func:`make_location_scatter` (``base="gaussian"``, ``mixing`` the
        symmetric square roots of the covariances).
    """
    m = np.asarray(means, dtype=np.float64)
    C = np.asarray(covs, dtype=np.float64)
    if m.ndim != 2 or C.ndim != 3 or C.shape != (m.shape[0], m.shape[1], m.shape[1]):
        raise ValueError(
            f"means must have shape (K, d) and covs (K, d, d); got {m.shape} and {C.shape}."
        )
    if not np.allclose(C, np.swapaxes(C, -1, -2), rtol=1e-10, atol=1e-12):
        raise ValueError("covs must be symmetric.")
    if np.any(np.linalg.eigvalsh(C) <= 0):
        raise ValueError("covs must be positive definite.")
    K = m.shape[0]
    a = np.full(K, 1.0 / K) if weights is None else check_weights(weights, K)
    rng = check_random_state(random_state)
    return _finish_gaussian(sqrtm_psd(C), m, a, _n_per_input(n_samples, K), "gaussian", rng)
