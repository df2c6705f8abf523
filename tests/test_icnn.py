"""ICNNBarycenter (NWB-I / NWB-II, Fan et al. 2021) and the batched input-convex blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skbary import ICNNBarycenter
from skbary.bures import bures_barycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import bw_uvp, l2_uvp
from skbary.nn.picnn import BatchedICNN

# small budget used by the fits below: networks narrow, inner loops short
SMALL = {
    "f__hidden_layer_sizes": (16, 16),
    "g__hidden_layer_sizes": (16, 16),
    "generator__hidden_layer_sizes": (16,),
    "batch_size": 128,
}


# ------------------------------------------------------------------ blocks
@pytest.mark.parametrize("context", [0, 3])
@pytest.mark.parametrize("activation", ["celu", "softplus"])
def test_explicit_gradient_matches_autograd(context, activation):
    torch.manual_seed(0)
    net = BatchedICNN(3, 4, (8, 5), context_features=context, activation=activation).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(3, 7, 4, dtype=torch.float64, requires_grad=True)
    ctx = torch.rand(7, context, dtype=torch.float64) if context else None
    value = net(x, ctx)
    (auto,) = torch.autograd.grad(value.sum(), x)
    v2, manual = net.value_and_gradient(x, ctx)
    torch.testing.assert_close(v2, value)
    torch.testing.assert_close(manual, auto)
    # one potential alone
    v1, g1 = net.value_and_gradient(x[2:3].detach(), ctx, index=2)
    torch.testing.assert_close(g1, auto[2:3])
    torch.testing.assert_close(v1, value[2:3].detach())
    # the explicit gradient is differentiable in the weights (second order, as the g step)
    (a,) = torch.autograd.grad(
        (torch.autograd.grad(net(x, ctx).sum(), x, create_graph=True)[0] ** 2).sum(), net.Wx[0]
    )
    (b,) = torch.autograd.grad((net.gradient(x, ctx) ** 2).sum(), net.Wx[0])
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("context", [0, 2])
def test_clipped_network_is_convex_in_x_for_every_context(context):
    torch.manual_seed(1)
    net = BatchedICNN(2, 3, (16, 16), context_features=context).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))  # z-weights go negative
    assert not net.is_convex()
    assert net.convexity_penalty() > 0
    net.clip_()
    assert net.is_convex()
    assert float(net.convexity_penalty().detach()) == 0.0
    x0 = torch.randn(2, 500, 3, dtype=torch.float64) * 3
    x1 = torch.randn(2, 500, 3, dtype=torch.float64) * 3
    ctx = torch.randn(500, context, dtype=torch.float64) * 3 if context else None
    for t in (0.25, 0.5, 0.8):
        mid = net((1 - t) * x0 + t * x1, ctx)
        chord = (1 - t) * net(x0, ctx) + t * net(x1, ctx)
        assert torch.all(mid <= chord + 1e-9)


# ------------------------------------------------------------------ estimator
@pytest.fixture(scope="module")
def bench2():
    return make_location_scatter(
        4, 2, 4000, weights=[0.1, 0.2, 0.3, 0.4], means="random", random_state=0
    )


@pytest.fixture(scope="module")
def fitted2(bench2):
    est = ICNNBarycenter(max_iter=120, random_state=0, **SMALL)
    return est.fit(bench2.marginals, bench2.weights)


def test_nwb1_learns_the_gaussian_barycenter(bench2, fitted2):
    Y = fitted2.sample(20000, random_state=0)
    start = bw_uvp(
        np.random.RandomState(0).randn(20000, 2) * fitted2.scale_ + fitted2.shift_,
        bench2.barycenter_mean,
        bench2.barycenter_cov,
    )
    err = bw_uvp(Y, bench2.barycenter_mean, bench2.barycenter_cov)
    assert err < 1.0, (start, err)
    assert err < start / 3
    assert fitted2.n_iter_ == 120 and fitted2.stop_reason_ == {"train": "max_iter"}
    assert {"g", "f", "h"} <= set(fitted2.history_[-1])


def test_maps_follow_the_true_maps(bench2, fitted2):
    S = bench2.barycenter_cov
    for k in range(4):
        X = bench2.marginals[k][:2000]
        err = l2_uvp(fitted2.transform(X, k), bench2.map_to_barycenter(X, k), S)
        assert err < 10.0, (k, err)
    # grad f_k carries barycenter points back to input k (in law: its covariance)
    Yb = bench2.sample_barycenter(4000, random_state=1)
    back = fitted2.inverse_transform(Yb, 3)
    rel = np.linalg.norm(np.cov(back.T) - bench2.marginal_covs[3]) / np.linalg.norm(
        bench2.marginal_covs[3]
    )
    assert rel < 0.2


def test_f_stays_convex_after_fit(fitted2):
    assert fitted2.f_.is_convex()


def test_weights_keyword_only_for_free_weights(fitted2, bench2):
    X = bench2.marginals[0][:5]
    with pytest.raises(ValueError, match="free_weights"):
        fitted2.sample(5, weights=[0.25] * 4)
    with pytest.raises(ValueError, match="free_weights"):
        fitted2.transform(X, 0, weights=[0.25] * 4)
    with pytest.raises(ValueError, match="free_weights"):
        fitted2.inverse_transform(X, 0, weights=[0.25] * 4)


def test_max_time_bounds_the_fit(bench2):
    est = ICNNBarycenter(max_iter=10**6, max_time=2.0, random_state=0, **SMALL)
    est.fit(bench2.marginals, bench2.weights)
    assert est.fit_time_ < 3.0
    assert est.stop_reason_ == {"train": "max_time"}
    assert est.n_iter_ == len(est.history_)


def test_bad_parameters_raise_before_training(bench2):
    for params, match in [
        ({"g_steps": 0}, "g_steps"),
        ({"lr": -1.0}, "lr"),
        ({"lr_decay": 0.0}, "lr_decay"),
        ({"free_weights": "yes"}, "free_weights"),
        ({"free_weights": True, "weight_distribution": "beta"}, "weight_distribution"),
        (
            {
                "free_weights": True,
                "weight_distribution": "dirichlet",
                "weight_concentration": [1, 2],
            },
            "weight_concentration",
        ),
        ({"f__width": 3}, "f__"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            ICNNBarycenter(max_iter=1, **params).fit(bench2.marginals[:3])


def test_nested_parameters_shape_the_networks(bench2):
    est = ICNNBarycenter(max_iter=2, random_state=0, **SMALL)
    est.set_params(g__hidden_layer_sizes=(5, 6, 7), f__quadratic=False)
    assert est.get_params()["g__hidden_layer_sizes"] == (5, 6, 7)
    est.fit(bench2.marginals[:2])
    assert est.g_.hidden_layer_sizes == (5, 6, 7)
    assert not est.f_.quadratic and est.g_.quadratic
    assert clone(est).get_params()["f__quadratic"] is False


def test_divergence_names_the_network_and_the_remedy(bench2):
    from skbary import TrainingDivergedError

    X = [m * 1e30 for m in bench2.marginals[:2]]
    X[0][0, 0] = np.float32(3e38)
    est = ICNNBarycenter(max_iter=60, lr=1e6, random_state=0, **SMALL)
    with pytest.raises(TrainingDivergedError, match="lr"):
        est.fit(X)


# ------------------------------------------------------------------ NWB-II
@pytest.fixture(scope="module")
def free3():
    bench = make_location_scatter(3, 2, 4000, means="random", random_state=3)
    est = ICNNBarycenter(free_weights=True, max_iter=200, random_state=0, **SMALL)
    return bench, est.fit(bench.marginals)


@pytest.mark.parametrize("a", [(0.6, 0.2, 0.2), (0.1, 0.1, 0.8), (0.2, 0.7, 0.1)])
def test_nwb2_serves_any_weight_vector(free3, a):
    bench, est = free3
    S = bures_barycenter(bench.marginal_covs, a)
    m = np.asarray(a) @ bench.marginal_means
    Y = est.sample(20000, random_state=0, weights=a)
    err = bw_uvp(Y, m, S)
    # the barycenter of the default (uniform) weights is a worse answer for a
    other = bw_uvp(est.sample(20000, random_state=0), m, S)
    assert err < 5.0 and err < other, (err, other)


def test_nwb2_maps_depend_on_the_weights(free3):
    bench, est = free3
    X = bench.marginals[0][:500]
    a, b = (0.8, 0.1, 0.1), (0.1, 0.1, 0.8)
    Ta, Tb = est.transform(X, 0, weights=a), est.transform(X, 0, weights=b)
    # input 0 barely moves when it dominates the barycenter
    assert np.mean(np.sum((Ta - X) ** 2, 1)) < np.mean(np.sum((Tb - X) ** 2, 1))
    np.testing.assert_allclose(est.transform(X, 0), est.transform(X, 0, weights=[1 / 3] * 3))
    assert est.inverse_transform(X, 2, weights=a).shape == X.shape
    with pytest.raises(ValueError, match="length"):
        est.sample(5, weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="sum"):
        est.transform(X, 0, weights=[0.5, 0.5, 0.5])
