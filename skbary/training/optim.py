"""The two moves of every training step, written once: a descent step and frozen players."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn

__all__ = ["ParameterAverage", "descend", "freeze_", "frozen"]


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
