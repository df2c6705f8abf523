"""Networks the user hands in (skbary.nn.roles), K-copy batching (skbary.nn.stacking), the
shared learning-rate schedules and the diagonal routing model for wide rows."""

from __future__ import annotations

import functools
import pickle
import time

import numpy as np
import pytest
import torch
from torch import nn

from skbary.base import ROUTING_FULL_COVARIANCE_MAX_FEATURES
from skbary.nn import BatchedMLP, Role, StackedModules, build_network
from skbary.training import LRDecay
from skbary.training.optim import LowestSmoothedLoss
from skbary.training.schedules import PhaseProgress
from tests.toy import ToyMeanBarycenter
from tests.user_modules import UserConv, UserMLP, image_inputs

ROLE = Role("map", "the maps T_k", defaults={"hidden_layer_sizes": (8,)})


_default = functools.partial(BatchedMLP, 3, 4, 2)


def _build(spec, settings=None, role=ROLE):
    return build_network(
        "Est",
        role,
        spec,
        settings or {},
        in_features=4,
        out_features=2,
        n_models=3,
        default=_default,
    )


def test_none_builds_the_default_with_its_settings():
    net = _build(None, {"activation": "tanh"})
    assert isinstance(net, BatchedMLP)
    assert net.layers[0].weight.shape == (3, 4, 8)  # role default (8,)
    assert isinstance(net.layers[1], nn.Tanh)


def test_unknown_settings_are_rejected_by_name():
    with pytest.raises(
        TypeError, match="map__hidden_layer_size\\b.*accepted: .*map__hidden_layer_sizes"
    ):
        _build(None, {"hidden_layer_size": (4,)})
    with pytest.raises(TypeError, match="map__widht"):
        _build(UserMLP, {"widht": 3})
    with pytest.raises(TypeError, match="map__typo"):  # a default that takes **kwargs
        build_network(
            "Est",
            ROLE,
            None,
            {"typo": 1},
            in_features=4,
            out_features=2,
            n_models=3,
            default=lambda **kw: BatchedMLP(3, 4, 2, **kw),
        )


@pytest.mark.parametrize(
    "spec",
    [UserMLP, lambda in_features, out_features: UserMLP(in_features, out_features), UserMLP(4, 2)],
    ids=["class", "factory", "instance"],
)
def test_user_modules_become_k_stacked_networks(spec):
    net = _build(spec)
    assert isinstance(net, StackedModules) and net.n_models == 3 and net.vectorised
    x = torch.randn(3, 5, 4)
    out = net(x)
    assert out.shape == (3, 5, 2)
    for k in range(3):
        torch.testing.assert_close(net.forward_one(x[k], k), out[k])
        torch.testing.assert_close(net.unstack(k)(x[k]), out[k])


def test_an_instance_is_copied_never_trained_itself():
    user = UserMLP(4, 2)
    before = {k: v.clone() for k, v in user.state_dict().items()}
    net = _build(user)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(torch.randn(3, 5, 4)).sum().backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in user.state_dict().items())


def test_settings_routed_to_a_class_and_refused_for_an_instance():
    net = _build(UserMLP, {"hidden": 5})
    assert net.stacked["net__0__weight"].shape == (3, 5, 4)
    with pytest.raises(TypeError, match="map__hidden cannot apply.*instance"):
        _build(UserMLP(4, 2), {"hidden": 5})


def test_wrong_output_width_and_non_modules_are_loud():
    with pytest.raises(ValueError, match="2 output features"):
        build_network(
            "Est",
            ROLE,
            UserMLP(4, 3),
            {},
            in_features=4,
            out_features=2,
            n_models=3,
            default=_default,
        )
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        _build(lambda in_features, out_features: "no")
    with pytest.raises(TypeError, match="must be None, a torch.nn.Module"):
        _build(3)


def test_convex_roles_refuse_modules_not_marked_input_convex():
    convex = Role("f", "the convex potentials", convex=True)
    with pytest.raises(TypeError, match="must be input-convex"):
        _build(UserMLP, role=convex)


def test_stacked_convolutional_network_matches_its_copies_and_pickles():
    nets = [UserConv(256, 3) for _ in range(3)]
    stacked = StackedModules(nets, probe=torch.zeros(2, 256))
    x = torch.as_tensor(np.stack([m[:4] for m in image_inputs(4)]), dtype=torch.float32)
    out = stacked(x)
    for k in range(3):
        torch.testing.assert_close(out[k], nets[k](x[k]), rtol=1e-4, atol=1e-5)
    again = pickle.loads(pickle.dumps(stacked))
    torch.testing.assert_close(again(x), out)


