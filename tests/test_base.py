"""The shared torch machinery of NeuralBarycenter, exercised through a minimal estimator."""

from __future__ import annotations

import pickle
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils.estimator_checks import check_estimator
from skorch.callbacks import EarlyStopping

import skbary
from skbary import TrainingDivergedError
from tests.test_contract import KWARGS_XFAIL, WEIGHTED_ROWS_XFAIL
from tests.toy import ToyMeanBarycenter


def _inputs(seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randn(200, 3) + np.array([k, -k, 2 * k]) for k in range(3)]


def test_toy_learns_the_weighted_mean():
    Xs = _inputs()
    a = np.array([0.2, 0.3, 0.5])
    est = ToyMeanBarycenter(random_state=0, max_iter=400).fit(Xs, a)
    target = a @ np.stack([X.mean(0) for X in Xs])
    assert np.abs(est.sample(20000, random_state=0).mean(0) - target).max() < 0.05
    assert est.stop_reason_ == {"train": "max_iter"}
    assert est.n_iter_ == 400


def test_history_has_a_row_per_iteration_with_every_loss():
    est = ToyMeanBarycenter(random_state=0, max_iter=123).fit(_inputs())
    assert len(est.history_) == 123
    losses = est.history_[:, "shift"]
    assert len(losses) == 123 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert est.history_[:, "iteration"] == list(range(1, 124))
    assert set(est.history_[:, "phase"]) == {"train"}


def test_max_time_stops_cleanly_and_records_why():
    start = time.perf_counter()
    est = ToyMeanBarycenter(max_iter=10**9, max_time=1.0, random_state=0).fit(_inputs())
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0
    assert est.stop_reason_["train"] == "max_time"
    assert 0 < est.n_iter_ < 10**9
    assert len(est.history_) == est.n_iter_


def test_divergence_stops_with_an_error_naming_the_network():
    est = ToyMeanBarycenter(lr=1e30, shift__scale=1e30, max_iter=200, random_state=0)
    with pytest.raises(TrainingDivergedError, match="'shift'.*learning rate"):
        est.fit(_inputs())


