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


def test_congruent_mean_terms_unbiased_and_linear_in_k():
    # the pooled estimate of sum_k a_k mean_b f_k(y_kb) averages to the exact value, and
    # evaluates the K networks at 2B points each (not K*B)
    import torch

    from skbary.nn.mlp import BatchedMLP
    from skbary.nn.potentials import congruent_mean_terms

    torch.manual_seed(0)
    K, B, d = 10, 32, 3
    g = BatchedMLP(K, d, 1, (16,), "celu")
    a = torch.distributions.Dirichlet(torch.ones(K)).sample()
    y = torch.randn(K, B, d)
    with torch.no_grad():
        exact = (a * congruent_mean_terms(g, a, y, None).mean(1)).sum()
        gen = torch.Generator().manual_seed(0)
        est = torch.stack(
            [(a * congruent_mean_terms(g, a, y, gen).mean(1)).sum() for _ in range(2000)]
        )
    se = est.std() / 2000**0.5
    assert abs(est.mean() - exact) < 4 * se
    assert est.std() > 0  # really an estimate (K > EXACT_MAX_MODELS)
    sizes = []
    g.register_forward_hook(lambda m, inp, out: sizes.append(tuple(inp[0].shape)))
    congruent_mean_terms(g, a, y, torch.Generator().manual_seed(1))
    assert sizes == [(K, 2 * B, d)]
