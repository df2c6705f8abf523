"""Results do not depend on the data's units: the shared standardisation (quadratic cost).

Inputs scaled by 1e-30 used to give NOT, ICNN and EgBary samples 1e18-1e28 times wider than
the data. With the standardisation every neural estimator is equivariant under a change of
units (the former code fails this test for 3 of the 8 cases); EgBary, whose epsilon is in
the data's units, refuses an epsilon that makes no sense at the data's scale
(tests/test_energy.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from skbary.base import NeuralBarycenter
from tests.fast_params import estimator_instances

NEURAL = [
    e
    for e in estimator_instances()
    if isinstance(e, NeuralBarycenter) and type(e).__name__ != "EnergyBarycenter"
]


@pytest.mark.parametrize("scale", [1e-30, 1e12])
@pytest.mark.parametrize("est", NEURAL, ids=[type(e).__name__ for e in NEURAL])
def test_fits_are_equivariant_under_a_change_of_units(est, scale):
    """fit(X * s + t) samples and maps s * (what fit(X) gives) + t."""
    rng = np.random.RandomState(0)
    Xs = [rng.randn(80, 2) * 0.5 + 2 * k for k in range(3)]
    shift = np.array([3.0, -1.0]) * scale
    unit = clone(est).set_params(random_state=0).fit(Xs)
    scaled = clone(est).set_params(random_state=0).fit([X * scale + shift for X in Xs])
    Y1, Ys = unit.sample(300, random_state=0), scaled.sample(300, random_state=0)
    assert np.isfinite(Ys).all()
    np.testing.assert_allclose((Ys - shift) / scale, Y1, rtol=1e-3, atol=1e-3)
    T1 = unit.transform(Xs[0][:50], 0)
    Ts = scaled.transform(Xs[0][:50] * scale + shift, 0)
    np.testing.assert_allclose((Ts - shift) / scale, T1, rtol=1e-3, atol=1e-3)
