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

import os
import sys
import warnings

__all__ = ["TrainingDivergedError", "NotLearnedError", "DiscreteSampleWarning", "warn_caller"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite during fit; the message names the network and a remedy."""


class NotLearnedError(RuntimeError):
    """The fitted model did not learn what was asked (the message says which setting does)."""


class DiscreteSampleWarning(UserWarning):
    """``sample(n)`` asked for more points than the fitted barycenter has distinct ones."""


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the first frame outside skbary and scikit-learn.

    A warning raised deep in ``fit`` then names the line of the user's code that called it
    (directly, or through a Pipeline or a search), whatever the path through the package.
    """
    import sklearn

    inside = tuple(  # the directories, not every path sharing their prefix
        os.path.join(d, "") for d in (_PACKAGE, os.path.dirname(os.path.abspath(sklearn.__file__)))
    )
    level, frame = 1, sys._getframe(0)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(inside):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
