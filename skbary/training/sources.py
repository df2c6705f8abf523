"""Minibatch sources: where the training rows of the K inputs come from.

:class:`MarginalBatches` keeps the K inputs on the device as one padded tensor and draws a
minibatch from every input in one call (shape ``(K, B, d)``), so methods vectorise over the
inputs instead of looping over them. An input given as a stream (:mod:`skbary.streams`: a
sampler, a dataset, a file larger than memory) occupies its slot of the tensor with a cache
of fresh rows, refilled from the stream once as many rows have been drawn as it holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..streams import StreamCache

__all__ = ["MarginalBatches"]


class MarginalBatches:
    """The K inputs as one padded device tensor, with a vectorised minibatch sampler.

    Parameters
    ----------
    marginals : sequence of ndarray (n_k, d)
        The validated inputs.
    device : torch.device
        Where the data and the batches live.
    generator : torch.Generator
        Random generator on ``device``; every draw goes through it (repeatable fits).
    dtype : torch.dtype, default=torch.float32
        Compute dtype.
    row_weights : sequence of ndarray (n_k,) or None, default=None
        Every input's row probabilities (``sample_weight``, each summing to 1): rows are
        drawn in proportion to them. None draws uniformly.

    Attributes
    ----------
    data : Tensor of shape (K, n_max, d)
        Input k occupies ``data[k, :n_k]``; the padding is never drawn.
    counts : Tensor of shape (K,)
        n_k for every input.
    """

    def __init__(
        self,
        marginals: Sequence[np.ndarray],
        device: torch.device,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        row_weights: Sequence[np.ndarray] | None = None,
        streams: Sequence[StreamCache | None] | None = None,
    ) -> None:
        self.n_marginals = len(marginals)
        self.n_features = marginals[0].shape[1]
        self.streams = list(streams) if streams is not None else [None] * self.n_marginals
        sizes = [m.shape[0] if c is None else c.rows for m, c in zip(marginals, self.streams)]
        n_max = max(sizes)
        data = np.zeros((self.n_marginals, n_max, self.n_features), dtype=np.float32)
        for k, (m, c) in enumerate(zip(marginals, self.streams)):
            data[k, : sizes[k]] = m if c is None else c.fresh()
        self.data = torch.as_tensor(data, dtype=dtype, device=device)
        self.counts = torch.as_tensor(sizes, device=device)
        self._streamed = [k for k, c in enumerate(self.streams) if c is not None]
        # refill before a batch would use more rows than the smallest cache holds
        self._refill_at = min((self.streams[k].rows for k in self._streamed), default=0)
        self._drawn = 0  # rows drawn from the streams' caches since their last refill
        self.generator = generator
        self.device = device
        self._rows = torch.arange(self.n_marginals, device=device)[:, None]
        self.row_weights = None if row_weights is None else [np.asarray(w) for w in row_weights]
        self._cdf = None
        if row_weights is not None:  # cumulative row probabilities, padded with 1
            cdf = np.ones((self.n_marginals, n_max), dtype=np.float64)
            for k, w in enumerate(row_weights):
                cdf[k, : len(w)] = np.cumsum(w) / np.sum(w)
            cdf_dtype = torch.float32 if device.type == "mps" else torch.float64  # no f64 on MPS
            self._cdf = torch.as_tensor(cdf, dtype=cdf_dtype, device=device)

    def draw(self, batch_size: int) -> torch.Tensor:
        """A minibatch from every input, drawn with replacement: (K, B, d).

        Uniformly over each input's rows, or in proportion to ``row_weights``: the same
        uniform number picks the same row as it would in the rows repeated by integer
        weights. Streamed inputs draw from their caches, refilled first when the next
        batch would use more rows than they hold.
        """
        if self._streamed:
            if self._drawn + batch_size > self._refill_at:
                self.refill()
            self._drawn += batch_size
        u = torch.rand((self.n_marginals, batch_size), generator=self.generator, device=self.device)
        if self._cdf is None:
            idx = (u * self.counts[:, None]).long()
        else:
            idx = torch.searchsorted(self._cdf, u.to(self._cdf.dtype), right=True)
            idx = torch.minimum(idx, (self.counts - 1)[:, None])
        return self.data[self._rows, idx]

    def refill(self) -> None:
        """Fresh rows into every streamed input's cache (one host-to-device copy each)."""
        for k in self._streamed:
            cache = self.streams[k]
            rows = torch.from_numpy(cache.fresh())
            self.data[k, : cache.rows].copy_(rows.to(self.data.dtype))
        self._drawn = 0

    def marginal(self, k: int) -> torch.Tensor:
        """All rows of input k: (n_k, d); a streamed input's current cache."""
        return self.data[k, : int(self.counts[k])]

    def rows(self, k: int, n: int) -> np.ndarray:
        """Up to ``n`` rows of input k on the host (model coordinates, float32): a stream's
        fresh draw of n rows, or an in-memory input's rows (all of them, unsubsampled)."""
        cache = self.streams[k]
        if cache is None:
            return self.marginal(k).cpu().numpy()
        return cache.fresh(n)
