"""Inputs with a known barycenter.

Every maker returns a small benchmark object holding

* ``marginals`` -- a list of K arrays ``(n_k, d)``, one sample per input,
* ``weights`` -- the barycenter weights (K,), positive, summing to 1,
* ``X``, ``y`` -- the same rows in the flat form (``skbary.stack(marginals)``), ready for
  ``fit(X, y)``, ``GridSearchCV`` and ``StratifiedKFold``,
* what is known of the truth: the barycenter's law (a sampler, or its mean and covariance)
  and the true maps between the inputs and the barycenter where they are known,
* ``sample_marginals(n, random_state)`` -- fresh rows of every input, for held-out scoring.

The definitions follow ``BENCHMARKS.md`` and the papers cited in each maker.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.stats import ortho_group
from sklearn.utils import check_random_state

from .bures import bures_barycenter, linear_ot_map, sqrtm_psd
from .validation import check_weights, stack

__all__ = [
    "GaussianBenchmark",
    "make_location_scatter",
    "make_gaussians",
    "TwisterBenchmark",
    "make_twister",
    "twister_cost",
    "twister_u",
    "twister_u_inverse",
    "CongruentBenchmark",
    "make_congruent",
    "load_ave_digits",
    "get_data_home",
]


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
        """All rows of all inputs, input after input (the flat form)."""
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


# --------------------------------------------------------------------------------------
# Gaussian and location-scatter inputs
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# The 2-D Twister (EgBary paper, papers/README.md)
# --------------------------------------------------------------------------------------

TWISTER_MEANS = np.array([[0.0, 4.0], [3.46, -2.0], [-3.46, -2.0]])
TWISTER_RATE = 0.4


def _twist(x, sign: float):
    """``R(sign * 0.4 |x|) x`` for numpy arrays or torch tensors of shape (..., 2)."""
    if isinstance(x, torch.Tensor):
        r = torch.linalg.vector_norm(x, dim=-1)
        t = sign * TWISTER_RATE * r
        c, s = torch.cos(t), torch.sin(t)
        return torch.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], -1)
    x = np.asarray(x, dtype=np.float64)
    t = sign * TWISTER_RATE * np.linalg.norm(x, axis=-1)
    c, s = np.cos(t), np.sin(t)
    return np.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], -1)


def twister_u(x):
    """The Twister's feature map ``u(x) = R(0.4 |x|) x`` (R(t): rotation by angle t).

    Works on numpy arrays and (differentiably) on torch tensors of shape (..., 2). It keeps
    norms, so its inverse is ``u^-1(z) = R(-0.4 |z|) z`` (:func:`twister_u_inverse`).
    """
    return _twist(x, 1.0)


def twister_u_inverse(z):
    """Inverse of :func:`twister_u`: ``u^-1(z) = R(-0.4 |z|) z``."""
    return _twist(z, -1.0)


def twister_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Twister cost ``c(x, y) = 1/2 |u(x) - u(y)|^2`` per pair.

    Follows the cost convention of :mod:`skbary.costs`: x rows of an input and y barycenter
    points, tensors of the same leading shape ``(..., 2)``; returns shape ``(...)``,
    differentiable in both arguments. A module-level function, so estimators holding it
    pickle (``n_jobs`` in a grid search).
    """
    return 0.5 * ((twister_u(x) - twister_u(y)) ** 2).sum(dim=-1)


