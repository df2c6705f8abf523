"""Differentiable discrepancies between samples, batched over the K inputs of a barycenter.

Every function takes point clouds with an optional leading batch dimension: ``X`` of shape
``(K, N, d)`` (one sample per input) or ``(N, d)``, and ``Y`` of shape ``(K, M, d)`` or
``(M, d)``; a 2-D ``Y`` is shared by all K rows of a 3-D ``X`` (the generator's minibatch
against every input, as in Algorithm 1 of Cohen et al. 2021). The result has shape ``(K,)``
(or is 0-d when both are 2-D) and carries gradients to both arguments.

* :func:`sinkhorn_divergence` -- the debiased Sinkhorn divergence of Genevay et al. (2018)
  with cost ``|x - y|^2 / 2``, computed by GeomLoss (tensorized backend, epsilon-scaling,
  gradients by the envelope theorem) or by POT's batched solver.
* :func:`mmd2` -- squared maximum mean discrepancy with a fixed kernel (:func:`kernel_matrix`:
  Gaussian with one or several bandwidths, energy distance kernel ``-|x - y|``, mixture of
  rational quadratics as in Binkowski et al. 2018).
* :func:`energy_mmd2` -- the energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` as a
  differentiable minibatch loss: :func:`mmd2` with the energy kernel. To evaluate the
  energy distance between two (large) samples use :func:`skbary.metrics.energy_distance`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

__all__ = [
    "SINKHORN_BACKENDS",
    "KERNELS",
    "squared_distances",
    "kernel_matrix",
    "sinkhorn_divergence",
    "entropic_ot",
    "mmd2",
    "energy_mmd2",
]

SINKHORN_BACKENDS = ("geomloss", "pot")
KERNELS = ("gaussian", "energy", "rq")
RQ_ALPHAS = (0.2, 0.5, 1.0, 2.0, 5.0)


# --------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------


def _as_batches(X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Bring X and Y to (K, N, d) and (K, M, d); report whether the input was unbatched."""
    if X.dim() not in (2, 3) or Y.dim() not in (2, 3):
        raise ValueError(
            f"X and Y must be (N, d) or (K, N, d) tensors, got shapes {tuple(X.shape)} and "
            f"{tuple(Y.shape)}."
        )
    if X.shape[-1] != Y.shape[-1]:
        raise ValueError(
            f"X and Y must have the same number of features, got {X.shape[-1]} and {Y.shape[-1]}."
        )
    single = X.dim() == 2 and Y.dim() == 2
    if X.dim() == 2:
        X = X.unsqueeze(0)
    if Y.dim() == 2:
        Y = Y.unsqueeze(0)
    K = max(X.shape[0], Y.shape[0])
    if X.shape[0] not in (1, K) or Y.shape[0] not in (1, K):
        raise ValueError(
            f"X and Y have different batch sizes {X.shape[0]} and {Y.shape[0]}; give both "
            "with K rows, or one of them 2-D to share it across the batch."
        )
    return X.expand(K, -1, -1), Y.expand(K, -1, -1), single


