"""A minimal neural estimator used to test the shared machinery of NeuralBarycenter.

It learns the barycenter's mean with a translation generator ``G(z) = z + b`` by minimising
``sum_k a_k |mean G(z) - mean X_k|^2`` on minibatches. Simple enough to know the answer
(the weighted mean of the input means), yet it goes through every piece of the base: batches
from all inputs, seeded networks, the optimiser factory, the loop, history and pickling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from skbary.base import NeuralBarycenter


class ToyMeanBarycenter(NeuralBarycenter):
    _network_defaults = {"shift": {"scale": 1.0}}
    _learns_inverse = True

    def __init__(
        self,
        weights: Any = None,
        batch_size: int = 64,
        lr: float = 0.05,
        max_iter: int = 300,
        max_time: float | None = None,
        optimizer: type = torch.optim.Adam,
        device: str = "auto",
        random_state: Any = None,
        verbose: int = 0,
        callbacks: Any = None,
        **kwargs: Any,
    ) -> None:
        self.weights = weights
        self.batch_size = batch_size
        self.lr = lr
        self.max_iter = max_iter
        self.max_time = max_time
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self._set_prefixed(kwargs)

    def _fit(self, marginals, weights) -> None:
        self._begin_fit()
        data = self._batches(marginals)
        a = torch.as_tensor(weights, dtype=torch.float32, device=self.device_)
        scale = self._network_params("shift")["scale"]
        with self._seeded():
            self.shift_ = nn.Linear(1, self.n_features_in_, bias=False)
        self.shift_.to(self.device_)
        opt = self._make_optimizer(self.shift_.parameters(), self.lr)
        ones = torch.ones(1, 1, device=self.device_)

        def step(i: int) -> dict[str, torch.Tensor]:
            x = data.draw(self.batch_size)  # (K, B, d)
            target = (a[:, None] * x.mean(dim=1)).sum(0)
            loss = ((scale * self.shift_(ones)[0] - target) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"shift": loss}

        self.n_iter_ = self._run(step, n_iter=self.max_iter, deadline=self._deadline())
        self._end_fit()

    def _sample(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        z = self._randn((n, self.n_features_in_), rng)
        with torch.no_grad():
            return (z + self.shift_.weight[:, 0]).cpu().numpy()

    def _transform(self, X: np.ndarray, k: int) -> np.ndarray:
        return X + self.shift_.weight[:, 0].detach().cpu().numpy()

    def _inverse_transform(self, Y: np.ndarray, k: int) -> np.ndarray:
        return Y - self.shift_.weight[:, 0].detach().cpu().numpy()
