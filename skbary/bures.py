"""Gaussian (Bures-Wasserstein) optimal-transport algebra.

Everything here works on symmetric positive semi-definite matrices in float64 numpy:
square roots, the W2 distance between Gaussians, the linear OT map between two
Gaussians and the fixed-point iteration of Alvarez-Esteban et al. (2016) for the
barycenter covariance. The Gaussian baseline, the location-scatter datasets and the
BW2-UVP metric all stand on these functions. Their entropic counterparts
(:func:`entropic_ot_map`, :func:`entropic_bures_barycenter`) give the exact solution of
EgBary's problem on Gaussian inputs, the reference its epsilon table is scored against.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "sqrtm_psd",
    "inv_sqrtm_psd",
    "bures_wasserstein_squared",
    "linear_ot_map",
    "bures_barycenter",
    "entropic_ot_map",
    "entropic_bures_barycenter",
]


#: Relative floor on the eigenvalues of the barycenter iterate (:func:`bures_barycenter`).
_EIG_FLOOR = 1e-12


def _sym(A: NDArray) -> NDArray:
    return 0.5 * (A + np.swapaxes(A, -1, -2))


def sqrtm_psd(A: ArrayLike) -> NDArray[np.float64]:
    """Square root of a symmetric PSD matrix (or a stack of them) by eigendecomposition.

    Parameters
    ----------
    A : array-like of shape (..., d, d)
        Symmetric positive semi-definite matrices.

    Returns
    -------
    ndarray of shape (..., d, d)
        The symmetric PSD square roots; negative eigenvalues from round-off are clipped to 0.
    """
    w, V = np.linalg.eigh(_sym(np.asarray(A, dtype=np.float64)))
    w = np.sqrt(np.clip(w, 0.0, None))
    return _sym((V * w[..., None, :]) @ np.swapaxes(V, -1, -2))


def inv_sqrtm_psd(A: ArrayLike) -> NDArray[np.float64]:
    """Inverse square root of a symmetric positive definite matrix (or a stack of them)."""
    w, V = np.linalg.eigh(_sym(np.asarray(A, dtype=np.float64)))
    if np.any(w <= 0):
        raise np.linalg.LinAlgError("matrix is not positive definite")
    return _sym((V / np.sqrt(w)[..., None, :]) @ np.swapaxes(V, -1, -2))


def bures_wasserstein_squared(
    mean1: ArrayLike, cov1: ArrayLike, mean2: ArrayLike, cov2: ArrayLike
) -> float:
    """Squared W2 distance between N(mean1, cov1) and N(mean2, cov2).

    ``|m1 - m2|^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2)`` (no factor 1/2).
    """
    m1, m2 = np.asarray(mean1, float), np.asarray(mean2, float)
    S1, S2 = np.asarray(cov1, float), np.asarray(cov2, float)
    r2 = sqrtm_psd(S2)
    cross = sqrtm_psd(r2 @ S1 @ r2)
    value = np.sum((m1 - m2) ** 2) + np.trace(S1) + np.trace(S2) - 2.0 * np.trace(cross)
    return float(max(value, 0.0))


def linear_ot_map(cov_source: ArrayLike, cov_target: ArrayLike) -> NDArray[np.float64]:
    """Matrix A of the OT map x -> A (x - m_s) + m_t from N(m_s, S_s) to N(m_t, S_t).

    ``A = S_s^-1/2 (S_s^1/2 S_t S_s^1/2)^1/2 S_s^-1/2``, symmetric positive definite.
    """
    Ss = np.asarray(cov_source, float)
    St = np.asarray(cov_target, float)
    # A is scale-invariant (A(c S_s, c S_t) = A(S_s, S_t)): work in units of S_s's mean
    # variance so that products of large or tiny covariances stay representable.
    unit = float(np.trace(Ss)) / Ss.shape[-1]
    if np.isfinite(unit) and unit > 0:
        Ss, St = Ss / unit, St / unit
    r = sqrtm_psd(Ss)
    ri = inv_sqrtm_psd(Ss)
    return _sym(ri @ sqrtm_psd(r @ St @ r) @ ri)


def bures_barycenter(
    covs: ArrayLike,
    weights: ArrayLike,
    *,
    tol: float = 1e-10,
    max_iter: int = 1000,
    init: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Covariance of the W2 barycenter of centred Gaussians N(0, covs[k]) with weights.

    Fixed-point iteration of Alvarez-Esteban et al. (2016),
    ``S <- S^-1/2 (sum_k a_k (S^1/2 Sigma_k S^1/2)^1/2)^2 S^-1/2``, from ``S = I``
    (or ``init``) until the relative change in Frobenius norm is below ``tol``.

    Parameters
    ----------
    covs : array-like of shape (K, d, d)
        Covariances of the inputs (positive definite for a unique barycenter).
    weights : array-like of shape (K,)
        Barycenter weights, non-negative and summing to 1.
    tol : float, default=1e-10
        Relative tolerance on successive iterates.
    max_iter : int, default=1000
        Cap on the number of iterations.
    init : array-like of shape (d, d), optional
        Starting point; the identity by default.

    Returns
    -------
    ndarray of shape (d, d)
        The barycenter covariance S.
    """
    covs = np.asarray(covs, dtype=np.float64)
    a = np.asarray(weights, dtype=np.float64)
    d = covs.shape[-1]
    # The barycenter is scale-equivariant (c Sigma_k -> c S): iterate in units of the mean
    # variance, so that covariances of order 1e300 or 1e-300 neither overflow nor underflow.
    unit = float(np.mean(np.trace(covs, axis1=-2, axis2=-1))) / d
    unit = unit if np.isfinite(unit) and unit > 0 else 1.0
    covs = covs / unit
    S = np.eye(d) if init is None else np.asarray(init, dtype=np.float64) / unit
    for _ in range(max_iter):
        # S^1/2 and S^-1/2 from one eigendecomposition, eigenvalues floored at 1e-12 of
        # the largest: inputs that are flat in a direction (collinear or repeated rows)
        # give an iterate whose smallest eigenvalues round off to zero or below.
        w, V = np.linalg.eigh(_sym(S))
        w = np.sqrt(np.clip(w, _EIG_FLOOR * max(w.max(), 1e-300), None))
        r = _sym((V * w) @ V.T)
        ri = _sym((V / w) @ V.T)
        M = np.einsum("k,kij->ij", a, sqrtm_psd(r @ covs @ r))
        S_new = _sym(ri @ M @ M @ ri)
        delta = np.linalg.norm(S_new - S) / max(np.linalg.norm(S), 1e-300)
        S = S_new
        if delta < tol:
            break
    return S * unit


