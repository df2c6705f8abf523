"""Input forms and argument checks shared by every estimator.

The rule that decides the input form of ``fit`` (documented once, here):

* **List form** -- ``X`` is a ``list`` or ``tuple`` whose items are 2-D array-likes
  (one per input) or streams (:mod:`skbary.streams`: a sampler ``draw(n, random_state)``,
  a memmap, a dask array, a torch Dataset or DataLoader), which the fit draws rows from.
  The second positional argument of ``fit`` is then the weight vector, which may instead
  be passed as ``weights=``; giving both is an error, and so is ``y=``.
* **Flat form** -- anything else is one 2-D array of rows (numpy array, DataFrame, nested
  list of numbers). The second positional argument is ``y``, the input label of each row
  (what ``StratifiedKFold``, ``GridSearchCV`` and ``cross_val_score`` split); ``y=None``
  means a single input. Weights then come from ``weights=`` or the estimator parameter.

A list mixing 2-D items with others, or a list of 1-D numpy arrays (a common slip for a
list of 1-D inputs), is rejected with a message saying which rule failed rather than
guessed at; a list of plain Python lists of numbers is the flat form's rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_array, check_random_state

from .streams import _untensor, as_stream, is_stream

__all__ = [
    "stack",
    "is_list_form",
    "resolve_fit_input",
    "check_weights",
    "resolve_weights",
    "check_n_samples",
    "check_rows",
]

MIN_ROWS_PER_INPUT = 2


def stack(marginals: Sequence[ArrayLike]) -> tuple[NDArray, NDArray[np.int64]]:
    """Turn the list form into the flat form.

    Parameters
    ----------
    marginals : sequence of array-like of shape (n_k, d)
        One sample per input.

    Returns
    -------
    X : ndarray of shape (sum_k n_k, d)
        All rows, input after input.
    y : ndarray of shape (sum_k n_k,)
        The index k of the input each row comes from.
    """
    arrays = [np.asarray(m) for m in marginals]
    if not arrays:
        raise ValueError("stack needs at least one input, got an empty sequence.")
    X = np.concatenate(arrays, axis=0)
    y = np.concatenate([np.full(len(a), k, dtype=np.int64) for k, a in enumerate(arrays)])
    return X, y


def _ndim(obj: Any) -> int:
    if hasattr(obj, "ndim"):
        return int(obj.ndim)
    if hasattr(obj, "shape"):
        return len(obj.shape)
    try:
        return np.asarray(obj, dtype=object).ndim
    except ValueError:  # ragged nested lists
        return -1


def is_list_form(X: Any) -> bool:
    """Whether ``X`` is the list form (a list/tuple of 2-D array-likes).

    Raises
    ------
    ValueError
        If ``X`` is a list or tuple mixing 2-D items with other items, which fits neither form.
    TypeError
        If ``X`` is None, a string or a scalar.
    """
    if X is None or isinstance(X, str | bytes) or np.isscalar(X):
        raise TypeError(
            "X must be a list of 2-D arrays (one per input) or a 2-D array of rows with y "
            f"giving each row's input; got {type(X).__name__}."
        )
    if not isinstance(X, list | tuple):
        return False
    if len(X) == 0:
        raise ValueError("X is an empty list: fit needs at least one input.")
    dims = [2 if is_stream(item) else _ndim(item) for item in X]
    if all(d == 2 for d in dims):
        return True
    if all(d == 1 and hasattr(item, "shape") for d, item in zip(dims, X)):
        raise ValueError(
            "X is a list of 1-D arrays. Each input must be a 2-D array (n_k, n_features): "
            "reshape a 1-D sample with x.reshape(-1, 1)."
        )
    if all(d > 2 and hasattr(item, "shape") for d, item in zip(dims, X)):
        raise ValueError(
            f"X is a list of {dims[0]}-D arrays. Each input must be a 2-D array (n_k, "
            "n_features), one row per sample: flatten images with x.reshape(len(x), -1)."
        )
    if any(d == 2 for d in dims):
        bad = [k for k, d in enumerate(dims) if d != 2]
        raise ValueError(
            "X is a list mixing 2-D inputs with other items (items "
            f"{bad[:5]} are not 2-D). Pass a list of 2-D arrays (n_k, n_features), one per "
            "input, or one 2-D array of rows with y giving each row's input."
        )
    return False


def check_weights(weights: ArrayLike, n_marginals: int, name: str = "weights") -> NDArray:
    """Validate a barycenter weight vector: length K, finite, non-negative, sum 1.

    Parameters
    ----------
    weights : array-like of shape (K,)
        The weights as given by the user.
    n_marginals : int
        K, the number of inputs.
    name : str, default="weights"
        Argument name used in error messages.

    Returns
    -------
    ndarray of shape (K,), float64
        The weights, renormalised to sum to 1 exactly.
    """
    try:
        a = np.asarray(_untensor(weights), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a vector of numbers, got {weights!r}.") from exc
    if a.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D vector of length {n_marginals}, got shape {a.shape}."
        )
    if a.shape[0] != n_marginals:
        raise ValueError(
            f"{name} has length {a.shape[0]} but there are {n_marginals} inputs; "
            "give one weight per input."
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf: {a}.")
    if np.any(a < 0):
        raise ValueError(f"{name} must be non-negative, got {a}.")
    if abs(a.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"{name} must sum to 1, got sum {a.sum():.6g} for {a}. Weights are not "
            f"normalised silently: pass w / sum(w), or {name}='proportional' for each "
            "input's share of the rows."
        )
    return a / a.sum()


#: The named weight rules accepted wherever barycenter weights are given.
WEIGHT_RULES = ("uniform", "proportional")


def resolve_weights(
    weights: Any,
    labels: Sequence[Any] | NDArray,
    counts: ArrayLike,
    name: str = "weights",
) -> NDArray[np.float64]:
    """Barycenter weights from any of the accepted forms, the same rule everywhere.

    Parameters
    ----------
    weights : None, "uniform", "proportional", dict or array-like of shape (K,)
        None or "uniform": 1/K each. "proportional": each input's share of the rows
        (``counts``). A dict maps every input label to its weight. A vector gives one
        weight per input in the order of ``labels`` (the list form's order, or the sorted
        labels of the flat form: ``input_labels_``). Explicit weights must be non-negative
        and sum to 1 (:func:`check_weights`); they are not normalised silently.
    labels : sequence of shape (K,)
        The input labels, in the order of the inputs.
    counts : array-like of shape (K,)
        Rows of every input, or their total ``sample_weight`` (for "proportional").
    name : str, default="weights"
        Argument name used in error messages.

    Returns
    -------
    ndarray of shape (K,), float64, summing to 1
    """
    labels = list(np.asarray(labels).tolist())
    K = len(labels)
    if weights is None:
        return np.full(K, 1.0 / K)
    if isinstance(weights, str):
        if weights == "uniform":
            return np.full(K, 1.0 / K)
        if weights == "proportional":
            c = np.asarray(counts, dtype=np.float64)
            return c / c.sum()
        raise ValueError(
            f"{name} must be 'uniform', 'proportional', a dict by input label or a vector of "
            f"{K} numbers, got {weights!r}."
        )
    if isinstance(weights, Mapping):
        missing = [lab for lab in labels if lab not in weights]
        if missing:
            raise ValueError(
                f"{name} has no entry for inputs {missing[:10]}; the inputs are {labels[:10]}."
            )
        extra = [key for key in weights if key not in set(labels)]
        if extra:
            raise ValueError(
                f"{name} names inputs {extra[:10]} that are not among the inputs {labels[:10]}."
            )
        weights = [weights[lab] for lab in labels]
    return check_weights(weights, K, name=name)


def check_n_samples(n: Any, name: str = "n") -> int:
    """Validate a number of samples: a positive integer (not a bool)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {n!r} ({type(n).__name__}).")
    if n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n}.")
    return int(n)


