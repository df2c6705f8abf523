"""Where and how a fit runs: the torch device and the number of CPU threads."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import torch

__all__ = ["float32_default", "torch_threads", "resolve_device"]


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


@contextlib.contextmanager
def float32_default() -> Iterator[None]:
    """Run a block with torch's default dtype float32, restoring the caller's after.

    The networks and every tensor the methods create are float32; a user who called
    ``torch.set_default_dtype(torch.float64)`` would otherwise get float64 networks fed
    float32 rows (a dtype error deep inside torch). The default dtype is process-wide
    state, so it is only touched when it differs: the usual case changes nothing.
    """
    previous = torch.get_default_dtype()
    if previous == torch.float32:
        yield
        return
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


_BACKENDS = {
    "cuda": lambda: torch.cuda.is_available(),
    "mps": lambda: hasattr(torch.backends, "mps") and torch.backends.mps.is_available(),
    "xpu": lambda: hasattr(torch, "xpu") and torch.xpu.is_available(),
}


def resolve_device(device: str | torch.device) -> torch.device:
    """Map ``"auto"`` to CUDA when available, else CPU; check that a named backend exists."""
    if not isinstance(device, str | torch.device):
        raise TypeError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}.")
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}.") from exc
    available = _BACKENDS.get(resolved.type)
    if available is not None and not available():
        raise ValueError(
            f"device={device!r} was requested but the {resolved.type.upper()} backend is not "
            "available here. A model fitted on a GPU and loaded here predicts on the CPU; to "
            "refit it here, call set_params(device='cpu') or device='auto' first."
        )
    if resolved.type not in ("cpu", *_BACKENDS):
        raise ValueError(
            f"device={device!r} is not supported: use 'auto', 'cpu', 'cuda', 'mps' or 'xpu'."
        )
    return resolved
