"""Transport maps for the K inputs of a barycenter, stacked into one batched module.

Three parametrisations of a transport plan ``pi(. | x)`` (NOT barycenter paper, section 4.2):

* deterministic: ``pi(. | x) = delta_{T(x)}`` -- :class:`BatchedMap` with ``noise_dim=0``;
* stochastic: ``pi(. | x) = T(x, .) # N(0, I_s)`` -- :class:`BatchedMap` with ``noise_dim``
  columns of noise after the ``in_features`` columns of x (one row ``[x, s]``);
* Gaussian: ``pi(. | x) = N(mu(x), diag sigma(x)^2)``, i.e. ``T(x, s) = mu(x) + sigma(x) * s``
  with ``s ~ N(0, I)`` -- :class:`BatchedGaussianMap`, whose output row is ``[mu(x),
  log-std offset]`` (``2 * out_features`` columns; :meth:`BatchedGaussianMap.mean_log_std`
  turns it into ``mu`` and ``log sigma``); the KL divergence to a Gaussian prior is available
  in closed form (:func:`kl_to_gaussian`).

All of them hold K networks in one module (:class:`~skbary.nn.mlp.BatchedMLP`) with the
interface of :class:`~skbary.nn.stacking.StackedModules`: ``net(x)`` maps ``(K, B, in)`` to
``(K, B, out)`` with one ``baddbmm`` per layer for every input at once, and
``net.forward_one(x, k)`` maps ``(B, in)`` rows with network k alone. Each map is
``skip(x) + mlp(x[, s])`` where ``skip`` is a learnable affine map, initialised to the
identity when ``in == out`` (:func:`~skbary.nn.init.identity_`), and the last layer of the
MLP starts small (:func:`~skbary.nn.init.scale_`), so a fresh map is close to an affine one
(to the identity when dimensions agree). Affine structure is what optimal maps between
Gaussians have, and the MLP adds the non-linear part.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .affine import identity_skip
from .init import last_linear, scale_
from .mlp import BatchedMLP
from .residual import ResidualMaps

__all__ = [
    "QUANTILE_AUTO_MAX_FEATURES",
    "BatchedMap",
    "BatchedGaussianMap",
    "MarginalQuantiles",
    "kl_to_gaussian",
    "quantile_features_auto",
    "quantiles_unset",
    "residual_maps",
    "resolve_quantile_features",
    "set_quantiles_",
]

#: Up to this input dimension ``quantile_features="auto"`` (the maps from the inputs of NOT
#: and WIN, quadratic cost) feeds the default maps the normal scores along the data axes and
#: along each input's independent components; above it, none (FastICA takes about 2 s per
#: input at d = 32 on 5,000 rows and grows as d^2; the gain was measured at d = 8 and 32).
QUANTILE_AUTO_MAX_FEATURES = 32


class MarginalQuantiles(nn.Module):
    """Per input and coordinate, the normal scores ``z = Phi^-1(F^_kj(u_j))`` of the rows.

    ``u = x`` (``frame="axes"``) or ``u = W_k (x - m_k)``, input k's independent components
    (``frame="ica"``: FastICA's unmixing of input k's rows, any invertible frame being a
    valid one for the features; ICA finds the axes along which a product measure seen under
    a rotation is a product again). ``F^_kj`` is input k's empirical distribution function
    of coordinate j of u, interpolated linearly between ``n_knots`` of its quantiles at
    levels evenly spaced in z (so the knots are dense in the tails), and clamped beyond the
    outermost knots. Where a law piles its mass against an edge (arcsine, uniform) the
    scores spread the rows that lie close together in x, which lets a network in front of
    them follow the steep optimal maps of such laws (``Q(F_k(x))``, of unbounded slope at
    the edge); where a law is Gaussian the scores are an affine function of x.

    Unset (all zero) until :meth:`set_` is called with the K inputs' rows.
    """

    #: Rows of each input FastICA is fitted on (a seeded subsample beyond).
    ICA_ROWS = 5_000

    def __init__(
        self, n_models: int, n_features: int, n_knots: int = 129, frame: str = "axes"
    ) -> None:
        super().__init__()
        if int(n_knots) < 2:
            raise ValueError(f"n_knots must be >= 2, got {n_knots}.")
        if frame not in ("axes", "ica"):
            raise ValueError(f"frame must be 'axes' or 'ica', got {frame!r}.")
        K, d, Q = int(n_models), int(n_features), int(n_knots)
        self.frame = frame
        if frame == "ica":  # u = (x - m_k) @ unmixing_k
            self.register_buffer("center", torch.zeros(K, d))
            self.register_buffer("unmixing", torch.eye(d).repeat(K, 1, 1))
        self.register_buffer("knots", torch.zeros(K, d, Q))
        self.register_buffer("scores", torch.zeros(Q))
        self.register_buffer("is_set", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def set_(self, rows: Sequence) -> None:
        """Knots from the rows of every input (K arrays or tensors of shape (n_k, d))."""
        K, d, Q = self.knots.shape
        if len(rows) != K:
            raise ValueError(f"expected the rows of {K} inputs, got {len(rows)}.")
        z, u = score_levels(min(len(r) for r in rows), Q)
        for k, r in enumerate(rows):
            x = torch.as_tensor(r)
            if self.frame == "ica":
                m, W = ica_frame(x.to(torch.float64), self.ICA_ROWS)
                self.center[k] = m.to(self.center)
                self.unmixing[k] = W.to(self.unmixing)
                x = (x.to(torch.float64) - m) @ W
            self.knots[k] = empirical_quantiles(x, u).to(self.knots)
        self.scores.copy_(z.to(self.scores))
        self.is_set.fill_(True)

    def _scores(self, x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
        # x (..., B, d) with knots (..., d, Q) -> (..., B, d)
        Q = knots.shape[-1]
        xt = x.transpose(-1, -2).contiguous()  # (..., d, B)
        i = torch.searchsorted(knots, xt).clamp(1, Q - 1)
        x0, x1 = knots.gather(-1, i - 1), knots.gather(-1, i)
        z0, z1 = self.scores[i - 1], self.scores[i]
        t = ((xt - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0.0, 1.0)
        return (z0 + t * (z1 - z0)).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of rows x (K, B, d) -> (K, B, d), input k's knots on block k."""
        if self.frame == "ica":
            x = torch.bmm(x - self.center.unsqueeze(1), self.unmixing)
        return self._scores(x, self.knots)

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Scores of rows x (B, d) of input k -> (B, d)."""
        if self.frame == "ica":
            x = (x - self.center[k]) @ self.unmixing[k]
        return self._scores(x, self.knots[k])


def score_levels(n: int, n_knots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z, u)``: ``n_knots`` normal scores evenly spaced up to the outermost that ``n``
    rows resolve (``Phi^-1(1 - 0.5 / n)``), and their levels ``u = Phi(z)`` (float64)."""
    if n < 2:
        raise ValueError("every input needs at least 2 rows for its marginal quantiles.")
    normal = torch.distributions.Normal(0.0, 1.0)
    top = float(normal.icdf(torch.tensor(1.0 - 0.5 / n, dtype=torch.float64)))
    z = torch.linspace(-top, top, int(n_knots), dtype=torch.float64)
    return z, normal.cdf(z)