def test_modules_vmap_cannot_batch_fall_back_to_a_loop():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, x):
            if x.sum() > 0:  # Python control flow on a value: vmap cannot batch it
                return self.lin(x)
            return -self.lin(x)

    nets = [DataDependent() for _ in range(3)]
    stacked = StackedModules(nets, probe=torch.ones(2, 4))
    assert not stacked.vectorised
    x = torch.randn(3, 5, 4)
    for k in range(3):
        torch.testing.assert_close(stacked(x)[k], nets[k](x[k]))


def _inputs(seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randn(200, 3) + np.array([k, -k, 2 * k]) for k in range(3)]


def test_toy_trains_the_users_module_and_samples_from_it():
    class Shift(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.lin = nn.Linear(in_features, out_features, bias=False)

        def forward(self, x):
            return self.lin(x)

    user = Shift(1, 3)
    start = user.lin.weight.detach().clone()
    est = ToyMeanBarycenter(shift=user, max_iter=300, random_state=0).fit(_inputs())
    assert isinstance(est.shift_, Shift) and est.shift_ is not user
    assert torch.equal(user.lin.weight, start)  # the parameter itself is never trained
    assert not torch.equal(est.shift_.lin.weight.cpu(), start)
    Y = est.sample(20000, random_state=0)
    target = np.mean([X.mean(0) for X in _inputs()], axis=0)
    assert np.abs(Y.mean(0) - target).max() < 0.05
    with torch.no_grad():  # the samples come from the fitted module (in standard units)
        est.shift_.lin.weight.add_(1.0)
    moved = est.sample(20000, random_state=0).mean(0) - Y.mean(0)
    np.testing.assert_allclose(moved, est.scale_, rtol=1e-5)


def test_lr_decay_curves_and_time_progress():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    lin = LRDecay([opt], 0.1, "linear", 10, None)
    lin.update(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.55)
    geo = LRDecay([opt], 0.01, "geometric", 10, None)
    geo.update(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.55 * 0.1)
    timed = LRDecay([opt], 0.0 + 1e-9, "linear", 10**9, time.perf_counter() + 0.2)
    time.sleep(0.25)
    timed.update(1)
    assert opt.param_groups[0]["lr"] < 1e-6
    with pytest.raises(ValueError, match="lr_schedule"):
        LRDecay([opt], 0.5, "cosine", 10, None)


def test_routing_of_wide_rows_keeps_no_dense_covariance():
    d = ROUTING_FULL_COVARIANCE_MAX_FEATURES + 1
    rng = np.random.RandomState(0)
    Xs = [rng.randn(40, d) * (1 + k) + 3 * k for k in range(3)]
    est = ToyMeanBarycenter(max_iter=2).fit(Xs)
    assert est._input_chols.shape == (3, d)  # diagonal scales, not (3, d, d)
    guess = est._guess_inputs(np.concatenate([X[:10] for X in Xs]))
    np.testing.assert_array_equal(guess, np.repeat(np.arange(3), 10))


def test_lowest_smoothed_loss_skips_the_first_half_and_smooths_the_noise():
    n = 200
    rng = np.random.default_rng(0)
    # low at the start (nothing learned yet), a valley at 120, a rise after it, and noise
    # that puts single-iteration minima elsewhere
    t = np.arange(n)
    trend = np.where(t < 10, 0.1, 1.0 + ((t - 120) / 60.0) ** 2)
    loss = trend + rng.normal(0, 0.3, n)
    keep = LowestSmoothedLoss(0.9, 0.5, PhaseProgress(n, None))
    for i in range(n):
        keep.update(i, loss[i], lambda i=i: i)
    assert keep.best == keep.best_iteration
    assert keep.best_iteration >= n // 2 - 1 and abs(keep.best_iteration - 120) <= 15
    # with no competing iterate (a phase stopped before its second half), nothing is kept
    early = LowestSmoothedLoss(0.9, 0.5, PhaseProgress(n, None))
    for i in range(n // 2 - 1):
        early.update(i, loss[i], lambda: "snapshot")
    assert early.best is None and early.best_iteration is None
    # nor in a phase shorter than twice the smoothing's span (decay 0.9: 20 iterations)
    short = LowestSmoothedLoss(0.9, 0.5, PhaseProgress(19, None))
    for i in range(19):
        short.update(i, loss[i], lambda: "snapshot")
    assert short.min_count == 20 and short.best is None