def _check_one_input(X: Any, name: str) -> NDArray:
    """check_array with the DESIGN.md messages: 2-D, numeric, finite, at least 2 rows."""
    arr = check_array(
        _untensor(X),
        dtype=[np.float64, np.float32],
        ensure_2d=True,
        ensure_all_finite=True,
        ensure_min_samples=1,
        input_name=name,
    )
    if arr.shape[0] < MIN_ROWS_PER_INPUT:
        raise ValueError(
            f"{name} has {arr.shape[0]} sample (1 sample); every input needs at least "
            f"{MIN_ROWS_PER_INPUT} rows to be a distribution."
        )
    return arr


def _check_row_weights(w: Any, n: int, name: str) -> NDArray[np.float64]:
    """One input's row weights: 1-D, n entries, finite, non-negative, positive total
    (returned as given, float64: integer weights count repeated rows)."""
    try:
        arr = np.asarray(_untensor(w), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must hold numbers, got {w!r}.") from exc
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have one weight per row ({n} rows), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf.")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got a minimum of {arr.min():.6g}.")
    total = arr.sum()
    if not total > 0:
        raise ValueError(
            f"{name} has zero total weight: an input needs rows of positive weight to be a "
            "distribution."
        )
    return arr


def resolve_fit_input(
    X: Any,
    y: Any = None,
    weights: Any = None,
    default_weights: Any = None,
    sample_weight: Any = None,
    random_state: Any = None,
) -> tuple[list[NDArray], NDArray, NDArray, NDArray | None, list[NDArray] | None, list[Any]]:
    """Apply the input-form rule of this module and validate everything.

    Parameters
    ----------
    X : list of array-like or array-like
        The list form or the flat form (see the module docstring).
    y : array-like or None
        Weights in the list form (second positional argument), input labels in the flat form.
    weights : None, "uniform", "proportional", dict or array-like
        Weights passed as a keyword to ``fit`` (forms: :func:`resolve_weights`).
    default_weights : same forms, or None
        The estimator's ``weights`` parameter, used when ``fit`` gets none.
    sample_weight : array-like or list of array-like, optional
        Non-negative weight of every row. Flat form: one vector of n entries. List form: a
        list with one vector per input, or one vector of ``sum_k n_k`` entries (input after
        input, as :func:`stack` orders the rows). Input k becomes the weighted empirical
        measure ``sum_i w_i delta_{x_i} / sum_i w_i``; integer weights count repeated rows.
    random_state : int, RandomState instance or None
        Seeds the subsample of every streamed input.

    Returns
    -------
    marginals : list of ndarray (n_k, d)
        One float array per input (a streamed input's subsample).
    weights : ndarray of shape (K,)
    labels : ndarray of shape (K,)
        The label of each input (``arange(K)`` in the list form, sorted unique ``y`` otherwise).
    flat : ndarray or None
        The validated flat ``X`` (for feature-name bookkeeping), None in the list form.
    row_weights : list of ndarray (n_k,) or None
        Every input's row weights as given (validated, float64); None without
        ``sample_weight``.
    streams : list of InputStream or None
        Every input's bound stream, None for an in-memory input.
    """
    if is_list_form(X):
        if y is not None and weights is not None:
            raise ValueError(
                "Ambiguous call: in the list form fit(X, weights) the second positional "
                "argument already is the weight vector; pass weights once."
            )
        w = weights if weights is not None else y
        if (
            w is not None
            and not any(map(is_stream, X))
            and _ndim(w) == 1
            and len(w) != len(X)
            and len(w) == sum(map(len, X))
        ):
            raise ValueError(
                "Ambiguous call: X is a list of inputs but the second argument has one entry "
                "per row, like the flat form's y. Use fit(list_of_arrays, weights) or "
                "fit(X_flat, y)."
            )
        streams = [as_stream(m).bind(f"X[{k}]") if is_stream(m) else None for k, m in enumerate(X)]
        if any(streams):
            rng = check_random_state(random_state)
            _refuse_for_streams(streams, w if w is not None else default_weights, sample_weight)
        marginals = [
            _check_one_input(m, f"X[{k}]") if st is None else st.subsample(rng)
            for k, (m, st) in enumerate(zip(X, streams))
        ]
        n_features = {m.shape[1] for m in marginals}
        if len(n_features) > 1:
            shapes = [m.shape[1] for m in marginals]
            raise ValueError(
                f"All inputs must have the same number of columns; got {shapes} for X[0..]."
            )
        labels = np.arange(len(marginals))
        flat = None
        sizes = [m.shape[0] for m in marginals]
        sw = sample_weight
        if sw is not None and not (isinstance(sw, list | tuple) and len(sw) == len(sizes)):
            vec = np.asarray(_untensor(sw))
            if vec.ndim != 1 or vec.shape[0] != sum(sizes):
                raise ValueError(
                    "sample_weight must be a list with one vector per input, or one vector "
                    f"of {sum(sizes)} entries (all rows, input after input), got shape "
                    f"{vec.shape}."
                )
            sw = np.split(vec, np.cumsum(sizes)[:-1])
        row_weights = (
            None
            if sw is None
            else [
                _check_row_weights(w, n, f"sample_weight[{k}]")
                for k, (w, n) in enumerate(zip(sw, sizes))
            ]
        )
    else:
        if is_stream(X) and not hasattr(X, "shape"):  # a memmap of rows is the flat form
            raise TypeError(
                f"X is a stream ({type(X).__name__}), which is one input: pass the inputs as a "
                "list, fit([stream_1, stream_2, ...], weights) (the flat form takes rows)."
            )
        Xf = check_array(
            _untensor(X),
            dtype=[np.float64, np.float32],
            ensure_2d=True,
            ensure_all_finite=True,
            ensure_min_samples=1,
            input_name="X",
        )
        if y is None:
            y_arr = np.zeros(Xf.shape[0], dtype=np.int64)
        else:
            y_arr = np.asarray(_untensor(y))
            if y_arr.ndim != 1 or y_arr.shape[0] != Xf.shape[0]:
                raise ValueError(
                    f"y must be a 1-D array with one input label per row of X ({Xf.shape[0]} "
                    f"rows), got shape {y_arr.shape}. To pass barycenter weights with the flat "
                    "form, use fit(X, y, weights=...)."
                )
            if y_arr.dtype.kind == "f":
                if not np.all(np.isfinite(y_arr)) or np.any(y_arr != np.round(y_arr)):
                    raise ValueError(
                        "y must hold the input label of each row (integers or strings), got "
                        "non-integer floats; y is not a regression target here."
                    )
                y_arr = y_arr.astype(np.int64)
            elif y_arr.dtype.kind not in "iuUSOb":
                raise TypeError(f"y must hold input labels, got dtype {y_arr.dtype}.")
        labels, inverse = np.unique(y_arr, return_inverse=True)
        if sample_weight is not None:
            sw = np.asarray(_untensor(sample_weight))
            if sw.ndim != 1 or sw.shape[0] != Xf.shape[0]:
                raise ValueError(
                    f"sample_weight must have one weight per row of X ({Xf.shape[0]} rows), "
                    f"got shape {sw.shape}."
                )
        marginals = []
        for k, label in enumerate(labels):
            rows = Xf[inverse == k]
            if rows.shape[0] < MIN_ROWS_PER_INPUT:
                raise ValueError(
                    f"Input {label!r} (rows of X with y == {label!r}) has {rows.shape[0]} "
                    f"sample (1 sample); every input needs at least {MIN_ROWS_PER_INPUT} rows."
                )
            marginals.append(rows)
        row_weights = (
            None
            if sample_weight is None
            else [
                _check_row_weights(sw[inverse == k], len(m), f"sample_weight of input {lab!r}")
                for k, (lab, m) in enumerate(zip(labels.tolist(), marginals))
            ]
        )
        flat = Xf
        w = weights
        streams = [None] * len(marginals)
    w = default_weights if w is None else w
    counts = [m.shape[0] if st is None else st.n_rows for m, st in zip(marginals, streams)]
    if row_weights is not None:
        counts = [float(np.sum(rw)) for rw in row_weights]
    a = resolve_weights(w, labels, counts)
    return marginals, a, labels, flat, row_weights, streams


