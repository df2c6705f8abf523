"""Transport maps for the K inputs of a barycenter, stacked into one batched module.

Three parametrisations of a transport plan ``pi(. | x)`` (NOT barycenter paper, section 4.2):

* deterministic: ``pi(. | x) = delta_{T(x)}`` -- :class:`BatchedMap` with ``noise_dim=0``;
* stochastic: ``pi(. | x) = T(x, .) # N(0, I_s)`` -- :class:`BatchedMap` with a noise input of
  ``noise_dim`` columns concatenated to x;
* Gaussian: ``pi(. | x) = N(mu(x), diag sigma(x)^2)``, i.e. ``T(x, s) = mu(x) + sigma(x) * s``
  with ``s ~ N(0, I)`` -- :class:`BatchedGaussianMap`, whose KL divergence to a Gaussian
  prior is available in closed form (:meth:`BatchedGaussianMap.kl_to_gaussian`).

All of them hold K networks in one module (:class:`~skbary.nn.mlp.BatchedMLP`): input
``(K, B, in)``, output ``(K, B, out)``, one ``baddbmm`` per layer for every input at once.
Each map is ``skip(x) + mlp(x[, s])`` where ``skip`` is a learnable affine map, initialised
to the identity when ``in == out``, and the last layer of the MLP starts small, so a fresh
map is close to an affine one (to the identity when dimensions agree). Affine structure is
what optimal maps between Gaussians have, and the MLP adds the non-linear part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .mlp import BatchedLinear, BatchedMLP

__all__ = ["BatchedMap", "BatchedGaussianMap"]


def _identity_skip(n_models: int, in_features: int, out_features: int) -> BatchedLinear:
    """A batched affine layer equal to the identity (zero-padded/truncated), zero bias."""
    layer = BatchedLinear(n_models, in_features, out_features)
    with torch.no_grad():
        eye = torch.eye(in_features, out_features)
        layer.weight.copy_(eye.expand(n_models, -1, -1))
        layer.bias.zero_()
    return layer


def _shrink_last(mlp: BatchedMLP, scale: float) -> None:
    last = mlp.layers[-1]
    with torch.no_grad():
        last.weight.mul_(scale)
        last.bias.mul_(scale)


class BatchedMap(nn.Module):
    """K maps ``T_k(x[, s]) = skip_k(x) + mlp_k(x[, s])`` evaluated in one call.

    Parameters
    ----------
    n_models : int
        K, the number of maps.
    in_features : int
        Dimension of the inputs x.
    out_features : int
        Dimension of the barycenter space.
    hidden_layer_sizes : sequence of int, default=(128, 128)
        Hidden widths of every MLP.
    activation : str, default="relu"
        Hidden activation (see :data:`skbary.nn.mlp.ACTIVATIONS`).
    noise_dim : int, default=0
        Columns of standard normal noise concatenated to x (0: deterministic maps).
    skip : bool, default=True
        Add the learnable affine skip ``skip_k(x)`` (identity at initialisation when
        ``in_features == out_features``). Without it the map is the plain MLP.
    init_scale : float, default=0.1
        Factor on the initial weights of the MLP's last layer (small: the map starts close
        to its affine part).
    """

    def __init__(
        self,
        n_models: int,
        in_features: int,
        out_features: int,
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "relu",
        noise_dim: int = 0,
        skip: bool = True,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if int(noise_dim) < 0:
            raise ValueError(f"noise_dim must be >= 0, got {noise_dim}.")
        self.n_models = int(n_models)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.noise_dim = int(noise_dim)
        self.mlp = BatchedMLP(
            n_models, in_features + self.noise_dim, out_features, hidden_layer_sizes, activation
        )
        _shrink_last(self.mlp, init_scale)
        self.skip = _identity_skip(n_models, in_features, out_features) if skip else None

    @property
    def stochastic(self) -> bool:
        """Whether the maps take a noise input."""
        return self.noise_dim > 0

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Images of x: (K, B, in) [and noise (K, B, noise_dim)] -> (K, B, out)."""
        if self.noise_dim:
            if noise is None:
                raise ValueError(
                    "these maps are stochastic: pass noise of shape (K, B, noise_dim)."
                )
            h = self.mlp(torch.cat([x, noise], dim=-1))
        else:
            h = self.mlp(x)
        if self.skip is not None:
            h = h + self.skip(x)
        return h