def test_nested_parameters_are_params_and_grid_searchable():
    est = ToyMeanBarycenter(shift__scale=2.0, optimizer__betas=(0.5, 0.9))
    params = est.get_params()
    assert params["shift__scale"] == 2.0 and params["optimizer__betas"] == (0.5, 0.9)
    assert clone(est).get_params()["shift__scale"] == 2.0
    est.set_params(shift__scale=3.0, optimizer__lr=0.1, lr=0.2)
    params = est.get_params()
    assert params["shift__scale"] == 3.0 and params["optimizer__lr"] == 0.1 and est.lr == 0.2
    assert not [k for k in vars(est) if "__" in k]  # no public attribute besides parameters
    with pytest.raises(TypeError, match="unexpected keyword argument 'mystery__x'"):
        ToyMeanBarycenter(mystery__x=1).fit(_inputs())

    X, y = skbary.stack(_inputs())
    grid = GridSearchCV(
        ToyMeanBarycenter(max_iter=30, random_state=0),
        {"shift__scale": [1.0, 2.0], "optimizer__lr": [0.01, 0.05]},
        scoring=lambda est, X, y: -np.abs(est.sample(50).mean()),
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    assert set(grid.best_params_) == {"shift__scale", "optimizer__lr"}


def test_optimizer_kwargs_reach_the_optimizer(monkeypatch):
    seen = {}

    class SpyAdam(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            seen.update(kwargs)
            super().__init__(params, **kwargs)

    ToyMeanBarycenter(optimizer=SpyAdam, optimizer__betas=(0.5, 0.9), max_iter=2).fit(_inputs())
    assert seen == {"lr": 0.05, "betas": (0.5, 0.9)}


def test_skorch_early_stopping_callback_stops_the_fit():
    cb = EarlyStopping(monitor="shift", patience=5, threshold=10.0, threshold_mode="abs")
    est = ToyMeanBarycenter(max_iter=10_000, callbacks=[cb], random_state=0).fit(_inputs())
    assert est.stop_reason_["train"] == "callback"
    assert est.n_iter_ < 10_000


def test_verbose_shows_a_progress_bar_with_losses(capsys):
    ToyMeanBarycenter(max_iter=60, verbose=1, random_state=0).fit(_inputs())
    err = capsys.readouterr().err
    assert "train" in err and "shift=" in err


def test_device_parameter_is_validated():
    with pytest.raises(ValueError, match="device"):
        ToyMeanBarycenter(device="tpu").fit(_inputs())
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA backend is not available"):
            ToyMeanBarycenter(device="cuda").fit(_inputs())
    est = ToyMeanBarycenter(device="auto", max_iter=2).fit(_inputs())
    assert est.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_iter_and_max_time_are_validated(bad):
    with pytest.raises(ValueError, match="max_iter"):
        ToyMeanBarycenter(max_iter=bad).fit(_inputs())
    if bad is not True and bad <= 0:
        with pytest.raises(ValueError, match="max_time"):
            ToyMeanBarycenter(max_time=bad).fit(_inputs())


def test_cuda_fitted_model_loads_on_a_cpu_only_machine():
    """Simulate a CUDA-fitted pickle: the state records device cuda, tensors come as CPU."""
    est = ToyMeanBarycenter(max_iter=20, random_state=0).fit(_inputs())
    state = est.__getstate__()
    assert state["_fitted_device"] == "cpu"
    state["_fitted_device"] = "cuda:0"
    clone_ = ToyMeanBarycenter.__new__(ToyMeanBarycenter)
    clone_.__setstate__(state)
    expected_type = "cuda" if torch.cuda.is_available() else "cpu"
    assert clone_.device_.type == expected_type
    np.testing.assert_allclose(clone_.sample(10, random_state=0), est.sample(10, random_state=0))
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.sample(10, random_state=3), est.sample(10, random_state=3))


def test_toy_passes_sklearn_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            ToyMeanBarycenter(max_iter=5, unlabelled_rows="guess"),
            on_fail=None,
            expected_failed_checks={**KWARGS_XFAIL, **WEIGHTED_ROWS_XFAIL},
        )
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


def test_loop_tells_callbacks_about_each_iteration_with_its_own_row_and_time():
    from skorch.history import History

    from skbary.training import TrainingLoop

    class Rows:
        def __init__(self):
            self.seen = []

        def on_epoch_end(self, net, **kwargs):
            self.seen.append((len(net.history), net.history[-1]["loss"]))

    class Net:
        history = History()

    cb = Rows()
    loop = TrainingLoop(Net, Net.history, time.perf_counter(), callbacks=[cb])

    def slow_step(i):
        time.sleep(0.01)
        return {"loss": torch.tensor(float(i))}

    reason, n = loop.run(slow_step, n_iter=20)
    assert (reason, n) == ("max_iter", 20)
    assert Net.history[:, "loss"] == [float(i) for i in range(20)]
    # every callback call reads the row of the iteration that just ran, not a later one
    assert cb.seen == [(i + 1, float(i)) for i in range(20)]
    stamps = np.array(Net.history[:, "time"])
    assert (np.diff(stamps) >= 0.009).all()  # each row dated when its iteration ended


def test_fast_path_without_callbacks_still_dates_every_row():
    from skorch.history import History

    from skbary.training import TrainingLoop

    class Net:
        history = History()

    loop = TrainingLoop(Net, Net.history, time.perf_counter(), log_every=50)

    def slow_step(i):
        time.sleep(0.01)
        return {"loss": torch.tensor(float(i))}

    assert loop.run(slow_step, n_iter=30) == ("max_iter", 30)
    stamps = np.array(Net.history[:, "time"])
    assert len(stamps) == 30 and (np.diff(stamps) >= 0.009).all()
