"""Inputs the fit draws rows from instead of holding them: samplers, datasets, big files.

In the list form of ``fit`` an input may be, besides an in-memory array:

* a **callable** ``draw(n, random_state) -> array (n, n_features)`` -- a simulator, a
  posterior sampler, a known law (``functools.partial(bench.sample_marginal, k)``): it is
  called with a number of rows and a :class:`numpy.random.RandomState` seeded from the
  estimator's ``random_state``, so seeded fits repeat;
* a **numpy memmap**, a **dask array** or an **h5py dataset** (anything indexed by rows that
  does not live in memory): rows are read at random positions, a block at a time; a memmap's
  pages are released after every read, so a file larger than memory costs only the block;
* a **torch Dataset** (map-style, ``dataset[i]`` is a row, an image or a tuple whose first
  item is one; items are flattened) or a **DataLoader** (its batches, in its own order: give
  it ``shuffle=True``).

:class:`InputStream` wraps any of them with its settings; the bare objects are wrapped with
the defaults. What the fit does with a stream:

* **Everything that needs rows uses a subsample** of ``n_subsample`` rows
  (:data:`SUBSAMPLE_ROWS` by default) drawn once at the start of ``fit``: the input's
  validation, the standardisation (``center_``, ``scale_``), the routing model that guesses
  a row's input, the held-out rows of ``validation_fraction``, and the closed-form and
  discrete baselines (:class:`~skbary.GaussianBarycenter` fits the subsample's moments,
  :class:`~skbary.FreeSupportBarycenter` its rows).
* **Training draws fresh rows**: every input that is a stream keeps a cache of
  ``cache_rows`` rows on the device (by default :data:`CACHE_ROWS`, or fewer so that the
  cache stays within :data:`CACHE_BYTES` for wide rows, but at least 16
  minibatches), from which minibatches are drawn; the cache is refilled with fresh rows
  once as many rows have been drawn from it as it holds, so each cached row is used about
  once and the copy to the device happens once per ``cache_rows / batch_size`` iterations,
  not every iteration. Host memory is bounded by the cache, whatever the input's size.
* Every draw is checked as arrays are: the shape, numbers, no NaN or inf; the error names
  the input and what it returned.

``sample_weight`` needs in-memory rows, and ``weights="proportional"`` the number of rows
(callables have none): both are refused for streamed inputs. ``fit_transform`` maps the
training rows, which a stream does not hold: fit, then ``transform`` the rows you want.
"""

from __future__ import annotations

import mmap
import numbers
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

__all__ = ["CACHE_BYTES", "CACHE_ROWS", "SUBSAMPLE_ROWS", "InputStream", "as_stream", "is_stream"]

#: Rows of a streamed input drawn at the start of ``fit`` for everything that needs rows.
SUBSAMPLE_ROWS = 20_000
#: Rows of a streamed input cached on the device for training (at least 16 minibatches).
CACHE_ROWS = 65_536
#: Bytes a default cache may take (float32 rows): wide rows get fewer than CACHE_ROWS.
CACHE_BYTES = 32 * 2**20
#: A cache holds at least this many minibatches.
MIN_CACHED_BATCHES = 16
#: Rows of a memmap read between two releases of its pages (bounds the resident set).
MEMMAP_READ_ROWS = 1024


def _is_dask(obj: Any) -> bool:
    return hasattr(obj, "__dask_graph__") and hasattr(obj, "shape")


def _is_h5py(obj: Any) -> bool:
    return type(obj).__module__.startswith("h5py") and hasattr(obj, "shape")


def _is_indexed(obj: Any) -> bool:
    """Row-indexed data that does not live in memory (read a block at a time)."""
    return isinstance(obj, np.memmap) or _is_dask(obj) or _is_h5py(obj)


def is_stream(obj: Any) -> bool:
    """Whether ``obj`` is an input the fit streams (see the module docstring)."""
    if isinstance(obj, InputStream):
        return True
    if isinstance(obj, torch.utils.data.Dataset | torch.utils.data.DataLoader):
        return True
    if _is_indexed(obj):
        return True
    return callable(obj) and not hasattr(obj, "shape") and not isinstance(obj, type)


