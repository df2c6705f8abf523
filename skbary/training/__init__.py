"""The training machinery every neural estimator shares.

* :mod:`~skbary.training.loop` -- :class:`TrainingLoop`: phases, history, callbacks,
  progress, time limits, NaN checks.
* :mod:`~skbary.training.sources` -- :class:`MarginalBatches`: minibatches of the K inputs.
* :mod:`~skbary.training.schedules` -- :class:`LRDecay`: the learning-rate schedules.
* :mod:`~skbary.training.device` -- device resolution and CPU thread count.
* :mod:`~skbary.training.optim` -- ``descend`` (one optimiser step) and ``frozen`` players.
* :mod:`~skbary.training.interrupts` -- :class:`InterruptGuard`: Ctrl-C stops the whole fit.
* :mod:`~skbary.training.callbacks` -- which skorch callbacks work, which are refused and
  why; :class:`EarlyStopping` (``train_loss``) and :class:`HeldOutScoring`.
* :mod:`~skbary.training.state` -- skorch's net surface (``history``, ``module_``,
  ``optimizer_``, ``save_params``/``load_params``), warm starts, ``partial_fit`` and the
  validation split.
"""

from ..exceptions import TrainingDivergedError
from .device import float32_default, resolve_device, torch_threads
from .loop import UNBOUNDED, StepFn, TrainingLoop, iteration_budget, train_module
from .schedules import LR_SCHEDULES, LRDecay
from .sources import MarginalBatches

__all__ = [
    "LR_SCHEDULES",
    "LRDecay",
    "MarginalBatches",
    "StepFn",
    "TrainingDivergedError",
    "TrainingLoop",
    "UNBOUNDED",
    "iteration_budget",
    "float32_default",
    "resolve_device",
    "torch_threads",
    "train_module",
]
