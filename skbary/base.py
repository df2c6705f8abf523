"""Base classes every skbary estimator stands on, and the fit template they share.

:class:`BaseBarycenter` holds what all estimators share, neural or not: the transactional
``fit`` template (validate hyperparameters -> validate data -> routing model -> the method's
``_fit``; a fit that raises leaves the estimator as it was), the two input forms of ``fit``
(rule in :mod:`skbary.validation`), the fitted attributes (``n_features_in_``,
``n_marginals_``, ``weights_``, ``input_labels_``), the plumbing of
``sample``/``transform``/``inverse_transform`` (argument checks, routing rows by input,
float64 numpy output) and nested ``prefix__param`` hyperparameters.

:class:`NeuralBarycenter` adds the torch side and owns the neural template: standardise ->
build the networks (the *roles*, :mod:`skbary.nn.roles`) -> train the method's phases in the
shared :class:`~skbary.training.TrainingLoop` (history, progress, skorch callbacks, limits,
divergence checks, learning-rate schedules) -> finish; plus device, seeds, threads,
optimisers, sampling from kept rows, chunked inference and CPU-portable pickling.

A non-neural method implements ``_fit(marginals, weights)``; a neural one
``_build_networks``, ``_train`` (and optionally ``_check_params``); both the inference hooks
``_sample``, ``_transform`` (and optionally ``_inverse_transform``).
"""

from __future__ import annotations

import contextlib
import copy
import numbers
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    _get_feature_names,
    check_is_fitted,
    validate_data,
)
from skorch.history import History
from skorch.utils import params_for
from torch import nn

from ._docstrings import fill_shared_docs
from .costs import quadratic_cost, resolve_cost
from .exceptions import DiscreteSampleWarning, TrainingDivergedError
from .nn.affine import DENSE_MAX_FEATURES
from .nn.bounded import BoxOutput, resolve_bounds
from .nn.maps import quantiles_unset, set_quantiles_
from .nn.roles import Role, build_network
from .streams import StreamCache, is_stream
from .training import (
    LR_SCHEDULES,
    UNBOUNDED,
    LRDecay,
    MarginalBatches,
    TrainingLoop,
    float32_default,
    iteration_budget,
    resolve_device,
    torch_threads,
)
from .training.callbacks import check_callbacks
from .training.interrupts import InterruptGuard
from .training.loop import format_phase_table, format_summary
from .training.optim import ParameterAverage
from .training.state import TrainingStateMixin
from .validation import (
    WEIGHT_RULES,
    _check_row_weights,
    check_n_samples,
    check_rows,
    is_list_form,
    resolve_fit_input,
)

# optimisers with a fused kernel on CPU and CUDA (torch >= 2.4)
_FUSABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)

__all__ = ["BaseBarycenter", "InverseTransformMixin", "NeuralBarycenter", "Role"]

#: Above this many features the routing model of unlabelled rows (``transform`` without
#: ``k``) keeps a diagonal covariance per input instead of a full d x d one (the package's
#: one threshold for dense state, :data:`skbary.nn.affine.DENSE_MAX_FEATURES`).
ROUTING_FULL_COVARIANCE_MAX_FEATURES = DENSE_MAX_FEATURES

#: Bookkeeping entries of a history row (the rest are losses).
_HISTORY_KEYS = frozenset({"batches", "epoch", "phase", "iteration", "time", "dur"})

#: Held while torch's process-wide default generator is seeded (:meth:`NeuralBarycenter._seeded`).
_GLOBAL_RNG_LOCK = threading.RLock()


def _check_same_feature_names(inputs: Sequence[Any]) -> None:
    """Raise if the inputs of the list form name their columns differently.

    The rows of every input are paired column by column, so DataFrames whose columns are
    in another order (or are other columns) would be averaged coordinate against the wrong
    coordinate. Inputs without names (numpy arrays) beside named ones draw scikit-learn's
    warning, as in ``transform``.
    """
    names = [_get_feature_names(X) for X in inputs]
    named = [k for k, n in enumerate(names) if n is not None]
    if not named:
        return
    ref = names[named[0]]
    for k in named[1:]:
        if len(names[k]) != len(ref) or np.any(names[k] != ref):
            same_set = len(names[k]) == len(ref) and set(names[k]) == set(ref)
            hint = (
                f"the same columns in another order: reorder it, e.g. X[{k}][X[{named[0]}].columns]"
                if same_set
                else "other columns"
            )
            raise ValueError(
                f"The inputs' column names differ: X[{k}] has {list(names[k])[:8]} where "
                f"X[{named[0]}] has {list(ref)[:8]} ({hint}). Inputs are paired column by "
                "column, so every input must have the same columns in the same order."
            )
    if len(named) < len(names):
        unnamed = [k for k, n in enumerate(names) if n is None]
        warnings.warn(
            f"X[{unnamed[0]}] has no column names but X[{named[0]}] has; its columns are "
            "taken in the named inputs' order.",
            UserWarning,
            stacklevel=4,
        )


