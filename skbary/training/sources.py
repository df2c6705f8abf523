"""Minibatch sources: where the training rows of the K inputs come from.

:class:`MarginalBatches` keeps the K inputs on the device as one padded tensor and draws a
minibatch from every input in one call (shape ``(K, B, d)``), so methods vectorise over the
inputs instead of looping over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

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
    ) -> None:
        self.n_marginals = len(marginals)
        self.n_features = marginals[0].shape[1]
        n_max = max(m.shape[0] for m in marginals)
        data = np.zeros((self.n_marginals, n_max, self.n_features), dtype=np.float32)
        for k, m in enumerate(marginals):
            data[k, : m.shape[0]] = m
        self.data = torch.as_tensor(data, dtype=dtype, device=device)
        self.counts = torch.as_tensor([m.shape[0] for m in marginals], device=device)
        self.generator = generator
        self.device = device
        self._rows = torch.arange(self.n_marginals, device=device)[:, None]

    def draw(self, batch_size: int) -> torch.Tensor:
        """A minibatch from every input, drawn uniformly with replacement: (K, B, d)."""
        u = torch.rand((self.n_marginals, batch_size), generator=self.generator, device=self.device)
        idx = (u * self.counts[:, None]).long()
        return self.data[self._rows, idx]

    def marginal(self, k: int) -> torch.Tensor:
        """All rows of input k: (n_k, d)."""
        return self.data[k, : int(self.counts[k])]
