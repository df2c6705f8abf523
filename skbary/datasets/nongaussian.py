"""Non-Gaussian inputs with an exact barycenter: product measures, rotated or not.

:func:`make_product_measures` draws K inputs whose coordinates are independent, each
following its own shifted and scaled 1-D law (any ``scipy.stats`` continuous law, or
:class:`BimodalLaw`). The W2 barycenter of product measures is the product of the 1-D
barycenters, whose quantile function is ``Q_j(u) = sum_k a_k F_kj^-1(u)``, and the OT map
from input k to it is coordinatewise monotone, ``x_j -> Q_j(F_kj(x_j))``: truth and maps are
exact. With ``rotation=True`` every input is turned by one shared random rotation R; the
barycenter and the maps are turned with it (``T_k(x) = R T^0_k(R^T x)``), so the truth stays
exact while the maps are no longer axis-aligned.

:func:`make_nonlinear_congruent` is the congruent-potential construction of
:mod:`.congruent` (Ave-digits' machinery) on a synthetic non-Gaussian base in any dimension,
with nonlinear maps (how nonlinear: see its docstring).

Both return benchmarks with the interface of the location-scatter one (``marginals``,
``weights``, ``X``, ``y``, ``barycenter_mean``, ``barycenter_cov``, ``map_to_barycenter``,
``sample_barycenter`` / ``barycenter_samples``, ``sample_marginals``), so
:func:`skbary.metrics.score_benchmark` scores them unchanged; a
:class:`ProductBenchmark` also has ``barycenter_quantile``, read by
:func:`skbary.metrics.marginal_w2`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.stats import ortho_group
from sklearn.utils import check_random_state

from ..validation import check_weights
from ._common import _as_rows, _Benchmark, _n_per_input, _per_row_k
from .congruent import CongruentBenchmark, make_congruent


def _bisect(f, target: NDArray, lo: NDArray, hi: NDArray, n_iter: int = 200) -> NDArray:
    """Vectorised bisection for the increasing ``f(x) = target`` on ``[lo, hi]``."""
    lo, hi = lo.astype(np.float64).copy(), hi.astype(np.float64).copy()
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        below = f(mid) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mid))):
            break
    return 0.5 * (lo + hi)


class BimodalLaw:
    """The equal mixture of N(-m, s^2) and N(m, s^2): a bimodal 1-D law for the benchmarks.

    It has the methods of a frozen ``scipy.stats`` law that :func:`make_product_measures`
    uses (``cdf``, ``sf``, ``ppf``, ``isf``, ``rvs``, ``mean``, ``var``); ``ppf``/``isf``
    invert ``cdf``/``sf`` by bisection to machine precision.

    Parameters
    ----------
    separation : float, default=2.0
        ``m``, half the distance between the modes.
    spread : float, default=0.5
        ``s``, the standard deviation of each mode.
    """

    def __init__(self, separation: float = 2.0, spread: float = 0.5) -> None:
        if spread <= 0:
            raise ValueError(f"spread must be positive, got {spread}.")
        self.separation = float(separation)
        self.spread = float(spread)
        self._parts = (
            stats.norm(-self.separation, self.spread),
            stats.norm(self.separation, self.spread),
        )

    def __repr__(self) -> str:
        return f"BimodalLaw(separation={self.separation}, spread={self.spread})"

    def cdf(self, x: ArrayLike) -> NDArray:
        return 0.5 * (self._parts[0].cdf(x) + self._parts[1].cdf(x))

    def sf(self, x: ArrayLike) -> NDArray:
        return 0.5 * (self._parts[0].sf(x) + self._parts[1].sf(x))

    def _bounds(self, q: NDArray, inverse) -> tuple[NDArray, NDArray]:
        # F = (F1 + F2) / 2 lies between the parts' cdfs, so the root lies between the
        # parts' quantiles at level q (widened by 10 spreads against rounding).
        a = inverse(self._parts[0], q)
        b = inverse(self._parts[1], q)
        return np.minimum(a, b) - 10 * self.spread, np.maximum(a, b) + 10 * self.spread

    def ppf(self, q: ArrayLike) -> NDArray:
        q = np.asarray(q, dtype=np.float64)
        lo, hi = self._bounds(q, lambda p, t: p.ppf(t))
        return _bisect(self.cdf, q, lo, hi)

    def isf(self, q: ArrayLike) -> NDArray:
        q = np.asarray(q, dtype=np.float64)
        lo, hi = self._bounds(q, lambda p, t: p.isf(t))
        return _bisect(lambda x: -self.sf(x), -q, lo, hi)

    def rvs(self, size: Any = None, random_state=None) -> NDArray:
        rng = check_random_state(random_state)
        sign = np.where(rng.uniform(size=size) < 0.5, -1.0, 1.0)
        return sign * self.separation + self.spread * rng.standard_normal(size)

    def mean(self) -> float:
        return 0.0

    def var(self) -> float:
        return self.separation**2 + self.spread**2


def default_laws() -> dict[str, Any]:
    """The 1-D laws :func:`make_product_measures` draws from by default.

    Skewed (log-normal, exponential, gamma), heavy-tailed (Student-t with 5 degrees of
    freedom: finite variance, infinite fifth moment), bounded (arcsine Beta(1/2, 1/2),
    uniform) and bimodal (:class:`BimodalLaw`). Every law is standardised to zero mean and
    unit variance before its random shift and scale.
    """
    return {
        "lognormal": stats.lognorm(0.5),
        "student_t5": stats.t(5),
        "arcsine": stats.beta(0.5, 0.5),
        "exponential": stats.expon(),
        "uniform": stats.uniform(),
        "gamma2": stats.gamma(2.0),
        "bimodal": BimodalLaw(),
    }


@dataclass
class _Coordinate:
    """One coordinate of one input: ``shift + scale * (law - mean) / std``."""

    law: Any
    shift: float
    scale: float
    name: str = ""

    def _std(self, x: NDArray) -> NDArray:
        return (x - self.shift) / self.scale * self._sd + self._mu

    def __post_init__(self) -> None:
        self._mu = float(self.law.mean())
        self._sd = float(np.sqrt(self.law.var()))
        if not (np.isfinite(self._mu) and np.isfinite(self._sd) and self._sd > 0):
            raise ValueError(f"law {self.law!r} needs a finite mean and a positive variance.")

    def _out(self, z: NDArray) -> NDArray:
        return self.shift + self.scale * (z - self._mu) / self._sd

    def cdf_sf(self, x: NDArray) -> tuple[NDArray, NDArray]:
        """(cdf, sf) at x, each exact in its own tail."""
        z = self._std(x)
        return self.law.cdf(z), self.law.sf(z)

    def ppf(self, u: NDArray) -> NDArray:
        return self._out(self.law.ppf(u))

    def isf(self, s: NDArray) -> NDArray:
        return self._out(self.law.isf(s))

    def rvs(self, n: int, rng: np.random.RandomState) -> NDArray:
        return self._out(np.asarray(self.law.rvs(size=n, random_state=rng), dtype=np.float64))


@dataclass
class ProductBenchmark(_Benchmark):
    """Inputs with independent coordinates (each its own 1-D law), optionally rotated.

    Built by :func:`make_product_measures`. In the frame of the coordinates (``R^T x``)
    input k is the product of the laws ``coordinates[k][j]``, the barycenter is the product
    of the 1-D barycenters with quantiles ``Q_j(u) = sum_k a_k F_kj^-1(u)``, and the OT map
    from input k is ``x_j -> Q_j(F_kj(x_j))`` coordinate by coordinate; in the data's frame
    everything is turned by ``rotation`` (the identity when not rotated).

    Attributes
    ----------
    marginals, weights, X, y
    coordinates : list of list
        ``coordinates[k][j]``: the law, shift and scale of coordinate j of input k.
    law_names : ndarray of str of shape (K, d)
    rotation : ndarray of shape (d, d)
        R; the data are ``R z`` with z the product-measure rows.
    barycenter_mean : ndarray of shape (d,)
    barycenter_cov : ndarray of shape (d, d)
        ``R diag(v) R^T`` with v the variances of the 1-D barycenters (quadrature on
        2^16 quantile levels).
    """

    coordinates: list = field(default_factory=list)
    law_names: NDArray = field(default_factory=lambda: np.empty((0, 0), dtype=object))
    rotation: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    barycenter_mean: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    barycenter_cov: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))
    barycenter_variances: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))

    @property
    def rotated(self) -> bool:
        """Whether the inputs are turned by a rotation other than the identity."""
        return not np.array_equal(self.rotation, np.eye(self.n_features))

    def to_axes(self, X: ArrayLike) -> NDArray[np.float64]:
        """Rows in the frame of the independent coordinates: ``R^T x``."""
        return _as_rows(X, self.n_features) @ self.rotation

    def barycenter_quantile(self, u: ArrayLike, upper: bool = False) -> NDArray[np.float64]:
        """``Q_j(u) = sum_k a_k F_kj^-1(u)``, the 1-D barycenters' quantiles (axis frame).

        Parameters
        ----------
        u : array-like of shape (n, d) or (n,)
            Levels in (0, 1), one column per coordinate (a vector is used for every one).
        upper : bool, default=False
            When True, ``u`` are upper-tail levels: returns ``Q_j(1 - u)`` computed from
            the inverse survival functions (exact far in the upper tail).

        Returns
        -------
        ndarray of shape (n, d)
        """
        d = self.n_features
        u = np.asarray(u, dtype=np.float64)
        if u.ndim == 1:
            u = np.repeat(u[:, None], d, axis=1)
        return np.column_stack([self._coord_q(u[:, j], j, upper) for j in range(d)])

    def _coord_q(self, u: NDArray, j: int, upper: bool) -> NDArray:
        out = np.zeros(len(u))
        for k, a in enumerate(self.weights):
            c = self.coordinates[k][j]
            out += a * (c.isf(u) if upper else c.ppf(u))
        return out

    def map_to_barycenter(self, X: ArrayLike, k: ArrayLike | int) -> NDArray[np.float64]:
        """The true OT map from input k: ``R (Q_j(F_kj((R^T x)_j)))_j``.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Rows of input k (data frame).
        k : int or array-like of int of shape (n,)

        Returns
        -------
        ndarray of shape (n, d)
        """
        Z = self.to_axes(X)
        ks = _per_row_k(k, len(Z), self.n_marginals)
        out = np.empty_like(Z)
        for kk in np.unique(ks):
            rows = ks == kk
            for j in range(self.n_features):
                cdf, sf = self.coordinates[kk][j].cdf_sf(Z[rows, j])
                # rows on or (by rounding) past a bounded law's edge go to the level 1e-300,
                # not 0, whose quantile is infinite for the unbounded laws
                cdf, sf = np.maximum(cdf, 1e-300), np.maximum(sf, 1e-300)
                low = cdf <= 0.5
                col = np.empty(int(rows.sum()))
                col[low] = self._coord_q(cdf[low], j, False)
                col[~low] = self._coord_q(sf[~low], j, True)
                out[rows, j] = col
        return out @ self.rotation.T

    def sample_barycenter(self, n: int, random_state=None) -> NDArray[np.float64]:
        """Draw n points of the true barycenter: ``R Q(U)`` with U uniform on (0, 1)^d."""
        rng = check_random_state(random_state)
        u = rng.uniform(size=(int(n), self.n_features))
        out = np.empty_like(u)
        for j in range(self.n_features):
            low = u[:, j] < 0.5
            out[low, j] = self._coord_q(u[low, j], j, False)
            out[~low, j] = self._coord_q(1.0 - u[~low, j], j, True)
        return out @ self.rotation.T

    def sample_marginal(self, k: int, n: int, random_state=None) -> NDArray[np.float64]:
        """Draw n fresh rows of input k (held out from ``marginals``)."""
        rng = check_random_state(random_state)
        Z = np.column_stack([c.rvs(int(n), rng) for c in self.coordinates[k]])
        return Z @ self.rotation.T

    def sample_marginals(self, n: int | Sequence[int], random_state=None) -> list[NDArray]:
        """Draw fresh rows of every input: n per input (or ``n[k]`` for input k)."""
        rng = check_random_state(random_state)
        sizes = _n_per_input(n, self.n_marginals)
        return [self.sample_marginal(k, sizes[k], rng) for k in range(self.n_marginals)]


def _resolve_laws(laws: Any) -> dict[str, Any]:
    if laws is None:
        return default_laws()
    if isinstance(laws, dict):
        out = dict(laws)
    else:
        out = {}
        for i, law in enumerate(laws):
            if isinstance(law, str):
                table = default_laws()
                if law not in table:
                    raise ValueError(f"unknown law {law!r}; known: {sorted(table)}.")
                out[law] = table[law]
            else:
                out[f"law{i}"] = law
    if not out:
        raise ValueError("laws must name at least one law.")
    for name, law in out.items():
        for attr in ("cdf", "sf", "ppf", "isf", "rvs", "mean", "var"):
            if not hasattr(law, attr):
                raise TypeError(f"law {name!r} has no {attr}(): pass frozen scipy.stats laws.")
    return out


def make_product_measures(
    n_marginals: int = 3,
    n_features: int = 8,
    n_samples: int | Sequence[int] = 1000,
    laws: Any = None,
    weights: ArrayLike | None = None,
    rotation: bool | ArrayLike = False,
    shift_scale: float = 1.0,
    scale_range: tuple[float, float] = (0.5, 2.0),
    random_state=None,
) -> ProductBenchmark:
    """Product-measure inputs with an exact non-Gaussian barycenter and exact maps.

    Coordinate j of input k is ``b_kj + s_kj * (L_kj - E L_kj) / sd(L_kj)`` with the law
    ``L_kj`` drawn at random from ``laws``, ``b_kj ~ N(0, shift_scale^2)`` and ``s_kj``
    log-uniform in ``scale_range``; coordinates are independent. With ``rotation`` every
    input is turned by one shared rotation (Haar-random when True).

    Parameters
    ----------
    n_marginals : int, default=3
        Number of inputs K.
    n_features : int, default=8
        Dimension d.
    n_samples : int or sequence of int, default=1000
        Rows per input.
    laws : None, dict, or sequence of str or frozen scipy.stats laws, default=None
        The 1-D laws to draw from (they need finite variance). None: :func:`default_laws`
        (skewed, heavy-tailed, bounded, bimodal); names pick from it.
    weights : array-like of shape (K,), default=None
        Barycenter weights; uniform when None.
    rotation : bool or array-like of shape (d, d), default=False
        False: axis-aligned (family (a)); True: one Haar-random rotation shared by all
        inputs (family (b)); or the orthogonal matrix to use.
    shift_scale : float, default=1.0
        Standard deviation of the random shifts.
    scale_range : (float, float), default=(0.5, 2.0)
        Range of the random scales (log-uniform).
    random_state : int, RandomState instance or None, default=None
        Seeds the laws, shifts, scales, rotation and rows.

    Returns
    -------
    ProductBenchmark
    """
    K, d = int(n_marginals), int(n_features)
    if K < 1 or d < 1:
        raise ValueError(f"n_marginals and n_features must be >= 1, got {K}, {d}.")
    lo, hi = (float(v) for v in scale_range)
    if not 0 < lo <= hi:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}.")
    table = _resolve_laws(laws)
    names = list(table)
    rng = check_random_state(random_state)
    a = np.full(K, 1.0 / K) if weights is None else check_weights(weights, K)
    sizes = _n_per_input(n_samples, K)
    if isinstance(rotation, bool | np.bool_):
        if rotation and d > 1:
            R = np.asarray(ortho_group.rvs(d, random_state=rng)).reshape(d, d)
        else:
            R = np.eye(d)
    else:
        R = np.asarray(rotation, dtype=np.float64)
        if R.shape != (d, d) or not np.allclose(R.T @ R, np.eye(d), atol=1e-10):
            raise ValueError(f"rotation must be an orthogonal ({d}, {d}) matrix.")
    coords, law_names = [], np.empty((K, d), dtype=object)
    for k in range(K):
        row = []
        for j in range(d):
            name = names[rng.randint(len(names))]
            shift = float(shift_scale * rng.standard_normal())
            scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            row.append(_Coordinate(table[name], shift, scale, name))
            law_names[k, j] = name
        coords.append(row)
    bench = ProductBenchmark(
        marginals=[], weights=a, coordinates=coords, law_names=law_names, rotation=R
    )
    bench.marginals = [bench.sample_marginal(k, sizes[k], rng) for k in range(K)]
    # moments of the 1-D barycenters: exact mean, variance by midpoint quadrature of Q
    mean = np.array([sum(a[k] * coords[k][j].shift for k in range(K)) for j in range(d)])
    m = 1 << 16
    half = (np.arange(m // 2) + 0.5) / m
    var = np.empty(d)
    for j in range(d):
        q = np.concatenate([bench._coord_q(half, j, False), bench._coord_q(half, j, True)])
        var[j] = np.mean((q - mean[j]) ** 2)
    bench.barycenter_variances = var
    bench.barycenter_mean = R @ mean
    bench.barycenter_cov = (R * var) @ R.T
    return bench


def make_nonlinear_congruent(
    n_features: int = 8,
    n_marginals: int = 3,
    n_samples: int = 2000,
    weights: ArrayLike | None = None,
    base: str = "product",
    strength: float = 2.0,
    hidden_sizes: Sequence[int] = (64, 64),
    heldout_fraction: float = 0.25,
    random_state=None,
) -> CongruentBenchmark:
    """Congruent potentials on a synthetic non-Gaussian base: nonlinear maps, any dimension.

    The construction of :func:`~skbary.datasets.make_congruent` (WIN paper, section 5; the
    machinery of Ave-digits) on ``n_samples`` rows of a synthetic base law in any dimension;
    the barycenter is that base law, ``barycenter_samples`` holds held-out draws of it and
    the true maps are gradients of the random FICNN potentials. ``strength`` (the mean
    curvature of the network part of each potential) sets how nonlinear the maps are:
    Ave-digits uses 0.5. Measured (d=3, 200 rows, strength 2): a linear fit of
    ``grad psi_1`` on the barycenter rows leaves only about 0.04% of its variance, so the
    maps are nonlinear but far from strongly so; a construction with larger map curvature
    is still open (issue 15, item 1c).

    Parameters
    ----------
    n_features : int, default=8
        Dimension d (2 to 64 are the intended range; any d >= 1 works).
    n_marginals : int, default=3
    n_samples : int, default=2000
        Rows of the base sample (inputs and held-out barycenter rows together).
    weights : array-like of shape (K,), default=None
    base : {"product", "mixture"}, default="product"
        "product": a standardised product of the :func:`default_laws` (one law per
        coordinate); "mixture": an equal mixture of 4 Gaussians with random means
        (N(0, 4 I)) and unit covariance.
    strength : float, default=2.0
    hidden_sizes : sequence of int, default=(64, 64)
    heldout_fraction : float, default=0.25
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    CongruentBenchmark
    """
    d = int(n_features)
    rng = check_random_state(random_state)
    if base == "product":
        table = list(default_laws().values())
        cols = []
        for _ in range(d):
            c = _Coordinate(table[rng.randint(len(table))], 0.0, 1.0)
            cols.append(c.rvs(int(n_samples), rng))
        Z = np.column_stack(cols)
    elif base == "mixture":
        centres = 2.0 * rng.standard_normal((4, d))
        Z = centres[rng.randint(4, size=int(n_samples))] + rng.standard_normal((n_samples, d))
    else:
        raise ValueError(f"base must be 'product' or 'mixture', got {base!r}.")
    return make_congruent(
        Z,
        n_marginals=n_marginals,
        weights=weights,
        random_state=rng,
        heldout_fraction=heldout_fraction,
        hidden_sizes=hidden_sizes,
        strength=strength,
    )