def _refuse_for_streams(streams: Sequence[Any], weights: Any, sample_weight: Any) -> None:
    """What streamed inputs cannot take: row weights, or shares of an unknown row count."""
    names = [st.name for st in streams if st is not None]
    if sample_weight is not None:
        raise ValueError(
            f"sample_weight needs in-memory rows, but {', '.join(names)} "
            f"{'is a stream' if len(names) == 1 else 'are streams'} (skbary.streams); "
            "weigh the rows inside the sampler instead (draw them in proportion)."
        )
    if isinstance(weights, str) and weights == "proportional":
        uncounted = [st.name for st in streams if st is not None and st.n_rows is None]
        if uncounted:
            raise ValueError(
                f"weights='proportional' needs every input's number of rows, but "
                f"{', '.join(uncounted)} (a sampler) has none; pass the weights explicitly."
            )


def check_rows(X: Any, n_features: int, estimator_name: str, name: str = "X") -> NDArray:
    """Validate rows given to ``transform``/``inverse_transform``: 2-D, finite, d columns."""
    arr = check_array(
        _untensor(X),
        dtype=[np.float64, np.float32],
        ensure_2d=True,
        ensure_all_finite=True,
        input_name=name,
    )
    if arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but {estimator_name} is expecting "
            f"{n_features} features as input."
        )
    return arr
