"""A fit either succeeds or leaves the estimator exactly as it was (every estimator).

Failures tried: a bad hyperparameter, a training that diverges (an optimiser that turns the
weights to NaN), a callback that raises, and a refit on data with another number of columns.
After each, an unfitted estimator still raises ``NotFittedError``, and a fitted one still
serves its previous model (same samples, same attributes).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skbary import TrainingDivergedError
from skbary.base import NeuralBarycenter
from tests.fast_params import estimator_instances

ESTIMATORS = estimator_instances()
IDS = [type(e).__name__ for e in ESTIMATORS]
NEURAL = [e for e in ESTIMATORS if isinstance(e, NeuralBarycenter)]
NEURAL_IDS = [type(e).__name__ for e in NEURAL]


def _inputs(d=2, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randn(60, d) * 0.5 + 2 * k for k in range(3)]


class NaNAdam(torch.optim.Adam):
    """Adam whose every step leaves the weights NaN: a training that diverges."""

    @torch.no_grad()
    def step(self, closure=None):
        out = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                p.fill_(float("nan"))
        return out


class Boom(RuntimeError):
    pass


class RaisingCallback:
    def on_epoch_end(self, net, **kwargs):
        raise Boom("callback failed")


def _bad_parameter(est):
    """A hyperparameter value every estimator rejects."""
    name = "max_iter" if "max_iter" in est.get_params() else "tol"
    return {name: -1}


def _snapshot(est):
    return est.sample(20, random_state=0), dict(vars(est))


def _assert_unchanged(est, before):
    samples, state = before
    assert set(vars(est)) == set(state)
    for key, value in state.items():
        assert vars(est)[key] is value, key  # the very same objects: nothing replaced
    np.testing.assert_array_equal(est.sample(20, random_state=0), samples)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_bad_parameter_leaves_unfitted_and_fitted_estimators_as_they_were(est):
    fresh = clone(est).set_params(**_bad_parameter(est))
    with pytest.raises(ValueError):
        fresh.fit(_inputs())
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)

    fitted = clone(est).set_params(random_state=0).fit(_inputs())
    fitted.set_params(**_bad_parameter(est))
    before = _snapshot(fitted)
    with pytest.raises(ValueError):
        fitted.fit(_inputs(seed=1))
    _assert_unchanged(fitted, before)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_refit_with_other_columns_that_fails_keeps_the_previous_model(est):
    fitted = clone(est).set_params(random_state=0).fit(_inputs())
    before = _snapshot(fitted)
    bad = _inputs(d=3)
    bad[1] = bad[1][:, :2]  # inputs with different numbers of columns: rejected
    with pytest.raises(ValueError):
        fitted.fit(bad)
    _assert_unchanged(fitted, before)
    assert fitted.n_features_in_ == 2


@pytest.mark.parametrize("est", NEURAL, ids=NEURAL_IDS)
def test_divergence_leaves_the_estimator_as_it_was(est):
    fresh = clone(est).set_params(optimizer=NaNAdam, random_state=0)
    with pytest.raises(TrainingDivergedError):
        fresh.fit(_inputs())
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)

    fitted = clone(est).set_params(random_state=0).fit(_inputs())
    fitted.set_params(optimizer=NaNAdam)
    before = _snapshot(fitted)
    with pytest.raises(TrainingDivergedError):
        fitted.fit(_inputs(seed=1))
    _assert_unchanged(fitted, before)
    assert np.isfinite(fitted.sample(50, random_state=1)).all()


@pytest.mark.parametrize("est", NEURAL, ids=NEURAL_IDS)
def test_raising_callback_leaves_the_estimator_as_it_was(est):
    fresh = clone(est).set_params(callbacks=[RaisingCallback()], random_state=0)
    with pytest.raises(Boom):
        fresh.fit(_inputs())
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)

    fitted = clone(est).set_params(random_state=0).fit(_inputs())
    fitted.set_params(callbacks=[RaisingCallback()])
    before = _snapshot(fitted)
    with pytest.raises(Boom):
        fitted.fit(_inputs(seed=1))
    _assert_unchanged(fitted, before)


def test_divergence_error_is_the_training_error_for_the_toy():
    from tests.toy import ToyMeanBarycenter

    est = ToyMeanBarycenter(optimizer=NaNAdam, max_iter=5, random_state=0)
    with pytest.raises(TrainingDivergedError):
        est.fit(_inputs())
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
