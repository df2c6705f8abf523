"""Ave, MNIST!: the congruent construction (WIN paper, section 5) on MNIST digits.

:func:`load_ave_mnist` is :func:`~skbary.datasets.load_ave_digits` on MNIST (the WIN
paper's recipe behind Ave, celeba!): three inputs pushed from disjoint parts of MNIST by
the gradients of congruent convex potentials, so that their barycenter is MNIST itself and
the true maps are known. Built once per setting and cached (:mod:`.cache`); needs the extra
``skbary[images]``.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from .cache import _load_congruent, _save_congruent, get_data_home
from .congruent import CongruentBenchmark, make_congruent
from .mnist import load_mnist

__all__ = ["load_ave_mnist"]

_AVE_MNIST_VERSION = 1


def load_ave_mnist(
    image_size: int = 16,
    n_samples: int = 12_000,
    random_state: int = 0,
    *,
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
) -> CongruentBenchmark:
    """ "Ave, MNIST!": three inputs whose barycenter is the MNIST digits distribution.

    ``n_samples`` MNIST training images (all ten digits, as many of each), resized to
    ``image_size`` x ``image_size`` and dequantised (``pixel + U(0, 1/255)``, so the base law
    has a density and the barycenter is unique), go through
    :func:`~skbary.datasets.make_congruent` with K = 3 and weights (1/4, 1/2, 1/4), as in
    the WIN paper: a quarter are held out as ``barycenter_samples``, the rest split into the
    three inputs. 12,000 images of 16 x 16 take about half a minute to build on one core;
    later calls load the cached ``.npz``.

    Parameters
    ----------
    image_size : int, default=16
    n_samples : int, default=12_000
        Base images (a multiple of 10).
    random_state : int, default=0
        Seeds the choice of images, the dequantisation, the potentials and the split (one
        cache file per setting).
    data_home : str or path, default=None
        Cache folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Named as in scikit-learn: when False and no cache exists, raise OSError instead of
        building (nothing is ever downloaded).

    Returns
    -------
    CongruentBenchmark
        See :func:`~skbary.datasets.make_congruent`, with ``image_shape``
        ``(1, image_size, image_size)`` added.
    """
    for name, value in (("random_state", random_state), ("n_samples", n_samples)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int (it names the cache), got {value!r}.")
    if int(n_samples) < 40 or int(n_samples) % 10:
        raise ValueError(f"n_samples must be a multiple of 10 and at least 40, got {n_samples}.")
    size = int(image_size)
    path = os.path.join(
        get_data_home(data_home),
        f"ave_mnist_v{_AVE_MNIST_VERSION}_{size}px_n{int(n_samples)}_rs{int(random_state)}.npz",
    )
    if os.path.exists(path):
        bench = _load_congruent(path)
    elif not download_if_missing:
        raise OSError(f"no cached Ave, MNIST! at {path}.")
    else:
        rng = np.random.RandomState(int(random_state))
        data = load_mnist(image_size=size, n_per_digit=int(n_samples) // 10, random_state=rng)
        base = data.data + rng.uniform(0.0, 1.0 / 255.0, size=data.data.shape)
        bench = make_congruent(base, n_marginals=3, weights=[0.25, 0.5, 0.25], random_state=rng)
        _save_congruent(bench, path)
    bench.image_shape = (1, size, size)
    return bench
