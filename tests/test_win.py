"""WINBarycenter: accuracy on a location-scatter task with a known barycenter, and its options."""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

from skbary import GaussianBarycenter, NotLearnedError, TrainingDivergedError, WINBarycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import bw_uvp, weighted_l2_uvp
from skbary.nn.init import last_linear
from skbary.nn.potentials import WithQuadratic
from tests.user_modules import (
    LastTransformAverage,
    UserConv,
    UserMLP,
    image_inputs,
    params_changed,
    transform_quantile_frames,
)

SMALL = {
    "batch_size": 128,
    "n_potential_steps": 10,
    "n_generator_steps": 10,
    "n_map_steps": 3,
    "generator__hidden_layer_sizes": (32, 32),
    "inverse_map__hidden_layer_sizes": (32, 32),
    "map__hidden_layer_sizes": (32, 32),
    "potential__hidden_layer_sizes": (32, 32),
}


@pytest.fixture(scope="module")
def bench():
    return make_location_scatter(4, 2, 5000, weights=[0.1, 0.2, 0.3, 0.4], random_state=0)


@pytest.fixture(scope="module")
def fitted(bench):
    torch.set_num_threads(1)
    est = WINBarycenter(max_iter=25, transform_max_iter=400, random_state=0, **SMALL)
    return est.fit(bench.marginals, bench.weights)


def test_accuracy_location_scatter(fitted, bench):
    # Start (G = identity in standardised coordinates): BW2-UVP 8.9 %.
    Y = fitted.sample(20000)
    bw = bw_uvp(Y, bench.barycenter_mean, bench.barycenter_cov)
    assert bw < 1.5, bw
    l2 = weighted_l2_uvp(fitted, bench, bench.sample_marginals(5000, random_state=1))
    assert l2["l2_uvp_weighted"] < 4.0, l2
    # inverse_transform is T_k: barycenter -> input k.
    Z = bench.sample_barycenter(5000, random_state=2)
    err = [
        np.mean(np.sum((fitted.inverse_transform(Z, k) - bench.map_from_barycenter(Z, k)) ** 2, 1))
        for k in range(4)
    ]
    inv = 100 * float(np.dot(bench.weights, err)) / np.trace(bench.barycenter_cov)
    assert inv < 4.0, inv
    assert fitted.n_iter_ == 25 and fitted.n_transform_iter_ == 400
    assert set(fitted.stop_reason_) == {"barycenter", "transform"}
    rows = fitted.history_
    assert {"potential", "inverse_map", "generator"} <= set(rows[0])
    assert {"transform_potential", "transform_map"} <= set(rows[-1])


def test_sample_from_maps_and_repeatable(fitted, bench):
    Y1 = fitted.sample(500, random_state=3)
    np.testing.assert_array_equal(Y1, fitted.sample(500, random_state=3))
    est = WINBarycenter(**{**fitted.get_params(), "sample_from": "maps"})
    est.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    Ym = est.sample(500, random_state=3)
    assert Ym.shape == (500, 2) and not np.allclose(Ym, Y1)


def test_repeatable_fit(bench):
    kw = dict(max_iter=2, transform_max_iter=3, random_state=5, **SMALL)
    a = WINBarycenter(**kw).fit(bench.marginals, bench.weights)
    b = WINBarycenter(**kw).fit(bench.marginals, bench.weights)
    np.testing.assert_allclose(a.sample(50), b.sample(50))
    np.testing.assert_allclose(
        a.transform(bench.marginals[1][:20], 1), b.transform(bench.marginals[1][:20], 1)
    )


def test_skip_transform_and_max_time(bench):
    est = WINBarycenter(max_iter=10_000, max_time=3.0, learn_transform=False, **SMALL)
    t = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    assert time.perf_counter() - t < 4.5
    assert est.stop_reason_ == {"barycenter": "max_time"}
    assert est.sample(10).shape == (10, 2)
    with pytest.raises(NotLearnedError, match="learn_transform"):
        est.transform(bench.marginals[0][:5], 0)
    est = WINBarycenter(max_iter=10_000, transform_max_iter=10**6, max_time=3.0, **SMALL)
    t = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    assert time.perf_counter() - t < 4.5
    assert est.stop_reason_ == {"barycenter": "max_time", "transform": "max_time"}