@dataclass
class TwisterBenchmark(_Benchmark):
    """The 2-D Twister: ``P_k = u^-1 # N(m_k, I)`` with the cost ``1/2 |u(x) - u(y)|^2``.

    Under that cost the barycenter is ``u^-1 # N(sum_k a_k m_k, I)`` (u turns the problem
    into the quadratic one between Gaussians of equal covariance, whose maps are
    translations), so the maps are ``x -> u^-1(u(x) - m_k + m)``.

    Attributes
    ----------
    marginals, weights, X, y
    marginal_means : ndarray of shape (K, 2)
        The means m_k of the Gaussians before ``u^-1``.
    cost : callable
        :func:`twister_cost`, to pass as ``cost=`` to the general-cost estimators.
    u, u_inverse : callable
        :func:`twister_u` and :func:`twister_u_inverse`.
    barycenter_mean, barycenter_cov : ndarray
        Moments of the true barycenter: exactly 0 and I when ``sum_k a_k m_k = 0`` (the
        default; ``u^-1`` commutes with rotations, which leave N(0, I) unchanged), else
        Monte-Carlo estimates from 10^6 draws.
    """

    marginal_means: NDArray[np.float64] = field(default_factory=lambda: TWISTER_MEANS.copy())
    barycenter_mean: NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    barycenter_cov: NDArray[np.float64] = field(default_factory=lambda: np.eye(2))

    cost = staticmethod(twister_cost)
    u = staticmethod(twister_u)
    u_inverse = staticmethod(twister_u_inverse)

    @property
    def latent_mean(self) -> NDArray[np.float64]:
        """``m = sum_k a_k m_k``, the mean of the barycenter before ``u^-1``."""
        return self.weights @ self.marginal_means

    def sample_barycenter(self, n: int, random_state=None) -> NDArray[np.float64]:
        """n draws of ``u^-1(z)``, z ~ N(m, I)."""
        rng = check_random_state(random_state)
        return twister_u_inverse(rng.standard_normal((int(n), 2)) + self.latent_mean)

    def sample_marginal(self, k: int, n: int, random_state=None) -> NDArray[np.float64]:
        """n fresh rows of input k."""
        rng = check_random_state(random_state)
        return twister_u_inverse(rng.standard_normal((int(n), 2)) + self.marginal_means[k])

    def sample_marginals(self, n: int | Sequence[int], random_state=None) -> list[NDArray]:
        """Fresh rows of every input: n per input (or ``n[k]`` for input k)."""
        rng = check_random_state(random_state)
        sizes = _n_per_input(n, self.n_marginals)
        return [self.sample_marginal(k, sizes[k], rng) for k in range(self.n_marginals)]

    def map_to_barycenter(self, X: ArrayLike, k: ArrayLike | int) -> NDArray[np.float64]:
        """The true OT map of input k to the barycenter, ``u^-1(u(x) - m_k + m)``."""
        X = _as_rows(X, 2)
        ks = _per_row_k(k, len(X), self.n_marginals)
        return twister_u_inverse(twister_u(X) - self.marginal_means[ks] + self.latent_mean)

    def map_from_barycenter(self, Z: ArrayLike, k: ArrayLike | int) -> NDArray[np.float64]:
        """The true OT map of the barycenter to input k, ``u^-1(u(z) - m + m_k)``."""
        Z = _as_rows(Z, 2, "Z")
        ks = _per_row_k(k, len(Z), self.n_marginals)
        return twister_u_inverse(twister_u(Z) - self.latent_mean + self.marginal_means[ks])


def make_twister(
    n_samples: int | Sequence[int] = 1000,
    random_state=None,
    *,
    weights: ArrayLike | None = None,
) -> TwisterBenchmark:
    """The 2-D Twister of the EgBary paper: three inputs and a non-quadratic cost.

    ``u(x) = R(0.4 |x|) x``; input k is ``u^-1 # N(m_k, I)`` with ``m_1 = (0, 4)``,
    ``m_2 = (3.46, -2)``, ``m_3 = (-3.46, -2)``; cost ``c(x, y) = 1/2 |u(x) - u(y)|^2``.
    The unregularised barycenter is ``u^-1 # N(0, I)`` for uniform weights.

    Parameters
    ----------
    n_samples : int or sequence of 3 ints, default=1000
        Rows per input.
    random_state : int, RandomState instance or None, default=None
    weights : array-like of shape (3,), default=None
        Barycenter weights (uniform when None, as in the paper); the truth adapts.

    Returns
    -------
    TwisterBenchmark
        ``marginals``, ``weights``, ``X``, ``y``, ``cost``, ``u``, ``u_inverse``,
        ``sample_barycenter``, ``map_to_barycenter``, ``map_from_barycenter``,
        ``barycenter_mean``, ``barycenter_cov``, ``sample_marginals``.
    """
    K = len(TWISTER_MEANS)
    a = np.full(K, 1.0 / K) if weights is None else check_weights(weights, K)
    rng = check_random_state(random_state)
    sizes = _n_per_input(n_samples, K)
    bench = TwisterBenchmark(marginals=[], weights=a)
    bench.marginals = [bench.sample_marginal(k, sizes[k], rng) for k in range(K)]
    m = bench.latent_mean
    if np.allclose(m, 0.0, atol=1e-12):
        bench.barycenter_mean = np.zeros(2)
        bench.barycenter_cov = np.eye(2)
    else:
        Z = bench.sample_barycenter(1_000_000, random_state=12345)
        bench.barycenter_mean = Z.mean(0)
        bench.barycenter_cov = np.cov(Z, rowvar=False)
    return bench


