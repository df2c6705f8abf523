"""A user who gives more time gets more training (issue 15, item 3).

Every iteration parameter of every neural estimator (``max_iter``, and WIN's and
Generative's ``transform_max_iter``) defaults to None: the method's measured count when
``max_time`` is None, no count at all when it is set (each phase trains until its share of
the time); an integer is honoured either way. The caps are shrunk on the class here so that
the tests are fast; the rule does not depend on their size.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from skbary.training import UNBOUNDED, iteration_budget
from tests.fast_params import estimator_instances

NEURAL = [e for e in estimator_instances() if "max_time" in e.get_params()]
IDS = [type(e).__name__ for e in NEURAL]
CAP = 3


def _inputs(seed=0, n=80, d=2, K=3):
    rng = np.random.RandomState(seed)
    return [rng.randn(n, d) * 0.5 + 2 * k for k in range(K)]


def _defaults(est, monkeypatch, **params):
    """The fast estimator with every iteration parameter at its default (None) and caps
    of ``CAP`` on its class."""
    caps = {name: CAP for name in type(est)._ITERATION_CAPS}
    monkeypatch.setattr(type(est), "_ITERATION_CAPS", caps)
    return clone(est).set_params(random_state=0, **{name: None for name in caps}, **params)


def _phase_counts(est):
    out = {"main": est.n_iter_}
    if hasattr(est, "n_transform_iter_"):
        out["transform"] = est.n_transform_iter_
    return out


def test_iteration_budget_rule():
    assert iteration_budget(None, None, 300) == 300
    assert iteration_budget(None, 5.0, 300) == UNBOUNDED
    assert iteration_budget(7, None, 300) == 7
    assert iteration_budget(7, 5.0, 300) == 7


def test_every_neural_estimator_declares_the_caps_of_its_iteration_parameters():
    for est in NEURAL:
        params = est.__class__().get_params()
        counted = {p for p in params if p == "max_iter" or p.endswith("_max_iter")}
        assert set(type(est)._ITERATION_CAPS) == counted, type(est).__name__
        assert all(params[p] is None for p in counted), type(est).__name__


@pytest.mark.parametrize("est", NEURAL, ids=IDS)
def test_without_max_time_the_default_stops_at_the_cap(est, monkeypatch):
    fitted = _defaults(est, monkeypatch).fit(_inputs())
    assert set(_phase_counts(fitted).values()) == {CAP}
    assert set(fitted.stop_reason_.values()) == {"max_iter"}
    assert fitted.get_params()["max_iter"] is None  # stored unchanged


@pytest.mark.parametrize("est", NEURAL, ids=IDS)
def test_with_max_time_the_default_trains_past_the_cap_until_the_time(est, monkeypatch):
    fitted = _defaults(est, monkeypatch, max_time=2.0).fit(_inputs())
    counts = _phase_counts(fitted)
    assert all(n > CAP for n in counts.values()), counts
    assert set(fitted.stop_reason_.values()) == {"max_time"}
    assert fitted.get_params()["max_iter"] is None


@pytest.mark.parametrize("est", NEURAL, ids=IDS)
def test_an_explicit_count_is_honoured_with_or_without_max_time(est, monkeypatch):
    given = {name: CAP + 2 for name in type(est)._ITERATION_CAPS}
    for max_time in (None, 60.0):
        fitted = _defaults(est, monkeypatch, max_time=max_time).set_params(**given).fit(_inputs())
        assert set(_phase_counts(fitted).values()) == {CAP + 2}
        assert set(fitted.stop_reason_.values()) == {"max_iter"}


@pytest.mark.parametrize("est", NEURAL, ids=IDS)
def test_partial_fit_and_warm_start_with_the_default(est, monkeypatch):
    est = _defaults(est, monkeypatch)
    X = _inputs()
    est.partial_fit(X, n_iter=2)  # the first call fits: 2 main iterations
    assert est.n_iter_ == 2 and est.max_iter is None
    est.partial_fit(X, n_iter=4)
    assert est.n_iter_ == 6 and est.max_iter is None
    est.set_params(warm_start=True).fit(X)  # the default budget again: CAP more
    assert est.n_iter_ == 6 + CAP
