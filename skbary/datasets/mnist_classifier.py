"""A small MNIST classifier trained here and cached: the features of this project's "FID".

The Frechet Inception distance needs Inception weights, which cannot be downloaded; the
papers' MNIST scores are in the same spirit computed on the features of a classifier.
:func:`load_mnist_classifier` trains a small CNN on MNIST's 60,000 training images at the
size asked for (about a minute on one CPU core), caches its weights under
:func:`~skbary.datasets.get_data_home`, and returns it; its ``features`` (the last hidden
layer, 64 units) feed :func:`skbary.metrics.frechet_distance`. Needs ``skbary[images]``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from ..training.device import torch_threads
from .cache import get_data_home
from .mnist import load_mnist

__all__ = ["MNISTClassifier", "load_mnist_classifier"]

_VERSION = 1
N_FEATURES = 64


class MNISTClassifier(nn.Module):
    """``conv 3x3 (16) -> pool -> conv 3x3 (32) -> pool -> linear (64) -> linear (10)``.

    Parameters
    ----------
    image_size : int
        Side of the square grey images (a multiple of 4).

    Attributes
    ----------
    test_accuracy_ : float
        Accuracy on MNIST's 10,000 test images, recorded when trained.
    """

    def __init__(self, image_size: int) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}.")
        self.image_size = int(image_size)
        self.body = nn.Sequential(
            nn.Unflatten(1, (1, image_size, image_size)),
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (image_size // 4) ** 2, N_FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Linear(N_FEATURES, 10)
        self.test_accuracy_ = float("nan")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) of flat image rows (B, image_size**2)."""
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, X: ArrayLike, batch_size: int = 2048) -> NDArray[np.float64]:
        """The 64 hidden features of flat image rows, as a numpy array (n, 64)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.image_size**2:
            raise ValueError(
                f"rows must have {self.image_size**2} pixels ({self.image_size} x "
                f"{self.image_size}), got shape {X.shape}."
            )
        was = self.training
        self.eval()
        out = [
            self.body(torch.from_numpy(X[i : i + batch_size])) for i in range(0, len(X), batch_size)
        ]
        self.train(was)
        return torch.cat(out).double().numpy()

    @torch.no_grad()
    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """The predicted digit of each row."""
        H = torch.as_tensor(self.features(X), dtype=torch.float32)
        return self.head(H).argmax(1).numpy()


def _train(clf: MNISTClassifier, X: NDArray, y: NDArray, epochs: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    opt = torch.optim.Adam(clf.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    clf.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(Xt), generator=gen).split(128):
            opt.zero_grad(set_to_none=True)
            loss_fn(clf(Xt[idx]), yt[idx]).backward()
            opt.step()
    clf.eval()


def load_mnist_classifier(
    image_size: int = 16,
    *,
    n_train: int | None = None,
    epochs: int = 2,
    random_state: int = 0,
    data_home: str | os.PathLike | None = None,
) -> MNISTClassifier:
    """The cached MNIST classifier for ``image_size`` images, trained on first use.

    Parameters
    ----------
    image_size : int, default=16
        A multiple of 4 (16, 28, 32).
    n_train : int, default=None
        Training images (None: all 60,000; fewer for a quick, less accurate model).
    epochs : int, default=2
    random_state : int, default=0
        Seeds the initialisation, the choice of ``n_train`` images and the minibatches.
    data_home : str or path, default=None
        Cache folder; see :func:`~skbary.datasets.get_data_home`.

    Returns
    -------
    MNISTClassifier
        In eval mode, with ``test_accuracy_``.
    """
    size = int(image_size)
    tag = "all" if n_train is None else str(int(n_train))
    name = f"mnist_classifier_v{_VERSION}_{size}px_{tag}_e{int(epochs)}_rs{int(random_state)}.pt"
    path = os.path.join(get_data_home(data_home), name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        clf = MNISTClassifier(size)
    if os.path.exists(path):
        state = torch.load(path, map_location="cpu", weights_only=True)
        clf.test_accuracy_ = float(state.pop("test_accuracy"))
        clf.load_state_dict(state)
        return clf.eval()
    train = load_mnist(subset="train", image_size=size)
    X, y = train.data, train.target
    if n_train is not None:
        keep = np.random.RandomState(int(random_state)).choice(len(X), int(n_train), replace=False)
        X, y = X[keep], y[keep]
    with torch_threads(1):
        _train(clf, X, y, int(epochs), int(random_state))
    test = load_mnist(subset="test", image_size=size)
    clf.test_accuracy_ = float(np.mean(clf.predict(test.data) == test.target))
    state = {**clf.state_dict(), "test_accuracy": torch.tensor(clf.test_accuracy_)}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)
    return clf