# --------------------------------------------------------------------------------------
# Congruent potentials (WIN paper, section 5): the barycenter is the base distribution
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _torch_single_thread():
    """Run torch single-threaded inside (restored after).

    The congruent-potential solvers make many elementwise calls on (n, d) tensors; torch's
    intra-op threads add more wake-up cost than they save there, and on a busy machine
    they can slow the build down tenfold.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _chain_pairs(weights: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Lemma 3 with a chain of M = K - 1 congruent pairs reproducing the weights.

    Pair m sends its beta-left function to input m and its beta-right function to input
    m + 1, with masses ``L_m = w_m beta_m`` and ``R_m = w_m (1 - beta_m)``. The end inputs
    take their whole weight from one pair, a middle input half from each neighbour, so
    ``alpha_n = L_n + R_{n-1}``. For K = 3 and weights (1/4, 1/2, 1/4) this is the WIN
    paper's choice (beta_m = w_m = 1/2, gamma as in its section 5).

    Returns
    -------
    pairs : ndarray of shape (M, 2)
        (left input, right input) of every pair.
    left, right : ndarray of shape (M,)
        ``L_m`` and ``R_m``.
    """
    K = len(weights)
    M = K - 1
    left = np.empty(M)
    right = np.empty(M)
    for m in range(M):
        left[m] = weights[m] if m == 0 else weights[m] / 2.0
        right[m] = weights[m + 1] if m + 1 == K - 1 else weights[m + 1] / 2.0
    pairs = np.stack([np.arange(M), np.arange(M) + 1], axis=1) if M else np.empty((0, 2), int)
    return pairs, left, right


def _random_potential(
    base: NDArray,
    hidden_sizes: Sequence[int],
    strength: float,
    strong_convexity: float,
    rng: np.random.RandomState,
):
    """A random strongly convex, smooth potential ``c F(x) + lambda |x|^2 / 2`` (F a FICNN).

    F is a softplus FICNN on standardised inputs, drawn from ``rng``; c makes the mean
    eigenvalue of ``c Hess F`` over the base rows equal ``strength`` so the maps move the
    data visibly whatever its scale; lambda = ``strong_convexity`` guarantees strong
    convexity (Lemma 2 needs it).
    """
    from .nn.icnn import FICNN

    d = base.shape[1]
    pot = FICNN(d, hidden_sizes, activation="softplus", dtype=torch.float64)
    mu = torch.as_tensor(base.mean(0))
    sd = float(np.sqrt(np.mean(base.var(0)))) or 1.0
    with torch.no_grad():
        for layer in pot.input_layers:
            bound = 1.0 / np.sqrt(d)
            W = rng.uniform(-bound, bound, size=tuple(layer.weight.shape)) / sd
            layer.weight.copy_(torch.as_tensor(W))
            b = rng.uniform(-bound, bound, size=tuple(layer.bias.shape))
            layer.bias.copy_(torch.as_tensor(b) - layer.weight @ mu)
        # no linear term in the output: it would only translate the inputs
        pot.input_layers[-1].weight.zero_()
        pot.input_layers[-1].bias.zero_()
        for Wz in pot.z_weights:
            Wz.copy_(torch.as_tensor(rng.uniform(0.0, 2.0 / Wz.shape[1], size=tuple(Wz.shape))))
        probe = torch.as_tensor(base[rng.choice(len(base), min(256, len(base)), replace=False)])
        h = float(torch.diagonal(pot.hessian(probe), dim1=-2, dim2=-1).sum(-1).mean()) / d
        c = strength / max(h, 1e-300)
        pot.z_weights[-1].mul_(c)
    pot.strong_convexity = float(strong_convexity)
    pot.requires_grad_(False)
    return pot


