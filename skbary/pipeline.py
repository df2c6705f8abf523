"""Barycenters inside scikit-learn workflows: :class:`BarycenterMapper`.

A Pipeline passes one table of rows from step to step. :class:`BarycenterMapper` turns such a
table into the K inputs of a barycenter estimator by splitting the rows by *group* (a
sensitive attribute, a data shard, a domain, a sensor), fits the barycenter of the groups,
and replaces every row by its image on the barycenter under the map of its own group. The
steps after it see rows whose distribution no longer depends on the group (up to the
accuracy of the barycenter method): the group has been *repaired away*.

The group of each row comes from one of two places:

* ``group_column`` -- a column of X (an integer position, negative allowed, or a DataFrame
  column name). The column is read in ``fit`` and ``transform`` and dropped from the output.
  This form works everywhere (``cross_val_score``, ``GridSearchCV``, ``Pipeline.predict``)
  because the group travels with the rows.
* ``groups`` -- a per-row array passed as metadata. With routing enabled
  (``sklearn.set_config(enable_metadata_routing=True)``) a Pipeline forwards it once the
  mapper asks for it: ``BarycenterMapper(...).set_fit_request(groups=True)
  .set_transform_request(groups=True)``; then ``pipe.fit(X, y, groups=g)`` and
  ``pipe.predict(X_new, groups=g_new)``. scikit-learn's scorers pass no metadata to
  ``predict``, so cross-validation scores need the ``group_column`` form.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from .validation import MIN_ROWS_PER_INPUT, WEIGHT_RULES, resolve_weights

__all__ = ["BarycenterMapper"]


def _is_dataframe(X: Any) -> bool:
    return hasattr(X, "iloc") and hasattr(X, "columns")


class BarycenterMapper(TransformerMixin, BaseEstimator):
    """Map every row onto the barycenter of the groups of rows (a Pipeline transformer).

    ``fit`` splits the rows of X by group, fits a clone of ``estimator`` on the groups (the
    list form: one input per group, in the order of ``groups_``) with barycenter weights
    given by ``weights``, and ``transform`` maps each row with the map of its group,
    ``estimator_.transform(X_group, k)``. Any skbary barycenter estimator can be the inner
    estimator; its parameters are reachable as ``estimator__<name>`` (``GridSearchCV``).

    Parameters
    ----------
    estimator : skbary barycenter estimator
        The barycenter method (unfitted; it is cloned), e.g. ``GaussianBarycenter()`` (the
        closed-form choice for tabular data: fitting the Gaussian barycenter of 2 groups of
        ~200 rows in 10 dimensions takes about a millisecond) or a neural estimator when the
        groups differ by more than their means and covariances.
    group_column : int, str or None, default=None
        Where each row's group is: the position of a column of X (negative counts from the
        end, so ``-1`` is the last column) or, for a DataFrame, a column name. The column is
        not mapped and is dropped from the output. None means the groups come from the
        ``groups`` argument of ``fit`` and ``transform`` instead.
    weights : {"proportional", "uniform"}, array-like of shape (K,) or dict, \
