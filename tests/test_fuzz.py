"""Bad inputs, bad parameters and lifecycle misuse, for every estimator the package exports.

Each case states what must happen: the exact exception type and a fragment of its message
(the message names the argument and what was expected), a warning, or a correct result.
Cases that only apply to some estimators (neural training, inverse maps, a method's own
parameters) say so with ``applies``; the parametrisation only pairs a case with the
estimators it applies to. The ten silently wrong results of issue 17 are the cases marked
``issue17-N``.
"""

from __future__ import annotations

import pickle
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import skbary
from skbary.base import NeuralBarycenter
from skbary.exceptions import DiscreteSampleWarning
from tests.fast_params import estimator_instances

ESTIMATORS = {type(e).__name__: e for e in estimator_instances()}

_rng = np.random.RandomState(0)
XS = [_rng.randn(40, 2), _rng.randn(50, 2) * 0.7 + 3.0]
COLS = ["u", "v"]


def neural(est) -> bool:
    return isinstance(est, NeuralBarycenter)


def has_inverse(est) -> bool:
    return hasattr(est, "inverse_transform")


def discrete_sampler(est) -> bool:
    """Estimators whose draws come from finitely many points (with their defaults)."""
    return type(est).__name__ in ("NOTBarycenter", "FreeSupportBarycenter")


def named(name: str) -> Callable[[Any], bool]:
    return lambda est: type(est).__name__ == name


def always(est) -> bool:
    return True


@dataclass
class Case:
    """``run(unfitted_clone, fitted)`` must raise ``raises`` matching ``match``, warn
    ``warns`` matching ``match``, or return a value ``check`` accepts."""

    name: str
    run: Callable[[Any, Any], Any]
    raises: type[BaseException] | None = None
    match: str | None = None
    warns: type[Warning] | None = None
    check: Callable[[Any], Any] | None = None
    applies: Callable[[Any], bool] = field(default=always)


def fit(est, X=None, *args, **kwargs):
    return est.fit(XS if X is None else X, *args, **kwargs)


def with_params(**params):
    return lambda est, fitted: fit(clone(est).set_params(**params))


def first_role(est) -> str:
    return next(iter(est._roles))


def _default_roles(est) -> list[str]:
    """Roles whose default network takes hidden_layer_sizes."""
    return [r for r, spec in est._roles.items() if "hidden_layer_sizes" in spec.defaults]


def finite_samples(est):
    s = est.sample(20, random_state=0)
    assert s.shape == (20, 2) and s.dtype == np.float64 and np.isfinite(s).all()


def _df(X, cols=COLS):
    return pd.DataFrame(X, columns=cols)


def _in_float64_default(est, fitted):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        fresh = fit(clone(est).set_params(random_state=0))
        reloaded = pickle.loads(pickle.dumps(fresh))
        return fresh.sample(10, random_state=0), reloaded.sample(10, random_state=0)
    finally:
        torch.set_default_dtype(previous)


def _same_samples(pair):
    a, b = pair
    assert np.isfinite(a).all() and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)


