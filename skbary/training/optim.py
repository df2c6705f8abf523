"""The two moves of every training step, written once: a descent step and frozen players."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["LowestSmoothedLoss", "ParameterAverage", "descend", "freeze_", "frozen"]


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One gradient step of ``optimizer`` on ``loss`` (gradients reset first)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@contextlib.contextmanager
def frozen(params: Iterable[torch.Tensor]) -> Iterator[None]:
    """No gradient is computed for ``params`` inside (the other player of a max-min game)."""
    params = list(params)
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def freeze_(module: nn.Module) -> nn.Module:
    """Switch off the gradients of a module that is used but never trained; returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class ParameterAverage:
    """Exponential moving average of parameters (the maps kept after fit).

    ``warmup=True`` uses the decay ``min(decay, (1 + t) / (10 + t))`` at update t, so that
    a short training is not pulled back to the initial parameters (TensorFlow's
    ``num_updates`` rule).
    """

    def __init__(self, params: Sequence[torch.Tensor], decay: float, warmup: bool = False) -> None:
        self.params = list(params)
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.n_updates = 0
        self.average = [t.detach().clone() for t in self.params]

    @torch.no_grad()
    def update(self) -> None:
        decay = self.decay
        if self.warmup:
            decay = min(decay, (1.0 + self.n_updates) / (10.0 + self.n_updates))
        self.n_updates += 1
        torch._foreach_lerp_(self.average, self.params, 1.0 - decay)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        for t, e in zip(self.params, self.average):
            t.copy_(e)


def updating(
    step: Callable[[int], Mapping[str, torch.Tensor]], average: ParameterAverage | None
) -> Callable[[int], Mapping[str, torch.Tensor]]:
    """``step`` followed by ``average.update()``, so the average follows every iteration
    (``step`` itself when there is no average)."""
    if average is None:
        return step

    def run(i: int) -> Mapping[str, torch.Tensor]:
        losses = step(i)
        average.update()
        return losses

    return run


class LowestSmoothedLoss:
    """Keeps what ``snapshot()`` returns at the iterate of lowest smoothed loss.

    The loss of every iteration is smoothed by an exponential moving average (``decay``,
    bias-corrected as Adam's moments are, so its first values are plain means); only
    iterations from ``after`` on (a progress in [0, 1], see
    :class:`~skbary.training.schedules.PhaseProgress`) compete, so that the start of a
    training, where a loss can be low because nothing has been learned yet, is never kept,
    and only once twice the smoothing's span (``2 / (1 - decay)`` iterations) has run: in
    a shorter training the smoothed values are plain running means, which rank nothing.

    Parameters
    ----------
    decay : float in [0, 1)
        Smoothing of the per-iteration loss.
    after : float in [0, 1]
        Progress from which an iterate may be kept.
    progress : callable
        ``progress(i) -> float`` of the phase (a :class:`PhaseProgress`).

    Attributes
    ----------
    best : object or None
        The snapshot kept (None while no iterate has competed).
    best_iteration : int or None
        The 0-based iteration it was taken after.
    """

    def __init__(self, decay: float, after: float, progress: Callable[[int], float]) -> None:
        self.decay, self.after, self.progress = float(decay), float(after), progress
        self.min_count = math.ceil(round(2.0 / (1.0 - self.decay), 6))
        self.mean, self.n = 0.0, 0
        self.lowest = float("inf")
        self.best: Any = None
        self.best_iteration: int | None = None

    def update(self, i: int, loss: float, snapshot: Callable[[], Any]) -> None:
        """Record iteration ``i``'s ``loss`` (after the iteration ran); take a snapshot when
        the smoothed loss is the lowest so far among the competing iterations."""
        self.n += 1
        self.mean = self.decay * self.mean + (1.0 - self.decay) * float(loss)
        smoothed = self.mean / (1.0 - self.decay**self.n)
        competes = self.n >= self.min_count and self.progress(i + 1) >= self.after
        if competes and smoothed < self.lowest:
            self.lowest, self.best, self.best_iteration = smoothed, snapshot(), i