def _cg(matvec, B: torch.Tensor, rtol, max_iter: int = 200) -> torch.Tensor:
    """Conjugate gradients, row by row: solve ``A_i x_i = b_i`` for SPD operators A_i.

    ``matvec(P)`` applies every row's operator to its row of P; ``rtol`` is a float or a
    per-row tensor (stop when ``|r_i| <= rtol_i |b_i|``).
    """
    X = torch.zeros_like(B)
    R = B.clone()
    P = R.clone()
    rs = (R * R).sum(1)
    stop = (rtol * torch.sqrt(rs)) ** 2
    for _ in range(max_iter):
        live = rs > stop
        if not bool(live.any()):
            break
        AP = matvec(P)
        pap = (P * AP).sum(1)
        alpha = torch.where(live, rs / torch.where(live, pap, 1.0), 0.0)
        X += alpha[:, None] * P
        R -= alpha[:, None] * AP
        rs_new = (R * R).sum(1)
        P = R + torch.where(live, rs_new / torch.where(live, rs, 1.0), 0.0)[:, None] * P
        rs = rs_new
    return X


def _solve_left(
    pot,
    beta: float,
    X: torch.Tensor,
    Y0: torch.Tensor | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
):
    """Solve problem (11): ``y = argmax <x, y> - beta |y|^2 / 2 - (1 - beta) psi(y)``.

    Newton-CG (Hessian-vector products of the FICNN, Armijo backtracking row by row) on
    the strongly convex ``Phi(y) - <x, y>``, ``Phi = beta |.|^2 / 2 + (1 - beta) psi``, in
    float64, until ``|grad| <= tol (1 + |x|)`` on every row.

    Returns
    -------
    Y : tensor (n, d)
        ``grad psi^l(x)``.
    G : tensor (n, d)
        ``grad psi(Y)``, i.e. ``grad psi^r(x)``.
    hvp : callable
        Hessian-vector products of psi at Y.
    """
    Y = X.clone() if Y0 is None else Y0.clone()
    scale = 1.0 + torch.linalg.vector_norm(X, dim=1)
    active = torch.arange(len(X))
    for _ in range(max_iter):
        x, y = X[active], Y[active]
        v, g0, hvp = pot.linearize(y)
        grad = beta * y + (1.0 - beta) * g0 - x
        gnorm = torch.linalg.vector_norm(grad, dim=1)
        keep = gnorm > tol * scale[active]
        if not bool(keep.any()):
            break
        if not bool(keep.all()):
            active, x, y, grad, v, gnorm = (t[keep] for t in (active, x, y, grad, v, gnorm))
            v, g0, hvp = pot.linearize(y)
        xy = (x * y).sum(1)
        f = 0.5 * beta * (y * y).sum(1) + (1.0 - beta) * v - xy
        noise = f.abs() + xy.abs() + v.abs()
        eta = torch.clamp(torch.sqrt(gnorm / scale[active]), max=0.1)
        p = -_cg(lambda P, h=hvp: beta * P + (1.0 - beta) * h(P), grad, eta)
        slope = (grad * p).sum(1)
        t = torch.ones(len(active), dtype=X.dtype)
        for _ in range(40):
            y_new = y + t[:, None] * p
            f_new = 0.5 * beta * (y_new * y_new).sum(1) + (1.0 - beta) * pot(y_new)
            f_new = f_new - (x * y_new).sum(1)
            # near the solution the decrease is below the round-off of f: take full steps
            ok = (f_new <= f + 1e-4 * t * slope) | (-slope <= 1e-13 * (1.0 + noise))
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        Y[active] = y + t[:, None] * p
    else:
        raise RuntimeError(f"problem (11) did not converge in {max_iter} Newton steps.")
    _, G, hvp = pot.linearize(Y)
    return Y, G, hvp