def entropic_ot_map(
    cov_source: ArrayLike, cov_target: ArrayLike, epsilon: float
) -> NDArray[np.float64]:
    """Matrix M of the entropic plan's barycentric projection between two Gaussians.

    For the cost ``1/2 |x - y|^2`` and either entropic regulariser, ``eps KL(pi | P x Q)``
    or EgBary's ``- eps int H(pi(.|x)) dP(x)`` (they differ by ``eps (H(P) + H(Q))``, a
    constant once the marginals are fixed, so they have one optimal plan), the optimal
    plan between N(m_s, A) and N(m_t, B) is Gaussian with conditional laws ::

        y | x ~ N(m_t + M (x - m_s), eps M),
        M = A^-1/2 ((A^1/2 B A^1/2 + eps^2/4 I)^1/2 - eps/2 I) A^-1/2,

    which is Janati, Muzellec, Peyre and Cuturi (NeurIPS 2020, Theorem 1, balanced case:
    their cost |x - y|^2 with regulariser 2 sigma^2 KL is this problem with
    sigma^2 = eps; the cross-covariance is ``A M``). It is also the first-order condition
    ``eps A^-1 C (B - C^T A^-1 C)^-1 = I`` of ``min_C -tr C - eps/2 log det(B - C^T A^-1 C)``
    over the cross-covariance C. ``epsilon = 0`` gives :func:`linear_ot_map`.

    Parameters
    ----------
    cov_source, cov_target : array-like of shape (d, d)
        A (positive definite) and B.
    epsilon : float
        eps >= 0, in the units of the cost (squared data units).

    Returns
    -------
    ndarray of shape (d, d)
        M, symmetric positive definite; ``M A M + eps M = B``.
    """
    A = np.asarray(cov_source, float)
    B = np.asarray(cov_target, float)
    eps = float(epsilon)
    if eps < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}.")
    d = A.shape[-1]
    r, ri = sqrtm_psd(A), inv_sqrtm_psd(A)
    inner = sqrtm_psd(r @ B @ r + 0.25 * eps**2 * np.eye(d)) - 0.5 * eps * np.eye(d)
    return _sym(ri @ inner @ ri)