def squared_distances(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Batched ``|x_i - y_j|^2``: (K, N, d), (K, M, d) -> (K, N, M), clamped at 0."""
    x2 = (X * X).sum(-1, keepdim=True)
    y2 = (Y * Y).sum(-1).unsqueeze(-2)
    return torch.baddbmm(x2 + y2, X, Y.transpose(-1, -2), alpha=-2.0).clamp_min_(0.0)


# --------------------------------------------------------------------------------------
# kernels and MMD
# --------------------------------------------------------------------------------------


def _bandwidths(bandwidth: float | Sequence[float]) -> tuple[float, ...]:
    bws = (bandwidth,) if isinstance(bandwidth, int | float) else tuple(bandwidth)
    if not bws or any(not isinstance(b, int | float) or not b > 0 for b in bws):
        raise ValueError(
            f"bandwidth must be a positive number or a sequence of them, got {bandwidth!r}."
        )
    return tuple(float(b) for b in bws)


def kernel_matrix(
    X: torch.Tensor,
    Y: torch.Tensor,
    kernel: str = "rq",
    bandwidth: float | Sequence[float] = 1.0,
) -> torch.Tensor:
    """Batched kernel matrix ``k(x_i, y_j)``: (K, N, d), (K, M, d) -> (K, N, M).

    Parameters
    ----------
    X, Y : Tensor of shape (K, N, d) and (K, M, d)
    kernel : {"gaussian", "energy", "rq"}
        ``"gaussian"``: ``sum_h exp(-|x - y|^2 / (2 h^2))`` over the bandwidths h.
        ``"energy"``: ``-|x - y|`` (conditionally positive definite; its MMD^2 is the energy
        distance; ``bandwidth`` is ignored). ``"rq"``: the mixture of rational quadratics of
        Binkowski et al. (2018), ``sum_alpha (1 + |x - y|^2 / (2 alpha l^2))^-alpha`` for
        alpha in (0.2, 0.5, 1, 2, 5), with lengthscale l = ``bandwidth`` (a sequence sums
        the mixture over the lengthscales).
    bandwidth : float or sequence of float
        Gaussian bandwidth(s) or rational-quadratic lengthscale(s).
    """
    D2 = squared_distances(X, Y)
    if kernel == "energy":
        # sqrt with a floor: finite gradient (zero) where two points coincide.
        return -torch.sqrt(D2.clamp_min(1e-12))
    bws = _bandwidths(bandwidth)
    if kernel == "gaussian":
        out = torch.exp(D2 * (-0.5 / bws[0] ** 2))
        for h in bws[1:]:
            out = out + torch.exp(D2 * (-0.5 / h**2))
        return out
    if kernel == "rq":
        out = None
        for ell in bws:
            for alpha in RQ_ALPHAS:
                # (1 + D2 / (2 alpha l^2))^-alpha = exp(-alpha log1p(D2 / (2 alpha l^2)))
                term = torch.exp(-alpha * torch.log1p(D2 * (0.5 / (alpha * ell**2))))
                out = term if out is None else out + term
        return out
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")


def _mean_offdiag(Kmat: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """Mean of a batch of square kernel matrices, without the diagonal when ``unbiased``."""
    n = Kmat.shape[-1]
    if not unbiased:
        return Kmat.mean(dim=(-1, -2))
    total = Kmat.sum(dim=(-1, -2)) - torch.diagonal(Kmat, dim1=-2, dim2=-1).sum(-1)
    return total / (n * (n - 1))


def mmd2(
    X: torch.Tensor,
    Y: torch.Tensor,
    kernel: str = "rq",
    bandwidth: float | Sequence[float] = 1.0,
    *,
    unbiased: bool = True,
) -> torch.Tensor:
    """Squared MMD ``E k(x, x') + E k(y, y') - 2 E k(x, y)`` between samples.

    Parameters
    ----------
    X : Tensor of shape (K, N, d) or (N, d)
    Y : Tensor of shape (K, M, d) or (M, d)
        A 2-D ``Y`` is shared by the K samples of ``X``; its self-term is then computed once.
    kernel, bandwidth
        See :func:`kernel_matrix`.
    unbiased : bool, default=True
        U-statistic (the within-sample means skip i = j), unbiased for MMD^2 and the usual
        choice for training generators (Binkowski et al. 2018); it can be slightly negative.

    Returns
    -------
    Tensor of shape (K,), or 0-d when X and Y are both 2-D.
    """
    shared_y = Y.dim() == 2 and X.dim() == 3
    Xb, Yb, single = _as_batches(X, Y)
    if min(Xb.shape[1], Yb.shape[1]) < 2:
        raise ValueError("mmd2 needs at least 2 points in each sample.")
    kxx = _mean_offdiag(kernel_matrix(Xb, Xb, kernel, bandwidth), unbiased)
    if shared_y:
        Y1 = Y.unsqueeze(0)
        kyy = _mean_offdiag(kernel_matrix(Y1, Y1, kernel, bandwidth), unbiased)
    else:
        kyy = _mean_offdiag(kernel_matrix(Yb, Yb, kernel, bandwidth), unbiased)
    kxy = kernel_matrix(Xb, Yb, kernel, bandwidth).mean(dim=(-1, -2))
    out = kxx + kyy - 2.0 * kxy
    return out[0] if single else out


def energy_mmd2(X: torch.Tensor, Y: torch.Tensor, *, unbiased: bool = True) -> torch.Tensor:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` as a differentiable loss.

    ``mmd2(X, Y, kernel="energy")``: the MMD^2 of the kernel ``-|x - y|``, batched over the
    K inputs and carrying gradients, for minibatches in training. Shapes as in
    :func:`mmd2`. It estimates what :func:`skbary.metrics.energy_distance` does (the same
    U-statistic when ``unbiased``); use that one to evaluate a fit on arrays: chunked, so
    large samples fit in memory, centred, with float64 accumulation, returning a float.
    """
    return mmd2(X, Y, kernel="energy", unbiased=unbiased)


# --------------------------------------------------------------------------------------
# Sinkhorn divergence
# --------------------------------------------------------------------------------------


def _check_blur(blur: float) -> float:
    if isinstance(blur, bool) or not isinstance(blur, int | float) or not blur > 0:
        raise ValueError(f"blur must be a positive number, got {blur!r}.")
    return float(blur)


def _geomloss_ot(
    X: torch.Tensor,
    Y: torch.Tensor,
    blur: float,
    scaling: float,
    diameter: float | None,
    debias: bool,
) -> torch.Tensor:
    from geomloss import SamplesLoss

    loss = SamplesLoss(
        "sinkhorn",
        p=2,
        blur=blur,
        scaling=scaling,
        diameter=diameter,
        debias=debias,
        backend="tensorized",
    )
    return loss(X.contiguous(), Y.contiguous())


def _pot_ot(X: torch.Tensor, Y: torch.Tensor, blur: float, max_iter: int) -> torch.Tensor:
    """OT_e with cost |x - y|^2 / 2 and KL(pi | a x b) regularisation, by POT (uniform weights)."""
    import ot

    # POT's squared Euclidean cost has no 1/2: OT_e(|.|^2 / 2) = OT_{2e}(|.|^2) / 2. Its
    # "entropy" regulariser is sum pi log pi = KL(pi | a x b) - log N - log M.
    eps = 2.0 * blur**2
    res = ot.solve_sample_batch(
        X,
        Y,
        reg=eps,
        metric="sqeuclidean",
        method="log_sinkhorn",
        max_iter=max_iter,
        tol=1e-6,
        grad="envelope",
    )
    return 0.5 * (res.value + eps * (math.log(X.shape[1]) + math.log(Y.shape[1])))


def entropic_ot(
    X: torch.Tensor,
    Y: torch.Tensor,
    blur: float = 0.1,
    *,
    scaling: float = 0.5,
    diameter: float | None = None,
    backend: str = "geomloss",
    max_iter: int = 1000,
) -> torch.Tensor:
    """Entropic OT cost ``OT_e(X, Y)`` (the biased term of the Sinkhorn divergence).

    ``OT_e = min_pi E_pi |x - y|^2 / 2 + e KL(pi | mu x nu)`` between the uniform measures
    on the points, ``e = blur^2``. Shapes and parameters as in :func:`sinkhorn_divergence`.
    """
    blur = _check_blur(blur)
    Xb, Yb, single = _as_batches(X, Y)
    if backend == "geomloss":
        out = _geomloss_ot(Xb, Yb, blur, scaling, diameter, debias=False)
    elif backend == "pot":
        out = _pot_ot(Xb, Yb, blur, max_iter)
    else:
        raise ValueError(f"backend must be one of {SINKHORN_BACKENDS}, got {backend!r}.")
    return out[0] if single else out


def sinkhorn_divergence(
    X: torch.Tensor,
    Y: torch.Tensor,
    blur: float = 0.1,
    *,
    scaling: float = 0.5,
    diameter: float | None = None,
    backend: str = "geomloss",
    max_iter: int = 1000,
) -> torch.Tensor:
    """Debiased Sinkhorn divergence ``OT_e(X, Y) - OT_e(X, X) / 2 - OT_e(Y, Y) / 2``.

    The ground cost is ``|x - y|^2 / 2`` and the entropic temperature ``e = blur^2`` (the
    GeomLoss convention), so the divergence tends to ``W2^2 / 2`` as ``blur -> 0`` and the
    blur is the length scale below which the transport is smoothed.

    Parameters
    ----------
    X : Tensor of shape (K, N, d) or (N, d)
    Y : Tensor of shape (K, M, d) or (M, d)
        A 2-D tensor is shared across the batch.
    blur : float, default=0.1
        Length scale of the entropic blur, in the units of the data.
    scaling : float, default=0.5
        GeomLoss backend: ratio between successive blurs of the epsilon-scaling annealing
        (closer to 1 is more accurate and slower).
    diameter : float, optional
        GeomLoss backend: an upper bound on the distance between points (the annealing's
        first blur); estimated from the points when None.
    backend : {"geomloss", "pot"}, default="geomloss"
        ``"geomloss"``: ``SamplesLoss("sinkhorn", backend="tensorized")`` (KeOps is not
        needed). ``"pot"``: ``ot.solve_sample_batch`` (log-domain Sinkhorn, envelope
        gradients, ``max_iter`` iterations at most). GeomLoss is the faster of the two on
        CPU (benchmarks/results/generative.md).
    max_iter : int, default=1000
        POT backend: maximal number of Sinkhorn iterations per problem.

    Returns
    -------
    Tensor of shape (K,), or 0-d when X and Y are both 2-D.
    """
    blur = _check_blur(blur)
    if backend not in SINKHORN_BACKENDS:
        raise ValueError(f"backend must be one of {SINKHORN_BACKENDS}, got {backend!r}.")
    shared_y = Y.dim() == 2 and X.dim() == 3
    Xb, Yb, single = _as_batches(X, Y)
    if backend == "geomloss" and not shared_y:
        out = _geomloss_ot(Xb, Yb, blur, scaling, diameter, debias=True)
        return out[0] if single else out
    kw = dict(scaling=scaling, diameter=diameter, backend=backend, max_iter=max_iter)
    xy = entropic_ot(Xb, Yb, blur, **kw)
    xx = entropic_ot(Xb, Xb, blur, **kw)
    # A shared Y: its self-term is one problem, not K copies of it.
    yy = entropic_ot(Y, Y, blur, **kw) if shared_y else entropic_ot(Yb, Yb, blur, **kw)
    out = xy - 0.5 * xx - 0.5 * yy
    return out[0] if single else out


def __getattr__(name: str):
    # energy_mmd2 was called energy_distance, the name of skbary.metrics.energy_distance
    if name == "energy_distance":
        warnings.warn(
            "skbary.divergences.energy_distance was renamed energy_mmd2 (the differentiable "
            "loss); skbary.metrics.energy_distance evaluates the energy distance on arrays. "
            "The old name will be removed in a future release.",
            FutureWarning,
            stacklevel=2,
        )
        return energy_mmd2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