def empirical_quantiles(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Quantiles (d, Q) of every column of the rows x (n, d) at ``levels`` (Q,), float64,
    interpolated linearly between order statistics (64 columns sorted at a time)."""
    pos = levels * (x.shape[0] - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=x.shape[0] - 1)
    w = (pos - lo).unsqueeze(1)
    out = []
    for j in range(0, x.shape[1], 64):  # bounded memory
        xs = torch.sort(x[:, j : j + 64].to(torch.float64), dim=0).values
        out.append((xs[lo] * (1 - w) + xs[hi] * w).T)
    return torch.cat(out)


def ica_frame(x: torch.Tensor, max_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(m, W)`` with ``(x - m) @ W`` the independent components of the rows x (float64).

    FastICA (scikit-learn) on at most ``max_rows`` rows, seeded. Its convergence does not
    matter here (every invertible frame gives valid features, ICA only makes them good):
    a ConvergenceWarning is not passed on. Rows whose covariance is singular (a constant
    column) cannot be whitened: then the frame is the data axes, with a warning.
    """
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    rows = x.numpy()
    if rows.shape[0] > max_rows:
        rows = rows[np.random.RandomState(0).choice(rows.shape[0], max_rows, replace=False)]
    m = x.mean(0)
    d = x.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            ica = FastICA(
                whiten="unit-variance", whiten_solver="eigh", random_state=0, max_iter=200
            ).fit(rows)
            W = torch.as_tensor(ica.components_.T.copy(), dtype=torch.float64)
        except (ValueError, np.linalg.LinAlgError):
            W = torch.full((d, d), float("nan"), dtype=torch.float64)
    if not torch.isfinite(W).all() or torch.linalg.matrix_rank(W) < d:
        warnings.warn(
            "the ICA frame of the quantile features could not be found (the rows' covariance "
            "is singular); those features use the data axes.",
            stacklevel=4,
        )
        return m, torch.eye(d, dtype=torch.float64)
    return m, W


#: The ``quantile_features`` values and the frames of their scores.
QUANTILE_FRAMES = {
    False: (),
    True: ("axes",),
    "axes": ("axes",),
    "ica": ("ica",),
    "axes+ica": ("axes", "ica"),
}


def resolve_quantile_features(value: Any, auto: bool, name: str = "quantile_features") -> Any:
    """The ``quantile_features`` setting of a default map, "auto" resolved.

    ``auto``: whether "auto" applies, i.e. means "axes+ica" (the estimator's rule: the
    quadratic cost, maps from the inputs' own rows, at most
    :data:`QUANTILE_AUTO_MAX_FEATURES` input features); else it means False. Any other
    value must be one of :data:`QUANTILE_FRAMES`' keys (``name`` is the setting's name in
    the error).
    """
    if isinstance(value, str) and value == "auto":
        return "axes+ica" if auto else False
    if isinstance(value, bool | np.bool_) or (isinstance(value, str) and value in QUANTILE_FRAMES):
        return value
    raise ValueError(
        f"{name} must be 'auto', True, False, 'axes', 'ica' or 'axes+ica', got {value!r}."
    )


def quantile_features_auto(quadratic_cost: bool, n_features: int) -> bool:
    """The rule of ``quantile_features="auto"``: on (``"axes+ica"``) for maps from the
    inputs' own rows under the quadratic cost with at most
    :data:`QUANTILE_AUTO_MAX_FEATURES` input features (the setting the gain was measured
    in); off for other costs (the Twister's) and above."""
    return bool(quadratic_cost) and int(n_features) <= QUANTILE_AUTO_MAX_FEATURES


def quantiles_unset(module: nn.Module) -> bool:
    """Whether a map network holds quantile features not set yet (so that a caller gathers
    the training rows :func:`set_quantiles_` needs only then)."""
    return any(
        isinstance(m, BatchedMap) and m.quantiles is not None and not bool(m.quantiles[0].is_set)
        for m in module.modules()
    )


def residual_maps(
    n_models: int,
    n_features: int,
    hidden_layer_sizes: Sequence[int],
    activation: str = "relu",
    residual: bool = True,
    quantile_features: bool | str = False,
) -> nn.Module:
    """K maps R^d -> R^d fused into one batched MLP, ``x + MLP(...)`` by default.

    The default maps of the max-min OT solvers (WIN's both roles, the generative
    barycenter's transform). With ``quantile_features`` (already resolved: False, True or a
    frame of :data:`QUANTILE_FRAMES`) the MLP is a :class:`BatchedMap` without its own skip
    that also takes the normal scores ``z(x)`` of input k's marginals, set later from the
    training rows by :func:`set_quantiles_`; without, a plain
    :class:`~skbary.nn.mlp.BatchedMLP`. ``residual`` adds the identity, so that the maps
    start near it (the last layer's initial scale is the MLP's own).
    """
    if quantile_features:
        net: nn.Module = BatchedMap(
            n_models, n_features, n_features, hidden_layer_sizes, activation, skip=False,
            init_scale=1.0, quantile_features=quantile_features,
        )  # fmt: skip
    else:
        net = BatchedMLP(n_models, n_features, n_features, hidden_layer_sizes, activation)
    return ResidualMaps(net) if residual else net


def set_quantiles_(module: nn.Module, rows: Sequence) -> None:
    """Set the marginal quantiles of every :class:`BatchedMap` inside ``module`` (a map
    network, possibly wrapped) from the K inputs' rows, once (see
    :meth:`BatchedMap.set_quantiles_`); a module without quantile features is left alone."""
    for m in module.modules():
        if isinstance(m, BatchedMap):
            m.set_quantiles_(rows)


def quantile_frames(value: Any) -> tuple[str, ...]:
    """The frames of a resolved ``quantile_features`` value (ValueError for another)."""
    if isinstance(value, bool | np.bool_):
        return QUANTILE_FRAMES[bool(value)]
    if value in QUANTILE_FRAMES:
        return QUANTILE_FRAMES[value]
    raise ValueError(
        "quantile_features must be False, True (= 'axes'), 'axes', 'ica' or 'axes+ica', "
        f"got {value!r}."
    )


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
        Columns of standard normal noise the maps take after x (0: deterministic maps).
        Rows are then ``[x, s]`` with ``in_features + noise_dim`` columns, or x and the
        noise are given apart (``net(x, noise)``).
    skip : bool, default=True
        Add the learnable affine skip ``skip_k(x)`` (identity at initialisation when
        ``in_features == out_features``). Without it the map is the plain MLP.
    init_scale : float, default=0.1
        Factor on the initial weights of the MLP's last layer (small: the map starts close
        to its affine part).
    quantile_features : bool or {"axes", "ica", "axes+ica"}, default=False
        Also feed the MLP the normal scores of x under every input's marginals
        (:class:`MarginalQuantiles`, set from the training rows by
        :meth:`set_quantiles_`): rows ``[x, z(x)[, s]]``. "axes" (or True): along the data
        axes; "ica": along input k's independent components; "axes+ica": both.
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
        quantile_features: bool | str = False,
    ) -> None:
        super().__init__()
        if int(noise_dim) < 0:
            raise ValueError(f"noise_dim must be >= 0, got {noise_dim}.")
        self.n_models = int(n_models)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.noise_dim = int(noise_dim)
        frames = quantile_frames(quantile_features)
        self.quantiles = (
            nn.ModuleList([MarginalQuantiles(n_models, in_features, frame=f) for f in frames])
            if frames
            else None
        )
        extra = self.in_features * len(frames)
        self.mlp = BatchedMLP(
            n_models, in_features + extra + self.noise_dim, out_features, hidden_layer_sizes,
            activation,
        )  # fmt: skip
        scale_(last_linear(self.mlp), init_scale)
        self.skip = identity_skip(n_models, in_features, out_features) if skip else None

    def set_quantiles_(self, rows: Sequence) -> None:
        """Set the marginal quantiles of the ``quantile_features`` from the K inputs' rows
        (once: a warm start keeps them, so the maps stay the functions they were)."""
        if self.quantiles is not None and not bool(self.quantiles[0].is_set):
            for q in self.quantiles:
                q.set_(rows)

    def _with_scores(self, x: torch.Tensor, inp: torch.Tensor, k: int | None) -> torch.Tensor:
        if self.quantiles is None:
            return inp
        z = torch.cat([q(x) if k is None else q.forward_one(x, k) for q in self.quantiles], -1)
        return torch.cat([inp[..., : self.in_features], z, inp[..., self.in_features :]], -1)

    @property
    def stochastic(self) -> bool:
        """Whether the maps take a noise input."""
        return self.noise_dim > 0

    def _split(
        self, x: torch.Tensor, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows of x, rows of the MLP's input) from x, or [x, s], and the noise."""
        if not self.noise_dim:
            return x, x
        if noise is not None:
            return x, torch.cat([x, noise], dim=-1)
        if x.shape[-1] != self.in_features + self.noise_dim:
            raise ValueError(
                f"these maps are stochastic: pass noise of {self.noise_dim} columns, or rows "
                f"[x, noise] of {self.in_features} + {self.noise_dim} columns."
            )
        return x[..., : self.in_features].contiguous(), x

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Images: x (K, B, in) [and noise (K, B, noise_dim)], or rows [x, s] -> (K, B, out)."""
        x, inp = self._split(x, noise)
        h = self.mlp(self._with_scores(x, inp, None))
        if self.skip is not None:
            h = h + self.skip(x)
        return h

    def forward_one(
        self, x: torch.Tensor, k: int, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map k alone: x (B, in) [and noise (B, noise_dim)], or rows [x, s] -> (B, out)."""
        x, inp = self._split(x, noise)
        h = self.mlp.forward_one(self._with_scores(x, inp, k), k)
        if self.skip is not None:
            h = h + self.skip.forward_one(x, k)
        return h


class BatchedGaussianMap(nn.Module):
    """K Gaussian conditional plans ``N(mu_k(x), diag sigma_k(x)^2)`` in one module.

    The output row is ``[mu_k(x), o_k(x)]`` (``2 * out_features`` columns) with
    ``mu_k(x) = skip_k(x) + mlp_k(x)[:out]`` and the log-std offset
    ``o_k(x) = mlp_k(x)[out:]``; ``log sigma_k(x) = o_k(x) + log init_std`` clamped to
    ``[min_log_std, max_log_std]`` (:meth:`mean_log_std`). A draw is ``mu + sigma * s`` with
    ``s ~ N(0, I_out)`` (the reparametrisation trick, so gradients flow through the draw).

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
        scale_(last_linear(self.mlp), init_scale)
        self.skip = identity_skip(n_models, in_features, out_features) if skip else None
        self.log_std_offset = math.log(init_std)
        self.min_log_std = float(min_log_std)
        self.max_log_std = float(max_log_std)

    @property
    def stochastic(self) -> bool:
        return True

    def _head(self, x: torch.Tensor, h: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        if skip is None:
            return h
        D = self.out_features
        return torch.cat([h[..., :D] + skip, h[..., D:]], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[mu(x), log-std offset]``: x (K, B, in) -> (K, B, 2 * out)."""
        h = self.mlp(x)
        return self._head(x, h, None if self.skip is None else self.skip(x))

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Plan k alone: x (B, in) -> ``[mu(x), log-std offset]`` (B, 2 * out)."""
        h = self.mlp.forward_one(x, k)
        return self._head(x, h, None if self.skip is None else self.skip.forward_one(x, k))

    def mean_log_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mu(x)`` and ``log sigma(x)``, each (K, B, out), for x (K, B, in)."""
        h = self(x)
        mu, offset = h[..., : self.out_features], h[..., self.out_features :]
        log_std = (offset + self.log_std_offset).clamp(self.min_log_std, self.max_log_std)
        return mu, log_std


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
    prior_precision : tensor of shape (D, D), or (D,) for a diagonal S0
        ``S0^-1`` (its diagonal when 1-D: no D x D state in high dimension).
    prior_logdet : 0-d tensor
        ``log det S0``.

    Returns
    -------
    tensor of shape (...)
    """
    D = mu.shape[-1]
    var = torch.exp(2.0 * log_std)
    diff = mu - prior_mean
    if prior_precision.dim() == 1:
        trace = (var * prior_precision).sum(-1)
        maha = (diff * prior_precision * diff).sum(-1)
    else:
        trace = (var * torch.diagonal(prior_precision)).sum(-1)
        maha = ((diff @ prior_precision) * diff).sum(-1)
    return 0.5 * (trace + maha - D + prior_logdet - 2.0 * log_std.sum(-1))