def entropic_bures_barycenter(
    covs: ArrayLike,
    weights: ArrayLike,
    epsilon: float,
    *,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """EgBary's entropic barycenter of centred Gaussians, and the plans' projection matrices.

    The barycenter of ``sum_k a_k EOT_eps(N(0, Sigma_k), Q)`` with the cost
    ``1/2 |x - y|^2`` and the conditional-entropy regulariser (Kolesov et al., NeurIPS
    2024, eq. 7; :class:`~skbary.EnergyBarycenter`). It is the Gaussian N(0, S) at which
    the dual potentials are congruent (their Theorem 4.1): the Gaussian plan from input k
    (:func:`entropic_ot_map`, ``y | x ~ N(M_k x, eps M_k)``) is ``exp((f_k(y) - c(x, y)) /
    eps)`` with ``f_k(y) = 1/2 |y|^2 - 1/2 y^T M_k^-1 y``, so ``sum_k a_k f_k = 0`` reads ::

        sum_k a_k M_k(S)^-1 = I.

    Gaussian is no restriction: the primal is convex in Q and its first variation,
    ``sum_k a_k f_k``, is a quadratic whose coefficients vanish at a stationary Gaussian,
    so that point is the global minimiser. Iteration: ``S <- T S T`` with
    ``T = sum_k a_k M_k(S)^-1``, which at eps = 0 is exactly the fixed point of Alvarez-
    Esteban et al. (2016) (:func:`bures_barycenter`, its starting point here). The means
    average as in the unregularised case (``m = sum_k a_k m_k``). Larger eps widens the
    barycenter (about ``+ eps`` per direction: the plans' conditional spread), and the
    projections ``x -> M_k x`` move away from the OT maps; EgBary's L2-UVP against the
    unregularised maps cannot fall below what these exact projections score.

    Parameters
    ----------
    covs : array-like of shape (K, d, d)
        Covariances of the inputs (positive definite).
    weights : array-like of shape (K,)
        Barycenter weights, non-negative and summing to 1.
    epsilon : float
        eps >= 0 in the units of the cost (squared data units).
    tol : float, default=1e-12
        Relative tolerance (Frobenius) on successive iterates.
    max_iter : int, default=10000
        Cap on the number of iterations.

    Returns
    -------
    cov : ndarray of shape (d, d)
        The barycenter covariance S.
    maps : ndarray of shape (K, d, d)
        M_k: the barycentric projection of the plan from input k is
        ``x -> m + M_k (x - m_k)``.
    """
    covs = np.asarray(covs, dtype=np.float64)
    a = np.asarray(weights, dtype=np.float64)
    eps = float(epsilon)
    S = bures_barycenter(covs, a)
    for _ in range(max_iter):
        maps = np.stack([entropic_ot_map(A, S, eps) for A in covs])
        T = np.einsum("k,kij->ij", a, np.linalg.inv(maps))
        S_new = _sym(T @ S @ T)
        delta = np.linalg.norm(S_new - S) / max(np.linalg.norm(S), 1e-300)
        S = S_new
        if delta < tol:
            break
    maps = np.stack([entropic_ot_map(A, S, eps) for A in covs])
    return S, maps
