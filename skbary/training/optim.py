"""The two moves of every training step, written once: a descent step and frozen players."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

__all__ = ["descend", "freeze_", "frozen"]


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
