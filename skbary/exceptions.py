"""The exceptions skbary raises, one type per situation.

* :class:`TrainingDivergedError` -- a loss became NaN or infinite during fit; the message
  names the network and a remedy. The estimator is left as it was before the call.
* :class:`NotLearnedError` -- a fitted estimator was asked for something its fit did not
  learn (``transform`` of a model fitted with ``learn_transform=False``, say).
* :class:`DiscreteSampleWarning` -- ``sample(n)`` asked for more points than the fitted
  model has distinct ones (a method that pushes its finite training rows, a discrete
  barycenter): the draws repeat points.
* Bad hyperparameters raise scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and
  ``TypeError``) at the start of ``fit``; bad data raise ``ValueError``/``TypeError``; an
  unfitted estimator raises scikit-learn's ``NotFittedError``.
"""

from __future__ import annotations

__all__ = ["TrainingDivergedError", "NotLearnedError", "DiscreteSampleWarning"]


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite during fit; the message names the network and a remedy."""


class NotLearnedError(RuntimeError):
    """The fitted model did not learn what was asked (the message says which setting does)."""


class DiscreteSampleWarning(UserWarning):
    """``sample(n)`` asked for more points than the fitted barycenter has distinct ones."""
