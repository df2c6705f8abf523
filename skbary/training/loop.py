"""The training loop every neural estimator shares.

:class:`TrainingLoop` runs a method's ``step`` function until ``max_iter`` or a deadline,
records one row per iteration in the estimator's skorch ``History`` (each with its own time
stamp), drives the progress bar and skorch callbacks, and stops with
:class:`~skbary.exceptions.TrainingDivergedError` when a loss turns NaN/inf.

Two paths, one result:

* without callbacks, losses stay on the device and are copied to the host in blocks of
  ``log_every`` iterations (or every ``log_seconds``), so the hot path has no per-step host
  synchronisation; the rows are written when a block is copied;
* with callbacks, every iteration is synchronised and its row written before the callbacks
  are told about it, so a callback always sees the model of the row it reads.

Every phase of a fit is one call of :meth:`TrainingLoop.run`; the callbacks' skorch hooks
``on_train_begin``/``on_train_end`` frame each phase (so ``LRScheduler`` schedules the
optimisers of the phase that runs, and ``EarlyStopping`` restarts its patience when a new
phase with other losses starts), ``on_epoch_begin``/``on_epoch_end`` frame each iteration.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from skorch.history import History
from tqdm.auto import tqdm

from ..exceptions import TrainingDivergedError
from .interrupts import InterruptGuard

__all__ = ["UNBOUNDED", "StepFn", "TrainingLoop", "iteration_budget", "train_module"]

StepFn = Callable[[int], Mapping[str, torch.Tensor]]

#: The iteration count of a phase bounded by time alone (no phase ever reaches it).
UNBOUNDED = 2**62


def iteration_budget(max_iter: int | None, max_time: float | None, cap: int) -> int:
    """Iterations of a phase whose count the user gave as ``max_iter`` (an int or None).

    The rule every iteration parameter of every estimator follows (``max_iter``, WIN's and
    Generative's ``transform_max_iter``, ``add_input(max_iter=)``): an integer is honoured
    as given; None means ``cap`` (the method's measured default) when there is no time
    limit, and no count at all when ``max_time`` is set, so a user who gives more time
    gets more training: the phase runs until its share of ``max_time`` is spent (or a
    callback such as ``EarlyStopping`` stops it).
    """
    if max_iter is not None:
        return int(max_iter)
    return int(cap) if max_time is None else UNBOUNDED


def train_module(
    module: torch.nn.Module,
    step: StepFn,
    *,
    n_iter: int,
    deadline: float | None,
    phase: str,
    average: Any = None,
) -> History:
    """Train a solver outside an estimator: one phase of the loop with its own history.

    Ctrl-C stops training and keeps the module; ``average`` (a
    :class:`~skbary.training.optim.ParameterAverage`) is copied into the parameters at the
    end when any iteration ran. The module is left in eval mode.
    """
    history = History()
    with InterruptGuard() as guard:
        loop = TrainingLoop(module, history, time.perf_counter(), interrupts=guard)
        loop.run(step, n_iter=int(n_iter), deadline=deadline, phase=phase)
    if average is not None and len(history):
        average.copy_to_params()
    module.eval()
    return history


class TrainingLoop:
    """Runs ``step`` functions with history, progress, callbacks, time limits and NaN checks.

    One loop serves a whole fit: every phase (for example a barycenter phase then a map
    phase) is a call of :meth:`run`, and all of them write to one ``History``. Each history
    row has ``epoch`` (the global iteration, 1-based, continued across warm starts and
    resumed checkpoints), ``phase``, ``iteration`` (within the phase, also continued),
    ``time`` (seconds of training when the iteration ended, counted on from the last row of a
    continued fit), one entry per loss,
    ``train_loss`` (a copy of the phase's main loss, the default monitor of skorch's
    ``LRScheduler`` and of :class:`skbary.callbacks.EarlyStopping`) and ``train_loss_best``
    (whether it is the lowest of the phase so far).

    Parameters
    ----------
    estimator : object
        The estimator being fitted; callbacks receive it as ``net`` and it provides
        ``_divergence_hint(loss_name)`` for the error message. When it has a ``history_``
        attribute, that attribute is the history written to (``LoadInitState`` replaces it).
    history : skorch.history.History
        Where the rows go when the estimator has no ``history_``.
    start_time : float
        ``time.perf_counter()`` at the start of fit.
    verbose : int
        0 silent; >0 shows a progress bar per phase with the current losses.
    callbacks : sequence of skorch callbacks or None
        See the module docstring. Raising ``KeyboardInterrupt`` from a callback (as
        ``EarlyStopping`` does) stops the phase with reason ``"callback"``.
    log_every : int, default=50
        Iterations between host copies of the losses when there is no callback.
    log_seconds : float, default=1.0
        Also copy when this many seconds have passed since the last copy.
    interrupts : InterruptGuard or None
        The fit's Ctrl-C guard (entered by the caller): a Ctrl-C stops the phase with
        reason ``"interrupted"`` and every later phase returns at once. None: no Ctrl-C
        handling of the loop's own (a ``KeyboardInterrupt`` reads as a callback's stop).
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
        interrupts: InterruptGuard | None = None,
    ) -> None:
        self.estimator = estimator
        self._history = history
        self.start_time = start_time
        self.verbose = verbose
        self.callbacks = list(callbacks or [])
        self.log_every = log_every
        self.log_seconds = log_seconds
        self.interrupts = interrupts if interrupts is not None else InterruptGuard()
        self.phases: list[dict[str, Any]] = []  # one summary per run: the verbose=2 table
        self._time_offset: float | None = None
        self.n_rows_written = 0

    @property
    def history(self) -> History:
        """The history rows go to (the estimator's ``history_`` when it has one)."""
        return getattr(self.estimator, "history_", self._history)

    @property
    def interrupted(self) -> bool:
        """Whether the user pressed Ctrl-C during this fit."""
        return self.interrupts.interrupted

    def _notify(self, hook: str, **kwargs: Any) -> None:
        row = self.history[-1] if hook == "on_epoch_end" else None
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is None:
                continue
            monitor = getattr(cb, "monitor", None)
            if row is not None and isinstance(monitor, str) and monitor not in row:
                # a callback watching a key hears of the rows that have it (valid_loss every
                # validation_interval iterations): skorch's epoch with a validation score
                continue
            fn(self.estimator, **kwargs)

    def begin(self) -> None:
        """Initialise the callbacks (once per fit, before the first phase)."""
        for cb in self.callbacks:
            if hasattr(cb, "initialize"):
                cb.initialize()

    def end(self) -> None:
        """End of the fit (the callbacks heard ``on_train_end`` after each phase)."""

    def run(
        self,
        step: StepFn,
        *,
        n_iter: int,
        deadline: float | None = None,
        phase: str = "train",
        train_loss: str | None = None,
        validate: Callable[[], float] | None = None,
        validate_every: int = 50,
        n_iter_no_change: int | None = None,
        on_best: Callable[[], None] | None = None,
    ) -> tuple[str, int]:
        """Call ``step(i)`` for i = 0, 1, ... until ``n_iter`` or ``deadline``.

        Parameters
        ----------
        step : callable
            Performs one iteration of the method and returns its losses as 0-d tensors
            (detached or not; they are detached here).
        n_iter : int
            Maximal number of iterations of this call.
        deadline : float or None
            ``time.perf_counter()`` value after which no new iteration starts.
        phase : str
            Name recorded in the history.
        train_loss : str or None
            The loss copied to ``train_loss``; None: the first loss ``step`` returns.
        validate : callable or None
            ``validate() -> float``, the held-out objective of the current model, recorded
            as ``valid_loss`` (with ``valid_loss_best``) on every row whose ``epoch`` is a
            multiple of ``validate_every`` (and on the phase's last row).
        validate_every : int, default=50
        n_iter_no_change : int or None
            Early stopping: the phase stops when this many held-out scores in a row were
            no lower than the best so far (reason ``"early_stopping"``). None never stops
            on them.
        on_best : callable or None
            Called after every held-out score that is the phase's best so far (to keep that
            model: :meth:`NeuralBarycenter._run` restores it at the end of the phase).

        Returns
        -------
        reason : {"max_iter", "max_time", "early_stopping", "callback", "interrupted"}
            Why the phase stopped.
        n_done : int
            Iterations run (and rows written) by this call.

        Raises
        ------
        KeyboardInterrupt
            When Ctrl-C came before the first phase started: nothing was trained, so the
            fit is abandoned (and, being transactional, leaves the estimator as it was).
        """
        guard = self.interrupts
        if guard.interrupted:
            if not self.phases:
                raise KeyboardInterrupt
            self.phases.append(self._summary(phase, "interrupted", 0, time.perf_counter()))
            return "interrupted", 0
        t_phase = time.perf_counter()
        grad_mode = torch.is_grad_enabled()
        self._notify("on_train_begin")  # LoadInitState may replace the history here
        history = self.history
        if self._time_offset is None:  # a continued fit dates its rows after the saved ones
            self._time_offset = float(history[-1]["time"]) if len(history) else 0.0
        done_before = sum(1 for row in history if row.get("phase") == phase)
        state = _PhaseState(phase, done_before, len(history), train_loss)
        state.validate, state.validate_every = validate, max(int(validate_every), 1)
        state.n_iter_no_change, state.on_best = n_iter_no_change, on_best
        bar = _Bar(self.verbose, phase, n_iter, deadline)
        per_iteration = bool(self.callbacks)
        reason = "max_iter"
        buffer: list[tuple[Mapping[str, torch.Tensor], float]] = []
        i = 0
        try:
            with guard.armed_while():
                last_flush = time.perf_counter()
                while i < n_iter:
                    if deadline is not None and time.perf_counter() >= deadline:
                        reason = "max_time"
                        break
                    if per_iteration:
                        self._notify("on_epoch_begin", dataset_train=None, dataset_valid=None)
                    losses = step(i)
                    now = time.perf_counter()
                    buffer.append(({k: v.detach() for k, v in losses.items()}, now))
                    i += 1
                    due = validate is not None and (
                        (state.epoch_before + state.n_done + len(buffer)) % state.validate_every
                        == 0
                        or i == n_iter
                    )
                    stalled = False
                    if per_iteration:
                        self._flush(buffer, state, bar)
                        if due:
                            stalled = self._validate(state)
                        with bar.external_write(self.callbacks):
                            self._notify("on_epoch_end")
                    elif (
                        due or len(buffer) >= self.log_every or now - last_flush >= self.log_seconds
                    ):
                        self._flush(buffer, state, bar)
                        if due:
                            stalled = self._validate(state)
                        last_flush = time.perf_counter()
                    if stalled:
                        reason = "early_stopping"
                        break
        except KeyboardInterrupt:
            reason = "interrupted" if guard.interrupted else "callback"
            # a Ctrl-C may land in the __exit__ of a torch.no_grad() block of the step
            torch.set_grad_enabled(grad_mode)
        # the iterations that completed before a stop are recorded, whatever stopped them
        if buffer:
            self._flush(buffer, state, bar)
        if validate is not None and state.n_done and "valid_loss" not in self.history[-1]:
            self._validate(state)  # the phase's last model is scored too
        bar.close()
        summary = self._summary(phase, reason, state.n_done, t_phase, state.last)
        self.phases.append(summary)
        self._notify("on_train_end")
        return reason, state.n_done

    def _summary(
        self,
        phase: str,
        reason: str,
        n_done: int,
        t_phase: float,
        last: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        return {
            "phase": phase,
            "iterations": n_done,
            "seconds": time.perf_counter() - t_phase,
            "stop_reason": reason,
            "losses": dict(last or {}),
        }

    def _flush(
        self,
        buffer: list[tuple[Mapping[str, torch.Tensor], float]],
        state: _PhaseState,
        bar: _Bar,
    ) -> None:
        """Copy the buffered losses to the host, check them and write one row each.

        The buffer is emptied together with the writing of its rows (a Ctrl-C cannot
        come between the two, so no row is lost or written twice).
        """
        names = list(buffer[0][0])
        values = torch.stack([torch.stack([b[n].float() for n in names]) for b, _ in buffer])
        values = values.cpu().numpy().astype(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            name = names[col]
            hint = self.estimator._divergence_hint(name)
            raise TrainingDivergedError(
                f"Training diverged: the loss {name!r} became {values[row, col]} at iteration "
                f"{state.done_before + state.n_done + row + 1} of phase {state.phase!r}. {hint}"
            )
        main = state.train_loss if state.train_loss is not None else names[0]
        if main not in names:
            raise KeyError(
                f"train_loss={main!r} is not one of the losses of phase {state.phase!r}: {names}."
            )
        j_main = names.index(main)
        history = self.history
        state.last = dict(zip(names, values[-1].tolist(), strict=True))
        bar.update(len(buffer), state.last)
        with self.interrupts.deferred():  # a Ctrl-C never leaves half a row
            for (_, stamp), row in zip(buffer, values, strict=True):
                state.n_done += 1
                self.n_rows_written += 1
                score = float(row[j_main])
                best = score < state.best
                state.best = min(state.best, score)
                history.new_epoch()
                history.new_batch()  # skorch's Checkpoint formats names with the last batch
                history.record("epoch", state.epoch_before + state.n_done)
                history.record("phase", state.phase)
                history.record("iteration", state.done_before + state.n_done)
                history.record("time", self._time_offset + stamp - self.start_time)
                for name, value in zip(names, row, strict=True):
                    history.record(name, float(value))
                history.record("train_loss", score)
                history.record("train_loss_best", best)
            buffer.clear()

    def _validate(self, state: _PhaseState) -> bool:
        """Score the current model on the held-out rows; record it in the last row.

        Returns whether early stopping ends the phase (``n_iter_no_change`` scores in a
        row without a new best)."""
        value = float(state.validate())
        if not np.isfinite(value):
            raise TrainingDivergedError(
                f"The held-out objective became {value} at iteration "
                f"{state.done_before + state.n_done} of phase {state.phase!r}. "
                f"{self.estimator._divergence_hint(state.train_loss or 'train_loss')}"
            )
        best = value < state.valid_best
        state.valid_best = min(state.valid_best, value)
        with self.interrupts.deferred():
            self.history.record("valid_loss", value)
            self.history.record("valid_loss_best", best)
        state.n_no_change = 0 if best else state.n_no_change + 1
        if best and state.on_best is not None:
            state.on_best()
        return state.n_iter_no_change is not None and state.n_no_change >= state.n_iter_no_change


class _PhaseState:
    """Counters of one :meth:`TrainingLoop.run` call."""

    def __init__(
        self, phase: str, done_before: int, epoch_before: int, train_loss: str | None
    ) -> None:
        self.phase = phase
        self.done_before = done_before
        self.epoch_before = epoch_before
        self.train_loss = train_loss
        self.n_done = 0
        self.best = math.inf
        self.valid_best = math.inf
        self.validate: Callable[[], float] | None = None
        self.validate_every = 50
        self.n_iter_no_change: int | None = None
        self.on_best: Callable[[], None] | None = None
        self.n_no_change = 0
        self.last: dict[str, float] = {}


class _Bar:
    """The progress bar of a phase: it tracks the budget that binds.

    Progress is the larger of the share of iterations done and the share of the phase's
    time used, so a fit bounded by ``max_time`` fills the bar in seconds rather than
    counting towards an ``max_iter`` it will never reach. The postfix shows iterations,
    seconds and the current losses; the bar is removed when the phase ends (the fit leaves
    a summary line, :func:`format_summary`).
    """

    _SCALE = 1000

    def __init__(self, verbose: int, phase: str, n_iter: int, deadline: float | None) -> None:
        self.enabled = bool(verbose)
        self.n_iter = max(int(n_iter), 1)
        self.start = time.perf_counter()
        self.span = None if deadline is None else max(deadline - self.start, 1e-9)
        self.done = 0
        self.tqdm = None
        if self.enabled:
            self.phase = phase
            self.tqdm = tqdm(
                total=self._SCALE,
                desc=phase,
                leave=False,
                file=sys.stderr,
                bar_format="{percentage:3.0f}%|{bar}| {desc}",
            )

    def update(self, n: int, losses: Mapping[str, float]) -> None:
        self.done += n
        if self.tqdm is None:
            return
        elapsed = time.perf_counter() - self.start
        progress = self.done / self.n_iter
        total = f"/{self.n_iter}" if self.n_iter < UNBOUNDED else ""
        budget = f"{self.done}{total} it"
        if self.span is not None:
            progress = max(progress, elapsed / self.span)
            budget += f", {elapsed:.1f}/{self.span:.1f} s"
        else:
            budget += f", {elapsed:.1f} s"
        target = min(int(progress * self._SCALE), self._SCALE)
        values = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
        self.tqdm.set_description_str(f"{self.phase}: {budget}, {values}", refresh=False)
        self.tqdm.update(max(target - self.tqdm.n, 0))

    def external_write(self, callbacks: Sequence[Any]) -> Any:
        """Context in which callbacks that print (``PrintLog``, ``EarlyStopping``: skorch's
        ``sink=print``) do so above the bar rather than through it."""
        if self.tqdm is None or not any(getattr(cb, "sink", None) is print for cb in callbacks):
            return _NULL
        return tqdm.external_write_mode(file=sys.stdout)

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NULL = _Null()


def format_summary(name: str, phases: Sequence[Mapping[str, Any]], seconds: float) -> str:
    """The one-line summary ``verbose=1`` leaves: iterations, time, stop reasons, losses."""
    parts = []
    for p in phases:
        losses = ", ".join(f"{k}={v:.4g}" for k, v in p["losses"].items())
        parts.append(
            f"{p['phase']}: {p['iterations']} iterations, stopped by {p['stop_reason']}"
            + (f" ({losses})" if losses else "")
        )
    return f"{name} fitted in {seconds:.1f} s; " + "; ".join(parts)


def format_phase_table(phases: Sequence[Mapping[str, Any]]) -> str:
    """The per-phase table ``verbose=2`` adds under the summary."""
    rows = [("phase", "iterations", "seconds", "it/s", "stop reason", "final losses")]
    for p in phases:
        rate = p["iterations"] / p["seconds"] if p["seconds"] > 0 else float("nan")
        losses = ", ".join(f"{k}={v:.4g}" for k, v in p["losses"].items())
        rows.append(
            (
                p["phase"],
                str(p["iterations"]),
                f"{p['seconds']:.2f}",
                f"{rate:.1f}",
                p["stop_reason"],
                losses,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
