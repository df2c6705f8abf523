"""The "Ave, digits!" benchmark: the congruent construction on scikit-learn's 8x8 digits.

:func:`load_ave_digits` builds it with :func:`~skbary.datasets.congruent.make_congruent`
once per seed and caches it (:mod:`.cache`).
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from .cache import _load_congruent, _save_congruent, get_data_home
from .congruent import CongruentBenchmark, make_congruent

_AVE_DIGITS_VERSION = 1


def load_ave_digits(
    random_state: int = 0,
    *,
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
) -> CongruentBenchmark:
    """ "Ave, digits!": three inputs whose barycenter is the 8x8 digits distribution.

    The WIN paper's Ave, celeba! recipe (section 5) on scikit-learn's bundled digits
    (1797 images, 64 pixels, nothing is downloaded): K = 3 inputs, weights (1/4, 1/2, 1/4),
    two congruent pairs with beta = 1/2 combined as in the paper. The pixels are
    dequantised, ``(pixel + U(0, 1)) / 17`` in (0, 1), so the base law has a density and
    the barycenter is unique. A quarter of the images are held out as
    ``barycenter_samples``; the rest are split into three disjoint parts of about 449 rows,
    pushed to the inputs by ``grad psi_k``.

    The first build takes a few seconds and is cached as an ``.npz`` under
    :func:`get_data_home` (``$SKBARY_DATA`` or ``~/scikit_learn_data/skbary``); later calls
    load it.

    Parameters
    ----------
    random_state : int, default=0
        Seeds the dequantisation, the potentials and the split (one cache file per value).
    data_home : str or path, default=None
        Cache folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Named as in scikit-learn: when False and no cache exists, raise OSError instead of
        building (nothing is ever downloaded).

    Returns
    -------
    CongruentBenchmark
        See :func:`make_congruent`; images are rows of 64 pixels (reshape to (8, 8)).
    """
    from sklearn.datasets import load_digits

    if not isinstance(random_state, numbers.Integral):
        raise TypeError(f"random_state must be an int (it names the cache), got {random_state!r}.")
    path = os.path.join(
        get_data_home(data_home), f"ave_digits_v{_AVE_DIGITS_VERSION}_rs{int(random_state)}.npz"
    )
    if os.path.exists(path):
        return _load_congruent(path)
    if not download_if_missing:
        raise OSError(f"no cached Ave, digits! at {path}.")
    rng = np.random.RandomState(int(random_state))
    pixels = load_digits().data
    base = (pixels + rng.uniform(size=pixels.shape)) / 17.0
    bench = make_congruent(base, n_marginals=3, weights=[0.25, 0.5, 0.25], random_state=rng)
    _save_congruent(bench, path)
    return bench