@dataclass
class CongruentBenchmark(_Benchmark):
    """Inputs ``P_k = grad psi_k # P`` with congruent potentials: the barycenter is P.

    Built by :func:`make_congruent` (WIN paper, section 5). ``grad psi_k`` is the OT map
    from the barycenter to input k; its inverse, the map from input k to the barycenter, is
    computed by Newton's method (or read off for the rows the benchmark itself produced).

    Attributes
    ----------
    marginals, weights, X, y
    marginal_sources : list of ndarray
        The base rows input k was pushed from: ``marginals[k] = grad psi_k(sources[k])``.
    barycenter_samples : ndarray of shape (n_heldout, d)
        Held-out base rows: a sample of the true barycenter no input was built from.
    heldout_marginals : list of ndarray
        ``grad psi_k(barycenter_samples)``: held-out rows of every input, for scoring.
    barycenter_mean, barycenter_cov : ndarray
        Sample moments of all base rows (the barycenter is the base distribution).
    potentials : list of FICNN
        The base convex functions ``psi^0_m`` (float64), one per congruent pair.
    betas, left, right : ndarray of shape (M,)
        ``beta_m`` and the masses ``L_m = w_m beta_m``, ``R_m = w_m (1 - beta_m)`` of (12).
    pairs : ndarray of shape (M, 2)
        The inputs that receive pair m's beta-left and beta-right functions.
    """

    marginal_sources: list = field(default_factory=list)
    barycenter_samples: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    heldout_marginals: list = field(default_factory=list)
    barycenter_mean: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    barycenter_cov: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    potentials: list = field(default_factory=list)
    betas: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    left: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    right: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    pairs: NDArray[np.int64] = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))
    tol: float = 1e-12

    @property
    def n_features(self) -> int:
        """Dimension d of every input."""
        return int(self.barycenter_samples.shape[1])

    # ------------------------------------------------------------------ internals
    def _terms(self, k: int) -> list[tuple[int, str, float]]:
        """(pair, "l" or "r", coefficient / alpha_k) of every term of psi_k in (12)."""
        out = []
        for m, (kl, kr) in enumerate(self.pairs):
            if kl == k:
                out.append((m, "l", self.left[m] / self.weights[k]))
            if kr == k:
                out.append((m, "r", self.right[m] / self.weights[k]))
        return out

    def _psi(self, X: torch.Tensor, k: int, warm: dict | None = None):
        """psi_k at rows X: value, gradient, a Hessian-vector operator and pair solutions.

        For pair m with ``y = grad psi^l_m(x)``: ``d y / d x = (beta I + (1 - beta) H)^-1``
        and ``d grad psi^r_m / d x = H (d y / d x)``, H the Hessian of ``psi^0_m`` at y; the
        inverse is applied by conjugate gradients.
        """
        n, d = X.shape
        value = X.new_zeros(n)
        grad = X.new_zeros(n, d)
        sols: dict[int, torch.Tensor] = {}
        ops = []
        terms = self._terms(k)
        if not terms:  # a single input: psi = |x|^2 / 2
            return 0.5 * (X * X).sum(1), X.clone(), (lambda V: V), sols
        for m, side, c in terms:
            beta = float(self.betas[m])
            pot = self.potentials[m]
            Y, G, hvp = _solve_left(pot, beta, X, None if warm is None else warm.get(m), self.tol)
            sols[m] = Y
            phi = 0.5 * beta * (Y * Y).sum(1) + (1.0 - beta) * pot(Y)
            psi_l = (X * Y).sum(1) - phi
            if side == "l":
                value += c * psi_l
                grad += c * Y
            else:
                value += c * (0.5 * (X * X).sum(1) - beta * psi_l) / (1.0 - beta)
                grad += c * G
            ops.append((side, c, beta, hvp))

        def jac(V: torch.Tensor) -> torch.Tensor:
            out = torch.zeros_like(V)
            for side, c, beta, hvp in ops:
                Q = _cg(lambda P, b=beta, h=hvp: b * P + (1.0 - b) * h(P), V, 1e-11)
                out += c * (Q if side == "l" else hvp(Q))
            return out

        return value, grad, jac, sols

    def _lookup(self, X: NDArray, k: int) -> tuple[NDArray, NDArray[np.bool_]]:
        """Exact preimages of rows this benchmark produced for input k (others: NaN)."""
        table = self.__dict__.get("_tables")
        if table is None:
            table = {}
            for j in range(self.n_marginals):
                rows = {}
                for src, img in (
                    (self.marginal_sources[j], self.marginals[j]),
                    (self.barycenter_samples, self.heldout_marginals[j]),
                ):
                    for s_row, i_row in zip(src, img, strict=True):
                        rows[np.ascontiguousarray(i_row).tobytes()] = s_row
                table[j] = rows
            self.__dict__["_tables"] = table
        out = np.full_like(X, np.nan)
        found = np.zeros(len(X), dtype=bool)
        rows = table[k]
        for i, row in enumerate(np.ascontiguousarray(X)):
            hit = rows.get(row.tobytes())
            if hit is not None:
                out[i], found[i] = hit, True
        return out, found

    # ------------------------------------------------------------------ truth
    def potential(self, Z: ArrayLike, k: int) -> NDArray[np.float64]:
        """Values ``psi_k(z)`` of the congruent potentials (12), up to a constant."""
        Z = _as_rows(Z, self.n_features, "Z")
        k = int(_per_row_k(k, 1, self.n_marginals)[0])
        with _torch_single_thread():
            return self._psi(torch.as_tensor(Z), k)[0].numpy()

    def map_from_barycenter(self, Z: ArrayLike, k: ArrayLike | int) -> NDArray[np.float64]:
        """``grad psi_k(z)``: the true OT map from the barycenter to input k.

        Parameters
        ----------
        Z : array-like of shape (n, d)
        k : int or array-like of int of shape (n,)

        Returns
        -------
        ndarray of shape (n, d)
        """
        Z = _as_rows(Z, self.n_features, "Z")
        ks = _per_row_k(k, len(Z), self.n_marginals)
        out = np.empty_like(Z)
        with _torch_single_thread():
            for j in np.unique(ks):
                rows = ks == j
                out[rows] = self._psi(torch.as_tensor(Z[rows]), int(j))[1].numpy()
        return out

    def map_to_barycenter(
        self, X: ArrayLike, k: ArrayLike | int, max_iter: int = 100
    ) -> NDArray[np.float64]:
        """``(grad psi_k)^-1(x)``: the true OT map from input k to the barycenter.

        Rows this benchmark produced (``marginals``, ``heldout_marginals``) are answered
        with the base rows they came from; other rows by damped Newton on the strongly
        convex ``psi_k(x) - <x, target>``, whose gradient and Hessian come from the pair
        solutions of (11).
        """
        Xin = _as_rows(X, self.n_features)
        ks = _per_row_k(k, len(Xin), self.n_marginals)
        out = np.empty_like(Xin)
        for j in np.unique(ks):
            rows = np.flatnonzero(ks == j)
            known, found = self._lookup(Xin[rows], int(j))
            out[rows[found]] = known[found]
            todo = rows[~found]
            if len(todo):
                with _torch_single_thread():
                    out[todo] = self._invert(Xin[todo], int(j), max_iter)
        return out

    def _invert(self, T: NDArray, k: int, max_iter: int) -> NDArray:
        target = torch.as_tensor(T)
        x = target.clone()
        scale = 1.0 + torch.linalg.vector_norm(target, dim=1)
        for _ in range(max_iter):
            v, g, jac, sols = self._psi(x, k)
            g = g - target
            gnorm = torch.linalg.vector_norm(g, dim=1)
            if bool((gnorm <= 1e2 * self.tol * scale).all()):
                return x.numpy()
            xt = (x * target).sum(1)
            f = v - xt
            noise = v.abs() + xt.abs()
            eta = torch.clamp(torch.sqrt(gnorm / scale), max=0.1)
            p = -_cg(jac, g, eta)
            slope = (g * p).sum(1)
            t = torch.ones(len(x), dtype=x.dtype)
            for _ in range(40):
                x_new = x + t[:, None] * p
                f_new = self._psi(x_new, k, warm=sols)[0] - (x_new * target).sum(1)
                ok = (f_new <= f + 1e-4 * t * slope) | (-slope <= 1e-13 * (1.0 + noise))
                if bool(ok.all()):
                    break
                t = torch.where(ok, t, 0.5 * t)
            x = x + t[:, None] * p
        raise RuntimeError(f"inverting grad psi_{k} did not converge in {max_iter} steps.")

    def sample_marginals(self, n: int | Sequence[int], random_state=None) -> list[NDArray]:
        """Held-out rows of every input (``heldout_marginals``): n per input, at most all.

        The benchmark is finite; a request beyond the held-out rows returns all of them.
        """
        rng = check_random_state(random_state)
        sizes = _n_per_input(n, self.n_marginals)
        out = []
        for k in range(self.n_marginals):
            H = self.heldout_marginals[k]
            m = min(sizes[k], len(H))
            out.append(H[np.sort(rng.choice(len(H), m, replace=False))])
        return out