class BatchedGaussianMap(nn.Module):
    """K Gaussian conditional plans ``N(mu_k(x), diag sigma_k(x)^2)`` in one module.

    ``mu_k(x) = skip_k(x) + mlp_k(x)[:out]`` and ``log sigma_k(x) = mlp_k(x)[out:] +
    log init_std``; a draw is ``mu + sigma * s`` with ``s ~ N(0, I_out)`` (the
    reparametrisation trick, so gradients flow through the draw).

    Parameters
    ----------
    n_models, in_features, out_features, hidden_layer_sizes, activation, skip, init_scale
        As in :class:`BatchedMap`.
    init_std : float, default=0.1
        The standard deviation of every coordinate at initialisation.
    min_log_std, max_log_std : float, default=-10.0, 5.0
        Clamp of log sigma (keeps the KL term and the draws finite).
    """

    def __init__(
        self,
        n_models: int,
        in_features: int,
        out_features: int,
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "relu",
        skip: bool = True,
        init_scale: float = 0.1,
        init_std: float = 0.1,
        min_log_std: float = -10.0,
        max_log_std: float = 5.0,
    ) -> None:
        super().__init__()
        if init_std <= 0:
            raise ValueError(f"init_std must be positive, got {init_std}.")
        self.n_models = int(n_models)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.noise_dim = self.out_features
        self.mlp = BatchedMLP(
            n_models, in_features, 2 * out_features, hidden_layer_sizes, activation
        )
        _shrink_last(self.mlp, init_scale)
        self.skip = _identity_skip(n_models, in_features, out_features) if skip else None
        self.log_std_offset = math.log(init_std)
        self.min_log_std = float(min_log_std)
        self.max_log_std = float(max_log_std)

    @property
    def stochastic(self) -> bool:
        return True

    def mean_log_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mu(x)`` and ``log sigma(x)``, each (K, B, out), for x (K, B, in)."""
        h = self.mlp(x)
        mu, log_std = h[..., : self.out_features], h[..., self.out_features :]
        if self.skip is not None:
            mu = mu + self.skip(x)
        log_std = (log_std + self.log_std_offset).clamp(self.min_log_std, self.max_log_std)
        return mu, log_std

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Draws ``mu(x) + sigma(x) * noise``; noise (K, B, out), or the mean when None."""
        mu, log_std = self.mean_log_std(x)
        if noise is None:
            return mu
        return mu + torch.exp(log_std) * noise

    @staticmethod
    def kl_to_gaussian(
        mu: torch.Tensor,
        log_std: torch.Tensor,
        prior_mean: torch.Tensor,
        prior_precision: torch.Tensor,
        prior_logdet: torch.Tensor,
    ) -> torch.Tensor:
        """``KL(N(mu, diag sigma^2) || N(m0, S0))`` per row, in closed form.

        ``1/2 [tr(S0^-1 diag sigma^2) + (mu - m0)^T S0^-1 (mu - m0) - D + log det S0
        - sum log sigma^2]``.

        Parameters
        ----------
        mu, log_std : tensor of shape (..., D)
        prior_mean : tensor of shape (D,)
        prior_precision : tensor of shape (D, D)
            ``S0^-1``.
        prior_logdet : 0-d tensor
            ``log det S0``.

        Returns
        -------
        tensor of shape (...)
        """
        D = mu.shape[-1]
        var = torch.exp(2.0 * log_std)
        trace = (var * torch.diagonal(prior_precision)).sum(-1)
        diff = mu - prior_mean
        maha = ((diff @ prior_precision) * diff).sum(-1)
        return 0.5 * (trace + maha - D + prior_logdet - 2.0 * log_std.sum(-1))
