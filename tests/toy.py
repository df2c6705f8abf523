"""A minimal neural estimator used to test the shared machinery of NeuralBarycenter.

It learns the barycenter's mean with a translation generator ``G(z) = z + b`` by minimising
``sum_k a_k |mean G(z) - mean X_k|^2`` on minibatches. Simple enough to know the answer
(the weighted mean of the input means), yet it goes through every piece of the base: batches
from all inputs, seeded networks, the optimiser factory, the loop, history and pickling.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from skbary.base import InverseTransformMixin, NeuralBarycenter, Role


class ToyMeanBarycenter(InverseTransformMixin, NeuralBarycenter):
    _roles = {
        "shift": Role(
            "shift",
            "the translation b",
            defaults={"scale": 1.0},
            stacked=False,
            reserved=("scale",),
        )
    }
    _parameter_constraints = {
        **NeuralBarycenter._parameter_constraints,
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "shift": [None, callable],
    }

    def __init__(
        self,
        weights: Any = None,
        unlabelled_rows: str = "error",
        shift: Any = None,
        batch_size: int = 64,
        lr: float = 0.05,
        max_iter: int = 300,
        max_time: float | None = None,
        optimizer: type = torch.optim.Adam,
        device: str = "auto",
        random_state: Any = None,
        verbose: int = 0,
        callbacks: Any = None,
        warm_start: bool = False,
        **kwargs: Any,
    ) -> None:
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.shift = shift
        self.batch_size = batch_size
        self.lr = lr
        self.max_iter = max_iter
        self.max_time = max_time
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        self._set_prefixed(kwargs)

    def _standardise_auto(self) -> bool:
        return False  # the toy exercises the machinery on the data as given

    def _build_networks(self, n_marginals: int, n_features: int) -> None:
        self.shift_ = self._network(
            "shift",
            in_features=1,
            out_features=n_features,
            default=lambda: nn.Linear(1, n_features, bias=False),
        )

    def _train(self, data, weights) -> None:
        a = torch.as_tensor(weights, dtype=torch.float32, device=self.device_)
        scale = self._role_setting("shift", "scale", 1.0)
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

    def _shift(self) -> torch.Tensor:
        device = next(self.shift_.parameters()).device
        return self.shift_(torch.ones(1, 1, device=device))[0].detach()

    def _sample(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        z = self._randn((n, self.n_features_in_), rng)
        with torch.no_grad():
            return (z + self._shift()).cpu().numpy()

    def _transform(self, X: np.ndarray, k: int) -> np.ndarray:
        return X + self._shift().cpu().numpy()

    def _inverse_transform(self, Y: np.ndarray, k: int) -> np.ndarray:
        return Y - self._shift().cpu().numpy()
