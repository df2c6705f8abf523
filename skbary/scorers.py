"""Scorers for ``GridSearchCV`` and ``cross_val_score``: ``scorer(estimator, X, y)``.

Every scorer returns the *negative* of a metric of :mod:`skbary.metrics`, so higher is
better, as scikit-learn expects. ``X, y`` are the held-out rows of a split in the flat form
(``y`` the input of each row), which ``StratifiedKFold`` draws from every input.

=============================== ============================ =================================
scorer                          needs from the estimator     needs from the benchmark
=============================== ============================ =================================
``make_bw_uvp_scorer(b)``       ``sample``                   barycenter mean and covariance
``make_l2_uvp_scorer(b)``       ``transform``                ``map_to_barycenter``, weights
``make_energy_distance_scorer`` ``sample``                   samples of the true barycenter
``make_frechet_scorer(b, f)``   ``sample``                   samples of the true barycenter
``barycenter_cost_scorer``      ``sample``, ``weights_``     nothing (held-out rows only)
=============================== ============================ =================================

Every scorer is also reachable by name: ``get_scorer("bw_uvp", benchmark)`` (the names are
``get_scorer_names()``). ``barycenter_cost`` is what every estimator's ``score`` returns, so
``GridSearchCV(est, grid)`` without ``scoring=`` minimises the barycenter cost.

The first four compare with a known truth (a benchmark from :mod:`skbary.datasets`) and
ignore ``X, y`` except for the L2-UVP scorer, which maps the held-out rows. The barycenter
cost needs no truth, so it is the one to use on real data. Sampling inside a scorer uses a
fixed seed, so every candidate of a grid is scored on the same footing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .metrics import (
    MAX_OT_SAMPLES,
    barycenter_cost,
    barycenter_moments,
    bw_uvp,
    energy_distance,
    frechet_distance,
    l2_uvp,
    truth_samples,
)

__all__ = [
    "make_bw_uvp_scorer",
    "make_l2_uvp_scorer",
    "make_energy_distance_scorer",
    "make_frechet_scorer",
    "make_barycenter_cost_scorer",
    "barycenter_cost_scorer",
    "get_scorer",
    "get_scorer_names",
]


class _BWUVPScorer:
    def __init__(self, mean, cov, n_samples: int, random_state: int) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = np.asarray(cov, dtype=np.float64)
        self.n_samples = int(n_samples)
        self.random_state = random_state

    def __call__(self, estimator: Any, X: Any = None, y: Any = None) -> float:
        Y = estimator.sample(self.n_samples, random_state=self.random_state)
        return -bw_uvp(Y, self.mean, self.cov)

    def __repr__(self) -> str:
        return f"make_bw_uvp_scorer(n_samples={self.n_samples})"


class _L2UVPScorer:
    def __init__(self, benchmark: Any) -> None:
        self.benchmark = benchmark
        self.cov = barycenter_moments(benchmark)[1]
        self.weights = np.asarray(benchmark.weights, dtype=np.float64)

    def __call__(self, estimator: Any, X: ArrayLike, y: ArrayLike) -> float:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError("the L2-UVP scorer needs y, the input of every held-out row.")
        total = 0.0
        for k, a in enumerate(self.weights):
            rows = y == k
            if not rows.any():
                raise ValueError(f"no held-out row of input {k}: split with StratifiedKFold.")
            Xk = X[rows]
            total += a * l2_uvp(
                estimator.transform(Xk, k), self.benchmark.map_to_barycenter(Xk, k), self.cov
            )
        return -float(total)

    def __repr__(self) -> str:
        return "make_l2_uvp_scorer(benchmark)"


class _EnergyScorer:
    def __init__(self, benchmark: Any, n_samples: int, random_state: int) -> None:
        self.n_samples = int(n_samples)
        self.random_state = random_state
        self.truth = truth_samples(benchmark, self.n_samples, random_state=random_state)

    def __call__(self, estimator: Any, X: Any = None, y: Any = None) -> float:
        Y = estimator.sample(self.n_samples, random_state=self.random_state)
        return -energy_distance(Y, self.truth)

    def __repr__(self) -> str:
        return f"make_energy_distance_scorer(n_samples={self.n_samples})"


class _FrechetScorer:
    def __init__(self, benchmark: Any, features: Any, n_samples: int, random_state: int) -> None:
        self.features = features
        self.n_samples = int(n_samples)
        self.random_state = random_state
        self.truth = np.asarray(
            features(truth_samples(benchmark, self.n_samples, random_state=random_state))
        )

    def __call__(self, estimator: Any, X: Any = None, y: Any = None) -> float:
        Y = estimator.sample(self.n_samples, random_state=self.random_state)
        return -frechet_distance(np.asarray(self.features(Y)), self.truth)

    def __repr__(self) -> str:
        return f"make_frechet_scorer(n_samples={self.n_samples})"


class _BarycenterCostScorer:
    def __init__(self, n_samples: int | None, random_state: int) -> None:
        self.n_samples = n_samples
        self.random_state = random_state

    def __call__(self, estimator: Any, X: ArrayLike, y: ArrayLike) -> float:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError("the barycenter cost scorer needs y, the input of every row.")
        labels = getattr(estimator, "input_labels_", None)
        labels = np.unique(y) if labels is None else np.asarray(labels)
        marginals = [X[y == lab] for lab in labels]
        if any(len(m) == 0 for m in marginals):
            raise ValueError(
                "every input needs held-out rows for the barycenter cost: split with "
                "StratifiedKFold."
            )
        n_min = min(len(m) for m in marginals)
        if self.n_samples is None:
            n_y, n_ot = min(max(len(m) for m in marginals), MAX_OT_SAMPLES), None
        else:
            n_y, n_ot = int(self.n_samples), min(int(self.n_samples), n_min)
        Y = estimator.sample(n_y, random_state=self.random_state)
        cost = barycenter_cost(
            Y, marginals, estimator.weights_, n_samples=n_ot, random_state=self.random_state
        )
        return -cost

    def __repr__(self) -> str:
        return f"make_barycenter_cost_scorer(n_samples={self.n_samples})"


def make_bw_uvp_scorer(benchmark: Any, n_samples: int = 100_000, random_state: int = 0):
    """Scorer ``-BW2-UVP`` (%) of ``estimator.sample(n_samples)`` against the true barycenter.

    Parameters
    ----------
    benchmark : benchmark from :mod:`skbary.datasets`
        Needs ``barycenter_mean`` and ``barycenter_cov`` (or ``barycenter_samples``, whose
        moments are used).
    n_samples : int, default=100_000
        Draws from the fitted barycenter (the papers use 10^5).
    random_state : int, default=0
        Seed of those draws, the same for every candidate.

    Returns
    -------
    callable ``scorer(estimator, X, y) -> float`` (X and y are ignored).
    """
    mean, cov = barycenter_moments(benchmark)
    return _BWUVPScorer(mean, cov, n_samples, random_state)


def make_l2_uvp_scorer(benchmark: Any):
    """Scorer ``-sum_k a_k L2-UVP_k`` (%) of ``estimator.transform`` on the held-out rows.

    Each held-out row of input k (``y == k``) is mapped by ``estimator.transform(X, k)`` and
    compared with ``benchmark.map_to_barycenter(X, k)``; L2-UVP is normalised by the trace of
    the true barycenter covariance and weighted by ``benchmark.weights``.

    Parameters
    ----------
    benchmark : benchmark from :mod:`skbary.datasets`
        Needs ``map_to_barycenter``, ``weights`` and the barycenter covariance. The labels
        ``y`` must be the benchmark's input indices 0..K-1 (as in ``benchmark.y``).

    Returns
    -------
    callable ``scorer(estimator, X, y) -> float``
    """
    return _L2UVPScorer(benchmark)


def make_energy_distance_scorer(benchmark: Any, n_samples: int = 5_000, random_state: int = 0):
    """Scorer ``-energy distance`` between ``estimator.sample(n_samples)`` and the truth.

    Parameters
    ----------
    benchmark : benchmark from :mod:`skbary.datasets`
        Needs ``sample_barycenter`` or ``barycenter_samples`` (a finite benchmark gives at
        most its held-out rows).
    n_samples : int, default=5_000
        Points on each side (the cost grows as n^2).
    random_state : int, default=0
        Seed of both samples, drawn once for the truth and at every call for the estimator.

    Returns
    -------
    callable ``scorer(estimator, X, y) -> float`` (X and y are ignored).
    """
    return _EnergyScorer(benchmark, n_samples, random_state)


def make_frechet_scorer(
    benchmark: Any, features: Any, n_samples: int = 5_000, random_state: int = 0
):
    """Scorer ``-frechet_distance`` of ``features(estimator.sample(n_samples))`` to the truth's.

    Parameters
    ----------
    benchmark : benchmark from :mod:`skbary.datasets`
        Needs ``sample_barycenter`` or ``barycenter_samples``.
    features : callable
        Rows -> features, e.g. ``load_mnist_classifier(16).features`` for MNIST (the
        project's FID).
    n_samples : int, default=5_000
        Points on each side (a finite benchmark gives at most its reference rows).
    random_state : int, default=0
        Seed of both samples, as in :func:`make_energy_distance_scorer`.

    Returns
    -------
    callable ``scorer(estimator, X, y) -> float`` (X and y are ignored).
    """
    return _FrechetScorer(benchmark, features, n_samples, random_state)


def make_barycenter_cost_scorer(n_samples: int | None = None, random_state: int = 0):
    """Scorer ``-sum_k a_k W2^2(Y, X_k)`` on held-out rows; needs no ground truth.

    The held-out rows are split by ``y`` into the inputs (in the order of the fitted
    ``input_labels_``), Y is drawn from ``estimator.sample`` and the cost uses the fitted
    ``weights_`` with exact OT between equal-size subsamples (:func:`barycenter_cost`).

    Parameters
    ----------
    n_samples : int, default=None
        Rows per OT problem; None uses as many as the smallest held-out input has (at most
        5000).
    random_state : int, default=0
        Seed of the barycenter draws and of the subsampling.

    Returns
    -------
    callable ``scorer(estimator, X, y) -> float``
    """
    return _BarycenterCostScorer(n_samples, random_state)


barycenter_cost_scorer = make_barycenter_cost_scorer()
barycenter_cost_scorer.__doc__ = (
    "``make_barycenter_cost_scorer()`` with its defaults: ``scorer(estimator, X, y)``."
)


_FACTORIES = {
    "barycenter_cost": make_barycenter_cost_scorer,
    "bw_uvp": make_bw_uvp_scorer,
    "l2_uvp": make_l2_uvp_scorer,
    "energy_distance": make_energy_distance_scorer,
    "frechet": make_frechet_scorer,
}


def get_scorer_names() -> list[str]:
    """Names accepted by :func:`get_scorer`."""
    return sorted(_FACTORIES)


def get_scorer(name: str, *args: Any, **kwargs: Any):
    """The package scorer ``name``, built with the arguments of its ``make_*`` function.

    Parameters
    ----------
    name : str
        One of :func:`get_scorer_names`: ``"barycenter_cost"`` (no truth needed; the
        estimators' default ``score``), ``"bw_uvp"``, ``"l2_uvp"``, ``"energy_distance"``,
        ``"frechet"`` (these compare with a known truth: pass the benchmark).
    *args, **kwargs
        Passed to the ``make_<name>_scorer`` function (e.g. the benchmark).

    Returns
    -------
    callable ``scorer(estimator, X, y) -> float``

    Examples
    --------
    >>> from skbary.scorers import get_scorer
    >>> get_scorer("barycenter_cost")
    make_barycenter_cost_scorer(n_samples=None)
    """
    if not isinstance(name, str) or name not in _FACTORIES:
        raise ValueError(f"Unknown skbary scorer {name!r}; the names are {get_scorer_names()}.")
    return _FACTORIES[name](*args, **kwargs)
