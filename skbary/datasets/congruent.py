"""Congruent potentials (WIN paper, section 5): inputs whose barycenter is a given law.

:func:`make_congruent` pushes a sample of the barycenter-to-be through the gradients of K
congruent potentials (built from :mod:`.potentials`) and returns a
:class:`CongruentBenchmark`; its truth methods solve problem (11) by :mod:`.solvers`.
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
from .potentials import _chain_pairs, _random_potential
from .solvers import _cg, _solve_left, _torch_single_thread


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
