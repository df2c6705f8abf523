"""The 2-D Twister of the EgBary paper (papers/README.md): a non-quadratic cost.

The feature map :func:`twister_u` (and its inverse), the cost :func:`twister_cost`, and
:func:`make_twister`, which returns a :class:`TwisterBenchmark`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state

from ..validation import check_weights
from ._common import _as_rows, _Benchmark, _n_per_input, _per_row_k

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
