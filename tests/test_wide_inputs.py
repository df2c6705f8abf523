"""No dense d x d state above 512 features: every estimator fits image-sized rows in
bounded memory (``benchmarks/bench_memory.py`` measures 3 x 500 x 12,288; this checks the
state's shapes on 600 features, which is quick)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from skbary.nn.affine import DENSE_MAX_FEATURES
from tests.fast_params import estimator_instances

D = DENSE_MAX_FEATURES + 88
ESTIMATORS = [e for e in estimator_instances() if type(e).__name__ != "FreeSupportBarycenter"]


def _inputs(n=40, seed=0):
    rng = np.random.RandomState(seed)
    basis = rng.randn(8, D)
    return [(rng.randn(n, 8) + k) @ basis / 3 + 0.1 * rng.randn(n, D) for k in range(3)]


def _sizes(value, seen):
    """Element counts of every tensor/array held by a fitted attribute."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, nn.Module):
        for t in [*value.parameters(), *value.buffers()]:
            yield t.numel(), tuple(t.shape)
        for sub in vars(value).values():  # modules kept outside _modules (skeletons)
            if isinstance(sub, list):
                for item in sub:
                    if isinstance(item, nn.Module):
                        yield from _sizes(item, seen)
    elif isinstance(value, torch.Tensor | np.ndarray):
        yield value.size if isinstance(value, np.ndarray) else value.numel(), tuple(value.shape)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _sizes(item, seen)


@pytest.mark.parametrize("est", ESTIMATORS, ids=[type(e).__name__ for e in ESTIMATORS])
def test_no_d_by_d_state_on_wide_rows(est):
    if type(est).__name__ == "GaussianBarycenter":
        pytest.skip("the closed-form Gaussian barycenter is d x d by definition")
    fitted = clone(est).set_params(random_state=0).fit(_inputs())
    Y = fitted.sample(5)
    assert Y.shape == (5, D) and np.isfinite(Y).all()
    seen: set[int] = set()
    big = [
        (name, shape)
        for name, value in vars(fitted).items()
        for _, shape in _sizes(value, seen)
        if sum(n >= D for n in shape) >= 2  # two axes of the rows' width: d x d
    ]
    assert not big, f"d x d state on {D} features: {big}"