def test_callable_regression_loss_gets_data_coordinates(bench):
    seen = []

    def loss(pred, target):
        seen.append(float(target.mean(0).norm()))
        return ((pred - target) ** 2).sum(-1).mean()

    est = WINBarycenter(max_iter=1, regression_loss=loss, learn_transform=False, **SMALL)
    est.set_params(n_generator_steps=3)
    Xs = [m + 10.0 for m in bench.marginals]
    est.fit(Xs, bench.weights)
    assert len(seen) == 3 and min(seen) > 10  # targets live around the data mean (10, 10)


def test_diverged_generator_names_its_learning_rate(bench):
    def nan_loss(pred, target):
        return (pred * float("nan")).sum()

    est = WINBarycenter(max_iter=2, regression_loss=nan_loss, learn_transform=False, **SMALL)
    with pytest.raises(TrainingDivergedError, match="lr_generator"):
        est.fit(bench.marginals, bench.weights)


@pytest.mark.parametrize(
    "param",
    [
        {"sample_from": "both"},
        {"transform_time_fraction": 1.5},
        {"n_map_steps": 0},
        {"lr_map": -1.0},
        {"regression_loss": "l1"},
        {"latent_dim": 0},
        {"lr_schedule": "cosine"},
        {"generator": 3},
        {"init": "zero"},
        {"lr_potential": "fast"},
    ],
)
def test_bad_parameters(param, bench):
    with pytest.raises(ValueError, match=next(iter(param))):
        WINBarycenter(**param).fit(bench.marginals, bench.weights)


def test_latent_dimension(bench):
    est = WINBarycenter(latent_dim=5, max_iter=2, learn_transform=False, **SMALL)
    est.fit(bench.marginals, bench.weights)
    assert est.sample(7).shape == (7, 2)