def as_stream(obj: Any) -> InputStream:
    """``obj`` as an :class:`InputStream` (itself if it already is one)."""
    return obj if isinstance(obj, InputStream) else InputStream(obj)


def _first_item(item: Any, lists: bool = True) -> Any:
    """Rows without their targets: ``(x, y)`` -> ``x`` when x is an array or tensor.

    A dataset's item or a loader's batch may be a list (``default_collate`` makes one);
    a sampler's result is unwrapped only from a tuple (``lists=False``), so that rows
    given as a list of lists stay rows.
    """
    kinds = (tuple, list) if lists else (tuple,)
    if isinstance(item, kinds) and len(item) and hasattr(item[0], "shape"):
        return item[0]
    if isinstance(item, dict):
        raise TypeError(
            "the stream returned a dict; return the rows (or a tuple whose first item holds them)."
        )
    return item


def _untensor(obj: Any) -> Any:
    """A torch tensor as a numpy array (detached, on the host); anything else unchanged.

    Users hold data and weights as tensors, some with ``requires_grad`` (numpy refuses
    those) or on a GPU (numpy cannot read those).
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy()
    return obj


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(_untensor(x))


def _kind_of(src: Any) -> str:
    """The kind of a stream's source: "indexed", "dataset", "loader" or "callable"."""
    if _is_indexed(src):
        return "indexed"
    if isinstance(src, torch.utils.data.DataLoader):
        return "loader"
    if isinstance(src, torch.utils.data.Dataset):
        return "dataset"
    return "callable"


