"""Ctrl-C during a fit: stop the whole fit, keep what was learned.

:class:`InterruptGuard` replaces the SIGINT handler for the duration of a fit. A Ctrl-C
(or ``_thread.interrupt_main()``) marks the fit as interrupted; inside a training phase it
also raises :class:`KeyboardInterrupt` at once, so a long iteration (WIN's hundred network
updates, EgBary's Langevin chains) stops within a second. Outside a phase (building the
networks, between phases) it only marks the fit: the next phase then returns at once
without an iteration, so no later phase runs to its limit after the user asked to stop.

The mark is what distinguishes the user's Ctrl-C (``stop_reason_ == "interrupted"``) from
a callback that raises ``KeyboardInterrupt`` to stop a phase, as skorch's
``EarlyStopping`` does (``"callback"``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["InterruptGuard"]


class InterruptGuard:
    """Context manager that turns SIGINT into a recorded, fit-wide stop.

    Attributes
    ----------
    interrupted : bool
        Whether SIGINT arrived while the guard was active.
    armed : bool
        Whether SIGINT raises ``KeyboardInterrupt`` now (inside a phase) or is only
        recorded (between phases, and while a history row is being written).
    """

    def __init__(self) -> None:
        self.interrupted = False
        self.armed = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        # signal handlers can only be set from the main thread; a fit run in another
        # thread cannot receive SIGINT anyway (Python delivers it to the main thread).
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
        self.armed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        if self.armed:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def armed_while(self) -> Iterator[None]:
        """SIGINT raises inside (a training phase); one recorded before raises on entry."""
        previous, self.armed = self.armed, True
        try:
            if self.interrupted:
                raise KeyboardInterrupt
            yield
        finally:
            self.armed = previous

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """SIGINT is only recorded inside (writing a history row must not be cut in two);
        it raises on leaving if the guard was armed."""
        previous, self.armed = self.armed, False
        try:
            yield
        finally:
            self.armed = previous
        if previous and self.interrupted:
            raise KeyboardInterrupt