class BaseBarycenter(TransformerMixin, BaseEstimator):
    """Shared contract of the skbary estimators (see the package README).

    Subclasses declare nested hyperparameter prefixes in ``_prefixes``: any keyword
    ``prefix__name`` given to ``__init__`` or ``set_params`` is stored as an attribute and
    returned by ``get_params``, so ``GridSearchCV`` can search it by name.
    """

    _prefixes: ClassVar[tuple[str, ...]] = ()
    #: Whether the method learns the maps back from the barycenter to the inputs; such an
    #: estimator derives from :class:`InverseTransformMixin`, the others have no
    #: ``inverse_transform`` at all (not even in ``help``).
    _learns_inverse: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__doc__:  # parameter descriptions shared by several estimators
            cls.__doc__ = fill_shared_docs(cls.__doc__)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "weights": ["array-like", StrOptions(set(WEIGHT_RULES)), dict, None],
        "unlabelled_rows": [StrOptions({"error", "guess"})],
        "dtype": [Options(type, {np.float64, np.float32}), None],
    }

    # ------------------------------------------------------------------ parameters
    def _set_prefixed(self, kwargs: Mapping[str, Any]) -> None:
        """Store ``prefix__name`` keyword arguments given to ``__init__`` unchanged.

        They live in the private dict ``_nested_params`` (so scikit-learn's rule that
        ``__init__`` sets no public attribute but its parameters holds) and are returned by
        ``get_params``. Following scikit-learn, nothing is validated here:
        :meth:`_check_prefixed` (called at the start of fit) rejects names whose prefix the
        estimator does not declare.
        """
        self._nested_params = dict(kwargs)

    def _check_prefixed(self) -> None:
        """Raise TypeError for keyword arguments that are neither parameters nor nested ones."""
        for key in getattr(self, "_nested_params", {}):
            if "__" not in key or key.split("__", 1)[0] not in self._prefixes:
                allowed = ", ".join(f"{p}__*" for p in self._prefixes) or "none"
                raise TypeError(
                    f"{type(self).__name__} got an unexpected keyword argument {key!r}; "
                    f"nested parameters allowed here: {allowed}."
                )

    def _prefixed_params(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in getattr(self, "_nested_params", {}).items()
            if "__" in k and k.split("__", 1)[0] in self._prefixes
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, including nested ``prefix__name`` ones."""
        params = super().get_params(deep=deep)
        params.update(self._prefixed_params())
        return params

    def set_params(self, **params: Any) -> BaseBarycenter:
        """Set parameters; ``prefix__name`` keys with a declared prefix are stored as given."""
        nested = {
            k: params.pop(k)
            for k in list(params)
            if "__" in k and k.split("__", 1)[0] in self._prefixes
        }
        if nested:
            self._nested_params = {**getattr(self, "_nested_params", {}), **nested}
        if params:
            super().set_params(**params)
        return self

    def _nested(self, prefix: str, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``defaults`` updated with the ``prefix__*`` parameters (prefix stripped)."""
        out = dict(defaults or {})
        out.update(params_for(prefix, self._prefixed_params()))
        return out

    # ------------------------------------------------------------------ fit
    def fit(
        self, X: Any, y: Any = None, weights: Any = None, sample_weight: Any = None
    ) -> BaseBarycenter:
        """Fit the barycenter of the inputs.

        The template every estimator follows: validate the hyperparameters -> validate the
        data -> fit the routing model -> the method's ``_fit``. The fit is transactional: if
        anything raises (a bad parameter, bad data, a diverged training, a callback's
        exception), the estimator is left exactly as it was before the call (unfitted, or
        with its previous model intact). Ctrl-C during training is not an error: it stops
        training and keeps what was learned.

        Parameters
        ----------
        X : list of array-like of shape (n_k, n_features), or array-like (n, n_features)
            The list form (one array per input) or the flat form (all rows, with ``y``).
            The rule: a ``list``/``tuple`` of 2-D arrays is the list form, anything else
            the flat form (:mod:`skbary.validation`).
        y : array-like, optional
            List form: the weight vector (as in ``fit([X1, X2], [0.3, 0.7])``).
            Flat form: the input label of each row; None means one input.
        weights : {"uniform", "proportional"}, dict or array-like of shape (K,), optional
            Barycenter weights; overrides the estimator's ``weights`` parameter (uniform when
            neither is given). A vector follows the order of ``input_labels_``: the list
            form's order, or the sorted labels of ``y`` in the flat form; a dict maps input
            labels to weights; "proportional" weighs each input by its share of the rows.
            Explicit weights must be non-negative and sum to 1 (never normalised silently).
        sample_weight : array-like of shape (n,), or list of array-like, optional
            Non-negative weight of every row (weighted empirical inputs, as POT's
            ``measures_weights``): the flat form takes one vector; the list form a list
            with one vector per input (or one vector over all rows, input after input).
            Integer weights give the fit of the rows repeated that many times: minibatches
            draw rows in proportion to their weights, and moments, standardisation and kept
            rows are weighted.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        before = dict(self.__dict__)
        try:
            self._fit_t0 = time.perf_counter()  # max_time counts from here
            self._validate_hyperparameters()
            with self._fit_context():
                marginals, a = self._validate_fit_data(X, y, weights, sample_weight)
                self._fit_input_model(marginals, a)
                self._fit(marginals, a)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        self.__dict__.pop("_row_weights", None)  # the fit's rows are not kept
        self.__dict__.pop("_streams", None)  # nor its streams
        return self

    def _fit_context(self) -> contextlib.AbstractContextManager:
        """Context the whole fit runs in (torch threads for the neural estimators)."""
        return contextlib.nullcontext()

    def _validate_hyperparameters(self) -> None:
        """Check every hyperparameter before the data are touched.

        scikit-learn's ``_parameter_constraints`` (declared once per base class and extended
        per estimator), with booleans rejected where a number is expected, then the nested
        ``prefix__name`` parameters, then the estimator's own cross-parameter checks
        (:meth:`_check_params`).
        """
        self._validate_params()
        params = self.get_params(deep=False)
        for name, constraints in self._parameter_constraints.items():
            value = params.get(name)
            if isinstance(value, bool | np.bool_) and not any(
                c == "boolean" or c is bool for c in constraints
            ):
                raise ValueError(
                    f"The {name!r} parameter of {type(self).__name__} must be a number, not a "
                    f"boolean; got {value!r}."
                )
        self._check_prefixed()
        self._check_params()

    def _check_params(self) -> None:
        """Cross-parameter checks of a method (hook; the constraints cover single values)."""

    def _validate_fit_data(
        self, X: Any, y: Any, weights: Any, sample_weight: Any = None
    ) -> tuple[list[NDArray], NDArray]:
        """Validate the input form and the rows; set the fitted input attributes.

        The row weights of ``sample_weight`` (one vector per input, or None) are kept for
        the rest of this fit in ``_row_weights``, and the streamed inputs
        (:mod:`skbary.streams`; their entries of ``marginals`` are their subsamples) in
        ``_streams``.
        """
        self.__dict__.pop("added_input_labels_", None)  # mapped onto the old barycenter
        self.__dict__.pop("_added_maps", None)
        marginals, a, labels, flat, self._row_weights, streams = resolve_fit_input(
            X,
            y,
            weights,
            default_weights=getattr(self, "weights", None),
            sample_weight=sample_weight,
            random_state=getattr(self, "random_state", None),
        )
        self._streams = streams if any(streams) else None
        if flat is not None:
            validate_data(self, X, reset=True, ensure_all_finite=True, skip_check_array=True)
        else:
            held = [Xk for Xk, st in zip(X, streams) if st is None]
            _check_same_feature_names(held)
            if held:
                validate_data(self, held[0], reset=True, skip_check_array=True)
            else:  # only streams: no column names
                self.__dict__.pop("feature_names_in_", None)
        self.n_features_in_ = marginals[0].shape[1]
        self._fit_dtype = np.result_type(*(m.dtype for m in marginals))
        self.n_marginals_ = len(marginals)
        self.weights_ = a
        self.input_labels_ = labels
        return marginals, a

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit, then map the training rows onto the barycenter.

        In the flat form each row is mapped with the map of its own input (``k=y``); in the
        list form a list with one mapped array per input is returned.
        """
        if is_list_form(X) and any(map(is_stream, X)):
            raise ValueError(
                "fit_transform maps the training rows, but inputs "
                f"{[k for k, Xk in enumerate(X) if is_stream(Xk)]} are streams "
                "(skbary.streams) that hold none: call fit, then transform the rows to map."
            )
        self.fit(X, y, **fit_params)
        if is_list_form(X):
            return [self.transform(Xk, k) for k, Xk in enumerate(X)]
        return self.transform(X, k=y)

    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        raise NotImplementedError

    def _row_weights_or_none(self) -> list[NDArray] | None:
        """The current fit's row weights (``sample_weight`` as given, one vector per input)."""
        return self.__dict__.get("_row_weights")

    # ------------------------------------------------------------------ input model
    def _fit_input_model(self, marginals: list[NDArray], weights: NDArray) -> None:
        """Gaussian model of each input, used to guess a row's input when ``k`` is None.

        Full covariances up to :data:`ROUTING_FULL_COVARIANCE_MAX_FEATURES` features,
        diagonal ones above (no d x d state for image-sized rows).
        """
        d = marginals[0].shape[1]
        full = d <= ROUTING_FULL_COVARIANCE_MAX_FEATURES
        # in units of the data's largest magnitude, so that no squared value overflows (the
        # argmax over inputs does not depend on the units)
        unit = max(float(np.abs(m).max()) for m in marginals)
        unit = unit if np.isfinite(unit) and unit > 0 else 1.0
        means, spreads = [], []
        row_weights = self._row_weights_or_none()
        for k, raw in enumerate(marginals):
            raw = raw.astype(np.float64, copy=False)
            w = None if row_weights is None else row_weights[k]
            means.append(np.average(raw, axis=0, weights=w))  # in the data's units
            m = raw / unit
            if full:
                spreads.append(np.atleast_2d(np.cov(m, rowvar=False, bias=True, aweights=w)))
            else:
                spreads.append(np.average((m - means[-1] / unit) ** 2, axis=0, weights=w))
        counts = [  # rows, or their total weight (integer weights count rows)
            len(m) if row_weights is None else row_weights[k].sum() for k, m in enumerate(marginals)
        ]
        self._set_input_model(np.stack(means), spreads, counts, unit)

    def _set_input_model(
        self, means: NDArray, spreads: Sequence[NDArray], counts: Sequence[float], unit: float
    ) -> None:
        """Store the routing model: input means (data units), covariances (d x d) or
        variances (d,) in units of ``unit``, and prior masses ``counts``."""
        d = means.shape[1]
        scales, logdets = [], []
        for spread in spreads:
            if spread.ndim == 2:
                cov = spread + (1e-6 * np.trace(spread) / d + 1e-12) * np.eye(d)
                L = np.linalg.cholesky(cov)
                logdets.append(2 * np.log(np.diag(L)).sum())
            else:
                var = spread + 1e-6 * spread.mean() + 1e-12
                L = np.sqrt(var)
                logdets.append(np.log(var).sum())
            scales.append(L)
        counts = np.asarray(counts, dtype=np.float64)
        self._input_unit = unit
        self._input_means = means
        self._input_chols = np.stack(scales)
        self._input_logprior = np.log(counts / counts.sum()) - 0.5 * np.array(logdets)

    def _guess_inputs(self, X: NDArray) -> NDArray[np.int64]:
        if self.n_marginals_ == 1:
            return np.zeros(X.shape[0], dtype=np.int64)
        scores = np.empty((X.shape[0], self.n_marginals_))
        unit = getattr(self, "_input_unit", 1.0)
        for k in range(self.n_marginals_):
            L = self._input_chols[k]
            centred = (X - self._input_means[k]) / unit
            if L.ndim == 2:
                z = np.linalg.solve(L, centred.T)
            else:  # diagonal model
                z = (centred / L).T
            scores[:, k] = self._input_logprior[k] - 0.5 * (z**2).sum(axis=0)
        return scores.argmax(axis=1)

    # ------------------------------------------------------------------ public API
    def _resolve_k(
        self, k: Any, X: NDArray, added_inputs: bool = False
    ) -> np.int64 | NDArray[np.int64]:
        """Position (0..K-1) of every row's input from ``k`` (label, labels, or None): one
        position when all rows come from one input, else one per row.

        ``k=None`` is only unambiguous for one input; with several, the rows are routed by
        a guess only when the user chose it (``unlabelled_rows="guess"``), else it raises.
        """
        if k is None:
            if self.n_marginals_ == 1:
                return np.int64(0)
            if getattr(self, "unlabelled_rows", "error") == "guess":
                return self._guess_inputs(X)
            raise ValueError(
                f"{type(self).__name__} was fitted on {self.n_marginals_} inputs (labels "
                f"{self.input_labels_.tolist()[:10]}), so mapping rows needs k, the input they "
                "come from: transform(X, k=label) or one label per row. In a Pipeline, wrap "
                "the estimator in skbary.BarycenterMapper, which routes each row by its group "
                "(a y given to fit are the inputs' labels, not class labels). To route each "
                "row to its most likely input under a Gaussian model of every input instead, "
                "set unlabelled_rows='guess' (rows where inputs overlap get misrouted)."
            )
        labels = self.input_labels_
        k_arr = np.asarray(k)
        scalar = k_arr.ndim == 0
        if scalar:  # one label for all rows: checked once, no per-row array
            k_arr = k_arr.reshape(1)
        elif k_arr.ndim != 1 or k_arr.shape[0] != X.shape[0]:
            raise ValueError(
                f"k must be an input label or one label per row of X ({X.shape[0]} rows), "
                f"got shape {k_arr.shape}."
            )
        if k_arr.dtype.kind == "b" or (
            k_arr.dtype.kind == "f" and np.any(k_arr != np.round(k_arr))
        ):
            raise TypeError(f"k must be an integer input index, got {k!r}.")
        if k_arr.dtype.kind == "f":
            k_arr = k_arr.astype(np.int64)
        try:
            pos = np.clip(np.searchsorted(labels, k_arr), 0, len(labels) - 1)
            bad = np.asarray(labels[pos] != k_arr, dtype=bool)
        except TypeError:  # labels of mixed types (fitted and added inputs in one call)
            pos = np.zeros(len(k_arr), dtype=np.int64)
            bad = np.ones(len(k_arr), dtype=bool)
        added = self.__dict__.get("added_input_labels_", []) if added_inputs else []
        if np.any(bad) and (added or k_arr.dtype.kind == "O"):  # by label, one at a time
            where = {lab: j for j, lab in enumerate(labels.tolist())}
            where.update({lab: self.n_marginals_ + j for j, lab in enumerate(added)})
            for i in np.flatnonzero(bad):
                v = k_arr[i]
                j = where.get(v.item() if isinstance(v, np.generic) else v)
                if j is not None:
                    pos[i], bad[i] = j, False
        if np.any(bad):
            extra = f"; inputs added with add_input: {list(added)}" if added else ""
            raise ValueError(
                f"k={k_arr[bad][0]!r} is out of range: the fitted inputs are "
                f"{list(labels)} (n_marginals_={self.n_marginals_}){extra}. An input not "
                "seen in fit gets its map with add_input(X, label)."
            )
        return np.int64(pos[0]) if scalar else pos.astype(np.int64)

    def _output_dtype(self, X: NDArray | None = None) -> np.dtype:
        """The dtype of what inference returns: the ``dtype`` parameter, or with None the
        rows' own (``X``; the training rows' for ``sample``)."""
        dtype = getattr(self, "dtype", np.float64)
        if dtype is None:
            dtype = X.dtype if X is not None else self.__dict__.get("_fit_dtype", np.float64)
        return np.dtype(dtype)

    def _route(
        self,
        fn: Callable[[NDArray, int], NDArray],
        X: NDArray,
        k: Any,
        added_inputs: bool = False,
    ) -> NDArray:
        """``fn(rows, position)`` applied to the rows of each input (``k``: see transform).

        The images are written into one float64 output. Where every row's image depends on
        that row alone (:attr:`_rowwise_inference`), ``fn`` is called on chunks of
        :meth:`_chunk_rows` rows, so the extra memory is a chunk's; a method whose images
        share one random stream per call (stochastic plans) gets all rows of an input at
        once, so that no two chunks repeat the same noise. With ``added_inputs`` (the maps
        onto the barycenter) the labels of inputs added by :meth:`add_input` are served by
        their learned maps.
        """
        pos = self._resolve_k(k, X, added_inputs)
        K = self.n_marginals_
        if added_inputs and np.max(pos) >= K:
            inner = fn

            def fn(rows: NDArray, kk: int) -> NDArray:
                return inner(rows, kk) if kk < K else self._map_added(rows, kk - K)

        if np.ndim(pos) == 0:  # one input: slices of X (rows None), no index arrays
            groups = [(int(pos), None)]
        else:
            groups = [(int(kk), np.flatnonzero(pos == kk)) for kk in np.unique(pos)]
        step = self._chunk_rows(X.shape[1]) if self._rowwise_inference else X.shape[0]
        out_dtype = self._output_dtype(X)
        out = None
        with self._inference_context():
            for kk, rows in groups:
                if rows is None and step >= X.shape[0]:  # one call: its output is ours
                    return np.asarray(fn(X, kk), dtype=out_dtype)
                for start in range(0, X.shape[0] if rows is None else len(rows), step):
                    sel = slice(start, start + step) if rows is None else rows[start : start + step]
                    Yk = fn(X[sel], kk)
                    if out is None:
                        out = np.empty((X.shape[0], Yk.shape[1]), dtype=out_dtype)
                    out[sel] = Yk
        return out

    @property
    def _rowwise_inference(self) -> bool:
        """Whether ``transform`` of a row depends on that row alone (then rows are chunked)."""
        return True

    @property
    def n_features_out_(self) -> int:
        """Dimension of the barycenter space."""
        return self.n_features_in_

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """Names of the columns of ``transform``'s output (and of ``sample``'s).

        The maps keep the input space, so the output columns are the input columns: the
        names seen in fit (``feature_names_in_``), else ``x0, x1, ...``. A method whose
        barycenter lives in another space (a generator's latent space) names its
        ``n_features_out_`` columns ``<classname>0, <classname>1, ...``. With these names
        ``set_output(transform="pandas")`` returns DataFrames.

        Parameters
        ----------
        input_features : array-like of str, default=None
            The input columns' names; must equal ``feature_names_in_`` when that is set.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if self.n_features_out_ != self.n_features_in_:
            prefix = type(self).__name__.lower()
            return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)], dtype=object)
        return np.asarray(names, dtype=object)

    def sample(self, n: int, random_state: Any = None) -> NDArray[np.float64]:
        """Draw ``n`` points from the fitted barycenter.

        Parameters
        ----------
        n : int
            Number of points, a positive integer.
        random_state : int, RandomState or None
            Seed of the draw; the same seed gives the same points. None uses the
            estimator's ``random_state`` (as ``GaussianMixture.sample`` does), so a seeded
            estimator returns the same points on every call.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self)
        n = check_n_samples(n)
        if random_state is None:
            random_state = getattr(self, "random_state", None)
        self._warn_if_discrete(n)
        return self._draw_chunked(n, check_random_state(random_state), self._sample)

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the barycenter cost of held-out rows: ``-sum_k a_k W2^2(samples, X_k)``.

        The default score of ``GridSearchCV`` and ``cross_val_score`` (higher is better),
        needing no ground truth: the true barycenter minimises the weighted cost to the
        inputs, so on held-out rows of every input the best candidate scores highest. It is
        :data:`skbary.scorers.barycenter_cost_scorer`: ``sample`` draws as many points as the
        largest held-out input has (at most 5,000, seed 0, the same for every candidate) and
        each W2^2 is exact OT between equal-size subsamples (POT's ``emd2``).

        Parameters
        ----------
        X : list of array-like of shape (n_k, n_features_in_), or array-like (n, n_features_in_)
            Held-out rows of every input: the list form (one array per fitted input, in the
            order of ``input_labels_``) or the flat form with ``y``.
        y : array-like of shape (n,), default=None
            Flat form: the input label of each row (what ``StratifiedKFold`` splits). None is
            allowed for a model of one input.

        Returns
        -------
        float
            ``-sum_k weights_[k] * W2^2(Y, X_k)`` (plain squared distance, no factor 1/2).
        """
        from .scorers import barycenter_cost_scorer

        check_is_fitted(self)
        if is_list_form(X):
            if len(X) != self.n_marginals_:
                raise ValueError(
                    f"score got {len(X)} inputs but the model was fitted on {self.n_marginals_}."
                )
            rows = [self._check_rows(Xk) for Xk in X]
            X = np.concatenate(rows)
            y = np.repeat(self.input_labels_, [len(r) for r in rows])
        else:
            X = self._check_rows(X)
            if y is None:
                if self.n_marginals_ > 1:
                    raise ValueError(
                        f"score needs y, the input label of each row: {type(self).__name__} "
                        f"was fitted on {self.n_marginals_} inputs."
                    )
                y = np.repeat(self.input_labels_[:1], len(X))
        return float(barycenter_cost_scorer(self, X, y))

    # ------------------------------------------------------------------ inputs unseen in fit
    def add_input(
        self,
        X: Any,
        label: Any,
        *,
        sample_weight: Any = None,
        max_iter: int | None = None,
        max_time: float | None = None,
    ) -> BaseBarycenter:
        """Learn the OT map from a new input onto the fitted barycenter, without refitting.

        The barycenter (``sample``, the fitted maps, ``weights_``) stays as it is; afterwards
        ``transform(X_new, k=label)`` maps rows of the new input onto it. The Gaussian
        barycenter uses the closed form (the linear map from the new input's Gaussian to the
        barycenter's); free support solves the exact discrete OT problem onto its support
        and extends the plan's barycentric projection by nearest neighbours; the neural
        estimators learn one OT map from the new rows to draws of the fitted barycenter: for
        the quadratic cost the gradient of an input-convex potential
        (:func:`~skbary.solvers.fit_convex_maps`, the W2 dual NWB solves), for another cost
        the max-min map of :class:`~skbary.solvers.MaxMinOTSolver` (WIN's inner solver).
        A later ``fit`` drops the added inputs (their maps were learned onto the old
        barycenter). :class:`~skbary.BarycenterMapper` uses this for groups unseen in fit.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)
            Rows of the new input (at least 2).
        label : int or str
            Its label for ``transform(..., k=label)``; must not be a fitted input's label
            (adding a label again replaces its map).
        sample_weight : array-like of shape (n,), optional
            Row weights of the new input (as in ``fit``).
        max_iter : int, optional
            Neural estimators: iterations of the map's training (convex potentials: 2 f and
            6 g steps each; max-min: a potential step and 10 map steps); None trains
            ``_ADDED_MAP_MAX_ITER`` (1000) or until ``max_time``.
        max_time : float, optional
            Neural estimators: seconds the map's training may take.

        Returns
        -------
        self : object
        """
        check_is_fitted(self)
        rows = self._check_rows(X)
        if rows.shape[0] < 2:
            raise ValueError("add_input needs at least 2 rows of the new input.")
        if self.n_features_out_ != self.n_features_in_:
            raise ValueError(
                f"{type(self).__name__} fitted a barycenter in another space "
                f"({self.n_features_out_} features); add_input maps into the input space only."
            )
        if label in set(self.input_labels_.tolist()):
            raise ValueError(
                f"label {label!r} is a fitted input's; add_input is for inputs not seen in fit."
            )
        if np.ndim(label) != 0 or isinstance(label, float | np.floating):
            raise TypeError(f"label must be an integer or a string, got {label!r}.")
        w = (
            None
            if sample_weight is None
            else _check_row_weights(sample_weight, rows.shape[0], "sample_weight")
        )
        with self._fit_context():
            new_map = self._learn_input_map(rows, w, max_iter, max_time)
        labels = list(self.__dict__.get("added_input_labels_", []))
        maps = list(self.__dict__.get("_added_maps", []))
        label = label.item() if isinstance(label, np.generic) else label
        if label in labels:
            maps[labels.index(label)] = new_map
        else:
            labels.append(label)
            maps.append(new_map)
        self.added_input_labels_ = labels
        self._store_added_maps(maps)
        return self

    def _learn_input_map(
        self, X: NDArray, w: NDArray | None, max_iter: int | None, max_time: float | None
    ) -> Any:
        """The map of a new input onto the fitted barycenter (hook of :meth:`add_input`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot map inputs unseen in fit.")

    def _store_added_maps(self, maps: list[Any]) -> None:
        self._added_maps = maps

    def _map_added(self, X: NDArray, j: int) -> NDArray:
        """Rows of added input j (data units) mapped onto the barycenter (data units)."""
        raise NotImplementedError

    def _discrete_support(self) -> tuple[int, str] | None:
        """``(number of distinct points sample can return, advice)`` for a model whose draws
        come from a finite set; None (the default) for a continuous one."""
        return None

    def _warn_if_discrete(self, n: int, support: tuple[int, str] | None = None) -> None:
        """Warn (:class:`~skbary.exceptions.DiscreteSampleWarning`) when ``n`` exceeds the
        distinct points the fitted model can draw (``support``: as
        :meth:`_discrete_support` returns, for a draw other than the default one)."""
        support = self._discrete_support() if support is None else support
        if support is not None and n > support[0]:
            warnings.warn(
                f"{type(self).__name__}.sample({n}) draws from at most {support[0]} distinct "
                f"points, so points repeat. {support[1]}",
                DiscreteSampleWarning,
                stacklevel=3,
            )

    def _draw_chunked(
        self,
        n: int,
        rng: np.random.RandomState,
        draw: Callable[[int, np.random.RandomState], NDArray],
    ) -> NDArray[np.float64]:
        """``n`` draws of ``draw(m, rng)`` (model coordinates) into one array (``dtype``).

        The draws are made in chunks of :meth:`_chunk_rows` rows written into the
        preallocated output, so the peak extra memory beyond the output is one chunk's.
        """
        out = np.empty((n, self.n_features_out_), dtype=self._output_dtype())
        step = self._chunk_rows(self.n_features_out_)
        with self._inference_context():
            for start in range(0, n, step):
                m = min(step, n - start)
                out[start : start + m] = self._from_model(draw(m, rng), fresh=True)
        return out

    @staticmethod
    def _chunk_rows(n_features: int) -> int:
        """Rows per inference chunk: about 8 MB of float64 output (256 to 65,536 rows)."""
        return int(min(65_536, max(256, 2**20 // max(int(n_features), 1))))

    def _inference_context(self) -> contextlib.AbstractContextManager:
        """Context inference runs in (torch's float32 default for the neural estimators)."""
        return contextlib.nullcontext()

    def _check_rows(self, X: Any, name: str = "X") -> NDArray:
        """Validate rows given after fit, as scikit-learn does: fitted, feature names, shape.

        ``X`` (the input space) and ``Y`` (the barycenter space, when it is the input space)
        must have the column names seen in fit, in the same order: scikit-learn raises for
        other names or another order and warns when names are present on only one side.
        """
        check_is_fitted(self)
        if name == "X" or self.n_features_out_ == self.n_features_in_:
            _check_feature_names(self, X, reset=False)
        n_features = self.n_features_in_ if name == "X" else self.n_features_out_
        return check_rows(X, n_features, type(self).__name__, name=name)

    def transform(self, X: Any, k: Any = None) -> NDArray[np.float64]:
        """Map rows of input ``k`` onto the barycenter.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)
            Rows of one input, or of several inputs when ``k`` is an array.
        k : int, array-like of shape (n,), or None
            The input label (``input_labels_``; 0..K-1 in the list form, or a label given
            to :meth:`add_input`) of all rows or of each row. None is allowed for a model of
            one input; with several it raises
            unless the estimator was built with ``unlabelled_rows="guess"`` (each row routed
            to its most likely input under a Gaussian model of every input). In a Pipeline,
            use :class:`~skbary.BarycenterMapper`, which routes rows by their group.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        X = self._check_rows(X)
        return self._route(
            lambda Xk, kk: self._from_model(self._transform(self._to_model(Xk), kk), fresh=True),
            X,
            k,
            added_inputs=True,
        )

    def _to_model(self, X: NDArray) -> NDArray:
        """Rows in the coordinates the method works in (identity; see NeuralBarycenter)."""
        return X

    def _from_model(self, Y: NDArray, fresh: bool = False) -> NDArray:
        """Inverse of :meth:`_to_model`. ``fresh=True``: ``Y`` is a new array the caller
        owns (a method's output), which may be converted in place."""
        return Y

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        raise NotImplementedError

    def _transform(self, X: NDArray, k: int) -> NDArray:
        raise NotImplementedError

    def _inverse_transform(self, Y: NDArray, k: int) -> NDArray:
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        dtype = getattr(self, "dtype", np.float64)
        tags.transformer_tags.preserves_dtype = (
            ["float64", "float32"] if dtype is None else [np.dtype(dtype).name]
        )
        return tags


# set_output wraps fit_transform's result in one container; in the list form that result is a
# list with one array per input, each already wrapped by transform, so fit_transform stays as
# written (its flat form returns transform's wrapped output).
BaseBarycenter.fit_transform = BaseBarycenter.fit_transform.__wrapped__


class InverseTransformMixin:
    """``inverse_transform`` for the methods that learn the maps back to the inputs.

    Only these estimators have the method, so ``hasattr(est, "inverse_transform")`` and
    ``help`` tell the truth about every class.
    """

    _learns_inverse: ClassVar[bool] = True

    def inverse_transform(self, Y: Any, k: Any = None) -> NDArray[np.float64]:
        """Map barycenter points to input ``k`` (for methods that learn that map).

        Parameters
        ----------
        Y : array-like of shape (n, n_features_out_)
            Points of the barycenter space.
        k : int or array-like of shape (n,)
            The input to map to (required when there is more than one input).

        Returns
        -------
        ndarray of shape (n, n_features_in_)
        """
        Y = self._check_rows(Y, name="Y")
        if k is None and self.n_marginals_ > 1:
            raise ValueError("inverse_transform needs k, the input to map to.")
        return self._route(
            lambda Yk, kk: self._from_model(
                self._inverse_transform(self._to_model(Yk), kk), fresh=True
            ),
            Y,
            k,
        )


class NeuralBarycenter(TrainingStateMixin, BaseBarycenter):
    """Base of the torch estimators: the fit template, networks, optimisers, training loop.

    A method subclass reads like its paper's algorithm box. It declares

    * ``_roles``: its networks (:class:`~skbary.nn.roles.Role`), each a constructor
      parameter named after the role (``map=None``) with ``role__*`` settings;
    * ``_parameter_constraints``: :attr:`NeuralBarycenter._parameter_constraints` (the common
      parameters, declared once) extended with its own;

    and implements the hooks the template calls, in this order:

    1. ``_check_params()`` -- cross-parameter checks (after the constraints, before the data);
    2. ``_build_networks(n_marginals, n_features)`` -- build the networks as fitted
       attributes with :meth:`_network`; called with torch's generator seeded, on the CPU
       (the base moves them to ``device_`` after);
    3. ``_train(data, weights)`` -- run the phases with :meth:`_run`, data being the
       :class:`~skbary.training.MarginalBatches` of the standardised inputs;
    4. ``_sample``, ``_transform`` (``_inverse_transform``) -- inference, in standardised
       coordinates (the base converts).

    The base owns the rest: parameter and data validation, the transactional fit, device,
    seeds, threads, standardisation, history, callbacks, progress, limits, divergence checks,
    learning-rate schedules (``lr_decay``, ``lr_schedule``), chunked inference and
    CPU-portable pickling.

    Standardisation: with ``standardize=True`` the inputs are translated by the barycenter's
    mean and divided by one isotropic scale (:meth:`_fit_standardisation`); the quadratic
    cost commutes with both, so the barycenter of the standardised inputs is the
    standardised barycenter. ``"auto"`` (the default) standardises exactly when the method's
    problem is invariant (:meth:`_standardise_auto`: the quadratic cost, no prior); for a
    user cost it is off unless the user opts in.
    """

    _roles: ClassVar[dict[str, Role]] = {}
    _prefixes: ClassVar[tuple[str, ...]] = ("optimizer",)
    #: How :meth:`_fit_standardisation` measures the spread: ``"within"`` (around each
    #: input's own mean: the scale of the barycenter itself, which the UVP metrics and the
    #: maps' precision are relative to; the default) or ``"pooled"`` (around the barycenter's
    #: mean: also the inputs' distances apart).
    _standardisation_spread: ClassVar[str] = "within"
    #: What each iteration parameter left at None (the default) stands for when
    #: ``max_time`` is None: the method's measured budget, e.g. ``{"max_iter": 300,
    #: "transform_max_iter": 3000}``. With ``max_time`` set, None lifts the count and the
    #: phase trains until its share of the time (:func:`~skbary.training.iteration_budget`).
    _ITERATION_CAPS: ClassVar[dict[str, int]] = {}
    #: Iterations between two held-out scores when ``validation_interval`` is None.
    _VALIDATION_INTERVAL: ClassVar[int] = 50
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseBarycenter._parameter_constraints,
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "lr_decay": [Interval(numbers.Real, 0, 1, closed="right")],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "standardize": ["boolean", StrOptions({"auto"})],
        "optimizer": [callable],
        "device": [str, torch.device],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, tuple, None],
        "warm_start": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "validation_interval": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_prefixes" not in cls.__dict__:
            cls._prefixes = (*cls._roles, "optimizer")

    def _fit_context(self) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        stack.enter_context(torch_threads(getattr(self, "n_threads", None)))
        stack.enter_context(float32_default())
        return stack

    def _inference_context(self) -> contextlib.AbstractContextManager:
        return float32_default()

    def _validate_hyperparameters(self) -> None:
        super()._validate_hyperparameters()
        check_callbacks(self.callbacks, self)

    # ------------------------------------------------------------------ the fit template
    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        """Begin -> standardise -> build networks (or continue them) -> train -> finish.

        ``warm_start=True`` and :meth:`partial_fit` continue a fitted model: its networks,
        optimiser states, standardisation and history (:meth:`_continues`). Ctrl-C stops
        the whole fit (:class:`~skbary.training.interrupts.InterruptGuard`).
        """
        warm = self._continues()
        with InterruptGuard() as guard:
            self._begin_fit(guard, warm=warm)
            marginals = self._hold_out(marginals)  # validation_fraction
            if warm:  # the model's coordinates are the fitted ones
                std = [self._to_model(m) for m in marginals]
            else:
                std = self._fit_standardisation(marginals, weights, enabled=self._standardises())
            data = self._batches(std)
            if not warm:
                with self._seeded():
                    self._build_networks(len(marginals), marginals[0].shape[1])
            self._to_device()
            self._loop.begin()
            self._train(data, weights)
            self._end_fit()
        self._check_trained_model()

    #: In standardised coordinates the inputs' spread is 1, and the quadratic barycenter's
    #: is at most 1: a model whose samples spread wider than this diverged.
    _MAX_MODEL_SPREAD = 1e3

    def _check_trained_model(self) -> None:
        """Raise :class:`TrainingDivergedError` when the trained model's samples are not
        finite or, for the quadratic barycenter in standardised coordinates (where its
        spread is at most 1), spread over ``_MAX_MODEL_SPREAD`` times the data.

        Losses can stay finite while the networks run away (EgBary with ``lr=1e6`` once
        sampled 1e11 for data of scale 2); 512 draws catch it before the model is served.
        """
        with self._inference_context():
            probe = np.asarray(self._probe_sample(512, check_random_state(self._seed)))
        finite = bool(np.isfinite(probe).all())
        same_space = self.n_features_out_ == self.n_features_in_
        spread = float(np.sqrt(np.mean(probe**2))) if finite else float("inf")
        if finite and not (self.standardized_ and same_space):
            return
        if spread <= self._MAX_MODEL_SPREAD:
            return
        losses = (
            [key for key in self.history_[-1] if key not in _HISTORY_KEYS]
            if len(self.history_)
            else []
        )
        what = (
            "samples that are not finite"
            if not finite
            else f"samples {spread:.3g} times wider than the inputs"
        )
        raise TrainingDivergedError(
            f"Training diverged: the trained model draws {what} (in the standardised "
            "coordinates the barycenter's spread is at most 1), although the losses stayed "
            f"finite. {self._divergence_hint(losses[0] if losses else 'train')}"
        )

    def _probe_sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        """Draws for :meth:`_check_trained_model` (model coordinates); methods whose
        sampling is costly (long Langevin chains) draw a cheaper version."""
        return self._sample(n, rng)

    def _build_networks(self, n_marginals: int, n_features: int) -> None:
        raise NotImplementedError

    def _train(self, data: MarginalBatches, weights: NDArray) -> None:
        raise NotImplementedError

    def _standardise_auto(self) -> bool:
        """Whether ``standardize="auto"`` standardises (methods refine: costs, priors)."""
        return True

    def _standardises(self) -> bool:
        flag = getattr(self, "standardize", "auto")
        if isinstance(flag, str):
            return bool(self._standardise_auto())
        return bool(flag)

    def _to_device(self) -> None:
        """Move the fitted modules and tensors to ``device_`` (never a constructor parameter)."""
        params = set(self._get_param_names())
        for name, value in list(vars(self).items()):
            if isinstance(value, nn.Module | torch.Tensor) and name not in params:
                setattr(self, name, value.to(self.device_))

    # ------------------------------------------------------------------ networks
    def _network(
        self,
        role: str,
        *,
        in_features: int,
        out_features: int,
        default: Callable[..., nn.Module],
        n_models: int | None = None,
        sizes: Mapping[str, int] | None = None,
        check: Callable[[nn.Module], None] | None = None,
    ) -> nn.Module:
        """Build the network of ``role`` from the estimator parameter of that name.

        ``default(**settings)`` builds the default network from the role's default settings
        updated with the user's ``role__*``; a user module, class or factory is built by
        :func:`~skbary.nn.roles.build_network` (K copies stacked for per-input roles).
        """
        spec = self._roles[role]
        settings = {k: v for k, v in self._nested(role).items() if k not in spec.reserved}
        return build_network(
            type(self).__name__,
            spec,
            getattr(self, role),
            settings,
            in_features=in_features,
            out_features=out_features,
            n_models=self.n_marginals_ if n_models is None else n_models,
            default=default,
            sizes=sizes,
            check=check,
        )

    def _role_setting(self, role: str, name: str, default: Any = None) -> Any:
        """A reserved ``role__name`` setting read by the method itself.

        The user's ``role__name``, else the role's default setting, else ``default``.
        """
        return self._nested(role, self._roles[role].defaults).get(name, default)

    def _quadratic_part(self, role: str, auto: bool) -> bool:
        """The reserved ``role__quadratic`` setting: whether the potentials get a learned
        quadratic form. True or False as given; "auto" (the default) is ``auto``, the
        method's rule (its default potentials under the quadratic cost)."""
        value = self._role_setting(role, "quadratic", "auto")
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(f"{role}__quadratic must be 'auto', True or False, got {value!r}.")
            return bool(auto)
        return bool(value)

    def _uses_default(self, role: str) -> bool:
        """Whether ``role`` is the method's default network (the parameter is None)."""
        return getattr(self, role) is None

    def _network_params(self, name: str) -> dict[str, Any]:
        """Settings of the default network ``name``: its defaults updated with ``name__*``."""
        return self._nested(name, self._roles[name].defaults)

    # ------------------------------------------------------------------ helpers for _train
    def _begin_fit(self, guard: InterruptGuard | None = None, warm: bool = False) -> None:
        """Resolve the device, seed the generators, start the clock and the history.

        ``warm=True`` continues the fitted state (on copies, so that a failing fit leaves
        the previous model as it was): the history goes on, the optimisers take their saved
        states, and the minibatch stream continues rather than repeats.
        """
        # The first optimiser of a process imports torch._dynamo (about a second): do it
        # now, inside the time max_time counts (from the start of fit, validation included).
        import torch._dynamo

        self._t0 = self.__dict__.get("_fit_t0", time.perf_counter())
        self.device_ = resolve_device(self.device)
        self._seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        if warm:
            self._take_over_fitted_state()
        else:
            self.history_ = History()
        done = len(self.history_)
        self._generator = torch.Generator(device=self.device_).manual_seed(self._seed + done)
        self._optimizers: list[torch.optim.Optimizer] = []
        self._n_claimed_optimizers = 0
        self._pending_optimizer_states = self.__dict__.get("_optimizer_states") if warm else None
        self.stop_reason_: dict[str, str] = {}
        self._loop = TrainingLoop(
            self,
            self.history_,
            self._t0,
            verbose=self.verbose,
            callbacks=self.callbacks,
            interrupts=guard,
        )

    def _deadline(self, fraction: float = 1.0) -> float | None:
        """Clock time by which ``fraction`` of ``max_time`` (counted from fit's start) is used."""
        if self.max_time is None:
            return None
        return self._t0 + fraction * float(self.max_time)

    def _n_iter(self, name: str = "max_iter") -> int:
        """The iterations of the phase counted by the parameter ``name`` in this fit.

        An integer as given; None: :attr:`_ITERATION_CAPS` without ``max_time``, unbounded
        (the phase's deadline stops it) with it (:func:`~skbary.training.iteration_budget`).
        """
        return iteration_budget(getattr(self, name), self.max_time, self._ITERATION_CAPS[name])

    def _time_left(self) -> float:
        if self.max_time is None:
            return float("inf")
        return self._t0 + float(self.max_time) - time.perf_counter()

    def _batches(self, marginals: Sequence[NDArray]) -> MarginalBatches:
        """The training minibatches: the inputs in model coordinates, streamed inputs
        through device caches of fresh rows (seeded from the fit's seed)."""
        streams = self.__dict__.get("_streams")
        caches = None
        if streams is not None:
            batch = int(getattr(self, "batch_size", 0) or 0)
            caches = [
                None
                if st is None
                else StreamCache(
                    st,
                    st.cache_size(batch),
                    self._to_model,
                    np.random.RandomState((self._seed + 7919 * (k + 1)) % 2**32),
                )
                for k, st in enumerate(streams)
            ]
        return MarginalBatches(
            marginals,
            self.device_,
            self._generator,
            row_weights=self._row_weights_or_none(),
            streams=caches,
        )

    @contextlib.contextmanager
    def _seeded(self, offset: int = 0) -> Iterator[None]:
        """Context in which torch's CPU generator is seeded (repeatable network init).

        Build networks on the CPU inside it, then move them to ``device_``, so that the
        initial weights do not depend on the device. torch's default generator is
        process-wide (modules initialise from it), so the block holds a process-wide lock:
        fits in several threads build their networks one at a time, each from its own seed,
        and get the networks a sequential fit gets. Training itself draws from the fit's own
        generator, never from the default one.
        """
        with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(self._seed + offset)
            yield

    def _make_optimizer(self, params: Any, lr: float, **defaults: Any) -> torch.optim.Optimizer:
        """The estimator's ``optimizer`` class with ``optimizer__*`` keyword arguments.

        ``defaults`` are a method's own keyword arguments, which ``optimizer__*`` override.

        Adam, AdamW and SGD get torch's fused kernel unless ``optimizer__fused`` or
        ``optimizer__foreach`` says otherwise: one kernel updates every parameter tensor,
        where the default CPU path loops over them in Python (``benchmarks/profiling.py``
        records the difference per estimator in ``benchmarks/results/profile.md``).
        """
        kwargs = self._nested("optimizer", {"lr": lr, **defaults})
        if (
            self.optimizer in _FUSABLE_OPTIMIZERS
            and "fused" not in kwargs
            and "foreach" not in kwargs
        ):
            params = list(params)
            try:
                return self._register_optimizer(self.optimizer(params, fused=True, **kwargs))
            except (RuntimeError, TypeError, ValueError):  # a device or dtype without it
                pass
        return self._register_optimizer(self.optimizer(params, **kwargs))

    def _run(
        self,
        step: Callable[[int], Mapping[str, torch.Tensor]],
        *,
        n_iter: int,
        deadline: float | None,
        phase: str = "train",
        decay: Sequence[torch.optim.Optimizer] = (),
        train_loss: str | None = None,
    ) -> int:
        """Run one training phase in the shared loop; records ``stop_reason_[phase]``.

        ``decay`` lists the optimisers whose learning rates follow the estimator's
        ``lr_decay``/``lr_schedule`` over this phase (:class:`~skbary.training.LRDecay`).
        ``train_loss`` names the phase's main loss (copied to the history's
        ``train_loss``). The optimisers built since the previous phase are this phase's
        (``optimizer_``, for ``LRScheduler``).

        Returns
        -------
        int
            The phase's iterations so far: the history's rows of ``phase``, those of a
            continued fit included.
        """
        if n_iter >= UNBOUNDED and deadline is None:  # a phase that would never stop
            raise RuntimeError(f"phase {phase!r} has neither an iteration count nor a deadline.")
        schedule = LRDecay(
            decay,
            float(getattr(self, "lr_decay", 1.0)),
            getattr(self, "lr_schedule", "linear"),
            n_iter,
            deadline,
        )
        if schedule.active:
            inner = step

            def step(i: int) -> Mapping[str, torch.Tensor]:
                schedule.update(i)
                return inner(i)

        self._phase_optimizers = self._optimizers[self._n_claimed_optimizers :]
        self._n_claimed_optimizers = len(self._optimizers)
        self.__dict__.pop("_optimizer_group", None)
        first_phase = not self._loop.phases
        validate = self._held_out_objective if first_phase and self._valid_rows else None
        modules = [getattr(self, name) for name in self._fitted_module_names()]
        flags = [(m, m.training) for mod in modules for m in mod.modules()]
        grads = [(p, p.requires_grad) for mod in modules for p in mod.parameters()]
        best: dict[str, Any] = {}  # early stopping: the networks of the best held-out score
        early = validate is not None and self.__dict__.get("_early_stop", False)
        reason, _ = self._loop.run(
            step,
            n_iter=n_iter,
            deadline=deadline,
            phase=phase,
            train_loss=train_loss,
            validate=validate,
            validate_every=self._validation_interval(),
            n_iter_no_change=int(self.n_iter_no_change) if early else None,
            on_best=(lambda: best.update(self._networks_now())) if early else None,
        )
        if reason in ("interrupted", "callback"):
            # a KeyboardInterrupt may have cut a step's frozen()/eval() block short
            for m, training in flags:
                m.train(training)
            for p, requires_grad in grads:
                p.requires_grad_(requires_grad)
        if best:
            self._restore_networks(best)
        self.stop_reason_[phase] = reason
        return sum(1 for row in self.history_ if row.get("phase") == phase)

    def _networks_now(self) -> dict[str, Any]:
        """Copies of every fitted network's parameters and of the method's running average
        of its maps (``_ema``, NOT's), for :meth:`_restore_networks`."""
        ema = self.__dict__.get("_ema")
        return {
            "modules": copy.deepcopy(self.module_.state_dict()),
            "ema": None if ema is None else [t.detach().clone() for t in ema],
        }

    def _restore_networks(self, saved: Mapping[str, Any]) -> None:
        """Put back what :meth:`_networks_now` copied (early stopping's best iterate)."""
        self.module_.load_state_dict(saved["modules"])
        ema = self.__dict__.get("_ema")
        if ema is not None and saved["ema"] is not None:
            with torch.no_grad():
                for t, s in zip(ema, saved["ema"], strict=True):
                    t.copy_(s)

    def _validation_interval(self) -> int:
        """``validation_interval``, or the method's own (:attr:`_VALIDATION_INTERVAL`)."""
        value = getattr(self, "validation_interval", None)
        return int(self._VALIDATION_INTERVAL if value is None else value)

    def _end_fit(self) -> None:
        """Keep the optimisers' states, drop training-only state, set modules to eval mode;
        ``verbose`` leaves a summary line (and, at 2, a table of the phases)."""
        self._loop.end()
        self._optimizer_states = self._optimizer_states_now()
        self._fit_shape = (self.n_marginals_, self.n_features_in_)
        self._fit_architecture = self._architecture()
        phases = self._loop.phases
        for name in (
            "_loop",
            "_generator",
            "_optimizers",
            "_phase_optimizers",
            "_optimizer_group",
            "_n_claimed_optimizers",
            "_pending_optimizer_states",
            "_valid_rows",
            "_early_stop",
        ):
            self.__dict__.pop(name, None)
        params = set(self._get_param_names())
        for name, value in list(vars(self).items()):
            if isinstance(value, nn.Module) and name not in params:
                value.eval()
        self.fit_time_ = time.perf_counter() - self._t0
        if self.verbose:
            print(format_summary(type(self).__name__, phases, self.fit_time_), file=sys.stderr)
            if self.verbose >= 2:
                print(format_phase_table(phases), file=sys.stderr)

    def _divergence_hint(self, loss_name: str) -> str:
        """Remedy shown when ``loss_name`` becomes NaN; methods refine it per network."""
        return (
            f"The networks trained by {loss_name!r} diverged. Try a smaller learning rate "
            "(e.g. half the current one) or a larger batch_size."
        )

    # ------------------------------------------------------------------ standardisation
    def _fit_standardisation(
        self, marginals: Sequence[NDArray], weights: NDArray, enabled: bool = True
    ) -> list[NDArray]:
        """Set ``center_`` and ``scale_`` and return the inputs in standard coordinates.

        ``center_`` is the barycenter's mean ``sum_k a_k E X_k`` and ``scale_`` one scalar,
        the root mean square per coordinate of the inputs around their own means
        (``"within"``, the default: the barycenter's own scale) or around the barycenter's
        mean (``"pooled"``: WIN and Generative, whose measured results were made with it).
        On inputs far apart relative to their spread the pooled scale shrinks the
        barycenter to a dot: NOT's quickstart fit (means 12 apart, unit spreads, 60 s) gave
        weighted L2-UVP 16 % with it against 0.11 % with "within". A translation and
        an isotropic scaling commute with quadratic OT, so the barycenter of the standardised
        inputs is the standardised barycenter, and learning rates, blurs and network
        initialisations need not depend on the data's units. ``enabled=False`` records the
        identity (0 and 1).
        """
        d = marginals[0].shape[1]
        rw = self._row_weights_or_none() or [None] * len(marginals)
        means = [np.average(m, axis=0, weights=w) for m, w in zip(marginals, rw)]
        if "bounds" in self._parameter_constraints:  # the generator's box, in data units
            boxes = self._boxes() and (self.bounds != "auto" or self._uses_default("generator"))
            self.bounds_ = resolve_bounds(self.bounds, marginals) if boxes else None
            if self.bounds_ is not None:  # where a fresh boxed network starts: the mean
                self._box_start = np.asarray(weights) @ np.stack(means)
        if enabled:
            center = weights @ np.stack(means)
            around = means if self._standardisation_spread == "within" else [center] * len(means)
            var = sum(
                a * np.average(((m - c) ** 2).sum(axis=1), weights=w)
                for a, m, c, w in zip(weights, marginals, around, rw)
            )
            scale = float(np.sqrt(var / d)) if var > 0 else 1.0
            if not np.isfinite(scale) or scale <= 0:
                raise ValueError(
                    "The inputs' spread is not a finite positive number (overflow or all rows "
                    "equal); rescale the data."
                )
        else:
            center, scale = np.zeros(d), 1.0
        self.center_ = np.asarray(center, dtype=np.float64)
        self.scale_ = scale
        self.standardized_ = bool(enabled)
        if not enabled:
            return list(marginals)
        return [(m - self.center_) / self.scale_ for m in marginals]

    def _boxes(self) -> bool:
        """Whether the generator takes ``bounds`` (False where its family has no box)."""
        return True

    def _boxed(self, net: nn.Module) -> nn.Module:
        """``net`` with its outputs kept in ``bounds_`` (:class:`~skbary.nn.bounded.BoxOutput`
        in model coordinates, a zero output at the barycenter's mean), or ``net`` without a box.
        """
        start = self.__dict__.pop("_box_start", None)
        if self.bounds_ is None:
            return net
        low, high, start = (self._to_model(b) for b in (*self.bounds_, start))
        return BoxOutput(net, low, high, start)

    def _to_model(self, X: NDArray) -> NDArray:
        if not getattr(self, "standardized_", False):
            return X
        return (np.asarray(X, dtype=np.float64) - self.center_) / self.scale_

    def _from_model(self, Y: NDArray, fresh: bool = False) -> NDArray:
        if not getattr(self, "standardized_", False):
            return Y
        if fresh and isinstance(Y, np.ndarray) and Y.dtype == np.float64 and Y.flags.writeable:
            Y *= self.scale_  # a method's fresh output: no second array of the output's size
            Y += self.center_
            return Y
        return np.asarray(Y, dtype=np.float64) * self.scale_ + self.center_

    def _model_cost(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The estimator's ``cost`` (quadratic without one) as a cost of model-coordinate rows."""
        return self._in_model_coordinates(resolve_cost(getattr(self, "cost", "quadratic")))

    def _in_model_coordinates(
        self, cost: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A cost of data-unit rows as a cost of model-coordinate rows.

        The quadratic cost is the same function there (its plans do not change when both
        sides are scaled); a user's cost is evaluated on the rows moved back,
        ``c(x s + m, y s + m) / s^2``, when the estimator standardised.
        """
        if not getattr(self, "standardized_", False) or cost is quadratic_cost:
            return cost
        center = torch.as_tensor(self.center_, dtype=torch.float32, device=self.device_)
        s = float(self.scale_)
        return lambda x, y: cost(x * s + center, y * s + center) / s**2

    # ------------------------------------------------------------------ plans from rows
    # Methods without a generator (NOT, EgBary) sample the barycenter by pushing training
    # rows through their plans, and offer the plans' means as a deterministic map.
    @contextlib.contextmanager
    def _averaged_networks(
        self, params: Sequence[torch.Tensor], decay: float, phase: str, warmup: bool = False
    ) -> Iterator[ParameterAverage | None]:
        """Networks kept as an exponential moving average of their iterates in ``phase``.

        Yields the :class:`~skbary.training.optim.ParameterAverage` the phase's step updates
        (after every map step: NOT's, WIN's Algorithm 2 and the generative maps; after
        every outer iteration: WIN's generator), None when ``decay`` is 0; ``warmup``: its
        TensorFlow-style warm-up (short phases are not pulled back to the start). While
        the block runs it is ``_ema``, which callbacks that score the averaged networks and
        early stopping's best iterate read (:meth:`_networks_now`); when the block ends
        normally and ``phase`` has run (a row of it in ``history_``), the parameters take
        the average.
        """
        if not decay > 0:
            yield None
            return
        average = ParameterAverage(params, decay, warmup=warmup)
        self._ema = average.average
        try:
            yield average
            if any(row.get("phase") == phase for row in self.history_):
                average.copy_to_params()
        finally:
            self.__dict__.pop("_ema", None)

    def _set_map_quantiles(self, maps: nn.Module | None, data: MarginalBatches) -> None:
        """Set the quantile features of ``maps`` (if any, not yet set: a warm start keeps
        them) from every input's training rows (:func:`~skbary.nn.maps.set_quantiles_`)."""
        if maps is not None and quantiles_unset(maps):
            set_quantiles_(maps, self._training_rows(data))

    def _keep_training_rows(self, data: MarginalBatches, max_rows: int = 100_000) -> None:
        """Keep the rows :meth:`_sample_from_rows` pushes (:meth:`_training_rows`)."""
        self._rows = self._training_rows(data, max_rows)

    def _training_rows(self, data: MarginalBatches, max_rows: int = 100_000) -> list[NDArray]:
        """Every input's training rows (model coordinates, on the host, float32).

        At most ``max_rows`` per input (a seeded subsample beyond), so memory stays bounded
        whatever the inputs' sizes. With ``sample_weight`` the rows are drawn with
        replacement in proportion to the weights, so that uniform draws from them follow
        the weighted input.
        """
        rng = check_random_state(self._seed)
        rows = []
        for k in range(data.n_marginals):
            m = data.rows(k, max_rows)  # a streamed input: max_rows fresh rows
            if data.row_weights is not None:  # sample_weight: an unweighted draw by weight
                p = data.row_weights[k] / data.row_weights[k].sum()
                m = m[rng.choice(m.shape[0], min(max_rows, m.shape[0]), p=p)]
            elif m.shape[0] > max_rows:
                m = m[rng.choice(m.shape[0], max_rows, replace=False)]
            rows.append(np.ascontiguousarray(m, dtype=np.float32))
        return rows

    def _sample_from_rows(
        self,
        n: int,
        rng: np.random.RandomState,
        push_one: Callable[[NDArray, int], NDArray],
        smoothing: float = 0.0,
        proportions: NDArray | None = None,
    ) -> NDArray:
        """``n`` draws of ``sum_k a_k T_k # P_k``: input k with probability a_k, a uniform kept
        row of it, pushed by ``push_one(rows, k)`` (model coordinates). ``proportions``
        replaces the fit weights ``a`` as the mixture's probabilities.

        ``smoothing > 0`` replaces the empirical ``P_k`` by its Gaussian kernel density
        estimate: each drawn row is jittered by ``smoothing`` times Scott's bandwidth
        (:meth:`_row_bandwidths`) before it is pushed, so the draws are continuous.
        """
        a = self.weights_ if proportions is None else proportions
        counts = rng.multinomial(n, a / a.sum())
        bandwidths = self._row_bandwidths() if smoothing else None
        out = []
        for k, c in enumerate(counts):
            if not c:
                continue
            rows = self._rows[k][rng.randint(0, len(self._rows[k]), size=int(c))]
            if bandwidths is not None:
                noise = rng.standard_normal(rows.shape).astype(np.float32)
                rows = rows + np.float32(smoothing) * bandwidths[k] * noise
            out.append(push_one(rows, k))
        return np.concatenate(out)[rng.permutation(n)]

    def _row_bandwidths(self) -> list[NDArray[np.float32]]:
        """Scott's rule per input: each coordinate's standard deviation times n_k^(-1/(d+4))."""
        cached = self.__dict__.get("_bandwidths")
        if cached is None:
            cached = [
                (r.std(axis=0) * r.shape[0] ** (-1.0 / (r.shape[1] + 4))).astype(np.float32)
                for r in self._rows
            ]
            self._bandwidths = cached
        return cached

    def _projection(
        self,
        X: Any,
        k: Any,
        n_draws: int,
        random_state: Any,
        project: Callable[[NDArray, int, int, np.random.RandomState], NDArray],
    ) -> NDArray[np.float64]:
        """The plumbing of ``barycentric_projection``: checks, routing, coordinates.

        ``project(X_model, k, n_draws, rng)`` returns the mean of the plan of every row.
        """
        X = self._check_rows(X)
        n_draws = check_n_samples(n_draws, "n_draws")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return self._route(
            lambda Xk, kk: self._from_model(
                project(self._to_model(Xk), kk, n_draws, rng), fresh=True
            ),
            X,
            k,
        )

    # ------------------------------------------------------------------ inputs unseen in fit
    #: Iterations of an added input's map (:meth:`add_input`) when neither ``max_iter`` nor
    #: ``max_time`` is given; draws of the fitted barycenter it is trained against.
    _ADDED_MAP_MAX_ITER = 1000
    _ADDED_MAP_TARGET_DRAWS = 20_000
    #: The max-min map (non-quadratic costs) is an average of its iterates (location-scatter,
    #: d = 8, 1,000 iterations: 1.4 % L2-UVP for the last iterate, 0.7 % for this average).
    _ADDED_MAP_EMA_DECAY = 0.999

    def _learn_input_map(
        self, X: NDArray, w: NDArray | None, max_iter: int | None, max_time: float | None
    ) -> nn.Module:
        """The OT map from the new rows to draws of the fitted barycenter (model coordinates).

        The quadratic cost learns it as the gradient of an input-convex potential
        (:func:`~skbary.solvers.fit_convex_maps`, the W2 dual NWB solves with the barycenter
        fixed); another cost trains the max-min solver in the shared loop (WIN's inner
        solver, 10 map steps per potential step, an average of the map's iterates). Both
        use the estimator's ``batch_size``.
        """
        from .solvers import MaxMinOTSolver, fit_convex_maps, fit_ot_maps

        t0 = time.perf_counter()
        d = self.n_features_in_
        rng = check_random_state(self._seed)
        bary = self._added_map_target(self._ADDED_MAP_TARGET_DRAWS, rng)
        target = np.asarray(bary, dtype=np.float32)
        source = np.asarray(self._to_model(X), dtype=np.float32)
        generator = torch.Generator(device=self.device_).manual_seed(self._seed + 17)
        rows = MarginalBatches(
            [source], self.device_, generator, row_weights=None if w is None else [w]
        )
        draws = MarginalBatches([target], self.device_, generator)
        n_iter = iteration_budget(max_iter, max_time, self._ADDED_MAP_MAX_ITER)
        deadline = None if max_time is None else t0 + float(max_time)
        batch_size = int(getattr(self, "batch_size", 256))
        cost = getattr(self, "cost", "quadratic")
        if isinstance(cost, str) and cost == "quadratic":
            maps, _ = fit_convex_maps(
                rows.draw, draws.draw, 1, d, n_iter=n_iter, deadline=deadline,
                batch_size=batch_size, device=self.device_, random_state=self._seed + 17,
            )  # fmt: skip
            return maps
        cost = self._model_cost()  # the rows are in model coordinates
        with self._seeded(17):
            solver = MaxMinOTSolver(1, d)
        solver, _ = fit_ot_maps(
            rows.draw, draws.draw, 1, d, n_iter=n_iter, deadline=deadline,
            batch_size=batch_size, cost=cost, solver=solver, device=self.device_,
            ema_decay=self._ADDED_MAP_EMA_DECAY,
        )  # fmt: skip
        return solver

    def _added_map_target(self, n: int, rng: np.random.RandomState) -> NDArray:
        """``n`` draws of the fitted barycenter (model coordinates) that an added input's map
        is trained onto: :meth:`_sample` unless a method has more accurate ones."""
        return self._sample(n, rng)

    def _store_added_maps(self, maps: list[Any]) -> None:
        self._added_maps = nn.ModuleList(maps)  # moved and pickled with the estimator

    def _map_added(self, X: NDArray, j: int) -> NDArray:
        solver = self._added_maps[j]
        Y = self._apply(lambda t: solver.transport_one(t, 0), self._to_model(X))
        return self._from_model(Y, fresh=True)

    # ------------------------------------------------------------------ inference helpers
    def _tensor(self, X: NDArray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(X), dtype=dtype, device=self.device_)

    def _randn(self, shape: tuple[int, ...], rng: np.random.RandomState) -> torch.Tensor:
        """Standard normal noise drawn on the CPU (device-independent), moved to the device."""
        g = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
        return torch.randn(shape, generator=g, dtype=torch.float32).to(self.device_)

    def _apply(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        X: NDArray | torch.Tensor,
        *,
        chunk_size: int = 8192,
        grad: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> NDArray[np.float64]:
        """Apply a torch function to rows in chunks and return float64 numpy.

        Each chunk is moved to the device, mapped and written into one preallocated float64
        output, so the extra memory is one chunk's whatever the number of rows (8,192 rows
        keep the hidden activations of a 256-wide network near 8 MB a layer).
        ``grad=True`` keeps autograd on (maps defined as gradients of potentials); ``dtype``
        is the rows' torch dtype (the networks' own, float32 unless a method casts them).
        """
        n = X.shape[0]
        out: NDArray[np.float64] | None = None
        with torch.set_grad_enabled(grad), float32_default():
            for start in range(0, n, chunk_size):
                chunk = X[start : start + chunk_size]
                Xt = chunk if isinstance(chunk, torch.Tensor) else self._tensor(chunk, dtype)
                Y = fn(Xt).detach().cpu().numpy()
                if out is None:
                    out = np.empty((n, *Y.shape[1:]), dtype=np.float64)
                out[start : start + Y.shape[0]] = Y
        if out is None:
            raise ValueError("Nothing to map: no rows were given.")
        return out

    # ------------------------------------------------------------------ persistence
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        state = dict(state)
        for key, value in state.items():
            if isinstance(value, nn.Module):
                on_cpu = all(t.device.type == "cpu" for t in value.state_dict().values())
                state[key] = value if on_cpu else copy.deepcopy(value).cpu()
            elif isinstance(value, torch.Tensor):
                state[key] = value.detach().cpu()
        if "device_" in state:
            state["_fitted_device"] = str(state["device_"])
            state["device_"] = torch.device("cpu")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        fitted = state.pop("_fitted_device", None)
        target = torch.device("cpu")
        if fitted is not None and fitted.startswith("cuda") and torch.cuda.is_available():
            target = torch.device(fitted)
        params = set(self._get_param_names())
        for key, value in state.items():
            if isinstance(value, nn.Module | torch.Tensor) and key not in params:
                state[key] = value.to(target)
        if "device_" in state:
            state["device_"] = target
        super().__setstate__(state)
