"""GenerativeBarycenter: small fits with known answers (W2 barycenter, MMD mixture)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from skbary import GenerativeBarycenter, NotLearnedError, TrainingDivergedError
from skbary.datasets import make_gaussians, make_location_scatter
from skbary.estimators.generative import GaussianGenerator
from skbary.metrics import bw_uvp, energy_distance, weighted_l2_uvp
from tests.user_modules import (
    LastTransformAverage,
    UserConv,
    UserMLP,
    image_inputs,
    params_changed,
    transform_quantile_frames,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def scatter():
    return make_location_scatter(3, 2, 1000, weights=[0.2, 0.3, 0.5], random_state=0)


@pytest.fixture(scope="module")
def two_blobs():
    # Two separated Gaussians: the MMD barycenter is their mixture, the W2 one a Gaussian.
    return make_gaussians(
        [[-3.0, 0.0], [3.0, 0.0]],
        [np.eye(2) * 0.5, np.diag([0.3, 1.0])],
        weights=[0.3, 0.7],
        n_samples=1000,
        random_state=0,
    )


def _mixture(bench, n, seed):
    fresh = bench.sample_marginals(n, random_state=seed)
    left = np.random.RandomState(seed + 1).rand(n) < bench.weights[0]
    return np.where(left[:, None], fresh[0], fresh[1])


def test_sinkhorn_recovers_w2_barycenter_and_maps(scatter):
    est = GenerativeBarycenter(max_iter=150, batch_size=128, transform_max_iter=100, random_state=0)
    est.fit(scatter.marginals, scatter.weights)
    Y = est.sample(20000)
    assert Y.shape == (20000, 2) and Y.dtype == np.float64
    # Measured 0.4% (200 iterations) on this task; a broken loss gives tens of percent.
    assert bw_uvp(Y, scatter.barycenter_mean, scatter.barycenter_cov) < 2.0
    scores = weighted_l2_uvp(est, scatter, scatter.sample_marginals(2000, random_state=1))
    assert scores["l2_uvp_weighted"] < 10.0
    assert est.n_iter_ == 150 and est.n_transform_iter_ == 100
    assert set(est.history_[:, "phase"]) == {"generator", "transform"}
    assert np.isfinite(est.history_[:, "sinkhorn"][:150]).all()


def test_mmd_barycenter_is_the_mixture(two_blobs):
    est = GenerativeBarycenter(
        divergence="mmd", max_iter=150, batch_size=128, learn_transform=False, random_state=0
    )
    est.fit(two_blobs.marginals, two_blobs.weights)
    Y = est.sample(2000, random_state=1)
    mix = _mixture(two_blobs, 2000, 2)
    W2 = two_blobs.sample_barycenter(2000, random_state=4)
    ratio = energy_distance(Y, mix) / energy_distance(W2, mix)
    assert ratio < 0.15  # measured 0.02
    assert 0.2 < (Y[:, 0] < 0).mean() < 0.4  # the mass of the left input, 0.3


def test_gaussian_generator_learns_mean_and_covariance(scatter):
    est = GenerativeBarycenter(
        generator="gaussian",
        lr_generator=0.05,
        max_iter=60,
        batch_size=64,
        learn_transform=False,
        random_state=0,
    )
    est.fit(scatter.marginals, scatter.weights)
    assert isinstance(est.generator_, GaussianGenerator)
    Y = est.sample(20000)
    assert bw_uvp(Y, scatter.barycenter_mean, scatter.barycenter_cov) < 2.0


@pytest.mark.parametrize("penalty", ["scaled", "gradient"])
def test_smmd_trains_critics_and_generator(two_blobs, penalty):
    est = GenerativeBarycenter(
        divergence="smmd",
        penalty=penalty,
        max_iter=10,
        n_critic_steps=2,
        batch_size=64,
        learn_transform=False,
        random_state=0,
        critic__n_outputs=4,
    )
    est.fit(two_blobs.marginals, two_blobs.weights)
    assert est.critics_ is not None and est.critics_.n_models == 2
    assert np.isfinite(est.history_[:, "generator"]).all()
    assert np.isfinite(est.history_[:, "critic"]).all()
    assert np.isfinite(est.sample(10)).all()


def test_smmd_scaled_finds_both_modes(two_blobs):
    est = GenerativeBarycenter(
        divergence="smmd", max_iter=60, batch_size=128, learn_transform=False, random_state=0
    )
    est.fit(two_blobs.marginals, two_blobs.weights)
    Y = est.sample(2000, random_state=1)
    mix = _mixture(two_blobs, 2000, 2)
    W2 = two_blobs.sample_barycenter(2000, random_state=4)
    assert energy_distance(Y, mix) / energy_distance(W2, mix) < 0.5


def test_user_generator_instance_in_standardised_coordinates(scatter):
    # Data far from the origin in large units: the user's network, like the default MLP,
    # works in standardised coordinates, so its start near 0 is near the barycenter.
    X = [10.0 * m + 50.0 for m in scatter.marginals]
    torch.manual_seed(0)  # the user's module is built from torch's global generator
    module = UserMLP(3, 2)
    before = copy.deepcopy(module.state_dict())
    est = GenerativeBarycenter(
        generator=module, max_iter=150, batch_size=128, learn_transform=False, random_state=0
    )
    est.fit(X, scatter.weights)
    assert est.latent_dim_ == 3 and est.standardized_ and est.scale_ > 10
    # The user's module is copied, not trained in place.
    assert not params_changed(module, before)
    Y = est.sample(20000, random_state=0)
    # Measured 6.6%; in data coordinates (standardize=False) the same fit gives 1600%.
    assert bw_uvp(Y, 10.0 * scatter.barycenter_mean + 50.0, 100.0 * scatter.barycenter_cov) < 15
    raw = GenerativeBarycenter(
        generator=module, standardize=False, max_iter=2, learn_transform=False
    ).fit(X)
    assert raw.scale_ == 1.0 and np.all(raw.center_ == 0)


@pytest.mark.parametrize(
    "module, kw, match",
    [
        (nn.Linear(3, 5), {}, "needs 2 output features"),
        (nn.Identity(), {}, "latent_dim"),
        (nn.Linear(3, 2), {"latent_dim": 4}, "failed on rows of 4 features"),
    ],
)
def test_bad_user_module(scatter, module, kw, match):
    est = GenerativeBarycenter(generator=module, max_iter=2, learn_transform=False, **kw)
    with pytest.raises(ValueError, match=match):
        est.fit(scatter.marginals)
    assert not hasattr(est, "generator_")


# ---------------------------------------------------------------------------- roles
# What each role needs to be trained in a short fit.
ROLE_RUNS = {
    "generator": {"learn_transform": False},
    "critic": {"divergence": "smmd", "n_critic_steps": 1, "learn_transform": False},
    "map": {"transform_max_iter": 3, "n_map_steps": 1},
    "potential": {"transform_max_iter": 3, "n_map_steps": 1},
}
OUT = {"generator": 2, "critic": 4, "map": 2, "potential": 1}  # widths on 2-D inputs


def _role_net(est, role):
    return {
        "generator": lambda: est.generator_,
        "critic": lambda: est.critics_,
        "map": lambda: est.maps_.map,
        "potential": lambda: est.maps_.potential,
    }[role]()


@pytest.fixture(scope="module")
def small():
    return make_location_scatter(3, 2, 300, random_state=0).marginals


@pytest.mark.parametrize("kind", ["UserMLP", "UserConv"])
@pytest.mark.parametrize("role", list(ROLE_RUNS))
def test_user_class_trains_as_role(small, role, kind, monkeypatch):
    if kind == "UserMLP":
        spec, X, settings = UserMLP, small, {f"{role}__hidden": 16}
    else:
        spec, X, settings = UserConv, image_inputs(), {}
    initial = {}
    build = GenerativeBarycenter._build_networks

    def spy(self, n_marginals, n_features):
        build(self, n_marginals, n_features)
        initial.update(copy.deepcopy(_role_net(self, role).state_dict()))

    monkeypatch.setattr(GenerativeBarycenter, "_build_networks", spy)
    est = GenerativeBarycenter(
        **{role: spec}, **ROLE_RUNS[role], **settings, max_iter=3, batch_size=16, random_state=0
    )
    est.fit(X)
    net = _role_net(est, role)
    assert initial and params_changed(net, initial)
    one = net if role == "generator" else net.unstack(1)
    assert isinstance(one, spec) and (role == "generator" or net.n_models == 3)
    if kind == "UserMLP":  # the role__hidden setting reached the user's class
        assert one.net[0].out_features == 16
    if role == "generator":  # sample is G(z), mapped back to data coordinates
        z = est._randn((5, est.latent_dim_), np.random.RandomState(7))
        with torch.no_grad():
            by_hand = est._from_model(net(z).double().numpy())
        np.testing.assert_allclose(est.sample(5, random_state=7), by_hand, rtol=1e-5, atol=1e-5)
    if role == "map":  # transform is the user's map k (used as given, not residual)
        Xk = X[1][:5]
        with torch.no_grad():
            Z = net.forward_one(torch.as_tensor(est._to_model(Xk), dtype=torch.float32), 1)
        np.testing.assert_allclose(
            est.transform(Xk, 1), est._from_model(Z.double().numpy()), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("role", list(ROLE_RUNS))
def test_user_instance_is_copied_and_trained(small, role):
    module = UserMLP(2 if role != "generator" else 3, OUT[role])
    before = copy.deepcopy(module.state_dict())
    est = GenerativeBarycenter(
        **{role: module}, **ROLE_RUNS[role], max_iter=3, batch_size=16, random_state=0
    )
    est.fit(small)
    net = _role_net(est, role)
    if role == "generator":
        assert est.latent_dim_ == 3 and params_changed(net, before)
    else:  # K copies, each starting at the instance
        assert net.n_models == 3
        assert all(params_changed(net.unstack(k), before) for k in range(3))
    if role == "critic":  # an instance's own output width is the feature dimension
        assert est.critics_(torch.zeros(3, 2, 2)).shape == (3, 2, OUT["critic"])
    assert not params_changed(module, before)


@pytest.mark.parametrize("role", list(ROLE_RUNS))
def test_role_settings_are_checked(small, role):
    est = GenerativeBarycenter(**ROLE_RUNS[role], max_iter=2, **{f"{role}__typo": 1})
    with pytest.raises(TypeError, match=f"{role}__typo"):
        est.fit(small)
    assert not hasattr(est, "generator_")
    module = UserMLP(2, OUT[role])
    est = GenerativeBarycenter(
        **{role: module}, **ROLE_RUNS[role], max_iter=2, **{f"{role}__hidden": 16}
    )
    with pytest.raises(TypeError, match="cannot apply"):
        est.fit(small)


def test_gaussian_generator_is_diagonal_above_512_features():
    rng = np.random.RandomState(0)
    X = [rng.randn(40, 520), rng.randn(40, 520) + 1.0]
    est = GenerativeBarycenter(
        generator="gaussian", max_iter=2, batch_size=8, learn_transform=False, random_state=0
    ).fit(X)
    assert est.generator_.diagonal and est.generator_.factor.shape == (520,)
    assert est.sample(3).shape == (3, 520)
    small_gen = GaussianGenerator(3)
    assert not small_gen.diagonal and small_gen.factor.shape == (3, 3)
    with pytest.raises(TypeError, match="generator__"):
        GenerativeBarycenter(generator="gaussian", generator__hidden_layer_sizes=(8,)).fit(X)


def test_max_time_bounds_the_whole_fit(scatter):
    est = GenerativeBarycenter(
        max_time=2.0, max_iter=10**6, transform_max_iter=10**6, batch_size=32
    )
    est.fit(scatter.marginals)
    assert est.fit_time_ < 2.0 + 1.0
    assert est.stop_reason_ == {"generator": "max_time", "transform": "max_time"}
    assert est.n_iter_ > 0 and est.n_transform_iter_ > 0


def test_repeatable_and_single_input(scatter):
    X = scatter.marginals[2]
    kw = dict(max_iter=20, batch_size=64, transform_max_iter=5, random_state=3)
    a = GenerativeBarycenter(**kw).fit([X])
    b = GenerativeBarycenter(**kw).fit([X])
    np.testing.assert_array_equal(a.sample(50), b.sample(50))
    np.testing.assert_array_equal(a.transform(X[:5]), b.transform(X[:5]))
    assert a.transform(X[:5]).shape == (5, 2)


def test_single_input_is_a_generative_model(scatter):
    # K = 1: the barycenter is the input itself (the EgBary engineer's use on digits).
    X = scatter.marginals[0]
    est = GenerativeBarycenter(max_iter=100, batch_size=64, learn_transform=False, random_state=0)
    Y = est.fit([X]).sample(20000)
    assert bw_uvp(Y, X.mean(0), np.cov(X, rowvar=False)) < 3.0


def test_transform_without_maps_raises(scatter):
    est = GenerativeBarycenter(max_iter=2, learn_transform=False).fit(scatter.marginals)
    assert est.maps_ is None
    with pytest.raises(NotLearnedError, match="learn_transform"):
        est.transform(scatter.marginals[0][:3], 0)


@pytest.mark.parametrize("divergence", ["mmd", "sinkhorn"])
def test_divergence_names_the_learning_rate(scatter, divergence):
    est = GenerativeBarycenter(
        divergence=divergence,
        kernel="energy",
        generator="gaussian",
        lr_generator=1e30,
        max_iter=100,
        batch_size=32,
        learn_transform=False,
    )
    with pytest.raises(TrainingDivergedError, match="lr_generator"):
        est.fit(scatter.marginals)
    assert not hasattr(est, "generator_")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"divergence": "wasserstein"}, "divergence"),
        ({"generator": "cnn"}, "generator"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"blur": 0}, "blur"),
        ({"debias": "none"}, "debias"),
        ({"kernel": "cosine"}, "kernel"),
        ({"bandwidth": (1.0, -2.0)}, "bandwidth"),
        ({"penalty": "clip"}, "penalty"),
        ({"penalty_weight": -1}, "penalty_weight"),
        ({"n_critic_steps": 0}, "n_critic_steps"),
        ({"lr_critic": 0}, "lr_critic"),
        ({"transform_max_iter": 0}, "transform_max_iter"),
        ({"n_map_steps": 0}, "n_map_steps"),
        ({"lr_map": -1.0}, "lr_map"),
        ({"transform_time_fraction": 1.0}, "transform_time_fraction"),
        ({"learn_transform": "yes"}, "learn_transform"),
        ({"lr_schedule": "cosine"}, "lr_schedule"),
        ({"critic__n_outputs": 0}, "critic__n_outputs"),
        ({"lr_decay": 0}, "lr_decay"),
        ({"batch_size": 1}, "batch_size"),
        ({"standardize": "yes"}, "standardize"),
        ({"generator": "gaussian", "latent_dim": 3}, "latent_dim"),
    ],
)
def test_bad_params_name_the_argument(scatter, params, match):
    with pytest.raises(ValueError, match=match):
        GenerativeBarycenter(max_iter=2, **params).fit(scatter.marginals)


def test_default_maps_take_quantile_features_when_auto_applies(scatter):
    # The transform's maps start from input k's own rows: "auto" feeds them the normal
    # scores along the data axes and input k's independent components, as NOT's and WIN's
    # maps (the quadratic cost, at most QUANTILE_AUTO_MAX_FEATURES features).
    from skbary.nn.maps import QUANTILE_AUTO_MAX_FEATURES

    fast = dict(max_iter=2, transform_max_iter=2, batch_size=32, random_state=0)
    est = GenerativeBarycenter(**fast).fit(scatter.marginals, scatter.weights)
    assert transform_quantile_frames(est) == ["axes", "ica"]
    q = est.maps_.map.net.quantiles[0]
    assert bool(q.is_set)
    rows = (scatter.marginals[1] - est.center_) / est.scale_  # the networks' coordinates
    z = q.forward_one(torch.as_tensor(rows, dtype=torch.float32), 1)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
    assert est.maps_.map.net.mlp.layers[0].weight.shape[1] == 2 + 2 + 2  # [x, z_axes, z_ica]
    knots = q.knots.clone()
    est.set_params(warm_start=True).fit(scatter.marginals, scatter.weights)
    assert torch.equal(est.maps_.map.net.quantiles[0].knots, knots)  # kept on a warm start

    off = GenerativeBarycenter(**fast, map__quantile_features=False)
    assert transform_quantile_frames(off.fit(scatter.marginals, scatter.weights)) is None
    d = QUANTILE_AUTO_MAX_FEATURES + 1  # above the rule's dimension: none
    wide = make_location_scatter(2, d, 300, random_state=0)
    assert transform_quantile_frames(GenerativeBarycenter(**fast).fit(wide.marginals)) is None
    with pytest.raises(ValueError, match="map__quantile_features"):
        GenerativeBarycenter(**fast, map__quantile_features="pca").fit(scatter.marginals)


def test_transform_maps_are_the_average_of_their_iterates(scatter):
    seen = LastTransformAverage()
    kw = dict(max_iter=3, transform_max_iter=30, batch_size=32, random_state=0)
    est = GenerativeBarycenter(**kw, callbacks=[seen]).fit(scatter.marginals, scatter.weights)
    kept = list(est.maps_.map.parameters())
    assert all(torch.equal(p, a) for p, a in zip(kept, seen.average, strict=True))
    assert not hasattr(est, "_ema")
    plain = GenerativeBarycenter(**kw, ema_decay=0.0).fit(scatter.marginals, scatter.weights)
    assert not all(torch.equal(p, q) for p, q in zip(kept, plain.maps_.map.parameters()))
    for p, q in zip(est.generator_.parameters(), plain.generator_.parameters(), strict=True):
        assert torch.equal(p, q)  # the generator does not depend on it


def test_transform_potentials_take_a_quadratic_form_on_request(scatter):
    from skbary.nn.potentials import WithQuadratic

    fast = dict(max_iter=2, transform_max_iter=3, batch_size=32, random_state=0)
    est = GenerativeBarycenter(**fast).fit(scatter.marginals, scatter.weights)
    assert not isinstance(est.maps_.potential, WithQuadratic)  # off by default
    est.set_params(potential__quadratic=True).fit(scatter.marginals, scatter.weights)
    assert isinstance(est.maps_.potential, WithQuadratic)
    assert est.maps_.potential.A.abs().sum() > 0  # trained, from zero
    with pytest.raises(ValueError, match="potential__quadratic"):
        est.set_params(potential__quadratic="yes").fit(scatter.marginals, scatter.weights)
