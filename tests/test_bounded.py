"""Outputs kept in the data's box: BoxOutput, resolve_bounds, the estimators' ``bounds``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skbary import GenerativeBarycenter, ICNNBarycenter, WINBarycenter
from skbary.nn import image_networks
from skbary.nn.bounded import AUTO_MIN_SHARE, BoxOutput, resolve_bounds, share_on_faces

torch.set_num_threads(1)


def _pixels(n: int = 300, d: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Two inputs of 'pixels' in [0, 1], most of them exactly 0 (a background), as digits."""
    rng = np.random.RandomState(seed)
    out = []
    for k in range(2):
        X = np.zeros((n, d))
        on = rng.rand(n, d) < (0.25 if k == 0 else 0.4)
        X[on] = rng.uniform(0.3, 1.0, size=on.sum())
        X[:, 0] = 0.0  # a feature that is 0 in every row: its box is one point
        out.append(X)
    return out


def test_box_output_stays_in_the_box_and_starts_at_start():
    low, high = np.array([0.0, -1.0, 2.0]), np.array([1.0, 3.0, 2.0])
    net = nn.Linear(2, 3)
    box = BoxOutput(net, low, high, start=np.array([0.1, 0.0, 2.0]))
    with torch.no_grad():
        net.weight.mul_(1e4)  # logits of +-1e4: the sigmoid saturates both ways
        y = box(torch.randn(500, 2)).numpy()
    assert (y >= low - 1e-6).all() and (y <= high + 1e-6).all()
    assert y[:, 0].min() < 1e-3 and y[:, 0].max() > 1 - 1e-3  # reaches both bounds
    assert np.all(y[:, 2] == 2.0)  # low == high: that constant
    with torch.no_grad():  # net(x) = 0 gives start
        net.weight.zero_()
        net.bias.zero_()
        y0 = box(torch.randn(4, 2)).numpy()
    np.testing.assert_allclose(y0, [[0.1, 0.0, 2.0]] * 4, atol=1e-6)
    mid = BoxOutput(nn.Linear(2, 3), low, high)  # no start: the middle
    assert torch.allclose(mid.offset, torch.zeros(3))
    with pytest.raises(ValueError, match="low <= high"):
        BoxOutput(net, high, low)


def test_resolve_bounds_data_pairs_and_errors():
    X = _pixels()
    assert resolve_bounds(None, X) is None
    low, high = resolve_bounds("data", X)
    np.testing.assert_array_equal(low, np.minimum(X[0].min(0), X[1].min(0)))
    np.testing.assert_array_equal(high, np.maximum(X[0].max(0), X[1].max(0)))
    low, high = resolve_bounds((0, 1), X)  # scalars: every feature
    assert low.shape == high.shape == (16,) and (low == 0).all() and (high == 1).all()
    low, high = resolve_bounds((np.zeros(16), np.full(16, 2.0)), X)
    assert (high == 2).all()
    with pytest.raises(ValueError, match="low > high"):
        resolve_bounds((1, 0), X)
    with pytest.raises(ValueError, match="does not hold the inputs: feature 1"):
        resolve_bounds((0, 0.5), X)  # the data reach 1: a box that cuts them
    with pytest.raises(ValueError, match="finite"):
        resolve_bounds((0, np.inf), X)
    with pytest.raises(ValueError, match="pair"):
        resolve_bounds((0, 1, 2), X)
    with pytest.raises(ValueError, match="one per feature"):
        resolve_bounds((np.zeros(3), np.ones(3)), X)


def test_auto_boxes_data_that_repeat_their_faces_and_nothing_continuous():
    rng = np.random.RandomState(0)
    for n in (20, 5000):  # continuous rows reach each face once, at any sample size
        X = [rng.standard_t(3, size=(n, 6)) for _ in range(3)]
        lows, highs = np.min([x.min(0) for x in X], 0), np.max([x.max(0) for x in X], 0)
        assert share_on_faces(X, lows, highs) == 0.0
        assert resolve_bounds("auto", X) is None
    X = _pixels()  # a background at exactly 0, a constant feature
    low, high = resolve_bounds("auto", X)
    np.testing.assert_array_equal(low, resolve_bounds("data", X)[0])
    np.testing.assert_array_equal(high, resolve_bounds("data", X)[1])
    assert share_on_faces(X, low, high) > 0.5
    # one repeated value more than the faces' first rows: 1 of 2 * 50 * 2 values repeat
    Y = [rng.rand(50, 2), rng.rand(50, 2)]
    Y[1][0, 0] = Y[0][:, 0].min() - 1.0
    Y[1][1, 0] = Y[1][0, 0]
    lows, highs = np.min([y.min(0) for y in Y], 0), np.max([y.max(0) for y in Y], 0)
    assert share_on_faces(Y, lows, highs) == pytest.approx(1 / 200)
    assert (resolve_bounds("auto", Y) is None) == (1 / 200 < AUTO_MIN_SHARE)