def _release_pages(arr: np.ndarray) -> None:
    """Drop a memmap's pages from the process's resident memory (they stay in the page
    cache), so that reading rows all over a large file does not grow the resident set."""
    base = arr
    while base is not None and not hasattr(base, "_mmap"):
        base = getattr(base, "base", None)
    mm = getattr(base, "_mmap", None) if base is not None else None
    if isinstance(mm, mmap.mmap) and hasattr(mm, "madvise"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # pragma: no cover - platform without it
            pass


def _distinct(count: int, n: int, rng: np.random.RandomState) -> NDArray[np.int64]:
    """n distinct positions among ``count`` in random order, without a permutation of all
    ``count`` (a file of 10^8 rows would cost 800 MB for one)."""
    if 4 * n > count:
        return rng.permutation(count)[:n]
    idx = np.unique(rng.randint(0, count, size=n + n // 4 + 16))
    while len(idx) < n:
        idx = np.unique(np.concatenate([idx, rng.randint(0, count, size=n)]))
    return rng.permutation(idx)[:n]


class InputStream:
    """An input of ``fit`` drawn from rather than held: a sampler, a dataset or a big file.

    Parameters
    ----------
    source : callable, numpy memmap, dask array, h5py dataset, torch Dataset or DataLoader
        Where the rows come from (see :mod:`skbary.streams`). A callable is called as
        ``source(n, random_state)`` and returns n rows.
    n_subsample : int, default=SUBSAMPLE_ROWS
        Rows drawn at the start of ``fit`` for everything that needs rows (standardisation,
        routing, held-out rows, the closed-form and discrete baselines).
    cache_rows : int or None, default=None
        Rows cached on the device for training, refilled with fresh rows once used:
        ``max(min(CACHE_ROWS, CACHE_BYTES / (4 * n_features)), 16 * batch_size)`` when
        None.

    Examples
    --------
    >>> import numpy as np
    >>> from skbary.streams import InputStream
    >>> stream = InputStream(lambda n, rng: rng.normal(size=(n, 2)), n_subsample=500)
    >>> stream.bind("X[0]")
    InputStream(<function <lambda>>, n_subsample=500)
    >>> stream.draw(3, np.random.RandomState(0)).shape
    (3, 2)
    """

    def __init__(
        self, source: Any, n_subsample: int = SUBSAMPLE_ROWS, cache_rows: int | None = None
    ) -> None:
        self.source = source
        self.n_subsample = n_subsample
        self.cache_rows = cache_rows
        self.name = "X"
        self.n_features: int | None = None
        self._loader_iter: Iterator[Any] | None = None
        self._leftover: np.ndarray | None = None
        self.kind = _kind_of(source)  # "indexed", "dataset", "loader" or "callable"

    def __repr__(self) -> str:
        src = self.source
        what = (
            f"<function {getattr(src, '__name__', type(src).__name__)}>"
            if self.kind == "callable"
            else f"<{type(src).__name__}>"
        )
        return f"InputStream({what}, n_subsample={self.n_subsample})"

    # ------------------------------------------------------------------ what it is
    @property
    def n_rows(self) -> int | None:
        """Rows in the source, None where it has no count (callables, iterable loaders)."""
        src = self.source
        if self.kind == "indexed":
            return int(src.shape[0])
        if self.kind in ("dataset", "loader"):
            data = src.dataset if self.kind == "loader" else src
            try:
                return len(data)
            except TypeError:
                return None
        return None

    def bind(self, name: str) -> InputStream:
        """Check the settings and the source, name the input for error messages."""
        self.name = name
        self.kind = _kind_of(self.source)  # once per fit, not per draw
        for key in ("n_subsample", "cache_rows"):
            value = getattr(self, key)
            if value is None and key == "cache_rows":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
                raise ValueError(
                    f"{name}: InputStream's {key} must be an integer >= 2, got {value!r}."
                )
        kind = self.kind
        if kind == "callable" and not callable(self.source):
            raise TypeError(f"{name} is not a supported input: got {type(self.source).__name__}.")
        if kind == "indexed" and len(self.source.shape) != 2:
            raise ValueError(
                f"{name} has shape {tuple(self.source.shape)}; a streamed input must be 2-D "
                "(n_rows, n_features): one row per sample."
            )
        if kind in ("indexed", "dataset") and self.n_rows is not None and self.n_rows < 2:
            raise ValueError(f"{name} has {self.n_rows} rows; every input needs at least 2.")
        if kind == "dataset" and self.n_rows is None:
            raise TypeError(
                f"{name} is an iterable-style Dataset (no len); wrap it in a DataLoader."
            )
        if kind == "loader":
            sampler = getattr(self.source, "sampler", None)
            if isinstance(sampler, torch.utils.data.SequentialSampler):
                warnings.warn(
                    f"{name} is a DataLoader that does not shuffle: training draws its rows "
                    "in the loader's order, so minibatches are not random draws of the input. "
                    "Pass shuffle=True.",
                    UserWarning,
                    stacklevel=4,
                )
        self._loader_iter, self._leftover = None, None
        return self

    def cache_size(self, batch_size: int) -> int:
        """Rows the training cache holds for minibatches of ``batch_size``."""
        if self.cache_rows is not None:
            return max(int(self.cache_rows), int(batch_size))
        rows = min(CACHE_ROWS, CACHE_BYTES // (4 * max(1, self.n_features or 1)))
        return max(rows, MIN_CACHED_BATCHES * int(batch_size))

    # ------------------------------------------------------------------ drawing
    def draw(self, n: int, rng: np.random.RandomState) -> NDArray[np.floating]:
        """n rows of the input (float32 or float64), checked like an array input.

        Raises
        ------
        ValueError
            When the source returns the wrong number of rows or columns, or NaN or inf.
        TypeError
            When it returns something that is not numbers.
        """
        kind = self.kind
        if kind == "callable":
            rows = _first_item(self.source(int(n), rng), lists=False)
        elif kind == "loader":
            rows = self._from_loader(int(n))
        else:
            rows = self._at(rng.randint(0, self.n_rows, size=int(n)))
        return self._checked(rows, int(n))

    def subsample(self, rng: np.random.RandomState) -> NDArray[np.floating]:
        """The ``n_subsample`` rows everything needing rows uses: distinct rows of a source
        with a row count (all of them, in random order, when it has fewer), a draw of a
        sampler or a loader."""
        n, count = int(self.n_subsample), self.n_rows
        if count is None or self.kind == "loader":
            return self.draw(n, rng)
        idx = rng.permutation(count) if n >= count else _distinct(count, n, rng)
        return self._checked(self._at(idx), len(idx))

    def _at(self, idx: NDArray[np.int64]) -> np.ndarray:
        """Rows at positions ``idx`` (with repeats), read in increasing order, once each."""
        unique, inverse = np.unique(idx, return_inverse=True)
        src = self.source
        if self.kind == "dataset":
            if hasattr(src, "__getitems__"):
                items = src.__getitems__(unique.tolist())
            else:
                items = [src[int(i)] for i in unique]
            block = np.stack([_as_numpy(_first_item(it)).reshape(-1) for it in items])
        elif _is_dask(src):
            block = np.asarray(src[unique].compute())
        elif isinstance(src, np.memmap):
            # a block of rows at a time, its pages released after it: the kernel maps 16
            # cached pages around every faulting one, so 65,536 scattered rows read at once
            # put a whole 1.3 GB file in the resident set (measured), 1,024 about 14 MB
            block = np.empty((len(unique), src.shape[1]), dtype=src.dtype)
            for start in range(0, len(unique), MEMMAP_READ_ROWS):
                stop = start + MEMMAP_READ_ROWS
                block[start:stop] = src[unique[start:stop]]
                _release_pages(src)
        else:
            block = np.asarray(src[unique])
        return block[inverse]

    def _from_loader(self, n: int) -> np.ndarray:
        parts, have = [], 0
        if self._leftover is not None:
            parts.append(self._leftover)
            have = len(self._leftover)
        started_empty = False
        while have < n:
            if self._loader_iter is None:
                self._loader_iter = iter(self.source)
            try:
                batch = next(self._loader_iter)
            except StopIteration:
                if started_empty:
                    raise ValueError(f"{self.name} (a DataLoader) yields no rows.") from None
                self._loader_iter, started_empty = None, True
                continue
            started_empty = False
            x = _as_numpy(_first_item(batch))
            x = x.reshape(len(x), -1) if x.ndim > 2 else x
            parts.append(x)
            have += len(x)
        rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._leftover = rows[n:] if len(rows) > n else None
        return rows[:n]

    def _checked(self, rows: Any, n: int) -> NDArray[np.floating]:
        what = f"{self.name} ({'a ' + self.kind if self.kind != 'indexed' else 'streamed'})"
        try:
            arr = _as_numpy(rows)
        except Exception as exc:
            raise TypeError(f"{what} returned {type(rows).__name__}, not an array.") from exc
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{what} returned values of dtype {arr.dtype}, not numbers.")
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(
                f"{what} returned an array of shape {arr.shape} when asked for {n} rows; it "
                f"must return a 2-D array (n, n_features) with n rows."
            )
        if self.n_features is not None and arr.shape[1] != self.n_features:
            raise ValueError(
                f"{what} returned {arr.shape[1]} columns, but its earlier rows had "
                f"{self.n_features}."
            )
        if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
            arr = arr.astype(np.float64)
        elif arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(axis=1).sum())
            raise ValueError(
                f"{what} returned NaN or inf in {bad} of {n} rows. Inputs must be finite: "
                "drop or repair those rows at the source."
            )
        self.n_features = int(arr.shape[1])
        return arr


class StreamCache:
    """The device cache of one streamed input: fresh rows, refilled once used.

    Parameters
    ----------
    stream : InputStream
        The bound stream.
    rows : int
        Rows the cache holds.
    transform : callable
        Raw rows (host) -> model coordinates (host), e.g. the standardisation.
    rng : numpy.random.RandomState
        Seeds the stream's draws.
    """

    def __init__(
        self,
        stream: InputStream,
        rows: int,
        transform: Callable[[np.ndarray], np.ndarray],
        rng: np.random.RandomState,
    ) -> None:
        self.stream = stream
        self.rows = int(rows)
        self.transform = transform
        self.rng = rng
        self.used = 0

    def fresh(self, n: int | None = None) -> np.ndarray:
        """``n`` (default: a cache's worth of) fresh rows in model coordinates, float32.

        Drawn a cache's worth at a time, so that the float64 copies of a draw and of its
        transform never exceed a cache's size, however many rows are asked for.
        """
        n = self.rows if n is None else int(n)
        out = None
        for start in range(0, n, self.rows):
            raw = self.stream.draw(min(self.rows, n - start), self.rng)
            block = self.transform(raw)
            if out is None:
                out = np.empty((n, block.shape[1]), dtype=np.float32)
            out[start : start + len(block)] = block
        return out