default="proportional"
        Barycenter weights of the K groups. "proportional": the fraction of training rows in
        each group (the barycenter then sits nearest the largest groups and moves them
        least; it is the choice of the fairness literature, e.g. Gordaliza et al. 2019 and
        Chzhen et al. 2020). "uniform": 1/K each. An array gives one weight per group in the
        order of ``groups_`` (sorted labels); a dict maps group label to weight. Explicit
        weights must be non-negative and sum to 1.
    unseen_groups : {"map", "error"}, default="map"
        What ``transform`` does with rows of a group not seen in fit (the held-out group of
        ``LeaveOneGroupOut``, a new site): "map" learns that group's OT map onto the fitted
        barycenter from its rows in this call (``estimator_.add_input`` on a copy, so the
        fitted mapper does not change; the barycenter is not refitted) and maps them, as
        domain adaptation to an unlabelled target does; "error" raises.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator`` (one input per group).
    groups_ : ndarray of shape (K,)
        Sorted group labels seen in fit; input k of ``estimator_`` is group ``groups_[k]``.
    n_groups_ : int
        K.
    group_counts_ : ndarray of shape (K,)
        Training rows per group.
    weights_ : ndarray of shape (K,)
        The barycenter weights used.
    group_column_index_ : int or None
        Non-negative position of the group column in X, None in the ``groups`` form.
    n_features_in_ : int
        Columns of X seen in fit (with the group column, when there is one).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of X when it was a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skbary import BarycenterMapper, GaussianBarycenter
    >>> rng = np.random.RandomState(0)
    >>> g = rng.randint(0, 2, 400)                      # group of each row
    >>> F = rng.randn(400, 3) * (1 + g[:, None]) + 2 * g[:, None]
    >>> X = np.column_stack([F, g])                     # the group is the last column
    >>> y = (F.sum(axis=1) > 2).astype(int)
    >>> pipe = make_pipeline(BarycenterMapper(GaussianBarycenter(), group_column=-1),
    ...                      LogisticRegression()).fit(X, y)
    >>> pipe.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        estimator: Any,
        group_column: int | str | None = None,
        weights: str | Any = "proportional",
        unseen_groups: str = "map",
    ) -> None:
        self.estimator = estimator
        self.group_column = group_column
        self.weights = weights
        self.unseen_groups = unseen_groups

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        est = self.estimator
        if isinstance(est, type) or not (hasattr(est, "fit") and hasattr(est, "transform")):
            raise TypeError(
                "estimator must be a barycenter estimator instance with fit and "
                f"transform(X, k) (e.g. GaussianBarycenter()), got {est!r}."
            )
        gc = self.group_column
        if gc is not None and (isinstance(gc, bool) or not isinstance(gc, int | np.integer | str)):
            raise TypeError(
                "group_column must be a column position (int), a DataFrame column name (str) "
                f"or None, got {gc!r}."
            )
        if self.unseen_groups not in ("map", "error"):
            raise ValueError(f"unseen_groups must be 'map' or 'error', got {self.unseen_groups!r}.")
        w = self.weights
        if isinstance(w, str) and w not in WEIGHT_RULES:
            raise ValueError(
                f"weights must be 'uniform', 'proportional', a dict by input label or a "
                f"vector, got {w!r}."
            )

    def _column_index(self, X: Any, n_columns: int) -> int:
        """Non-negative position of ``group_column`` in X (which has ``n_columns`` columns)."""
        gc = self.group_column
        if isinstance(gc, str):
            if not _is_dataframe(X):
                raise ValueError(
                    f"group_column={gc!r} is a column name, so X must be a DataFrame with that "
                    f"column; got {type(X).__name__}. Use an integer position for arrays."
                )
            if gc not in X.columns:
                raise ValueError(
                    f"group_column={gc!r} is not a column of X; columns: {list(X.columns)}."
                )
            loc = X.columns.get_loc(gc)
            if not isinstance(loc, int | np.integer):
                raise ValueError(f"group_column={gc!r} names several columns of X.")
            return int(loc)
        idx = int(gc)
        if not -n_columns <= idx < n_columns:
            raise ValueError(f"group_column={gc} is out of range for X with {n_columns} columns.")
        return idx % n_columns

    @staticmethod
    def _check_groups(groups: Any, n_rows: int, name: str = "groups") -> NDArray:
        g = np.asarray(groups)
        if g.ndim == 2 and g.shape[1] == 1:
            g = g[:, 0]
        if g.ndim != 1 or g.shape[0] != n_rows:
            raise ValueError(
                f"{name} must hold one group label per row of X ({n_rows} rows), got shape "
                f"{g.shape}."
            )
        if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
            raise ValueError(f"{name} contains NaN or inf; every row needs a group label.")
        if g.dtype.kind == "O" and any(v is None or v != v for v in g):  # None or NaN
            raise ValueError(f"{name} contains missing labels; every row needs a group label.")
        if g.dtype.kind == "c":
            raise TypeError(f"{name} must hold labels (integers or strings), got complex numbers.")
        return g

    def _split(self, X: Any, groups: Any, *, reset: bool) -> tuple[NDArray, NDArray]:
        """Validate X and return (features, per-row group labels)."""
        if X is None or isinstance(X, str | bytes) or np.isscalar(X):
            raise TypeError(f"X must be a 2-D array-like of rows, got {type(X).__name__}.")
        if self.group_column is not None:
            if groups is not None:
                raise ValueError(
                    "Ambiguous groups: group_column is set, so the groups come from column "
                    f"{self.group_column!r} of X; do not also pass groups=."
                )
            if _is_dataframe(X):
                n_columns = X.shape[1]
                validate_data(self, X, reset=reset, skip_check_array=True)
                idx = self._column_index(X, n_columns)
                g_raw = X.iloc[:, idx].to_numpy()
                rest = X.iloc[:, [j for j in range(n_columns) if j != idx]]
            else:
                # dtype=None keeps a column of string labels; sparse, complex, empty and
                # non-2-D inputs get scikit-learn's messages here.
                arr = check_array(X, dtype=None, ensure_all_finite=False, input_name="X")
                n_columns = arr.shape[1]
                validate_data(self, arr, reset=reset, skip_check_array=True)
                idx = self._column_index(X, n_columns)
                g_raw = arr[:, idx]
                if g_raw.dtype.kind == "O":
                    g_raw = np.asarray(g_raw.tolist())
                rest = np.delete(arr, idx, axis=1)
            if n_columns < 2:
                raise ValueError(
                    f"X has n_features = {n_columns}: with group_column it needs the group "
                    "column and at least one feature column."
                )
            if not reset and idx != self.group_column_index_:
                raise ValueError(
                    f"group_column={self.group_column!r} is column {idx} of X here but was "
                    f"column {self.group_column_index_} in fit."
                )
            if reset:
                self.group_column_index_ = idx
        else:
            if groups is None:
                hint = (
                    ""
                    if reset
                    else " Note: scikit-learn's named scorers (scoring='accuracy', ...) "
                    "call predict without metadata, so a cross-validation scored that way "
                    "needs the group in a column of X (group_column); the default scoring "
                    "(the Pipeline's score) does route groups."
                )
                raise ValueError(
                    f"{type(self).__name__} needs each row's group: set group_column (a "
                    "column of X) or pass groups= (with metadata routing in a Pipeline: "
                    "set_fit_request(groups=True) and set_transform_request(groups=True))." + hint
                )
            rest = check_array(
                X, dtype=[np.float64, np.float32], ensure_all_finite=True, input_name="X"
            )
            validate_data(self, X, reset=reset, skip_check_array=True)
            if reset:
                self.group_column_index_ = None
        F = check_array(
            rest,
            dtype=[np.float64, np.float32],
            ensure_2d=True,
            ensure_all_finite=True,
            input_name="X",
        )
        g = self._check_groups(g_raw if self.group_column is not None else groups, F.shape[0])
        return F, g

    # ------------------------------------------------------------------ fit / transform
    def fit(self, X: Any, y: Any = None, groups: Any = None) -> BarycenterMapper:
        """Split the rows by group and fit the barycenter of the groups.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features_in_)
            Rows; with ``group_column``, one of the columns holds the group labels.
        y : ignored
            Present for Pipeline compatibility (the targets of the next step).
        groups : array-like of shape (n_samples,), default=None
            The group label of each row, when ``group_column`` is None (pass it through a
            Pipeline with metadata routing and ``set_fit_request(groups=True)``).

        Returns
        -------
        self : BarycenterMapper
        """
        self._check_params()
        F, g = self._split(X, groups, reset=True)
        try:
            labels, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
        except TypeError as exc:
            raise TypeError(
                f"group labels must be mutually comparable (all numbers or all strings): {exc}"
            ) from exc
        small = counts < MIN_ROWS_PER_INPUT
        if np.any(small):
            which = ", ".join(
                f"group {lab!r} has {c} sample(s)"
                for lab, c in zip(labels[small].tolist()[:5], counts[small].tolist()[:5])
            )
            raise ValueError(
                f"{which}; every group needs at least {MIN_ROWS_PER_INPUT} rows to be a "
                f"distribution (is group_column={self.group_column!r} a column of group "
                "labels?)."
            )
        self.weights_ = resolve_weights(self.weights, labels, counts)
        marginals = [F[inverse == k] for k in range(len(labels))]
        self.estimator_ = clone(self.estimator).fit(marginals, self.weights_)
        self.groups_ = labels
        self.n_groups_ = len(labels)
        self.group_counts_ = counts
        return self

    def _positions(self, g: NDArray, allow_unseen: bool = False) -> NDArray[np.int64]:
        """Input index of each row's group; -1 for unseen groups when allowed, else
        unseen groups raise ValueError."""
        labels = self.groups_
        try:
            pos = np.clip(np.searchsorted(labels, g), 0, len(labels) - 1)
            ok = labels[pos] == g
        except TypeError:
            ok = np.zeros(len(g), dtype=bool)
            pos = np.zeros(len(g), dtype=np.int64)
        ok = np.asarray(ok, dtype=bool)
        if allow_unseen:
            return np.where(ok, pos, -1).astype(np.int64)
        if not np.all(ok):
            unseen = list(dict.fromkeys(np.asarray(g)[~ok].tolist()))
            raise ValueError(
                f"groups {unseen[:10]} were not seen in fit, so they have no map onto the "
                f"barycenter; the fitted groups are {labels.tolist()}."
            )
        return pos.astype(np.int64)

    def transform(self, X: Any, groups: Any = None) -> NDArray[np.float64]:
        """Map every row onto the barycenter with the map of its group.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features_in_)
            Rows, with the group column when ``group_column`` is set.
        groups : array-like of shape (n_samples,), default=None
            Group labels of the rows when ``group_column`` is None (with metadata routing:
            ``set_transform_request(groups=True)``). Rows of groups not seen in fit are
            handled as ``unseen_groups`` says.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            The images on the barycenter, without the group column.
        """
        check_is_fitted(self, "estimator_")
        F, g = self._split(X, groups, reset=False)
        pos = self._positions(g, allow_unseen=self.unseen_groups == "map")
        seen = pos >= 0
        labels = self.estimator_.input_labels_
        if seen.all():
            return self.estimator_.transform(F, k=labels[pos])
        out = np.empty((F.shape[0], self.estimator_.n_features_out_), dtype=np.float64)
        if seen.any():
            out[seen] = self.estimator_.transform(F[seen], k=labels[pos[seen]])
        for label in dict.fromkeys(g[~seen].tolist()):
            rows = np.flatnonzero(~seen & (g == label))
            if len(rows) < MIN_ROWS_PER_INPUT:
                raise ValueError(
                    f"group {label!r} was not seen in fit and has {len(rows)} row here; "
                    f"learning its map needs at least {MIN_ROWS_PER_INPUT} rows."
                )
            est = copy.deepcopy(self.estimator_)  # the fitted mapper stays as it is
            new = est.n_marginals_  # a label no fitted input has (they are 0..K-1)
            out[rows] = est.add_input(F[rows], new).transform(F[rows], k=new)
        return out

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> NDArray[np.float64]:
        """Fit, then map the training rows (same arguments as :meth:`fit`)."""
        return self.fit(X, y, groups=groups).transform(
            X, groups=None if self.group_column is not None else groups
        )

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """Names of the output columns: the input features without the group column.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Names of the columns of X (defaults to ``feature_names_in_``, else
            ``x0, x1, ...``).

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "estimator_")
        names = _check_feature_names_in(self, input_features)
        if self.group_column_index_ is not None:
            names = np.delete(names, self.group_column_index_)
        out = np.asarray(names, dtype=object)
        n_out = getattr(self.estimator_, "n_features_out_", len(out))
        if n_out != len(out):  # a method whose barycenter lives in another space
            prefix = type(self).__name__.lower()
            out = np.asarray([f"{prefix}{i}" for i in range(n_out)], dtype=object)
        return out

    def _get_metadata_request(self):
        # With group_column set the groups are a column of X, so a routed ``groups`` (a
        # group splitter's, e.g. GroupKFold) is not meant for this step: ignore it by
        # default instead of making every user call set_fit_request(groups=False).
        # An explicit set_fit_request/set_transform_request still wins.
        requests = super()._get_metadata_request()
        if self.group_column is not None and not hasattr(self, "_metadata_request"):
            for method in ("fit", "transform"):
                getattr(requests, method).add_request(param="groups", alias=False)
        return requests

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
