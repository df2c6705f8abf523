"""The ingredients of the congruent potentials (12) (WIN paper, section 5).

* :func:`_random_potential` -- a random strongly convex, smooth potential
  ``c F(x) + lambda |x|^2 / 2`` with F a softplus FICNN (:class:`skbary.nn.icnn.FICNN`).
* :func:`_chain_pairs` -- Lemma 3: how a chain of K - 1 congruent pairs combines into K
  potentials with the barycenter weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray


def _chain_pairs(weights: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Lemma 3 with a chain of M = K - 1 congruent pairs reproducing the weights.

    Pair m sends its beta-left function to input m and its beta-right function to input
    m + 1, with masses ``L_m = w_m beta_m`` and ``R_m = w_m (1 - beta_m)``. The end inputs
    take their whole weight from one pair, a middle input half from each neighbour, so
    ``alpha_n = L_n + R_{n-1}``. For K = 3 and weights (1/4, 1/2, 1/4) this is the WIN
    paper's choice (beta_m = w_m = 1/2, gamma as in its section 5).

    Returns
    -------
    pairs : ndarray of shape (M, 2)
        (left input, right input) of every pair.
    left, right : ndarray of shape (M,)
        ``L_m`` and ``R_m``.
    """
    K = len(weights)
    M = K - 1
    left = np.empty(M)
    right = np.empty(M)
    for m in range(M):
        left[m] = weights[m] if m == 0 else weights[m] / 2.0
        right[m] = weights[m + 1] if m + 1 == K - 1 else weights[m + 1] / 2.0
    pairs = np.stack([np.arange(M), np.arange(M) + 1], axis=1) if M else np.empty((0, 2), int)
    return pairs, left, right


def _random_potential(
    base: NDArray,
    hidden_sizes: Sequence[int],
    strength: float,
    strong_convexity: float,
    rng: np.random.RandomState,
):
    """A random strongly convex, smooth potential ``c F(x) + lambda |x|^2 / 2`` (F a FICNN).

    F is a softplus FICNN on standardised inputs, drawn from ``rng``; c makes the mean
    eigenvalue of ``c Hess F`` over the base rows equal ``strength`` so the maps move the
    data visibly whatever its scale; lambda = ``strong_convexity`` guarantees strong
    convexity (Lemma 2 needs it).
    """
    from ..nn.icnn import FICNN

    d = base.shape[1]
    pot = FICNN(d, hidden_sizes, activation="softplus", dtype=torch.float64)
    mu = torch.as_tensor(base.mean(0))
    sd = float(np.sqrt(np.mean(base.var(0)))) or 1.0
    with torch.no_grad():
        for layer in pot.input_layers:
            bound = 1.0 / np.sqrt(d)
            W = rng.uniform(-bound, bound, size=tuple(layer.weight.shape)) / sd
            layer.weight.copy_(torch.as_tensor(W))
            b = rng.uniform(-bound, bound, size=tuple(layer.bias.shape))
            layer.bias.copy_(torch.as_tensor(b) - layer.weight @ mu)
        # no linear term in the output: it would only translate the inputs
        pot.input_layers[-1].weight.zero_()
        pot.input_layers[-1].bias.zero_()
        for Wz in pot.z_weights:
            Wz.copy_(torch.as_tensor(rng.uniform(0.0, 2.0 / Wz.shape[1], size=tuple(Wz.shape))))
        probe = torch.as_tensor(base[rng.choice(len(base), min(256, len(base)), replace=False)])
        h = float(torch.diagonal(pot.hessian(probe), dim1=-2, dim2=-1).sum(-1).mean()) / d
        c = strength / max(h, 1e-300)
        pot.z_weights[-1].mul_(c)
    pot.strong_convexity = float(strong_convexity)
    pot.requires_grad_(False)
    return pot