def make_congruent(
    base_samples: ArrayLike,
    n_marginals: int = 3,
    weights: ArrayLike | None = None,
    random_state=None,
    *,
    heldout_fraction: float = 0.25,
    hidden_sizes: Sequence[int] = (64, 64),
    strength: float = 0.5,
    strong_convexity: float = 0.1,
) -> CongruentBenchmark:
    """Inputs whose barycenter is the law of ``base_samples`` (WIN paper, section 5).

    Recipe (Lemmas 2 and 3):

    1. For m = 1..K-1 draw a random strongly convex, smooth potential
       ``psi^0_m(x) = c F_m(x) + lambda |x|^2 / 2`` with F_m a softplus :class:`FICNN`
       (c scaled so the mean curvature of ``c F_m`` on the data is ``strength``;
       ``lambda = strong_convexity``).
    2. Its beta-left/right pair (10) is congruent for weights (beta, 1 - beta):
       ``grad psi^l(x)`` is the solution y of the strongly concave problem (11), solved by
       Newton's method, and ``grad psi^r(x) = grad psi^0(y)``.
    3. Lemma 3 combines the pairs into K potentials (12) congruent for ``weights`` (a chain:
       pair m feeds inputs m and m + 1; see the WIN choice for K = 3 in the paper).
    4. ``base_samples`` is shuffled and split: ``heldout_fraction`` of its rows are kept as
       ``barycenter_samples``; the rest is cut into K disjoint parts and part k is pushed by
       ``grad psi_k`` to form input k.

    Since ``sum_k a_k grad psi_k = id`` and each ``grad psi_k`` is the gradient of a convex
    function, the barycenter of the inputs is the base distribution (unique when the base
    law has a density; add a little noise to discrete data, as :func:`load_ave_digits`
    does).

    Parameters
    ----------
    base_samples : array-like of shape (n, d)
        Sample of the barycenter to be.
    n_marginals : int, default=3
        Number of inputs K.
    weights : array-like of shape (K,), default=None
        Barycenter weights; uniform when None.
    random_state : int, RandomState instance or None, default=None
        Seeds the potentials and the split.
    heldout_fraction : float, default=0.25
        Fraction of rows kept out of the inputs as barycenter samples.
    hidden_sizes : sequence of int, default=(64, 64)
        Hidden widths of the FICNNs.
    strength : float, default=0.5
        Mean curvature of the network part of each potential (how far the maps move data).
    strong_convexity : float, default=0.1
        The quadratic ``lambda`` of each potential.

    Returns
    -------
    CongruentBenchmark
        ``marginals``, ``weights``, ``X``, ``y``, ``barycenter_samples``,
        ``heldout_marginals``, ``map_from_barycenter(Z, k)``, ``map_to_barycenter(X, k)``,
        ``barycenter_mean``, ``barycenter_cov``, ``sample_marginals``.
    """
    base = np.asarray(base_samples, dtype=np.float64)
    if base.ndim != 2 or not np.all(np.isfinite(base)):
        raise ValueError(f"base_samples must be a finite 2-D array, got shape {base.shape}.")
    K = int(n_marginals)
    if K < 1:
        raise ValueError(f"n_marginals must be >= 1, got {n_marginals}.")
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must lie in (0, 1), got {heldout_fraction}.")
    n_held = int(round(heldout_fraction * len(base)))
    if len(base) - n_held < 2 * K or n_held < 2:
        raise ValueError(
            f"base_samples has {len(base)} rows: too few for {K} inputs of at least 2 rows "
            f"and a held-out part (heldout_fraction={heldout_fraction})."
        )
    if strength <= 0 or strong_convexity <= 0:
        raise ValueError("strength and strong_convexity must be positive.")
    a = np.full(K, 1.0 / K) if weights is None else check_weights(weights, K)
    if np.any(a <= 0):
        raise ValueError(f"weights must be positive for the construction, got {a}.")
    rng = check_random_state(random_state)
    pairs, left, right = _chain_pairs(a)
    betas = left / (left + right)
    with _torch_single_thread():
        potentials = [
            _random_potential(base, hidden_sizes, strength, strong_convexity, rng)
            for _ in range(len(pairs))
        ]
    perm = rng.permutation(len(base))
    held, rest = base[perm[:n_held]], base[perm[n_held:]]
    sources = [np.ascontiguousarray(p) for p in np.array_split(rest, K)]
    bench = CongruentBenchmark(
        marginals=[],
        weights=a,
        marginal_sources=sources,
        barycenter_samples=held,
        barycenter_mean=base.mean(0),
        barycenter_cov=np.atleast_2d(np.cov(base, rowvar=False)),
        potentials=potentials,
        betas=betas,
        left=left,
        right=right,
        pairs=pairs,
    )
    bench.marginals = [bench.map_from_barycenter(sources[k], k) for k in range(K)]
    bench.heldout_marginals = [bench.map_from_barycenter(held, k) for k in range(K)]
    return bench


