"""How close a fitted barycenter is to the truth (definitions in BENCHMARKS.md).

Metrics (lower is better):

* :func:`bw_uvp` -- BW2-UVP (%) of barycenter samples against the true mean and covariance.
* :func:`l2_uvp` -- L2-UVP (%) of mapped points against the true map's images.
* :func:`energy_distance` -- unbiased energy distance between two samples (chunked torch).
* :func:`frechet_distance` -- the Frechet distance of Gaussian fits of two samples, in a
  feature space (FID's formula; on images, the features of a trained classifier).
* :func:`barycenter_cost` -- ``sum_k a_k W2^2(Y, X_k)`` by exact OT (POT), no truth needed.
* :func:`marginal_w2` -- sum of the exact 1-D W2^2 of samples' marginals against a
  product-measure truth's quantiles (% of its total variance).
* :func:`sliced_w2` -- sliced W2^2 between two samples (% of a covariance's trace).

:func:`score_benchmark` scores a fitted estimator on a benchmark from
:mod:`skbary.datasets` in one call. The scorers for ``GridSearchCV``, built on these
metrics, live in :mod:`skbary.scorers` (which imports this module, never the reverse).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state

from .bures import bures_wasserstein_squared
from .training.device import torch_threads

__all__ = [
    "bw_uvp",
    "l2_uvp",
    "weighted_l2_uvp",
    "energy_distance",
    "frechet_distance",
    "barycenter_cost",
    "barycenter_moments",
    "score_benchmark",
    "truth_samples",
    "marginal_w2",
    "sliced_w2",
]


def _rows(Y: Any, name: str, min_rows: int = 1) -> NDArray[np.float64]:
    if isinstance(Y, torch.Tensor):
        Y = Y.detach().cpu().numpy()
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {Y.shape}.")
    if Y.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {Y.shape[0]}.")
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{name} contains NaN or inf.")
    return Y


def bw_uvp(Y: ArrayLike, mean: ArrayLike, cov: ArrayLike) -> float:
    """BW2-UVP (%) of samples Y against the barycenter N(mean, cov).

    ``100 * BW2^2(N(mean Y, cov Y), N(mean, cov)) / tr cov``, with the sample covariance
    (``ddof=1``) and ``BW2^2 = |m1 - m2|^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2)``.

    Parameters
    ----------
    Y : array-like of shape (n, d)
        Samples from the fitted barycenter (the papers use 10^5).
    mean : array-like of shape (d,)
        True barycenter mean.
    cov : array-like of shape (d, d)
        True barycenter covariance.

    Returns
    -------
    float
        BW2-UVP in percent (0 is perfect).
    """
    Y = _rows(Y, "Y", min_rows=2)
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    cov = np.asarray(cov, dtype=np.float64)
    d = Y.shape[1]
    if mean.shape != (d,) or cov.shape != (d, d):
        raise ValueError(
            f"mean must have shape ({d},) and cov ({d}, {d}) to match Y; "
            f"got {mean.shape} and {cov.shape}."
        )
    S1 = np.atleast_2d(np.cov(Y, rowvar=False))
    value = bures_wasserstein_squared(Y.mean(axis=0), S1, mean, cov)
    return float(100.0 * value / np.trace(cov))


def l2_uvp(Y_pred: ArrayLike, Y_true: ArrayLike, cov: ArrayLike) -> float:
    """L2-UVP (%) of mapped points: ``100 * mean_i |Y_pred_i - Y_true_i|^2 / tr cov``.

    Parameters
    ----------
    Y_pred : array-like of shape (n, d)
        A learned map's images ``T^_k(x_i)`` of rows x_i of input k.
    Y_true : array-like of shape (n, d)
        The true map's images ``T_k(x_i)`` of the same rows.
    cov : array-like of shape (d, d)
        Covariance of the true barycenter (only its trace is used).

    Returns
    -------
    float
        L2-UVP in percent (0 is perfect).
    """
    P = _rows(Y_pred, "Y_pred")
    T = _rows(Y_true, "Y_true")
    if P.shape != T.shape:
        raise ValueError(f"Y_pred and Y_true must have the same shape, got {P.shape}, {T.shape}.")
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (P.shape[1], P.shape[1]):
        raise ValueError(f"cov must have shape ({P.shape[1]}, {P.shape[1]}), got {cov.shape}.")
    return float(100.0 * np.mean(np.sum((P - T) ** 2, axis=1)) / np.trace(cov))


def weighted_l2_uvp(
    estimator: Any,
    benchmark: Any,
    marginals: Sequence[ArrayLike] | None = None,
) -> dict[str, Any]:
    """L2-UVP of ``estimator.transform`` on every input, and their weighted average.

    Parameters
    ----------
    estimator : fitted barycenter estimator
        Needs ``transform(X, k)``.
    benchmark : benchmark from :mod:`skbary.datasets`
        Needs ``weights``, ``map_to_barycenter(X, k)`` and :func:`barycenter_moments`.
    marginals : list of array-like, optional
        Rows of every input to map (held-out rows); ``benchmark.sample_marginals(10000, 0)``
        when None.

    Returns
    -------
    dict
        ``{"l2_uvp": [per input], "l2_uvp_weighted": sum_k a_k L2-UVP_k}``.
    """
    if marginals is None:
        marginals = benchmark.sample_marginals(10000, random_state=0)
    _, cov = barycenter_moments(benchmark)
    per = []
    for k, Xk in enumerate(marginals):
        Xk = np.asarray(Xk, dtype=np.float64)
        per.append(l2_uvp(estimator.transform(Xk, k), benchmark.map_to_barycenter(Xk, k), cov))
    a = np.asarray(benchmark.weights, dtype=np.float64)
    return {"l2_uvp": per, "l2_uvp_weighted": float(np.dot(a, per))}


# --------------------------------------------------------------------------------------
# Energy distance
# --------------------------------------------------------------------------------------


def _pair_sum(A: torch.Tensor, B: torch.Tensor, chunk: int, same: bool, n_jobs: int = 1) -> float:
    """Sum of |a_i - b_j| over all (i, j), or over ordered pairs i != j when ``same``.

    Distances come in float32 blocks from Gram products (``|a|^2 + |b|^2 - 2 a.b``, one
    BLAS call per block, computed in place); each row of a block is summed in float32 (at
    most ``chunk`` terms) and the row sums are accumulated in float64. With ``same`` only
    blocks on or above the diagonal are computed: off-diagonal blocks count twice, and the
    diagonal of a diagonal block is set to its exact value 0. Row blocks are shared among
    ``n_jobs`` threads (torch releases the GIL); the result does not depend on ``n_jobs``.
    """
    nA = (A * A).sum(1)
    nB = nA if same else (B * B).sum(1)

    def row_block(i: int) -> float:
        a = slice(i, i + chunk)
        total = 0.0
        for j in range(i if same else 0, B.shape[0], chunk):
            b = slice(j, j + chunk)
            D = torch.addmm(nA[a, None] + nB[None, b], A[a], B[b].T, alpha=-2.0)
            D.clamp_(min=0.0).sqrt_()
            if same and j == i:
                D.fill_diagonal_(0.0)
            s = float(D.sum(dim=1).sum(dtype=torch.float64))
            total += 2.0 * s if (same and j != i) else s
        return total

    starts = range(0, A.shape[0], chunk)
    if n_jobs <= 1:
        return sum(map(row_block, starts))
    with ThreadPoolExecutor(n_jobs) as pool:
        return sum(pool.map(row_block, starts))


def energy_distance(
    X: ArrayLike,
    Y: ArrayLike,
    *,
    chunk_size: int = 1024,
    n_jobs: int | None = None,
    device: str | torch.device = "cpu",
) -> float:
    """Unbiased energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` between two samples.

    U-statistics: the within-sample means run over distinct pairs (``n (n - 1)`` of them).
    Distances are computed in float32 blocks of ``chunk_size`` rows on ``device`` (after
    centring both samples on their joint mean, which limits round-off); each block row is
    summed in float32 and the row sums are accumulated in float64, so memory stays
    ``O(chunk_size^2)`` whatever n is. The absolute error is about 1e-7 times ``E|X - Y|``.

    On CPU the blocks are shared among ``n_jobs`` threads, each running torch
    single-threaded (many small BLAS calls scale better this way than with torch's
    intra-op threads, which also make elementwise ops on small blocks slow on a busy
    machine); torch's thread setting is restored afterwards.

    Parameters
    ----------
    X : array-like or tensor of shape (n, d)
    Y : array-like or tensor of shape (m, d)
        n, m >= 2.
    chunk_size : int, default=1024
        Rows per block (1024 keeps a block in cache).
    n_jobs : int, default=None
        CPU threads; None uses ``torch.get_num_threads()``.
    device : str or torch.device, default="cpu"

    Returns
    -------
    float
        The estimate (it can be slightly negative when the laws are equal).
    """
    Xn = _rows(X, "X", min_rows=2)
    Yn = _rows(Y, "Y", min_rows=2)
    if Xn.shape[1] != Yn.shape[1]:
        raise ValueError(f"X and Y must have the same number of columns: {Xn.shape}, {Yn.shape}.")
    center = (Xn.sum(0) + Yn.sum(0)) / (len(Xn) + len(Yn))
    Xt = torch.as_tensor(Xn - center, dtype=torch.float32, device=device)
    Yt = torch.as_tensor(Yn - center, dtype=torch.float32, device=device)
    n, m = len(Xt), len(Yt)
    chunk = int(chunk_size)
    on_cpu = Xt.device.type == "cpu"
    jobs = (torch.get_num_threads() if n_jobs is None else int(n_jobs)) if on_cpu else 1
    jobs = min(jobs, -(-max(n, m) // chunk))  # no more threads than row blocks
    with torch_threads(1 if on_cpu else None), torch.no_grad():
        sxy = _pair_sum(Xt, Yt, chunk, False, jobs)
        sxx = _pair_sum(Xt, Xt, chunk, True, jobs)
        syy = _pair_sum(Yt, Yt, chunk, True, jobs)
    return 2.0 * sxy / (n * m) - sxx / (n * (n - 1)) - syy / (m * (m - 1))


def frechet_distance(
    X: ArrayLike, Y: ArrayLike, features: Callable[[NDArray], ArrayLike] | None = None
) -> float:
    """Frechet distance between Gaussian fits of two samples, optionally in a feature space.

    ``|m_X - m_Y|^2 + tr(S_X + S_Y - 2 (S_Y^1/2 S_X S_Y^1/2)^1/2)`` on ``features(X)`` and
    ``features(Y)``: the squared Bures-Wasserstein distance of their means and (``ddof=1``)
    covariances, which is the formula of the Frechet Inception distance. On MNIST pass
    ``load_mnist_classifier().features`` (:mod:`skbary.datasets.mnist_classifier`).

    Parameters
    ----------
    X : array-like of shape (n, d)
    Y : array-like of shape (m, d)
        n, m >= 2.
    features : callable, default=None
        Maps rows (n, d) to features (n, f); None compares the rows themselves.

    Returns
    -------
    float
        Non-negative; 0 when the two fits coincide.
    """
    Xn = _rows(X, "X", min_rows=2)
    Yn = _rows(Y, "Y", min_rows=2)
    if Xn.shape[1] != Yn.shape[1]:
        raise ValueError(f"X and Y must have the same number of columns: {Xn.shape}, {Yn.shape}.")
    if features is not None:
        Xn = _rows(features(Xn), "features(X)", min_rows=2)
        Yn = _rows(features(Yn), "features(Y)", min_rows=2)
    SX = np.atleast_2d(np.cov(Xn, rowvar=False))
    SY = np.atleast_2d(np.cov(Yn, rowvar=False))
    return bures_wasserstein_squared(Xn.mean(0), SX, Yn.mean(0), SY)


# --------------------------------------------------------------------------------------
# Barycenter cost
# --------------------------------------------------------------------------------------

MAX_OT_SAMPLES = 5000


def barycenter_cost(
    Y: ArrayLike,
    marginals: Sequence[ArrayLike],
    weights: ArrayLike | None = None,
    n_samples: int | None = None,
    random_state=None,
) -> float:
    """``sum_k a_k W2^2(Y, X_k)`` by exact OT between equal-size subsamples (POT's emd2).

    No truth is needed: this is what a grid search on real data minimises. W2^2 is the
    plain squared distance ``min E|x - y|^2`` (no factor 1/2).

    Parameters
    ----------
    Y : array-like of shape (n, d)
        Samples from the fitted barycenter.
    marginals : list of array-like of shape (n_k, d)
        Samples of every input (use held-out rows to score a fit).
    weights : array-like of shape (K,), default=None
        Barycenter weights; uniform when None.
    n_samples : int, default=None
        Rows drawn without replacement from Y and from each X_k for each OT problem; when
        None, ``min(len(Y), n_k, 5000)`` (exact OT costs O(n^3) time and O(n^2) memory).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling.

    Returns
    -------
    float
    """
    import ot

    Y = _rows(Y, "Y", min_rows=1)
    Xs = [_rows(Xk, f"marginals[{k}]", min_rows=1) for k, Xk in enumerate(marginals)]
    if not Xs:
        raise ValueError("marginals must hold at least one input.")
    K = len(Xs)
    if weights is None:
        a = np.full(K, 1.0 / K)
    else:
        a = np.asarray(weights, dtype=np.float64)
        if a.shape != (K,) or np.any(a < 0) or abs(a.sum() - 1.0) > 1e-6:
            raise ValueError(f"weights must be {K} non-negative numbers summing to 1, got {a}.")
    for k, Xk in enumerate(Xs):
        if Xk.shape[1] != Y.shape[1]:
            raise ValueError(f"marginals[{k}] has {Xk.shape[1]} columns but Y has {Y.shape[1]}.")
    rng = check_random_state(random_state)
    total = 0.0
    for k, Xk in enumerate(Xs):
        m = min(len(Y), len(Xk)) if n_samples is None else int(n_samples)
        if n_samples is None:
            m = min(m, MAX_OT_SAMPLES)
        if m < 1 or m > len(Y) or m > len(Xk):
            raise ValueError(
                f"n_samples={n_samples} must be between 1 and min(len(Y), len(X_k)) = "
                f"{min(len(Y), len(Xk))} for input {k}."
            )
        Ys = Y[rng.choice(len(Y), m, replace=False)]
        Xsub = Xk[rng.choice(len(Xk), m, replace=False)]
        M = ot.dist(Ys, Xsub, metric="sqeuclidean")
        u = np.full(m, 1.0 / m)
        total += a[k] * float(ot.emd2(u, u, M, numItermax=max(100_000, 50 * m * m)))
    return float(total)


# --------------------------------------------------------------------------------------
# Scoring a fitted estimator on a benchmark
# --------------------------------------------------------------------------------------


def barycenter_moments(benchmark: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and covariance of a benchmark's true barycenter.

    ``barycenter_mean`` / ``barycenter_cov`` when the benchmark has them, else the sample
    moments of ``barycenter_samples``.
    """
    mean = getattr(benchmark, "barycenter_mean", None)
    cov = getattr(benchmark, "barycenter_cov", None)
    if mean is not None and cov is not None:
        return np.asarray(mean, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    Z = getattr(benchmark, "barycenter_samples", None)
    if Z is None:
        raise ValueError("the benchmark knows neither barycenter_mean/cov nor barycenter_samples.")
    Z = np.asarray(Z, dtype=np.float64)
    return Z.mean(0), np.atleast_2d(np.cov(Z, rowvar=False))


def truth_samples(benchmark: Any, n: int, random_state=None) -> NDArray[np.float64]:
    """n draws from a benchmark's true barycenter (all held-out rows when it is finite)."""
    sampler = getattr(benchmark, "sample_barycenter", None)
    if sampler is not None:
        return np.asarray(sampler(n, random_state=random_state), dtype=np.float64)
    Z = np.asarray(benchmark.barycenter_samples, dtype=np.float64)
    if n >= len(Z):
        return Z
    return Z[check_random_state(random_state).choice(len(Z), n, replace=False)]


def score_benchmark(
    estimator: Any,
    benchmark: Any,
    n_samples: int = 100_000,
    n_heldout: int = 10_000,
    energy_samples: int = 5_000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Score a fitted estimator against a benchmark's truth, in one call.

    The maps are scored on fresh rows of every input (``benchmark.sample_marginals``), never
    on the rows the estimator was fitted on.

    Parameters
    ----------
    estimator : fitted barycenter estimator
        Needs ``sample(n, random_state)``; ``transform(X, k)`` for the L2-UVP entries.
    benchmark : benchmark from :mod:`skbary.datasets`
    n_samples : int, default=100_000
        Draws from ``estimator.sample`` for BW2-UVP (the papers use 10^5).
    n_heldout : int, default=10_000
        Fresh rows per input for L2-UVP (a finite benchmark gives at most what it holds).
    energy_samples : int, default=5_000
        Points on each side of the energy distance to the true barycenter; 0 skips it.
    random_state : int, default=0

    Returns
    -------
    dict
        ``bw_uvp`` (%), ``l2_uvp`` (list of %, one per input), ``l2_uvp_weighted`` (%,
        ``sum_k a_k L2-UVP_k``) and ``energy_distance``. The L2 entries are None when the
        estimator has no ``transform``.
    """
    rng = check_random_state(random_state)
    mean, cov = barycenter_moments(benchmark)
    Y = np.asarray(estimator.sample(int(n_samples), random_state=random_state))
    out: dict[str, Any] = {"bw_uvp": bw_uvp(Y, mean, cov)}
    if hasattr(estimator, "transform"):
        fresh = benchmark.sample_marginals(int(n_heldout), random_state=rng)
        out.update(weighted_l2_uvp(estimator, benchmark, fresh))
    else:
        out.update({"l2_uvp": None, "l2_uvp_weighted": None})
    if energy_samples:
        n_e = int(energy_samples)
        Z = truth_samples(benchmark, n_e, random_state=rng)
        out["energy_distance"] = energy_distance(Y[: min(n_e, len(Y))], Z)
    if hasattr(benchmark, "barycenter_quantile"):
        out["marginal_w2"] = marginal_w2(Y, benchmark)["marginal_w2"]
    return out


# --------------------------------------------------------------------------------------
# Non-Gaussian truths: 1-D marginals and slices
# --------------------------------------------------------------------------------------


def _w2_sorted_vs_quantile(y: NDArray, quantile: Callable[[NDArray, bool], NDArray]) -> NDArray:
    """``W2^2`` per column between the samples y (n, d) and the law with quantile ``quantile``.

    ``int_0^1 (Q_y(u) - Q(u))^2 du`` with the empirical quantile piecewise constant: each of
    the n cells is integrated by the midpoint rule on 2 sub-levels, the upper half of the
    levels through ``quantile(1 - u, True)`` (exact in the upper tail).
    """
    n = len(y)
    ys = np.sort(y, axis=0)
    r = 2
    u = (np.arange(n * r) + 0.5) / (n * r)
    low = u < 0.5
    q = np.empty((n * r, y.shape[1]))
    q[low] = quantile(u[low], False)
    q[~low] = quantile(1.0 - u[~low], True)
    return np.mean((np.repeat(ys, r, axis=0) - q) ** 2, axis=0)


def marginal_w2(Y: ArrayLike, benchmark: Any) -> dict[str, Any]:
    """Marginal W2 (%) of barycenter samples against a product-measure truth.

    The sum over coordinates of the exact 1-D ``W2^2`` between the samples' marginals and
    the true barycenter's marginals (quantiles ``Q_j = sum_k a_k F_kj^-1``), in % of the
    barycenter's total variance. For a rotated benchmark the coordinates are those of the
    independent axes (``R^T y``), where the truth's marginals are known exactly. Even the
    truth's own n samples score above 0 (about ``O(1/n)``; see the tests for the floor).

    Parameters
    ----------
    Y : array-like of shape (n, d)
        Samples of a fitted barycenter (``estimator.sample(n)``).
    benchmark : ProductBenchmark
        Needs ``to_axes``, ``barycenter_quantile`` and ``barycenter_cov``.

    Returns
    -------
    dict
        ``{"marginal_w2": total %, "marginal_w2_per_coordinate": list of %}``.
    """
    Z = benchmark.to_axes(_rows(Y, "Y"))
    w2 = _w2_sorted_vs_quantile(Z, lambda u, up: benchmark.barycenter_quantile(u, upper=up))
    tv = float(np.trace(np.asarray(benchmark.barycenter_cov)))
    per = 100.0 * w2 / tv
    return {"marginal_w2": float(per.sum()), "marginal_w2_per_coordinate": per.tolist()}


def sliced_w2(
    Y: ArrayLike,
    Z: ArrayLike,
    n_projections: int = 256,
    cov: ArrayLike | None = None,
    random_state=None,
) -> float:
    """Sliced W2^2 between two samples, in % of ``tr cov`` when ``cov`` is given.

    ``d * mean_theta W2^2(theta . Y, theta . Z)`` over ``n_projections`` directions uniform
    on the sphere (the factor d makes it equal the sum of coordinate W2^2 on average, the
    scale of :func:`marginal_w2`); each 1-D W2 is exact between the two empirical laws
    (sorted samples; the larger sample is resampled to the smaller size by quantiles).

    Parameters
    ----------
    Y, Z : array-like of shape (n, d) and (m, d)
    n_projections : int, default=256
    cov : array-like of shape (d, d), optional
        Covariance of the truth; when given the result is ``100 * SW2^2 / tr cov`` (%).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    float
    """
    Y, Z = _rows(Y, "Y", 2), _rows(Z, "Z", 2)
    if Y.shape[1] != Z.shape[1]:
        raise ValueError(f"Y and Z must have the same width, got {Y.shape[1]}, {Z.shape[1]}.")
    d = Y.shape[1]
    rng = check_random_state(random_state)
    theta = rng.standard_normal((d, int(n_projections)))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    n = min(len(Y), len(Z))
    levels = (np.arange(n) + 0.5) / n
    py = np.sort(Y @ theta, axis=0)[np.floor(levels * len(Y)).astype(np.int64)]
    pz = np.sort(Z @ theta, axis=0)[np.floor(levels * len(Z)).astype(np.int64)]
    sw = d * float(np.mean((py - pz) ** 2))
    if cov is None:
        return sw
    return 100.0 * sw / float(np.trace(np.asarray(cov, dtype=np.float64)))
