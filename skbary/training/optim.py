"""The two moves of every training step, written once: a descent step and frozen players."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim import optimizer as _torch_optimizer

__all__ = ["LowestSmoothedLoss", "ParameterAverage", "descend", "freeze_", "frozen"]


def descend(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, gradient: torch.Tensor | None = None
) -> None:
    """One gradient step of ``optimizer`` on ``loss`` (gradients reset first).

    ``gradient``: back-propagate ``loss.backward(gradient)`` (a non-scalar output and the
    loss's gradient with respect to it). A fused Adam or AdamW step with nothing attached
    to it (:func:`_fused_adam_groups`) is taken by torch's fused kernel directly, the same
    update without the Python of ``Optimizer.zero_grad``/``step`` (their profiling
    records, hook chains and per-step list building: 0.49 against 0.11 ms a step for a
    BatchedICNN on one loaded CPU thread, ``benchmarks/results/icnn_speed.md``).
    """
    groups = _fused_adam_groups(optimizer)
    if groups is None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward(gradient)
        optimizer.step()
        return
    for group in groups:
        for p in group["params"]:
            p.grad = None
    loss.backward(gradient)
    if not _fused_adam_step(optimizer, groups):
        optimizer.step()


# The settings a param group of the fused fast path must have (other values: torch's step).
_FAST_GROUP = {"fused": True, "amsgrad": False, "capturable": False, "differentiable": False}


def _fused_adam_groups(optimizer: torch.optim.Optimizer) -> list[dict] | None:
    """The param groups of ``optimizer`` when its step is exactly torch's fused Adam/AdamW
    kernel on number (not tensor) settings with nothing attached (no step hooks, global or its
    own, no patched ``step``/``zero_grad`` as learning-rate schedulers install, no gradient
    scaler), else None: then its own methods run."""
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return None
    own = vars(optimizer)
    if "step" in own or "zero_grad" in own or "grad_scale" in own or "found_inf" in own:
        return None
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return None
    if (
        _torch_optimizer._global_optimizer_pre_hooks
        or _torch_optimizer._global_optimizer_post_hooks
    ):
        return None
    groups = optimizer.param_groups
    for group in groups:
        if any(group.get(k) != v for k, v in _FAST_GROUP.items()):
            return None
        numbers = (group["lr"], group["weight_decay"], group["eps"], *group["betas"])
        if not all(isinstance(v, (int, float)) for v in numbers):  # not tensors
            return None
    return groups


@torch.no_grad()
def _fused_adam_step(optimizer: torch.optim.Optimizer, groups: list[dict]) -> bool:
    """torch's fused Adam/AdamW step (``torch.optim.adam._fused_adam``) on the parameters
    with a gradient, group by group; False (nothing done) when some such parameter has no
    optimiser state yet, or the group's tensors are not of one device and dtype, or a
    gradient is sparse: ``optimizer.step()`` then runs instead."""
    batches = []
    for group in groups:
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            state = optimizer.state.get(p)
            if not state or grad.is_sparse:
                return False
            params.append(p)
            grads.append(grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if params:
            first = params[0]
            if any(p.device != first.device or p.dtype != first.dtype for p in params):
                return False
            batches.append((group, params, grads, exp_avgs, exp_avg_sqs, steps))
    for group, params, grads, exp_avgs, exp_avg_sqs, steps in batches:
        torch._foreach_add_(steps, 1)
        decoupled = group.get("decoupled_weight_decay", type(optimizer) is torch.optim.AdamW)
        kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        beta1, beta2 = group["betas"]
        kernel(
            params, grads, exp_avgs, exp_avg_sqs, [], steps,
            amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
            grad_scale=None, found_inf=None,
        )  # fmt: skip
    return True


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
