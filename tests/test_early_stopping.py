"""Early stopping on held-out rows (issue 15, item 4): small inputs do not overfit.

``early_stopping`` holds out rows (``validation_fraction``, 0.1 when None), scores the
main phase every ``validation_interval`` iterations, stops it after ``n_iter_no_change``
scores without a new best, and keeps the networks of the best score.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

from tests.fast_params import estimator_instances

NEURAL = [e for e in estimator_instances() if "early_stopping" in e.get_params()]
IDS = [type(e).__name__ for e in NEURAL]


def _inputs(seed=0, n=100, d=2, K=3):
    rng = np.random.RandomState(seed)
    return [rng.randn(n, d) @ rng.randn(d, d) * 0.5 + 2 * k for k in range(K)]


class _KeepScored(Callback):
    """Copies of the networks at every row with a held-out score."""

    def initialize(self):
        self.saved = []
        return self

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        if "valid_loss" in row:
            state = copy.deepcopy(net.module_.state_dict())
            self.saved.append((row["valid_loss"], row["phase"], state))


def _main_phase(est):
    return est.history_[0]["phase"]


@pytest.mark.parametrize("est", NEURAL, ids=IDS)
def test_early_stopping_stops_the_main_phase_and_keeps_the_best_networks(est):
    keep = _KeepScored()
    est = clone(est).set_params(
        max_iter=3000,
        early_stopping=True,
        validation_interval=1,
        n_iter_no_change=3,
        callbacks=[keep],
        random_state=0,
    )
    for average in ("ema_decay", "generator_ema_decay"):  # NOT's maps', WIN's G's
        if average in est.get_params():
            est.set_params(**{average: 0.0})  # the running average would replace the best
    est.fit(_inputs())
    main = _main_phase(est)
    assert est.stop_reason_[main] == "early_stopping"
    assert est.n_iter_ < 3000
    scores = [(v, s) for v, p, s in keep.saved if p == main]
    losses = [v for v, _ in scores]
    # it stopped after n_iter_no_change scores without a new best
    assert int(np.argmin(losses)) == len(losses) - 4
    best = scores[int(np.argmin(losses))][1]
    now = est.module_.state_dict()
    kept = [n for n in best if not n.startswith("maps_")]  # WIN/Generative: maps learned after
    if type(est).__name__ == "GenerativeBarycenter":
        kept = [n for n in kept if n.startswith("generator_")]
    assert kept
    for name in kept:
        torch.testing.assert_close(now[name], best[name], rtol=0, atol=0)


def test_auto_stops_early_on_small_inputs_only():  # but not on tiny ones
    (est,) = [clone(e) for e in NEURAL if type(e).__name__ == "WINBarycenter"]
    low, high = est._EARLY_STOPPING_ROWS
    small = [np.zeros((low, 2))] * 3
    large = [np.zeros((high, 2))] * 3
    tiny = [np.zeros((low - 1, 2))] * 3
    assert not est._uses_early_stopping(tiny)
    assert est.get_params()["early_stopping"] == "auto"
    assert est._uses_early_stopping(small)
    assert not est._uses_early_stopping(large)
    assert not est.set_params(early_stopping=False)._uses_early_stopping(small)
    assert est.set_params(early_stopping=True)._uses_early_stopping(large)


def test_auto_stops_early_only_in_the_methods_measured_to_overfit():
    auto = {type(e).__name__ for e in NEURAL if e._uses_early_stopping([np.zeros((449, 2))] * 3)}
    assert auto == {"WINBarycenter"}


@pytest.mark.parametrize("est", NEURAL[:2], ids=IDS[:2])
def test_without_early_stopping_nothing_is_held_out(est):
    est = clone(est).set_params(early_stopping=False, random_state=0).fit(_inputs())
    assert "valid_loss" not in est.history_[-1]
    assert set(est.stop_reason_.values()) == {"max_iter"}


def test_early_stopping_writes_valid_loss_for_skorchs_default_callbacks():
    from skorch.callbacks import EarlyStopping as SkorchEarlyStopping

    est = clone(NEURAL[0]).set_params(
        early_stopping=True, validation_interval=1, random_state=0,
        callbacks=[SkorchEarlyStopping(patience=1000)],
    )  # fmt: skip
    est.fit(_inputs())
    assert "valid_loss" in est.history_[-1]
    with pytest.raises(ValueError, match="valid_loss"):  # nothing writes it without a split
        clone(est).set_params(early_stopping=False).fit(_inputs())