def test_lr_decay_applies_to_every_optimiser(bench):
    made = []

    class SpyAdam(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            made.append(self)

    est = WINBarycenter(
        max_iter=2, transform_max_iter=2, lr_decay=0.1, optimizer=SpyAdam, random_state=0, **SMALL
    ).fit(bench.marginals, bench.weights)
    # linear schedule: the last of 2 iterations runs at 1 - 0.9 * 1/2 of every rate
    assert len(made) == 5 and est.n_transform_iter_ == 2
    for opt in made:
        assert opt.param_groups[0]["lr"] == pytest.approx(0.55e-3)


# ---------------------------------------------------------------------- network roles
FAST = {
    "max_iter": 2,
    "n_potential_steps": 2,
    "n_generator_steps": 2,
    "n_map_steps": 1,
    "transform_max_iter": 3,
    "batch_size": 32,
    "random_state": 0,
}


class RecordingWIN(WINBarycenter):
    """Keeps a copy of every role network's state as built, before training."""

    def _build_networks(self, n_marginals, n_features):
        super()._build_networks(n_marginals, n_features)
        self.initial_ = {
            role: [copy.deepcopy(net.state_dict()) for net in role_networks(self, role)]
            for role in WINBarycenter._roles
        }


def role_networks(est, role):
    """The fitted networks of a role (the potentials: one stack per solver)."""
    return {
        "generator": [est.generator_],
        "inverse_map": [est.inverse_maps_.map],
        "map": [est.maps_.map],
        "potential": [est.inverse_maps_.potential, est.maps_.potential],
    }[role]


@pytest.fixture(scope="module")
def images():
    return image_inputs(40)


@pytest.mark.parametrize("role", list(WINBarycenter._roles))
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_user_module_trains_as_role(role, kind, bench, images):
    torch.set_num_threads(1)
    if kind == "mlp":
        Xs, module, settings = bench.marginals, UserMLP, {f"{role}__hidden": 16}
    else:
        Xs, module, settings = images, UserConv, {}
    est = RecordingWIN(**{role: module}, **settings, **FAST).fit(Xs)
    nets = role_networks(est, role)
    for net, initial in zip(nets, est.initial_[role], strict=True):
        assert params_changed(net, initial)
    if kind == "mlp":
        first = nets[0] if role == "generator" else nets[0].unstack(0)
        assert first.net[0].out_features == 16  # role__hidden reached the module
    c, s = est.center_, est.scale_
    X = Xs[1][:7]
    x = torch.as_tensor((X - c) / s, dtype=torch.float32, device=est.device_)  # model coords

    def numpy(t):
        return t.detach().cpu().numpy()

    if role == "map":  # transform is the user's network k, used as given
        np.testing.assert_allclose(
            est.transform(X, 1), numpy(nets[0].unstack(1)(x)) * s + c, atol=1e-4
        )
    elif role == "inverse_map":
        np.testing.assert_allclose(
            est.inverse_transform(X, 1), numpy(nets[0].unstack(1)(x)) * s + c, atol=1e-4
        )
    elif role == "generator":  # G's last layer set to a constant b: samples are b
        with torch.no_grad():
            last = last_linear(est.generator_)
            last.weight.zero_()
            last.bias.fill_(0.5)
        np.testing.assert_allclose(est.sample(5), np.full((5, X.shape[1]), 0.5 * s) + c, atol=1e-5)
    else:  # both solvers evaluate the user's potentials
        for solver in (est.inverse_maps_, est.maps_):
            v = solver.potential_value(x.expand(solver.n_problems, *x.shape))[1]
            by_hand = solver.potential.unstack(1)(x)[:, 0]
            # (K at once vs network k alone: on a GPU, convolution kernels may differ)
            np.testing.assert_allclose(numpy(v), numpy(by_hand), rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("role", list(WINBarycenter._roles))
def test_unknown_role_setting_and_instance_with_settings_are_rejected(role, bench):
    with pytest.raises(TypeError, match=f"{role}__typo"):
        WINBarycenter(**{f"{role}__typo": 1}, **FAST).fit(bench.marginals)
    with pytest.raises(TypeError, match=f"{role}__hidden.*instance"):
        WINBarycenter(**{role: UserMLP(2, 2), f"{role}__hidden": 16}, **FAST).fit(bench.marginals)


def test_default_maps_take_quantile_features_when_auto_applies(bench):
    # Algorithm 2's maps start from input k's own rows: "auto" feeds them the normal scores
    # along the data axes and input k's independent components (NOT's rule: the quadratic
    # cost, at most QUANTILE_AUTO_MAX_FEATURES features); Algorithm 1's maps start from
    # G#S, which moves, and never take them
    from skbary.nn.maps import QUANTILE_AUTO_MAX_FEATURES

    fast = dict(max_iter=1, transform_max_iter=2, random_state=0, **SMALL)
    est = WINBarycenter(**fast).fit(bench.marginals, bench.weights)
    assert transform_quantile_frames(est) == ["axes", "ica"]
    assert not hasattr(est.inverse_maps_.map.net, "quantiles")
    q = est.maps_.map.net.quantiles[0]
    assert bool(q.is_set)
    rows = (bench.marginals[2] - est.center_) / est.scale_  # the networks' coordinates
    z = q.forward_one(torch.as_tensor(rows, dtype=torch.float32), 2)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
    # rows [x, z_axes(x), z_ica(x)] into the MLP
    assert est.maps_.map.net.mlp.layers[0].weight.shape == (4, 2 + 2 + 2, 32)
    knots = q.knots.clone()
    est.set_params(warm_start=True).fit(bench.marginals, bench.weights)
    assert torch.equal(est.maps_.map.net.quantiles[0].knots, knots)  # kept on a warm start

    off = WINBarycenter(**fast, map__quantile_features=False).fit(bench.marginals, bench.weights)
    assert transform_quantile_frames(off) is None
    axes = WINBarycenter(**fast, map__quantile_features="axes").fit(bench.marginals, bench.weights)
    assert transform_quantile_frames(axes) == ["axes"]
    d = QUANTILE_AUTO_MAX_FEATURES + 1  # above the rule's dimension: none
    wide = make_location_scatter(2, d, 300, random_state=0)
    est = WINBarycenter(**fast).fit(wide.marginals, wide.weights)
    assert transform_quantile_frames(est) is None
    with pytest.raises(ValueError, match="map__quantile_features"):
        WINBarycenter(**fast, map__quantile_features="pca").fit(bench.marginals, bench.weights)


def test_transform_maps_are_the_average_of_their_iterates(bench):
    seen = LastTransformAverage()
    est = WINBarycenter(
        max_iter=2, transform_max_iter=30, random_state=0, callbacks=[seen], **SMALL
    ).fit(bench.marginals, bench.weights)
    kept = list(est.maps_.map.parameters())
    assert all(torch.equal(p, a) for p, a in zip(kept, seen.average))
    assert not hasattr(est, "_ema")
    plain = WINBarycenter(
        max_iter=2, transform_max_iter=30, random_state=0, ema_decay=0.0, **SMALL
    ).fit(bench.marginals, bench.weights)
    assert not all(torch.equal(p, q) for p, q in zip(kept, plain.maps_.map.parameters()))
    # the generator and Algorithm 1's maps do not depend on it
    for p, q in zip(est.generator_.parameters(), plain.generator_.parameters()):
        assert torch.equal(p, q)


class RawGenerators(Callback):
    """The raw G after every outer iteration of Algorithm 1 (what the average is taken of)."""

    def __init__(self):
        self.start, self.iterates = None, []

    def on_train_begin(self, net, **kwargs):
        if self.start is None:  # Algorithm 1 is the first phase
            self.start = [p.detach().clone() for p in net.generator_.parameters()]

    def on_epoch_end(self, net, **kwargs):
        if net.history[-1]["phase"] == "barycenter":
            self.iterates.append([p.detach().clone() for p in net.generator_.parameters()])


def test_generator_is_the_warmed_up_average_of_the_outer_iterates(bench):
    seen = RawGenerators()
    decay = 0.9
    est = WINBarycenter(
        max_iter=12, learn_transform=False, random_state=0, generator_ema_decay=decay,
        generator_selection="last", callbacks=[seen], **SMALL,
    ).fit(bench.marginals, bench.weights)  # fmt: skip
    average = seen.start
    for t, iterate in enumerate(seen.iterates):
        d = min(decay, (1 + t) / (10 + t))
        average = [d * a + (1 - d) * p for a, p in zip(average, iterate)]
    assert len(seen.iterates) == 12
    for p, a in zip(est.generator_.parameters(), average):
        torch.testing.assert_close(p, a)
    # 0 keeps the last iterate (the paper's G); the raw iterates are the same either way
    last = WINBarycenter(
        max_iter=12, learn_transform=False, random_state=0, generator_ema_decay=0.0,
        generator_selection="last", **SMALL,
    ).fit(bench.marginals, bench.weights)  # fmt: skip
    for p, q in zip(last.generator_.parameters(), seen.iterates[-1]):
        assert torch.equal(p, q)
    assert not all(
        torch.equal(p, q) for p, q in zip(est.generator_.parameters(), seen.iterates[-1])
    )


def test_default_potentials_hold_a_quadratic_form(bench):
    est = WINBarycenter(max_iter=2, transform_max_iter=2, random_state=0, **SMALL)
    est.fit(bench.marginals, bench.weights)
    # "auto": Algorithm 2's default potentials, not Algorithm 1's
    assert isinstance(est.maps_.potential, WithQuadratic)
    assert est.maps_.potential.A.abs().sum() > 0  # trained, from zero
    assert not isinstance(est.inverse_maps_.potential, WithQuadratic)
    both = est.set_params(potential__quadratic=True).fit(bench.marginals, bench.weights)
    assert all(isinstance(s.potential, WithQuadratic) for s in (both.maps_, both.inverse_maps_))
    plain = est.set_params(potential__quadratic=False).fit(bench.marginals, bench.weights)
    assert not isinstance(plain.maps_.potential, WithQuadratic)
    small = {k: v for k, v in SMALL.items() if not k.startswith("potential__")}
    user = WINBarycenter(potential=UserMLP, max_iter=1, transform_max_iter=1, **small)
    user.fit(bench.marginals, bench.weights)  # "auto": a user's network is used as given
    assert not isinstance(user.maps_.potential, WithQuadratic)
    with pytest.raises(ValueError, match="potential__quadratic"):
        est.set_params(potential__quadratic="yes").fit(bench.marginals, bench.weights)


def test_generator_kept_is_the_lowest_smoothed_residual_of_the_second_half(bench):
    seen = RawGenerators()
    n = 120  # iterates compete from the second half and from the 100th (2 / (1 - 0.98))
    cheap = {**SMALL, "n_potential_steps": 2, "n_generator_steps": 2, "n_map_steps": 1}
    est = WINBarycenter(
        max_iter=n, learn_transform=False, random_state=0, generator_ema_decay=0.0,
        callbacks=[seen], **cheap,
    ).fit(bench.marginals, bench.weights)  # fmt: skip
    # the rule, recomputed from the history: Adam-style bias-corrected EMA of the residual
    residual = [row["generator"] for row in est.history_ if row["phase"] == "barycenter"]
    mean, smoothed = 0.0, []
    for t, r in enumerate(residual, 1):
        mean = 0.98 * mean + 0.02 * r
        smoothed.append(mean / (1 - 0.98**t))
    first = max(n // 2 - 1, 99)
    j = first + int(np.argmin(smoothed[first:]))
    assert j < n - 1  # this run's residual is lowest before its end: a restore happened
    assert est.generator_iter_ == j + 1 and est.n_iter_ == n
    for p, q in zip(est.generator_.parameters(), seen.iterates[j]):
        assert torch.equal(p, q)
    # "last" keeps the last iterate; so does a fit too short for the smoothing to rank
    last = est.set_params(generator_selection="last", callbacks=None)
    last.fit(bench.marginals, bench.weights)
    assert last.generator_iter_ == n
    for p, q in zip(last.generator_.parameters(), seen.iterates[-1]):
        assert torch.equal(p, q)
    short = est.set_params(generator_selection="residual", max_iter=60)
    assert short.fit(bench.marginals, bench.weights).generator_iter_ == 60
    for p, q in zip(short.generator_.parameters(), seen.iterates[59]):
        assert torch.equal(p, q)


def test_generator_iter_names_early_stoppings_best_when_it_chooses(bench):
    seen = RawGenerators()
    est = WINBarycenter(
        max_iter=15, learn_transform=False, random_state=0, generator_ema_decay=0.0,
        early_stopping=True, validation_interval=1, n_iter_no_change=100, callbacks=[seen],
        **SMALL,
    ).fit(bench.marginals, bench.weights)  # fmt: skip
    scores = [row["valid_loss"] for row in est.history_ if row["phase"] == "barycenter"]
    j = int(np.argmin(scores))
    assert j < len(scores) - 1  # the best held-out score is not the last: a restore happened
    assert est.generator_iter_ == j + 1
    for p, q in zip(est.generator_.parameters(), seen.iterates[j]):
        assert torch.equal(p, q)


def test_fit_cut_short_by_max_time_warns_and_names_what_to_use(bench):
    """max_time stopping Algorithm 1 before 100 outer iterations warns (MNIST 0/1 at D = 256:
    45-47 outer iterations in 300 s, samples far from the barycenter); an iteration-bounded
    fit does not."""

    class Slow(Callback):
        def on_epoch_end(self, net, **kwargs):
            time.sleep(0.05)

    est = WINBarycenter(max_time=1.0, learn_transform=False, callbacks=[Slow()], **SMALL)
    with pytest.warns(ConvergenceWarning, match="outer iterations.*NOTBarycenter") as seen:
        est.fit(bench.marginals, bench.weights)
    warning = next(w for w in seen if w.category is ConvergenceWarning)
    assert est.n_iter_ < 25 and f"after {est.n_iter_} outer" in str(warning.message)
    assert warning.filename == __file__  # it names the user's line, not the package's
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        WINBarycenter(max_iter=3, learn_transform=False, **SMALL).fit(bench.marginals)


# ---------------------------------------------------------------------- Gaussian start
class StartOfTraining(Callback):
    """Copies of G and both solvers as Algorithm 1's training begins (after the start)."""

    def __init__(self):
        self.nets = None

    def on_train_begin(self, net, **kwargs):
        if self.nets is None:
            self.nets = copy.deepcopy((net.generator_, net.inverse_maps_, net.maps_))


@pytest.fixture(scope="module")
def small_bench():
    # 300 rows per input: "small inputs" (fewer than 2,000), where init="auto" is Gaussian
    return make_location_scatter(3, 3, 300, weights=[0.25, 0.5, 0.25], random_state=1)


def test_gaussian_start_is_the_closed_form_solution(small_bench):
    Xs, w = small_bench.marginals, small_bench.weights
    seen = StartOfTraining()
    est = WINBarycenter(early_stopping=False, callbacks=[seen], **FAST).fit(Xs, w)
    assert est.init_ == "gaussian"
    gauss = GaussianBarycenter(weights=w).fit(Xs)  # the same rows (no held-out part)
    G, inverse, maps = seen.nets
    c, s = est.center_, est.scale_

    def f32(x):
        return torch.as_tensor(x, dtype=torch.float32)

    with torch.no_grad():  # G is affine at the start, z -> z S^1/2 + m in model coordinates
        at_zero = G(f32(np.zeros((1, 3)))).numpy()[0]
        root = (G(f32(np.eye(3))).numpy() - at_zero) * s
        z = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
        np.testing.assert_allclose(G(z).numpy(), z.numpy() @ root / s + at_zero, atol=1e-5)
    np.testing.assert_allclose(root @ root.T, gauss.barycenter_covariance_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(at_zero * s + c, gauss.barycenter_mean_, atol=1e-5)
    X = Xs[1][:50]
    x = f32((X - c) / s)
    with torch.no_grad():  # Algorithm 2's maps are GaussianBarycenter's; Algorithm 1's invert them
        fwd = maps.transport_one(x, 1)
        np.testing.assert_allclose(fwd.numpy() * s + c, gauss.transform(X, k=1), atol=1e-4)
        np.testing.assert_allclose(inverse.transport_one(fwd, 1).numpy(), x.numpy(), atol=1e-4)
    # the potentials' optimal maps (x = y - grad v(y)) are the maps: the solvers start at
    # their saddle points
    for solver, src in ((maps, x), (inverse, fwd)):
        y = solver.transport(src.expand(3, -1, -1).contiguous()).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(solver.potential_value(y).sum(), y)
        np.testing.assert_allclose((y - grad)[1].detach().numpy(), src.numpy(), atol=1e-4)


def test_init_auto_rule_and_potential_learning_rate(bench, small_bench):
    made = []

    class SpyAdam(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            made.append(self)

    Xs, w = small_bench.marginals, small_bench.weights
    est = WINBarycenter(optimizer=SpyAdam, **FAST).fit(Xs, w)
    # G, potentials, maps of Algorithm 1, then potentials, maps of Algorithm 2
    assert est.init_ == "gaussian"
    assert [o.param_groups[0]["lr"] for o in made] == [1e-3, 1e-4, 1e-3, 1e-4, 1e-3]
    made.clear()
    large = WINBarycenter(optimizer=SpyAdam, **FAST).fit(bench.marginals, bench.weights)
    assert large.init_ == "identity"  # 5,000 rows per input
    assert [o.param_groups[0]["lr"] for o in made] == [1e-3] * 5
    assert not isinstance(large.inverse_maps_.potential, WithQuadratic)
    made.clear()
    WINBarycenter(optimizer=SpyAdam, lr_potential=3e-4, **FAST).fit(Xs, w)
    assert [o.param_groups[0]["lr"] for o in made] == [1e-3, 3e-4, 1e-3, 3e-4, 1e-3]
    # where the start is not possible "auto" is the identity, and "gaussian" says why
    for blocked in (
        {"latent_dim": 2},
        {"inverse_map__residual": False},
        {"potential__quadratic": False},
        {"generator": UserMLP},
        {"bounds": "data"},  # a boxed G: an affine start would take its samples off the box
    ):
        assert WINBarycenter(**blocked, **FAST).fit(Xs, w).init_ == "identity"
        with pytest.raises(ValueError, match="init='gaussian' needs"):
            WINBarycenter(init="gaussian", **blocked, **FAST).fit(Xs, w)
    few = [m[:3] for m in Xs]  # 3 rows in 3 dimensions: singular covariances
    with pytest.raises(ValueError, match="more rows than features"):
        WINBarycenter(init="gaussian", **FAST).fit(few, w)
    # a warm start keeps the first fit's start; "identity" as asked on small inputs
    start = WINBarycenter(init="identity", **FAST).fit(Xs, w)
    assert start.init_ == "identity"
    made.clear()  # the Gaussian start on 5,000 rows: the potentials keep 1e-3
    forced = WINBarycenter(init="gaussian", optimizer=SpyAdam, **FAST)
    forced.fit(bench.marginals, bench.weights)
    assert forced.init_ == "gaussian"
    assert isinstance(forced.inverse_maps_.potential, WithQuadratic)
    assert [o.param_groups[0]["lr"] for o in made] == [1e-3] * 5
    forced.set_params(warm_start=True, init="identity").fit(bench.marginals, bench.weights)
    assert forced.init_ == "gaussian" and forced.n_iter_ == 4
