"""The estimator contract of DESIGN.md, checked for every estimator the package exports.

A new estimator is covered as soon as it is exported from ``skbary`` and has an entry in
tests/fast_params.py.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import skbary
from tests.fast_params import estimator_instances

ESTIMATORS = estimator_instances()
IDS = [type(e).__name__ for e in ESTIMATORS]
# scikit-learn's checks fit(X, y) with class labels as y, then call transform(X) without
# labels: the checks run with routing by guess, the one way such a call can be served.
CHECKED = [clone(e).set_params(unlabelled_rows="guess") for e in ESTIMATORS]

# Checks that cannot apply, with the reason. Only estimators taking nested
# ``prefix__name`` parameters (``**kwargs``, skorch's convention) get this entry.
KWARGS_XFAIL = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "the check passes the literal name of **kwargs ('kwargs') as a parameter; nested "
        "prefix__name parameters (map__hidden_layer_sizes, optimizer__lr) need **kwargs"
    ),
}


# The neural estimators train in float32: a weighted mean of the rows and the mean of the
# repeated rows differ in the last bits, which training amplifies (EgBary's kept rows are
# moreover a draw by weight). Their weighted fits equal the fits on repeated rows in
# distribution (tests/test_sklearn_surface.py; the minibatches are the same draws), not to
# rtol=1e-7 as this check asks.
WEIGHTED_ROWS_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data": (
        "float32 training: equivalent to repeated rows in distribution, not to rtol=1e-7"
    ),
}


def _expected_failed_checks(estimator):
    import inspect

    params = inspect.signature(type(estimator).__init__).parameters.values()
    failed = {}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        failed.update(KWARGS_XFAIL)
    if isinstance(estimator, skbary.base.NeuralBarycenter):
        failed.update(WEIGHTED_ROWS_XFAIL)
    if type(estimator).__name__ == "GaussianBarycenter":
        failed["check_sample_weight_equivalence_on_dense_data"] = (
            "the check's inputs keep fewer distinct rows than features: rank-deficient "
            "covariances (ridge 1e-12) amplify rounding differences; equal to 1e-10 on "
            "full-rank inputs (tests/test_sklearn_surface.py)"
        )
    if type(estimator).__name__ == "FreeSupportBarycenter":
        # the subsample of max_samples_per_input rows and the k-nearest-neighbour extension
        # of the plan count a repeated row once per copy; equal in distribution only
        failed["check_sample_weight_equivalence_on_dense_data"] = (
            "row subsample and k-NN extension see repeated rows as several; equal in "
            "distribution (tests/test_sklearn_surface.py)"
        )
    return failed


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def _inputs(seed=0, n=60, d=2, K=3):
    rng = np.random.RandomState(seed)
    return [rng.randn(n + 7 * k, d) @ rng.randn(d, d) * 0.5 + 2 * k for k in range(K)]


def _fit(est, seed=0, **kw):
    Xs = _inputs(seed, **kw)
    return clone(est).set_params(random_state=0).fit(Xs, [0.2, 0.3, 0.5]), Xs


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_not_fitted(est):
    X = np.zeros((3, 2))
    with pytest.raises(NotFittedError):
        est.sample(3)
    with pytest.raises(NotFittedError):
        est.transform(X, 0)
    if hasattr(type(est), "inverse_transform") and est._learns_inverse:
        with pytest.raises(NotFittedError):
            est.inverse_transform(X, 0)


def _bad_fit_inputs():
    good = _inputs()
    nan = [g.copy() for g in good]
    nan[1][3, 0] = np.nan
    inf = [g.copy() for g in good]
    inf[0][0, 1] = np.inf
    return {
        "empty list": (([],), {}, "empty"),
        "NaN": ((nan,), {}, "NaN"),
        "inf": ((inf,), {}, "infinity|inf"),
        "non-numeric": (([np.array([["a", "b"], ["c", "d"]]), good[1]],), {}, "string|float"),
        "1-D input": (([good[0][:, 0], good[1][:, 0]],), {}, "2D|2-D|1-D|dimension"),
        "3-D input": ((np.zeros((3, 4, 2)),), {}, "dim|2D"),
        "column mismatch": (([good[0], good[1][:, :1]],), {}, "columns"),
        "empty input": (([good[0], good[1][:0]],), {}, "0 sample|empty"),
        "one-row input": (([good[0], good[1][:1]],), {}, "1 sample"),
        "weights length": ((good, [0.5, 0.5]), {}, "length 2"),
        "weights negative": ((good, [-0.2, 0.7, 0.5]), {}, "non-negative"),
        "weights sum": ((good, [0.2, 0.2, 0.2]), {}, "sum to 1"),
        "weights twice": ((good, [0.2, 0.3, 0.5]), {"weights": [0.2, 0.3, 0.5]}, "Ambiguous"),
        "flat y length": ((np.zeros((10, 2)), [0.5, 0.5]), {}, "one input label per row"),
        "flat y floats": ((np.random.randn(10, 2), np.linspace(0, 1, 10)), {}, "non-integer"),
    }


BAD = _bad_fit_inputs()


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("case", list(BAD))
def test_bad_fit_input_raises_before_training(est, case):
    args, kwargs, match = BAD[case]
    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError), match=match):
        clone(est).fit(*args, **kwargs)
    assert time.perf_counter() - start < 5.0


@pytest.fixture(scope="module")
def fitted():
    return {type(e).__name__: _fit(e) for e in ESTIMATORS}


@pytest.mark.parametrize("name", IDS)
def test_bad_method_arguments(fitted, name):
    est, Xs = fitted[name]
    X = Xs[0]
    with pytest.raises(ValueError, match="out of range"):
        est.transform(X, 3)
    with pytest.raises(ValueError, match="out of range"):
        est.transform(X, -1)
    with pytest.raises(ValueError, match="features"):
        est.transform(np.zeros((4, 3)), 0)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(Xn, 0)
    with pytest.raises(ValueError, match="2D|2-D"):
        est.transform(X[:, 0], 0)
    for n in (0, -3):
        with pytest.raises(ValueError, match="positive integer"):
            est.sample(n)
    for n in (2.5, "10", True, None):
        with pytest.raises(TypeError, match="positive integer"):
            est.sample(n)


@pytest.mark.parametrize("name", IDS)
def test_fitted_attributes_and_shapes(fitted, name):
    est, Xs = fitted[name]
    assert est.n_features_in_ == 2
    assert est.n_marginals_ == 3
    np.testing.assert_allclose(est.weights_, [0.2, 0.3, 0.5])
    Y = est.sample(50, random_state=1)
    assert Y.shape == (50, est.n_features_out_) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y, est.sample(50, random_state=1))
    Z = est.transform(Xs[1], 1)
    assert Z.shape == (len(Xs[1]), est.n_features_out_)
    assert np.all(np.isfinite(Z))


@pytest.mark.parametrize("name", IDS)
def test_transform_routes_rows_by_k(fitted, name):
    est, Xs = fitted[name]
    X = np.concatenate([Xs[0][:5], Xs[2][:5]])
    k = np.array([0] * 5 + [2] * 5)
    mixed = est.transform(X, k)
    ref = np.concatenate([est.transform(Xs[0][:5], 0), est.transform(Xs[2][:5], 2)])
    if getattr(est, "_stochastic_transform", False):
        assert mixed.shape == ref.shape
    else:
        np.testing.assert_allclose(mixed, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_list_and_flat_forms_give_the_same_fit(est):
    Xs = _inputs(3)
    X, y = skbary.stack(Xs)
    a = [0.2, 0.3, 0.5]
    e1 = clone(est).set_params(random_state=0).fit(Xs, a)
    e2 = clone(est).set_params(random_state=0).fit(X, y, weights=a)
    e3 = clone(est).set_params(random_state=0, weights=a).fit(X, y)
    s1 = e1.sample(40, random_state=0)
    np.testing.assert_allclose(s1, e2.sample(40, random_state=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s1, e3.sample(40, random_state=0), rtol=1e-6, atol=1e-6)


class _SampleDuringFit:
    """skorch-style callback that samples the estimator at every history row (mid-fit)."""

    def initialize(self):
        self.shapes = []
        return self

    def on_epoch_end(self, net, **kwargs):
        Y = net.sample(20, random_state=0)
        assert np.isfinite(Y).all()
        self.shapes.append(Y.shape)


NEURAL = [e for e in ESTIMATORS if "callbacks" in e.get_params()]


@pytest.mark.parametrize("est", NEURAL, ids=[type(e).__name__ for e in NEURAL])
def test_sample_works_inside_callbacks_during_fit(est):
    # benchmarks.run's time-to-accuracy tracker scores ``sample`` while training runs
    cb = _SampleDuringFit()
    clone(est).set_params(callbacks=[cb], random_state=0).fit(_inputs(3))
    assert cb.shapes and set(cb.shapes) == {(20, 2)}


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_fit_is_repeatable_with_random_state(est):
    e1, _ = _fit(est, seed=4)
    e2, _ = _fit(est, seed=4)
    np.testing.assert_allclose(
        e1.sample(30, random_state=2), e2.sample(30, random_state=2), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("name", IDS)
def test_pickle_round_trip_in_fresh_process(fitted, name, tmp_path):
    est, _ = fitted[name]
    path = tmp_path / "est.pkl"
    path.write_bytes(pickle.dumps(est))
    expected = est.sample(20, random_state=5)
    np.save(tmp_path / "expected.npy", expected)
    code = (
        "import pickle, sys, numpy as np\n"
        f"est = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"np.testing.assert_allclose(est.sample(20, random_state=5), "
        f"np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-6, atol=1e-6)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
