"""Learning-rate schedules, written once for every neural estimator.

Every estimator takes the same two parameters: ``lr_decay``, the factor the learning rates
reach at the end of training (1.0: constant), and ``lr_schedule``, the curve that takes them
there: ``"linear"`` (``lr * (1 - (1 - lr_decay) p)``) or ``"geometric"``
(``lr * lr_decay ** p``). The progress ``p`` of a phase is the larger of the share of its
iterations done and the share of its time budget used, so the decay ends when the phase
ends, whichever limit stops it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

__all__ = ["LR_SCHEDULES", "LRDecay", "PhaseProgress"]

LR_SCHEDULES = ("linear", "geometric")


class PhaseProgress:
    """How far a phase has gone: the larger of the share of its ``n_iter`` iterations done
    and of its time budget (up to ``deadline``, a ``time.perf_counter()`` value, or None)
    used, in [0, 1]; the clock starts when this is made."""

    def __init__(self, n_iter: int, deadline: float | None) -> None:
        self.n_iter = max(int(n_iter), 1)
        self.start = time.perf_counter()
        self.span = None if deadline is None else max(deadline - self.start, 1e-9)

    def __call__(self, i: int) -> float:
        """The progress before iteration ``i`` (0-based)."""
        progress = i / self.n_iter
        if self.span is not None:
            progress = max(progress, (time.perf_counter() - self.start) / self.span)
        return min(progress, 1.0)


class LRDecay:
    """Decays the learning rate of every parameter group of some optimisers.

    Parameters
    ----------
    optimizers : sequence of torch.optim.Optimizer
        Their groups' current learning rates are the starting values.
    final_factor : float
        ``lr_decay``: the factor reached at the end (1.0 leaves the rates alone).
    curve : {"linear", "geometric"}
        ``lr_schedule``.
    n_iter : int
        Iterations of the phase.
    deadline : float or None
        ``time.perf_counter()`` value at which the phase's time is up (None: no limit).
    """

    def __init__(
        self,
        optimizers: Sequence[torch.optim.Optimizer],
        final_factor: float,
        curve: str,
        n_iter: int,
        deadline: float | None,
    ) -> None:
        if curve not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {curve!r}.")
        self.groups = [(g, g["lr"]) for opt in optimizers for g in opt.param_groups]
        self.final = float(final_factor)
        self.curve = curve
        self.progress = PhaseProgress(n_iter, deadline)

    @property
    def active(self) -> bool:
        """Whether the rates change at all."""
        return self.final != 1.0 and bool(self.groups)

    def factor(self, i: int) -> float:
        """The factor on the initial rates before iteration ``i`` (0-based)."""
        progress = self.progress(i)
        if self.curve == "geometric":
            return self.final**progress
        return 1.0 - (1.0 - self.final) * progress

    def update(self, i: int) -> None:
        """Set every group's rate for iteration ``i``."""
        if not self.active:
            return
        f = self.factor(i)
        for group, lr in self.groups:
            group["lr"] = lr * f