def _threads_match_sequential(est, fitted):
    make = lambda: clone(est).set_params(random_state=0)  # noqa: E731
    reference = fit(make()).sample(30, random_state=1)
    out: list[Any] = [None] * 3

    def work(i):
        out[i] = fit(make()).sample(30, random_state=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [np.array_equal(o, reference) for o in out]


class _Boom(RuntimeError):
    pass


class _RaisingCallback:
    def on_epoch_end(self, net, **kwargs):
        raise _Boom("callback failed")


def _raising_callback_leaves_unfitted(est, fitted):
    fresh = clone(est).set_params(callbacks=[_RaisingCallback()])
    with pytest.raises(_Boom):
        fit(fresh)
    with pytest.raises(NotFittedError):
        fresh.sample(3)
    return True


def _failed_refit_keeps_model(est, fitted):
    model = pickle.loads(pickle.dumps(fitted))
    before = model.sample(5, random_state=0)
    bad = [np.c_[X, X[:, :1]] for X in XS]
    bad[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)
    assert model.n_features_in_ == 2
    np.testing.assert_array_equal(model.sample(5, random_state=0), before)
    return True


def _is_lr(name: str) -> bool:
    return name == "lr" or (name.startswith("lr_") and name not in ("lr_decay", "lr_schedule"))


def _diverged(est, **params):
    fresh = clone(est).set_params(**(params or {"optimizer": _NaNAdam}))
    try:
        fit(fresh)
    finally:
        with pytest.raises(NotFittedError):
            fresh.sample(3)


def _max_time_respected(est, fitted):
    """(seconds fit took, the bound: max_time + the larger of 5% and one iteration)."""
    budget = 1.0
    fresh = clone(est).set_params(max_time=budget, max_iter=10**6)
    start = time.perf_counter()
    fit(fresh)
    elapsed = time.perf_counter() - start
    per_iteration, begun = 0.0, 0.0
    for phase in dict.fromkeys(row["phase"] for row in fresh.history_):
        stamps = [row["time"] for row in fresh.history_ if row["phase"] == phase]
        per_iteration = max(per_iteration, (stamps[-1] - begun) / len(stamps))
        begun = stamps[-1]
    return elapsed, budget + max(0.05 * budget, per_iteration)


def _wine_pipeline(est, fitted):
    X, y = load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), clone(est), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    return pipe.score(X, y)


def _discrete_warning(est, fitted):
    return fitted.sample(10_000, random_state=0)


def _no_discrete_warning(est, fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscreteSampleWarning)
        return fitted.sample(10_000, random_state=0)


def _dataframe_fit(est, fitted):
    return fit(clone(est), [_df(X) for X in XS])


def _smoothed_not_samples(est, fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscreteSampleWarning)
        return fitted.sample(10_000, random_state=0, smoothing=1.0)


