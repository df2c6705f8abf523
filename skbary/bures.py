"""Gaussian (Bures-Wasserstein) optimal-transport algebra.

Everything here works on symmetric positive semi-definite matrices in float64 numpy:
square roots, the W2 distance between Gaussians, the linear OT map between two
Gaussians and the fixed-point iteration of Alvarez-Esteban et al. (2016) for the
barycenter covariance. The Gaussian baseline, the location-scatter datasets and the
BW2-UVP metric all stand on these functions.
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