@pytest.mark.parametrize("standardize", [True, False])
def test_generator_samples_stay_in_the_data_range(standardize):
    X = _pixels()
    common = dict(
        max_iter=150,
        learn_transform=False,
        batch_size=128,
        standardize=standardize,
        random_state=0,
        generator__hidden_layer_sizes=(64, 64),
    )
    free = GenerativeBarycenter(bounds=None, **common).fit(X)
    boxed = GenerativeBarycenter(bounds="data", **common).fit(X)
    Y0, Y = free.sample(2000, random_state=0), boxed.sample(2000, random_state=0)
    low, high = boxed.bounds_
    assert isinstance(boxed.generator_, BoxOutput)
    # without the box the generator's noise crosses the background's bound 0 ...
    assert np.mean(Y0 < -0.02) > 0.05
    # ... with it every pixel is in the data's range, the constant one exactly
    assert Y.min() >= -1e-6 and Y.max() <= 1 + 1e-6
    assert (Y >= low - 1e-6).all() and (Y <= high + 1e-6).all()
    np.testing.assert_allclose(Y[:, 0], 0.0, atol=1e-6)
    # and it is still fitted to the inputs: the mean pixel between the two inputs'
    target = 0.5 * (X[0].mean(0) + X[1].mean(0))
    assert np.abs(Y.mean(0) - target).max() < 0.1


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: ICNNBarycenter(max_iter=150, batch_size=128, **kw),
        lambda **kw: GenerativeBarycenter(
            max_iter=150, learn_transform=False, batch_size=128, **kw
        ),
        lambda **kw: WINBarycenter(
            max_iter=4, learn_transform=False, batch_size=128, early_stopping=False, **kw
        ),
    ],
    ids=["ICNN", "Generative", "WIN"],
)
def test_every_generator_takes_the_box(make):
    """ICNN's h, Generative's G and WIN's G take ``bounds`` (one code path), "auto" by default."""
    X = _pixels()
    free = make(bounds=None, random_state=0).fit(X)
    boxed = make(bounds="data", random_state=0).fit(X)
    assert free.bounds_ is None and isinstance(boxed.generator_, BoxOutput)
    assert make().bounds == "auto"  # the default boxes pixels: their background repeats 0
    auto = make(random_state=0).fit(X)
    np.testing.assert_array_equal(auto.sample(50, random_state=1), boxed.sample(50, random_state=1))
    rng = np.random.RandomState(0)
    continuous = make(random_state=0).fit([rng.randn(200, 3), rng.randn(200, 3)])
    assert continuous.bounds_ is None and not isinstance(continuous.generator_, BoxOutput)
    # a user's generator may squash its own outputs: "auto" leaves it as given, "data" boxes it
    own = dict(generator=lambda in_features, out_features: nn.Linear(in_features, out_features))
    assert make(random_state=0, **own).fit(X).bounds_ is None
    assert isinstance(make(bounds="data", random_state=0, **own).fit(X).generator_, BoxOutput)
    assert "_box_start" not in vars(boxed)  # used once, to build the box
    Y0, Y = free.sample(2000, random_state=0), boxed.sample(2000, random_state=0)
    assert np.mean(Y0 < -0.02) > 0.05  # without the box the background crosses its bound
    assert Y.min() >= -1e-6 and Y.max() <= 1 + 1e-6
    np.testing.assert_allclose(Y[:, 0], 0.0, atol=1e-6)
    target = 0.5 * (X[0].mean(0) + X[1].mean(0))
    assert np.abs(Y.mean(0) - target).max() < 0.1
    with pytest.raises(ValueError, match="does not hold the inputs"):
        make(bounds=(0.0, 0.5)).fit(X)


def test_a_conv_generator_on_images_starts_at_the_mean_and_stays_in_range():
    rng = np.random.RandomState(0)
    X = [np.clip(rng.rand(120, 64) - s, 0, 1) for s in (0.3, 0.5)]  # 8 x 8 grey images
    est = GenerativeBarycenter(
        **image_networks(GenerativeBarycenter, (1, 8, 8)),
        generator__channels=4,
        generator__hidden_layer_sizes=(32,),
        generator__norm=False,
        bounds=(0.0, 1.0),
        learn_transform=False,
        max_iter=3,
        batch_size=32,
        random_state=0,
    )
    est.fit(X)
    stem = [m for m in est.generator_.net.fc.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in stem] == [(64, 32), (32, 8 * 4 * 4)]
    Y = est.sample(500, random_state=0)
    assert Y.min() >= -1e-6 and Y.max() <= 1 + 1e-6
    # three steps from the start: the samples' mean is near the inputs' mean, not at the
    # box's middle 0.5 (which is where a sigmoid without the offset starts)
    target = 0.5 * (X[0].mean() + X[1].mean())
    assert abs(Y.mean() - target) < 0.05 < abs(0.5 - target)


def test_bad_bounds_are_refused_and_leave_the_estimator_unfitted():
    X = _pixels(50)
    est = GenerativeBarycenter(bounds=(0.0, 0.5), max_iter=2, learn_transform=False)
    with pytest.raises(ValueError, match="does not hold the inputs"):
        est.fit(X)
    assert not hasattr(est, "generator_")
    with pytest.raises(ValueError, match='generator="gaussian"'):
        GenerativeBarycenter(generator="gaussian", bounds="data", max_iter=2).fit(X)
    # the default "auto" leaves a Gaussian generator unboxed, without an error
    gauss = GenerativeBarycenter(generator="gaussian", max_iter=2, learn_transform=False).fit(X)
    assert gauss.bounds_ is None and "_box_start" not in vars(gauss)
    with pytest.raises(ValueError, match="bounds"):
        GenerativeBarycenter(bounds="range", max_iter=2).fit(X)