CASES: list[Case] = [
    # ---------------------------------------------------------------- input form and data
    Case("X None", lambda e, f: clone(e).fit(None), TypeError, "list of 2-D arrays"),
    Case("X a scalar", lambda e, f: clone(e).fit(3.0), TypeError, "list of 2-D arrays"),
    Case("X empty list", lambda e, f: clone(e).fit([]), ValueError, "empty list"),
    Case(
        "list of 1-D arrays",
        lambda e, f: clone(e).fit([X[:, 0] for X in XS]),
        ValueError,
        "list of 1-D arrays",
    ),
    Case(
        "list of 3-D arrays",
        lambda e, f: clone(e).fit([X[:, :, None] for X in XS]),
        ValueError,
        "reshape",
    ),
    Case(
        "list mixing 2-D and 1-D",
        lambda e, f: clone(e).fit([XS[0], XS[1][:, 0]]),
        ValueError,
        "mixing 2-D inputs",
    ),
    Case(
        "flat 3-D array",
        lambda e, f: clone(e).fit(np.zeros((5, 2, 2))),
        ValueError,
        "dim 3",
    ),
    Case(
        "NaN in an input",
        lambda e, f: fit(clone(e), [XS[0], np.r_[XS[1], [[np.nan, 0]]]]),
        ValueError,
        "NaN",
    ),
    Case(
        "inf in an input",
        lambda e, f: fit(clone(e), [XS[0] * np.inf, XS[1]]),
        ValueError,
        "infinity",
    ),
    Case(
        "one-row input",
        lambda e, f: fit(clone(e), [XS[0], XS[1][:1]]),
        ValueError,
        "at least 2 rows",
    ),
    Case(
        "inputs with other column counts",
        lambda e, f: fit(clone(e), [XS[0], XS[1][:, :1]]),
        ValueError,
        "same number of columns",
    ),
    Case("no columns", lambda e, f: fit(clone(e), [np.empty((5, 0))] * 2), ValueError, "0 feature"),
    Case(
        "complex data",
        lambda e, f: fit(clone(e), [X + 1j for X in XS]),
        ValueError,
        "Complex data not supported",
    ),
    Case(
        "non-numeric strings",
        lambda e, f: fit(clone(e), [np.full((5, 2), "a")] * 2),
        ValueError,
        "could not convert",
    ),
    Case(
        "sparse inputs",
        lambda e, f: fit(clone(e), [sp.csr_matrix(X) for X in XS]),
        TypeError,
        "dense data is required",
    ),
    Case(
        "flat y of the wrong length",
        lambda e, f: clone(e).fit(np.r_[XS[0], XS[1]], [0, 1]),
        ValueError,
        "one input label per row",
    ),
    Case(
        "flat y of non-integer floats",
        lambda e, f: clone(e).fit(XS[0], np.linspace(0, 1, len(XS[0]))),
        ValueError,
        "not a regression target",
    ),
    Case(
        "flat label with one row",
        lambda e, f: clone(e).fit(XS[0], np.r_[np.zeros(len(XS[0]) - 1), 1]),
        ValueError,
        "at least 2 rows",
    ),
    Case(
        "issue17-4 DataFrame inputs with columns in another order",
        lambda e, f: fit(clone(e), [_df(XS[0]), _df(XS[1][:, ::-1], COLS[::-1])]),
        ValueError,
        "another order",
    ),
    Case(
        "DataFrame inputs with other columns",
        lambda e, f: fit(clone(e), [_df(XS[0]), _df(XS[1], ["u", "w"])]),
        ValueError,
        "other columns",
    ),
    Case(
        "a numpy input beside DataFrames",
        lambda e, f: fit(clone(e), [_df(XS[0]), XS[1]]),
        warns=UserWarning,
        match="no column names",
    ),
    Case(
        "DataFrame inputs record their names",
        _dataframe_fit,
        check=lambda est: np.testing.assert_array_equal(est.feature_names_in_, COLS),
    ),
    Case(
        "torch tensors as inputs",
        lambda e, f: fit(clone(e), [torch.as_tensor(X) for X in XS]),
        check=finite_samples,
    ),
    # ---------------------------------------------------------------- weights
    Case(
        "weights of the wrong length",
        lambda e, f: fit(clone(e), None, [1.0]),
        ValueError,
        "one weight per input",
    ),
    Case(
        "negative weights",
        lambda e, f: fit(clone(e), None, [1.5, -0.5]),
        ValueError,
        "non-negative",
    ),
    Case(
        "weights not summing to 1",
        lambda e, f: fit(clone(e), None, [0.3, 0.3]),
        ValueError,
        "sum to 1",
    ),
    Case("NaN weights", lambda e, f: fit(clone(e), None, [np.nan, 1.0]), ValueError, "NaN or inf"),
    Case(
        "weights as strings",
        lambda e, f: fit(clone(e), None, ["a", "b"]),
        TypeError,
        "vector of numbers",
    ),
    Case("2-D weights", lambda e, f: fit(clone(e), None, [[0.5, 0.5]]), ValueError, "1-D vector"),
    Case(
        "weights given twice",
        lambda e, f: clone(e).fit(XS, [0.5, 0.5], weights=[0.5, 0.5]),
        ValueError,
        "pass weights once",
    ),
    Case(
        "per-row labels passed as list-form weights",
        lambda e, f: clone(e).fit(XS, np.r_[np.zeros(40), np.ones(50)]),
        ValueError,
        "Ambiguous call",
    ),
    Case(
        "weights as a tensor that requires grad",
        lambda e, f: fit(clone(e), None, torch.tensor([0.25, 0.75], requires_grad=True)),
        check=lambda est: np.testing.assert_allclose(est.weights_, [0.25, 0.75]),
    ),
    Case(
        "the weights parameter checked too",
        with_params(weights=[2.0, -1.0]),
        ValueError,
        "non-negative",
    ),
    # ---------------------------------------------------------------- parameters
    Case(
        "random_state a string",
        with_params(random_state="seed"),
        InvalidParameterError,
        "random_state",
    ),
    Case(
        "unlabelled_rows unknown",
        with_params(unlabelled_rows="maybe"),
        InvalidParameterError,
        "unlabelled_rows",
    ),
    Case(
        "an unknown nested name",
        lambda e, f: fit(type(e)(**{**e.get_params(), "bogus__x": 1})),
        TypeError,
        "bogus__x",
    ),
    Case("max_iter 0", with_params(max_iter=0), InvalidParameterError, "max_iter", applies=neural),
    Case(
        "max_iter 2.5", with_params(max_iter=2.5), InvalidParameterError, "max_iter", applies=neural
    ),
    Case("max_iter True", with_params(max_iter=True), ValueError, "not a boolean", applies=neural),
    Case(
        "max_time NaN",
        with_params(max_time=float("nan")),
        InvalidParameterError,
        "max_time",
        applies=neural,
    ),
    Case(
        "max_time negative",
        with_params(max_time=-1.0),
        InvalidParameterError,
        "max_time",
        applies=neural,
    ),
    Case(
        "batch_size 0",
        with_params(batch_size=0),
        InvalidParameterError,
        "batch_size",
        applies=neural,
    ),
    Case("device unknown", with_params(device="tpu"), ValueError, "device must be", applies=neural),
    Case(
        "device cuda without CUDA",
        with_params(device="cuda"),
        ValueError,
        "CUDA backend is not available",
        applies=lambda e: neural(e) and not torch.cuda.is_available(),
    ),
    Case(
        "device mps without MPS",
        with_params(device="mps"),
        ValueError,
        "MPS backend is not available",
        applies=lambda e: neural(e) and not torch.backends.mps.is_available(),
    ),
    Case(
        "callbacks as strings",
        with_params(callbacks=["early"]),
        TypeError,
        "callbacks must be",
        applies=neural,
    ),
    Case(
        "callbacks not a list",
        with_params(callbacks=object()),
        InvalidParameterError,
        "callbacks",
        applies=neural,
    ),
    Case(
        "optimizer a string",
        with_params(optimizer="adam"),
        InvalidParameterError,
        "optimizer",
        applies=neural,
    ),
    Case(
        "lr_decay 0", with_params(lr_decay=0.0), InvalidParameterError, "lr_decay", applies=neural
    ),
    Case(
        "lr_schedule unknown",
        with_params(lr_schedule="exp"),
        InvalidParameterError,
        "lr_schedule",
        applies=neural,
    ),
    Case(
        "standardize a string",
        with_params(standardize="yes"),
        InvalidParameterError,
        "standardize",
        applies=neural,
    ),
    Case(
        "n_threads 0", with_params(n_threads=0), InvalidParameterError, "n_threads", applies=neural
    ),
    Case(
        "verbose negative",
        with_params(verbose=-1),
        InvalidParameterError,
        "verbose",
        applies=neural,
    ),
    Case(
        "issue17-6 a typo in a network setting",
        lambda e, f: fit(clone(e).set_params(**{f"{first_role(e)}__hidden_layer_size": 8})),
        TypeError,
        "unknown setting",
        applies=neural,
    ),
    Case(
        "a hidden width of 0",
        lambda e, f: fit(clone(e).set_params(**{f"{first_role(e)}__hidden_layer_sizes": (0,)})),
        ValueError,
        "hidden_layer_sizes must be",
        applies=neural,
    ),
    Case(
        "hidden_layer_sizes an int, as in scikit-learn's MLPs",
        lambda e, f: fit(clone(e).set_params(**{f"{first_role(e)}__hidden_layer_sizes": 8})),
        check=finite_samples,
        applies=neural,
    ),
    Case(
        "hidden_layer_sizes an int for every network",
        lambda e, f: fit(
            clone(e).set_params(**{f"{r}__hidden_layer_sizes": 8 for r in _default_roles(e)})
        ),
        check=finite_samples,
        applies=neural,
    ),
    Case(
        "numpy scalars as hyperparameters",
        lambda e, f: fit(clone(e).set_params(max_iter=np.int64(3), batch_size=np.int32(16))),
        check=lambda est: est.n_iter_ <= 3,
        applies=neural,
    ),
    Case(
        "Gaussian shrinkage 2",
        with_params(shrinkage=2.0),
        InvalidParameterError,
        "shrinkage",
        applies=named("GaussianBarycenter"),
    ),
    Case(
        "issue17-6 free-support tol NaN",
        with_params(tol=float("nan")),
        InvalidParameterError,
        "tol",
        applies=named("FreeSupportBarycenter"),
    ),
    Case(
        "free-support n_support 0",
        with_params(n_support=0),
        InvalidParameterError,
        "n_support",
        applies=named("FreeSupportBarycenter"),
    ),
    # ---------------------------------------------------------------- scale
    Case(
        "issue17-5 Gaussian on data whose squares overflow",
        lambda e, f: fit(clone(e), [X * 1e200 for X in XS]),
        ValueError,
        "cannot be held in float64",
        applies=named("GaussianBarycenter"),
    ),
    Case(
        "Gaussian on data at 1e150",
        lambda e, f: fit(clone(e), [X * 1e150 for X in XS]).sample(50, random_state=0) / 1e150,
        check=lambda s: np.testing.assert_allclose(
            s, skbary.GaussianBarycenter().fit(XS).sample(50, random_state=0), rtol=1e-8
        ),
        applies=named("GaussianBarycenter"),
    ),
    Case(
        "Gaussian on collinear and repeated rows",
        lambda e, f: fit(clone(e), [np.c_[XS[0][:, :1], XS[0][:, :1]], np.ones((5, 2))]),
        check=lambda est: (
            (
                np.isfinite(est.barycenter_covariance_).all()
                and np.isfinite(est.sample(5, random_state=0)).all()
            )
            or pytest.fail("non-finite Gaussian barycenter")
        ),
        applies=named("GaussianBarycenter"),
    ),
    Case(
        "EgBary with epsilon below float32 once standardised",
        lambda e, f: fit(clone(e), [X * 1e30 for X in XS]),
        ValueError,
        "below float32",
        applies=named("EnergyBarycenter"),
    ),
    Case(
        "data at 1e30 give samples at 1e30",
        lambda e, f: fit(clone(e), [X * 1e30 for X in XS]).sample(200, random_state=0) / 1e30,
        check=lambda s: (
            (np.isfinite(s).all() and 0.05 < s.std() < 20)
            or pytest.fail(f"samples of spread {s.std()} for data of spread about 1.6")
        ),
        applies=lambda e: type(e).__name__ != "EnergyBarycenter",
    ),
    # ---------------------------------------------------------------- lifecycle
    Case("sample before fit", lambda e, f: clone(e).sample(3), NotFittedError, "not fitted"),
    Case(
        "transform before fit",
        lambda e, f: clone(e).transform(XS[0], 0),
        NotFittedError,
        "not fitted",
    ),
    Case("sample(0)", lambda e, f: f.sample(0), ValueError, "positive integer"),
    Case("sample(2.5)", lambda e, f: f.sample(2.5), TypeError, "positive integer"),
    Case("sample(True)", lambda e, f: f.sample(True), TypeError, "positive integer"),
    Case(
        "transform of other column count",
        lambda e, f: f.transform(np.ones((3, 3)), 0),
        ValueError,
        "expecting 2 features",
    ),
    Case(
        "transform of NaN rows",
        lambda e, f: f.transform(np.full((3, 2), np.nan), 0),
        ValueError,
        "NaN",
    ),
    Case(
        "issue17-8 transform without k on two inputs",
        lambda e, f: f.transform(XS[0]),
        ValueError,
        "needs k.*BarycenterMapper",
    ),
    Case(
        "transform without k when guessing was asked for",
        lambda e, f: (
            pickle.loads(pickle.dumps(f)).set_params(unlabelled_rows="guess").transform(XS[1]),
            f.transform(XS[1], 1),
        ),
        check=lambda pair: np.testing.assert_allclose(*pair),
    ),
    Case("k out of range", lambda e, f: f.transform(XS[0], 5), ValueError, "out of range"),
    Case("k a fraction", lambda e, f: f.transform(XS[0], 0.5), TypeError, "integer input"),
    Case(
        "k of the wrong length",
        lambda e, f: f.transform(XS[0], [0, 1]),
        ValueError,
        "one label per row",
    ),
    Case(
        "issue17-4 transform of a DataFrame with reordered columns",
        lambda e, f: _dataframe_fit(e, f).transform(_df(XS[0][:, ::-1], COLS[::-1]), 0),
        ValueError,
        "feature names should match",
    ),
    Case(
        "transform of numpy rows after a DataFrame fit",
        lambda e, f: _dataframe_fit(e, f).transform(XS[0], 0),
        warns=UserWarning,
        match="does not have valid feature names",
    ),
    Case(
        "inverse_transform without k on two inputs",
        lambda e, f: f.inverse_transform(XS[0]),
        ValueError,
        "needs k",
        applies=has_inverse,
    ),
    Case(
        "inverse_transform is absent where it is not learned",
        lambda e, f: f.inverse_transform(XS[0], 0),
        AttributeError,
        "has no attribute 'inverse_transform'",
        applies=lambda e: not has_inverse(e),
    ),
    Case(
        "issue17-3 a failed refit keeps the previous model",
        _failed_refit_keeps_model,
        check=lambda ok: ok,
    ),
    Case(
        "issue17-2 a raising callback leaves the estimator unfitted",
        _raising_callback_leaves_unfitted,
        check=lambda ok: ok,
        applies=neural,
    ),
    Case(
        "issue17-1 a diverged fit raises and leaves the estimator unfitted",
        lambda e, f: _diverged(e),
        skbary.TrainingDivergedError,
        "diverged",
        applies=neural,
    ),
    Case(
        "issue17-1 every learning rate at 1e6 raises and leaves the estimator unfitted",
        lambda e, f: _diverged(e, **{p: 1e6 for p in e.get_params() if _is_lr(p)}, max_iter=20),
        skbary.TrainingDivergedError,
        "diverged",
        applies=neural,
    ),
    Case(
        "issue17-7 fits in threads equal a sequential fit",
        _threads_match_sequential,
        check=lambda same: all(same) or pytest.fail(f"thread fits differ: {same}"),
        applies=neural,
    ),
    Case(
        "fit and reload under torch's float64 default",
        _in_float64_default,
        check=_same_samples,
    ),
    Case(
        "issue17-8 class labels in a Pipeline are refused at predict",
        _wine_pipeline,
        ValueError,
        "BarycenterMapper",
    ),
    Case(
        "issue17-9 sample beyond the distinct points warns",
        _discrete_warning,
        warns=DiscreteSampleWarning,
        match="distinct points",
        applies=discrete_sampler,
    ),
    Case(
        "sample of a continuous model does not warn",
        _no_discrete_warning,
        check=lambda s: len(np.unique(s, axis=0)) == len(s) or pytest.fail("repeated points"),
        applies=lambda e: not discrete_sampler(e),
    ),
    Case(
        "issue17-9 NOT's smoothed sample draws distinct points",
        _smoothed_not_samples,
        check=lambda s: len(np.unique(s, axis=0)) == len(s) or pytest.fail("repeated points"),
        applies=named("NOTBarycenter"),
    ),
    Case(
        "NOT's smoothing refuses a negative value",
        lambda e, f: f.sample(5, smoothing=-1.0),
        ValueError,
        "smoothing",
        applies=named("NOTBarycenter"),
    ),
    Case(
        "issue17-10 max_time respected within 5% or one iteration",
        _max_time_respected,
        check=lambda pair: (
            pair[0] <= pair[1] or pytest.fail(f"took {pair[0]:.2f}s > {pair[1]:.2f}s")
        ),
        applies=neural,
    ),
]


class _NaNAdam(torch.optim.Adam):
    """Adam whose first step turns every parameter into NaN (a diverged training)."""

    def step(self, closure=None):
        out = super().step(closure)
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("nan"))
        return out


@pytest.fixture(scope="module")
def fitted_models():
    return {name: clone(est).set_params(random_state=0).fit(XS) for name, est in ESTIMATORS.items()}


PAIRS = [
    pytest.param(name, case, id=f"{name}-{case.name}")
    for case in CASES
    for name, est in ESTIMATORS.items()
    if case.applies(est)
]


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60, len(CASES)


@pytest.mark.parametrize(("name", "case"), PAIRS)
def test_case(name, case, fitted_models):
    est, fitted = ESTIMATORS[name], fitted_models[name]
    if case.raises is not None:
        with pytest.raises(case.raises, match=case.match):
            case.run(est, fitted)
    elif case.warns is not None:
        with pytest.warns(case.warns, match=case.match):
            case.run(est, fitted)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiscreteSampleWarning)
            result = case.run(est, fitted)
        assert case.check(result) is not False