# --------------------------------------------------------------------------------------
# Ave, digits!  The congruent construction on scikit-learn's bundled 8x8 digits
# --------------------------------------------------------------------------------------

_AVE_DIGITS_VERSION = 1


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
    from .nn.icnn import FICNN

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


def load_ave_digits(
    random_state: int = 0,
    *,
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
) -> CongruentBenchmark:
    """ "Ave, digits!": three inputs whose barycenter is the 8x8 digits distribution.

    The WIN paper's Ave, celeba! recipe (section 5) on scikit-learn's bundled digits
    (1797 images, 64 pixels, nothing is downloaded): K = 3 inputs, weights (1/4, 1/2, 1/4),
    two congruent pairs with beta = 1/2 combined as in the paper. The pixels are
    dequantised, ``(pixel + U(0, 1)) / 17`` in (0, 1), so the base law has a density and
    the barycenter is unique. A quarter of the images are held out as
    ``barycenter_samples``; the rest are split into three disjoint parts of about 449 rows,
    pushed to the inputs by ``grad psi_k``.

    The first build takes a few seconds and is cached as an ``.npz`` under
    :func:`get_data_home` (``$SKBARY_DATA`` or ``~/scikit_learn_data/skbary``); later calls
    load it.

    Parameters
    ----------
    random_state : int, default=0
        Seeds the dequantisation, the potentials and the split (one cache file per value).
    data_home : str or path, default=None
        Cache folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Named as in scikit-learn: when False and no cache exists, raise OSError instead of
        building (nothing is ever downloaded).

    Returns
    -------
    CongruentBenchmark
        See :func:`make_congruent`; images are rows of 64 pixels (reshape to (8, 8)).
    """
    from sklearn.datasets import load_digits

    if not isinstance(random_state, numbers.Integral):
        raise TypeError(f"random_state must be an int (it names the cache), got {random_state!r}.")
    path = os.path.join(
        get_data_home(data_home), f"ave_digits_v{_AVE_DIGITS_VERSION}_rs{int(random_state)}.npz"
    )
    if os.path.exists(path):
        return _load_congruent(path)
    if not download_if_missing:
        raise OSError(f"no cached Ave, digits! at {path}.")
    rng = np.random.RandomState(int(random_state))
    pixels = load_digits().data
    base = (pixels + rng.uniform(size=pixels.shape)) / 17.0
    bench = make_congruent(base, n_marginals=3, weights=[0.25, 0.5, 0.25], random_state=rng)
    _save_congruent(bench, path)
    return bench
