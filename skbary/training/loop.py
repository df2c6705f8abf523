"""The training loop every neural estimator shares.

:class:`TrainingLoop` runs a method's ``step`` function until ``max_iter`` or a deadline,
records every loss of every iteration in the estimator's skorch ``History``, drives the
progress bar and skorch callbacks, and stops with
:class:`~skbary.exceptions.TrainingDivergedError` when a loss turns NaN/inf. Losses are kept
on the device and copied to the host in blocks of ``log_every`` iterations (or
``log_seconds``), so the hot path has no per-step host synchronisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from skorch.history import History
from tqdm.auto import tqdm

from ..exceptions import TrainingDivergedError

__all__ = ["TrainingLoop", "StepFn"]

StepFn = Callable[[int], Mapping[str, torch.Tensor]]


class TrainingLoop:
    """Runs ``step`` functions with history, progress, callbacks, time limits and NaN checks.

    One loop serves a whole fit: every phase (for example a barycenter phase then a map
    phase) is a call of :meth:`run`, and all of them write to one ``History``. Each history
    row has ``epoch`` (the global iteration, 1-based), ``phase``, ``iteration`` (within the
    phase), ``time`` (seconds since fit started) and one entry per loss.

    Parameters
    ----------
    estimator : object
        The estimator being fitted; callbacks receive it as ``net`` and it provides
        ``_divergence_hint(loss_name)`` for the error message.
    history : skorch.history.History
        Where the rows go (the estimator's ``history_``).
    start_time : float
        ``time.perf_counter()`` at the start of fit.
    verbose : int
        0 silent; >0 shows a tqdm progress bar with the current losses.
    callbacks : sequence of skorch callbacks or None
        Receive ``on_train_begin(net)``, ``on_epoch_end(net)`` once per iteration (after its
        row is recorded) and ``on_train_end(net)``. Raising ``KeyboardInterrupt`` (as
        ``skorch.callbacks.EarlyStopping`` does) stops the phase with reason ``"callback"``.
    log_every : int, default=50
        Iterations between host copies of the losses (history rows, NaN checks, callbacks).
    log_seconds : float, default=1.0
        Also copy when this many seconds have passed since the last copy, so that methods
        with long iterations (WIN's outer iteration holds about 100 network updates) still
        report to callbacks about once a second; at most one host synchronisation per
        ``log_seconds`` is added.
    """

    def __init__(
        self,
        estimator: Any,
        history: History,
        start_time: float,
        verbose: int = 0,
        callbacks: Sequence[Any] | None = None,
        log_every: int = 50,
        log_seconds: float = 1.0,
    ) -> None:
        self.estimator = estimator
        self.history = history
        self.start_time = start_time
        self.verbose = verbose
        self.callbacks = list(callbacks or [])
        self.log_every = log_every
        self.log_seconds = log_seconds
        self.total_iterations = 0

    def begin(self) -> None:
        """Initialise callbacks (call once per fit, before the first phase)."""
        for cb in self.callbacks:
            if hasattr(cb, "initialize"):
                cb.initialize()
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(self.estimator)

    def end(self) -> None:
        """Tell callbacks training has ended."""
        for cb in self.callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(self.estimator)

    def run(
        self,
        step: StepFn,
        *,
        n_iter: int,
        deadline: float | None = None,
        phase: str = "train",
    ) -> tuple[str, int]:
        """Call ``step(i)`` for i = 0, 1, ... until ``n_iter`` or ``deadline``.

        Parameters
        ----------
        step : callable
            Performs one iteration of the method and returns its losses as 0-d tensors
            (detached or not; they are detached here).
        n_iter : int
            Maximal number of iterations of this phase.
        deadline : float or None
            ``time.perf_counter()`` value after which no new iteration starts.
        phase : str
            Name recorded in the history.

        Returns
        -------
        reason : {"max_iter", "max_time", "callback"}
            Why the phase stopped.
        n_done : int
            Iterations run.
        """
        buffer: list[Mapping[str, torch.Tensor]] = []
        reason = "max_iter"
        bar = tqdm(total=n_iter, desc=phase, disable=not self.verbose, leave=False)
        i = 0
        last_flush = time.perf_counter()
        try:
            while i < n_iter:
                if deadline is not None and time.perf_counter() >= deadline:
                    reason = "max_time"
                    break
                losses = step(i)
                buffer.append({k: v.detach() for k, v in losses.items()})
                i += 1
                if (
                    len(buffer) >= self.log_every
                    or time.perf_counter() - last_flush >= self.log_seconds
                ):
                    self._flush(buffer, phase, i, bar)
                    buffer, last_flush = [], time.perf_counter()
            if buffer:
                self._flush(buffer, phase, i, bar)
        except KeyboardInterrupt:
            reason = "callback"
        finally:
            bar.close()
        return reason, i

    def _flush(
        self, buffer: list[Mapping[str, torch.Tensor]], phase: str, n_done: int, bar: tqdm
    ) -> None:
        names = list(buffer[0])
        values = torch.stack([torch.stack([b[n].float() for n in names]) for b in buffer])
        values = values.cpu().numpy().astype(np.float64)
        elapsed = time.perf_counter() - self.start_time
        first = n_done - len(buffer)
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            name = names[col]
            hint = self.estimator._divergence_hint(name)
            raise TrainingDivergedError(
                f"Training diverged: the loss {name!r} became {values[row, col]} at iteration "
                f"{first + row + 1} of phase {phase!r}. {hint}"
            )
        for j, row in enumerate(values):
            self.total_iterations += 1
            self.history.new_epoch()
            self.history.record("epoch", self.total_iterations)
            self.history.record("phase", phase)
            self.history.record("iteration", first + j + 1)
            self.history.record("time", elapsed)
            for name, value in zip(names, row, strict=True):
                self.history.record(name, float(value))
            for cb in self.callbacks:
                if hasattr(cb, "on_epoch_end"):
                    cb.on_epoch_end(self.estimator)
        bar.update(len(buffer))
        if self.verbose:
            bar.set_postfix({n: f"{v:.4g}" for n, v in zip(names, values[-1], strict=True)})
