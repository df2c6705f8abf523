"""Model selection for barycenters: what scikit-learn's own tools need, and one helper.

GridSearchCV, cross_val_score and every splitter take one array of rows. Use the flat form
``fit(X, y)`` (``X, y = skbary.stack(marginals)``, y the input of each row) and split with
``StratifiedKFold(n_splits, shuffle=True)``: stratifying on y puts rows of *every* input in
each training fold and each held-out fold, in proportion. A plain ``KFold`` on rows stacked
input after input would leave an input out of a fold entirely. Score with the scorers of
:mod:`skbary.scorers`: the barycenter cost needs no truth; the others compare with a
benchmark of :mod:`skbary.datasets`. ::

    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from skbary.scorers import barycenter_cost_scorer

    X, y = skbary.stack(marginals)
    search = GridSearchCV(
        GaussianBarycenter(weights=w), {"shrinkage": [0.0, 0.5, 0.9]},
        scoring=barycenter_cost_scorer, cv=StratifiedKFold(3, shuffle=True),
    ).fit(X, y)

:func:`train_test_split_marginals` is the list-form counterpart of ``train_test_split``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

__all__ = ["train_test_split_marginals"]


def train_test_split_marginals(
    marginals: Sequence[ArrayLike],
    test_size: float | int = 0.25,
    random_state=None,
) -> tuple[list[NDArray], list[NDArray]]:
    """Split the rows of every input into a training part and a held-out part.

    Parameters
    ----------
    marginals : sequence of array-like of shape (n_k, d)
        One sample per input.
    test_size : float or int, default=0.25
        Held-out fraction (float in (0, 1)) or number of rows (int) of *each* input.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles (one draw per input from this generator).

    Returns
    -------
    train, test : lists of ndarray
        ``train[k]`` and ``test[k]`` partition the rows of input k.
    """
    if len(marginals) == 0:
        raise ValueError("marginals must hold at least one input.")
    rng = check_random_state(random_state)
    train, test = [], []
    for k, Xk in enumerate(marginals):
        Xk = np.asarray(Xk)
        if Xk.ndim != 2:
            raise ValueError(f"marginals[{k}] must be 2-D, got shape {Xk.shape}.")
        tr, te = train_test_split(Xk, test_size=test_size, random_state=rng.randint(2**31 - 1))
        train.append(tr)
        test.append(te)
    return train, test
