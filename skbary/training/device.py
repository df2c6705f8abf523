"""Where and how a fit runs: the torch device and the number of CPU threads."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import torch

__all__ = ["torch_threads", "resolve_device"]


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run a block with ``n_threads`` torch CPU threads, restoring the previous number after.

    ``None`` leaves torch's setting alone. Small networks train faster on one thread (the
    per-op threading overhead exceeds the work), and a single thread keeps a fit from
    fighting other processes for the cores.
    """
    if n_threads is None:
        yield
        return
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}.")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(device: str | torch.device) -> torch.device:
    """Map ``"auto"`` to CUDA when available, else CPU; validate other values."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available here. A model fitted "
            "on a GPU and loaded here predicts on the CPU; to refit it here, call "
            "set_params(device='cpu') or device='auto' first."
        )
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}.") from exc
