"""skorch callbacks on skbary's estimators (see :mod:`skbary.training.callbacks`).

``EarlyStopping`` here is skorch's with barycenter defaults (monitor ``train_loss``, patience
in iterations); :class:`HeldOutScoring` writes a held-out score into the history. skorch's
``Checkpoint``, ``LoadInitState``, ``TrainEndCheckpoint``, ``LRScheduler``, ``PrintLog`` and
``EpochTimer`` are used as they are; the module docstring of
:mod:`skbary.training.callbacks` lists what is refused and why.
"""

from .training.callbacks import EarlyStopping, HeldOutScoring

__all__ = ["EarlyStopping", "HeldOutScoring"]
