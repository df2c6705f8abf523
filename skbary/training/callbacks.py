"""skorch callbacks on skbary's training loop: what works, what is refused and why.

An skbary "epoch" is one iteration of the method (one history row). The loop calls
``initialize`` once per fit, ``on_train_begin``/``on_train_end`` around every phase,
``on_epoch_begin``/``on_epoch_end`` around every iteration; it never calls the batch and
gradient hooks, has no validation dataset and no ``predict``. So:

======================================  ==================================================
skorch callback                         on skbary
======================================  ==================================================
``EarlyStopping``                       works with a monitor the history has; skbary's
                                        :class:`EarlyStopping` defaults to ``train_loss``
``Checkpoint``, ``LoadInitState``,      work: every network, optimiser state and the
``TrainEndCheckpoint``                  history (``save_params``/``load_params``)
``LRScheduler``                         works with ``step_every="epoch"`` on the optimisers
                                        of each phase (``lr_decay`` must then be 1.0)
``PrintLog``, ``EpochTimer``            work (rows print above the progress bar)
``EpochScoring``, ``BatchScoring``,     refused: use :class:`HeldOutScoring`
``PassthroughScoring``
``ProgressBar``                         refused: use ``verbose=1``
any callback with batch or gradient     refused (those hooks are never called)
hooks
======================================  ==================================================

A callback whose ``monitor`` is a ``valid_*`` key (skorch's defaults: ``valid_loss``,
``valid_loss_best``) is refused unless the estimator's ``validation_fraction`` (which writes
``valid_loss``, a held-out barycenter cost) or a :class:`HeldOutScoring` writes that key:
training losses under a ``valid_`` name would be a silent lie. A callback with a string
``monitor`` hears ``on_epoch_end`` only on the rows that have that key (skorch's epochs with
a validation score).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from skorch.callbacks import Callback, LRScheduler, PassthroughScoring, ProgressBar
from skorch.callbacks import EarlyStopping as _SkorchEarlyStopping
from skorch.callbacks.scoring import ScoringBase

__all__ = ["EarlyStopping", "HeldOutScoring", "check_callbacks"]

_UNCALLED_HOOKS = ("on_batch_begin", "on_batch_end", "on_grad_computed")


class EarlyStopping(_SkorchEarlyStopping):
    """skorch's ``EarlyStopping`` with defaults for barycenter training.

    Stops the running phase when ``monitor`` has not improved for ``patience`` history rows
    that have it (rows without the key, for example between two :class:`HeldOutScoring`
    evaluations, are skipped). ``stop_reason_[phase]`` then reads ``"callback"``.

    Parameters
    ----------
    monitor : str, default="train_loss"
        History key to watch. ``train_loss`` is each phase's main loss (every estimator's
        ``history_`` entry names it); a :class:`HeldOutScoring` key watches a held-out score.
    patience : int, default=200
        Rows without improvement before stopping. An skbary row is one iteration on one
        minibatch, so the patience is in iterations, not in epochs over the data.
    threshold : float, default=1e-4
    threshold_mode : {"rel", "abs"}, default="rel"
    lower_is_better : bool, default=True
    sink : callable, default=print
    load_best : bool, default=False
        Restore the networks of the best row when the phase stops (``net.module_``).
    """

    def __init__(
        self,
        monitor: str = "train_loss",
        patience: int = 200,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        lower_is_better: bool = True,
        sink: Callable[..., Any] = print,
        load_best: bool = False,
    ) -> None:
        super().__init__(
            monitor=monitor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            lower_is_better=lower_is_better,
            sink=sink,
            load_best=load_best,
        )

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        if self.monitor not in net.history[-1]:
            return
        super().on_epoch_end(net, **kwargs)


class HeldOutScoring(Callback):
    """Write a held-out score of the model into the history during fit.

    Every ``every`` iterations, ``scoring(net, X, y)`` (any scikit-learn style scorer, for
    example :data:`skbary.scorers.barycenter_cost_scorer` on held-out rows, or a benchmark's
    :func:`~skbary.scorers.make_bw_uvp_scorer`) is recorded under ``name``, with
    ``<name>_best``. skbary's scorers return the *negative* of a metric (higher is better).

    Parameters
    ----------
    scoring : callable
        ``scoring(estimator, X, y) -> float``.
    X, y : optional
        Held-out data passed to ``scoring`` (flat form: rows and each row's input).
    name : str, default="valid_score"
        History key.
    lower_is_better : bool, default=False
        For ``<name>_best`` (scorers are higher-is-better).
    every : int, default=1
        Score on every ``every``-th history row (the others lack the key).
    """

    def __init__(
        self,
        scoring: Callable[..., float],
        X: Any = None,
        y: Any = None,
        name: str = "valid_score",
        lower_is_better: bool = False,
        every: int = 1,
    ) -> None:
        self.scoring = scoring
        self.X = X
        self.y = y
        self.name = name
        self.lower_is_better = lower_is_better
        self.every = every

    def initialize(self) -> HeldOutScoring:
        if not callable(self.scoring):
            raise TypeError(
                f"scoring must be a callable scorer(estimator, X, y); got {self.scoring!r}."
            )
        if isinstance(self.every, bool) or int(self.every) != self.every or self.every < 1:
            raise ValueError(f"every must be a positive integer, got {self.every!r}.")
        self.best_ = None
        return self

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        row = net.history[-1]
        if row["epoch"] % int(self.every):
            return
        score = float(self.scoring(net, self.X, self.y))
        if not np.isfinite(score):
            raise ValueError(f"HeldOutScoring {self.name!r} got a non-finite score {score!r}.")
        best = self.best_ is None or (
            score < self.best_ if self.lower_is_better else score > self.best_
        )
        if best:
            self.best_ = score
        net.history.record(self.name, score)
        net.history.record(f"{self.name}_best", bool(best))


def _overrides(cb: Any, hook: str) -> bool:
    own = getattr(type(cb), hook, None)
    return own is not None and own is not getattr(Callback, hook, None)


def check_callbacks(callbacks: Sequence[Any] | None, estimator: Any) -> None:
    """Refuse, before training, the callbacks that cannot work on skbary's loop.

    Raises
    ------
    TypeError
        A callback that is not a callback, or one skbary cannot serve; the message says
        what to use instead.
    ValueError
        A callback monitoring a key the history will not have, or an ``LRScheduler`` next
        to the estimator's own ``lr_decay``.
    """
    name = type(estimator).__name__
    callbacks = list(callbacks or ())
    written = {cb.name for cb in callbacks if isinstance(cb, HeldOutScoring)}
    if (
        getattr(estimator, "validation_fraction", None) is not None
        or getattr(estimator, "early_stopping", False) is True
    ):
        written.add("valid_loss")
    written |= {f"{key}_best" for key in written}
    for cb in callbacks:
        what = type(cb).__name__
        if isinstance(cb, str) or not any(
            hasattr(cb, hook) for hook in ("on_train_begin", "on_epoch_end", "on_train_end")
        ):
            raise TypeError(
                f"callbacks must be skorch-style callback objects (with on_epoch_end etc.); "
                f"got {cb!r}."
            )
        if isinstance(cb, ProgressBar):
            raise TypeError(
                f"{name} does not take skorch's ProgressBar, which counts a DataLoader's "
                "batches; use verbose=1 (a bar over the iterations or the seconds of "
                "max_time, with the current losses)."
            )
        if isinstance(cb, ScoringBase | PassthroughScoring):
            raise TypeError(
                f"{name} does not take skorch's {what}, which scores predictions on a "
                "validation dataset; use skbary.callbacks.HeldOutScoring(scoring, X, y) "
                "(e.g. skbary.scorers.barycenter_cost_scorer on held-out rows)."
            )
        if isinstance(cb, LRScheduler):
            if cb.step_every != "epoch":
                raise ValueError(
                    f"LRScheduler(step_every={cb.step_every!r}): {name} has no batches; use "
                    "step_every='epoch' (an epoch is one iteration, one history row)."
                )
            decay = float(getattr(estimator, "lr_decay", 1.0))
            if decay != 1.0:
                raise ValueError(
                    f"An LRScheduler and lr_decay={decay} would both set the learning rates; "
                    f"set lr_decay=1.0 on the {name} to let the scheduler drive them."
                )
        elif any(_overrides(cb, hook) for hook in _UNCALLED_HOOKS):
            hooks = [h for h in _UNCALLED_HOOKS if _overrides(cb, h)]
            raise TypeError(
                f"{what} acts in {', '.join(hooks)}, which {name} never calls (an iteration "
                "has no batches or gradient hook); write it with on_epoch_end."
            )
        monitor = getattr(cb, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid_") and monitor not in written:
            raise ValueError(
                f"{what} monitors {monitor!r}, a held-out score this fit does not record: "
                f"{name} splits off no validation set unless validation_fraction is set "
                "(then it records 'valid_loss'). Monitor 'train_loss' (each phase's main "
                "loss; skbary.callbacks.EarlyStopping() does by default) or "
                f"'train_loss_best' (Checkpoint), set validation_fraction, or add "
                f"skbary.callbacks.HeldOutScoring(scoring, X_valid, y_valid, "
                f"name={monitor.removesuffix('_best')!r})."
            )
