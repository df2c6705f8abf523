"""Input-convex neural networks: one family, one set of building blocks.

Two networks share the blocks of this module (the activation table
:mod:`skbary.nn.activations`, how the z-weights stay non-negative, the convexity penalty
and projection, the ``input_convex`` marker):

* :class:`FICNN` -- one fully input-convex potential ``psi(x)`` (Amos, Xu and Kolter,
  2017), with exact Hessians and Hessian-vector products; the datasets build their random
  convex potentials with it;
* :class:`BatchedICNN` -- K potentials ``psi_k(x; c)`` evaluated together on a ``(K, B, d)``
  tensor (one ``bmm`` per layer), fully input-convex or, with a conditioning vector ``c``,
  partially input-convex (PICNN); the potentials of
  :class:`~skbary.estimators.icnn.ICNNBarycenter`.

A potential is convex in x for every parameter value that keeps its hidden-to-hidden
("z") weights non-negative, when its activation is convex and non-decreasing (CELU,
softplus, leaky ReLU with slope 0.2):

.. code-block:: text

    z_1     = act(A_0 x + b_0)
    z_{l+1} = act(W_l z_l + A_l x + b_l),     W_l >= 0
    psi(x)  = w_L . z_L + a_L . x + b_L (+ a convex quadratic term),   w_L >= 0

Its gradient ``grad psi`` is a monotone map, the form of every optimal transport map for
the quadratic cost (Brenier). The z-weights stay non-negative by one of two
``positivity`` rules: ``"clip"`` keeps raw weights that the training projects with
:meth:`~InputConvexNetwork.clip_` after every optimiser step (Makkuva et al., Fan et al.),
or violates softly under :meth:`~InputConvexNetwork.convexity_penalty`; ``"softplus"``
uses ``softplus(raw)``, non-negative for any raw value.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .activations import Activation, get_activation
from .affine import DENSE_MAX_FEATURES
from .mlp import check_hidden_layer_sizes

__all__ = [
    "FULL_QUADRATIC_MAX_FEATURES",
    "BatchedICNN",
    "ConvexQuantileTerm",
    "FICNN",
    "InputConvexNetwork",
]

#: Up to this many features BatchedICNN's quadratic term is a full (K, d, d) matrix; above,
#: ``quadratic=True`` gives a diagonal one (no d x d state for image-sized rows).
FULL_QUADRATIC_MAX_FEATURES = DENSE_MAX_FEATURES

# the input-convex networks' own parameters of the table's activations
_ACTIVATION_PARAMS = {"leaky_relu": {"negative_slope": 0.2}}
_POSITIVITY = ("clip", "softplus")


@functools.cache
def convex_activation(name: str) -> Activation:
    """The table's convex activation ``name`` with the ICNN parameters (leaky slope 0.2)."""
    return get_activation(name, convex=True).with_params(**_ACTIVATION_PARAMS.get(name, {}))


def _check_positivity(positivity: str) -> str:
    if positivity not in _POSITIVITY:
        raise ValueError(f"positivity must be 'clip' or 'softplus', got {positivity!r}.")
    return positivity


@torch.no_grad()
def _positive_(W: torch.Tensor, high: float, positivity: str) -> torch.Tensor:
    """Draw z-weights uniform on ``[0, high]``, stored raw for ``positivity``."""
    W.uniform_(0.0, high)
    if positivity == "softplus":
        # store the raw value whose softplus is the drawn weight
        W.copy_(torch.log(torch.expm1(W.clamp_min(1e-6))))
    return W


class InputConvexNetwork(nn.Module):
    """What every input-convex network of the package shares: its non-negative z-weights.

    Subclasses keep their raw z-weights in the ParameterList ``z_weights`` and their rule
    in ``positivity``. ``input_convex = True`` is the marker the estimators' convex roles
    check (:class:`~skbary.nn.roles.Role` with ``convex=True``).
    """

    input_convex = True
    z_weights: nn.ParameterList
    positivity: str = "clip"

    def _z_list(self) -> list[torch.Tensor]:
        """The raw z-weights as a list (a ParameterList's indexing costs microseconds)."""
        return list(self.z_weights._parameters.values())

    def z_weight(self, layer: int) -> torch.Tensor:
        """The effective (non-negative when convex) z-weight matrix of a layer."""
        W = self.z_weights[layer]
        return F.softplus(W) if self.positivity == "softplus" else W

    def effective_z_weights(self) -> list[torch.Tensor]:
        """Every layer's effective z-weights, in order."""
        if self.positivity == "softplus":
            return [F.softplus(W) for W in self._z_list()]
        return self._z_list()

    def clip_(self) -> InputConvexNetwork:
        """Project the z-weights onto the non-negative orthant in place (``positivity="clip"``).

        A no-op with ``positivity="softplus"``. Returns self.
        """
        if self.positivity == "clip":
            with torch.no_grad():
                torch._foreach_clamp_min_(self._z_list(), 0.0)
        return self

    def is_convex(self) -> bool:
        """Whether every effective z-weight is non-negative (so the potential is convex)."""
        return all(bool((self.z_weight(i) >= 0).all()) for i in range(len(self.z_weights)))

    def convexity_penalty(self) -> torch.Tensor:
        """``sum_l |max(-W_l, 0)|_F^2`` over the effective z-weights (Fan et al.'s R / lambda).

        A soft alternative to clipping; for a batched network it sums over the K potentials.
        """
        # min(W, 0)^2 = max(-W, 0)^2, with one operation less per layer
        terms = [W.clamp(max=0.0).pow(2).sum() for W in self.effective_z_weights()]
        return sum(terms[1:], terms[0]) if terms else torch.zeros(())


class FICNN(InputConvexNetwork):
    """Fully input-convex network: a potential convex in its input.

    Parameters
    ----------
    in_features : int
        Dimension d of the input.
    hidden_sizes : sequence of int, default=(64, 64)
        Widths of the hidden layers (at least one).
    activation : {"celu", "softplus", "leaky_relu"}, default="celu"
        Convex non-decreasing activation. ``"softplus"`` makes the potential smooth
        (infinitely differentiable, bounded Hessian), which Newton-type solvers need.
    strong_convexity : float, default=0.0
        Adds ``strong_convexity / 2 * |x|^2`` so the potential is strongly convex and its
        gradient invertible.
    positivity : {"clip", "softplus"}, default="clip"
        How the z-weights stay non-negative: ``"clip"`` keeps raw weights that the training
        loop projects with :meth:`clip_` after every optimiser step (Makkuva et al.,
        Fan et al.); ``"softplus"`` uses ``softplus(raw)`` so any raw value is convex.
    dtype : torch.dtype, optional
        Parameter dtype (float32 by default).

    Notes
    -----
    The z-weights start non-negative (uniform on ``[0, 2 / fan_in]``, so each hidden layer
    averages its input and the activations keep their scale with depth) and the
    input-to-hidden weights use PyTorch's default initialisation. With ``positivity="clip"``
    convexity holds only while the weights are clipped: call :meth:`clip_` after
    each optimiser step, or check :meth:`is_convex`.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "celu",
        strong_convexity: float = 0.0,
        positivity: str = "clip",
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        hidden_sizes = list(check_hidden_layer_sizes(hidden_sizes, allow_empty=False))
        if int(in_features) < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features}.")
        if not hidden_sizes or min(hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must hold positive widths, got {hidden_sizes}.")
        convex_activation(activation)  # raises for a name that is not a convex one
        _check_positivity(positivity)
        if strong_convexity < 0:
            raise ValueError(f"strong_convexity must be >= 0, got {strong_convexity}.")
        self.in_features = int(in_features)
        self.hidden_sizes = tuple(hidden_sizes)
        self.activation = activation
        self.strong_convexity = float(strong_convexity)
        self.positivity = positivity
        kw = {"dtype": dtype}
        # A_l x + b_l for every hidden layer, and a_L x + b_L for the output
        self.input_layers = nn.ModuleList(
            [nn.Linear(self.in_features, h, **kw) for h in hidden_sizes]
            + [nn.Linear(self.in_features, 1, **kw)]
        )
        # W_l (non-negative) from hidden layer l to l + 1, and w_L to the output
        sizes = hidden_sizes + [1]
        self.z_weights = nn.ParameterList(
            [
                nn.Parameter(torch.empty(sizes[i + 1], sizes[i], **kw))
                for i in range(len(hidden_sizes))
            ]
        )
        self.reset_z_weights()

    # ----------------------------------------------------------------------------------
    def reset_z_weights(self) -> None:
        """Draw the z-weights non-negative, uniform on ``[0, 2 / fan_in]``."""
        for W in self.z_weights:
            _positive_(W, 2.0 / W.shape[1], self.positivity)

    def clip_weights_(self) -> FICNN:
        """Alias of :meth:`clip_`."""
        return self.clip_()

    # ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Potential values.

        Parameters
        ----------
        x : tensor of shape (..., in_features)

        Returns
        -------
        tensor of shape (...)
        """
        act = convex_activation(self.activation).function
        z = act(self.input_layers[0](x))
        n_hidden = len(self.hidden_sizes)
        for layer in range(1, n_hidden):
            z = act(F.linear(z, self.z_weight(layer - 1)) + self.input_layers[layer](x))
        out = F.linear(z, self.z_weight(n_hidden - 1)) + self.input_layers[n_hidden](x)
        out = out.squeeze(-1)
        if self.strong_convexity:
            out = out + 0.5 * self.strong_convexity * (x * x).sum(-1)
        return out

    def gradient(self, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        """``grad psi(x)`` by autograd, one row per row of x.

        Parameters
        ----------
        x : tensor of shape (n, in_features)
        create_graph : bool, default=False
            Keep the graph so the result can be differentiated again (e.g. in a loss that
            is trained through the map ``grad psi``, as ICNN-based OT solvers do).

        Returns
        -------
        tensor of shape (n, in_features)
        """
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            out = self(x)
            (g,) = torch.autograd.grad(out.sum(), x, create_graph=create_graph)
        return g

    def value_grad_hessian(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Potential, gradient and Hessian in one pass, without autograd.

        Every nonlinearity is an elementwise activation, so the exact Hessian is
        ``sum_l J_l^T diag(g_l * act''(u_l)) J_l`` with ``u_l`` the pre-activations,
        ``J_l = du_l/dx`` and ``g_l`` the back-propagated output gradient. This is many times
        faster than ``torch.func.hessian`` and is what Newton solvers on the potential use.
        (At the kink of ``leaky_relu`` and of CELU's second derivative the one-sided value
        is returned.)

        Parameters
        ----------
        x : tensor of shape (n, in_features)

        Returns
        -------
        value : tensor of shape (n,)
        grad : tensor of shape (n, in_features)
        hessian : tensor of shape (n, in_features, in_features)
        """
        act = convex_activation(self.activation)
        with torch.no_grad():
            n_hidden = len(self.hidden_sizes)
            d1s, d2s, Js = [], [], []
            z = None
            for layer in range(n_hidden):
                Al = self.input_layers[layer]
                if layer == 0:
                    u = Al(x)
                    J = Al.weight.expand(x.shape[0], -1, -1)  # du/dx, (n, h, d)
                else:
                    W = self.z_weight(layer - 1)
                    u = F.linear(z, W) + Al(x)
                    J = torch.matmul(W, d1s[-1][..., None] * Js[-1]) + Al.weight
                z, (d1, d2) = act.function(u), act.derivatives(u)
                d1s.append(d1)
                d2s.append(d2)
                Js.append(J)
            out_layer = self.input_layers[n_hidden]
            w = self.z_weight(n_hidden - 1)[0]
            value = z @ w + out_layer(x).squeeze(-1)
            grad = out_layer.weight[0] + torch.bmm((w * d1s[-1])[:, None, :], Js[-1])[:, 0]
            hess = x.new_zeros(x.shape[0], x.shape[1], x.shape[1])
            g = w.expand(x.shape[0], -1)  # d value / d z_l, back-propagated
            for layer in range(n_hidden - 1, -1, -1):
                c = g * d2s[layer]
                hess = hess + torch.bmm((Js[layer] * c[..., None]).transpose(1, 2), Js[layer])
                if layer > 0:
                    g = (g * d1s[layer]) @ self.z_weight(layer - 1)
            if self.strong_convexity:
                value = value + 0.5 * self.strong_convexity * (x * x).sum(-1)
                grad = grad + self.strong_convexity * x
                hess = hess + self.strong_convexity * torch.eye(
                    x.shape[1], dtype=x.dtype, device=x.device
                )
        return value, grad, hess

    def linearize(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """Potential, gradient and a Hessian-vector product operator at x, without autograd.

        The forward and backward quantities at x are computed once; each call of the
        returned operator ``hvp(V)`` (V of shape (n, in_features), one vector per row)
        then costs about two more passes of width ``hidden_sizes`` and never forms the
        ``(n, d, d)`` Hessians -- what Newton-CG solvers on the potential need in high
        dimension.

        Returns
        -------
        value : tensor of shape (n,)
        grad : tensor of shape (n, in_features)
        hvp : callable
            ``hvp(V)[i] = Hess psi(x_i) @ V[i]``.
        """
        act = convex_activation(self.activation)
        with torch.no_grad():
            n_hidden = len(self.hidden_sizes)
            Ws = [self.z_weight(i) for i in range(n_hidden)]
            d1s, d2s = [], []
            z = None
            for layer in range(n_hidden):
                u = self.input_layers[layer](x)
                if layer:
                    u = u + F.linear(z, Ws[layer - 1])
                z, (d1, d2) = act.function(u), act.derivatives(u)
                d1s.append(d1)
                d2s.append(d2)
            out_layer = self.input_layers[n_hidden]
            w = Ws[-1][0]
            value = z @ w + out_layer(x).squeeze(-1)
            gs = [None] * n_hidden  # d value / d z_l
            g = w.expand(x.shape[0], -1)
            grad = out_layer.weight[0].expand(x.shape[0], -1).clone()
            for layer in range(n_hidden - 1, -1, -1):
                gs[layer] = g
                gu = g * d1s[layer]
                grad = grad + gu @ self.input_layers[layer].weight
                if layer:
                    g = gu @ Ws[layer - 1]
            lam = self.strong_convexity
            if lam:
                value = value + 0.5 * lam * (x * x).sum(-1)
                grad = grad + lam * x

        def hvp(V: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                dus = []
                dz = None
                for layer in range(n_hidden):
                    du = F.linear(V, self.input_layers[layer].weight)
                    if layer:
                        du = du + F.linear(dz, Ws[layer - 1])
                    dz = d1s[layer] * du
                    dus.append(du)
                out = lam * V if lam else torch.zeros_like(V)
                dg = None  # tangent of d value / d z_l
                for layer in range(n_hidden - 1, -1, -1):
                    dgu = gs[layer] * d2s[layer] * dus[layer]
                    if dg is not None:
                        dgu = dgu + dg * d1s[layer]
                    out = out + dgu @ self.input_layers[layer].weight
                    if layer:
                        dg = dgu @ Ws[layer - 1]
                return out

        return value, grad, hvp

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """Hessian of the potential at every row of x, shape (n, in_features, in_features)."""
        return self.value_grad_hessian(x)[2]

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, hidden_sizes={self.hidden_sizes}, "
            f"activation={self.activation!r}, strong_convexity={self.strong_convexity}, "
            f"positivity={self.positivity!r}"
        )


# ======================================================================================
def _quadratic_form(quadratic: bool | str, n_features: int) -> str | bool:
    if quadratic is True:
        return "full" if n_features <= FULL_QUADRATIC_MAX_FEATURES else "diagonal"
    if quadratic is False or quadratic in ("full", "diagonal"):
        return quadratic
    raise ValueError(f"quadratic must be True, False, 'full' or 'diagonal', got {quadratic!r}.")


def _uniform(shape: tuple[int, ...], bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


def _reflect(raw: torch.Tensor) -> torch.Tensor:
    """``|raw|``, with derivative 1 at 0 (``torch.abs`` has 0 there, which would freeze a
    parameter that starts at 0): non-negative for every raw value."""
    return torch.where(raw >= 0, raw, -raw)


class ConvexQuantileTerm(nn.Module):
    """K separable convex potentials ``psi_k(x) = sum_j phi_kj(w_kj . x - o_kj)`` along
    fixed directions, knotted at the data's quantiles: the convex analogue of the quantile
    features of :class:`~skbary.nn.maps.MarginalQuantiles`.

    The directions are the data axes (``frame="axes"``) and/or input k's independent
    components (``"ica"``: ``t = (x - m_k) W_k``, FastICA's unmixing of its rows, the
    frames of :class:`~skbary.nn.maps.MarginalQuantiles`). Each ``phi_kj`` is convex with a
    continuous piecewise-linear derivative, knotted at ``n_knots`` quantiles
    ``t_1 <= ... <= t_Q`` of the rows along that direction (levels evenly spaced in normal
    scores, so dense in the tails) and constant beyond them:

    .. code-block:: text

        phi'(t_i) = v_i = scale * (c + sum_{l < i} |r_l|),   linear in between,
        phi(t)    = its integral (piecewise quadratic, linear beyond the outer knots)

    so ``grad psi_k`` is a monotone 1-D map per direction -- the form of the optimal maps
    between product measures, along their axes -- for every value of the parameters ``c``
    and ``r`` (convexity is exact, with no clipping or penalty). Where the rows pile up
    against a bounded edge the knots crowd, so the map can climb steeply there, as
    ``Q(F_k(x))`` does. The parameters start at zero: the term is 0 until trained.

    Unset (knots all zero: the term is linear) until :meth:`set_` is called with the K
    inputs' rows; with ``weights`` the knots are the quantiles of their barycenter along
    each direction instead, for potentials evaluated on the barycenter (``f`` of NWB).

    With ``select="non-gaussian"`` :meth:`set_` keeps only the directions along which some
    input's rows are not Gaussian (D'Agostino and Pearson's test of
    ``scipy.stats.normaltest`` at level :attr:`GAUSSIAN_LEVEL`): along the others every
    input, and so their 1-D barycenter, is Gaussian, every 1-D map between them is affine
    and the potentials' quadratic part holds it, while the term's parameters, with nothing
    to learn, drift under Adam's normalised steps (f's gradient is a difference of two
    batch means, all noise at equilibrium) and bias the maps' affine part: on
    location-scatter inputs at D = 2 the weighted L2-UVP of NWB's maps was 0.128 % with
    every direction against 0.047 % without the term (``benchmarks/results/nongaussian.md``).
    The other directions' parameters get no gradient; with no direction left the term is
    skipped (:attr:`any_active`).

    Parameters
    ----------
    n_models : int
        K.
    n_features : int
        d.
    frames : sequence of {"axes", "ica"}
        The direction sets, d directions each (J = d per frame in all).
    n_knots : int, default=33
        Q, knots per direction.
    scale : float, default=0.1
        ``c`` and the rises enter as ``scale`` times their parameters: under Adam, whose
        steps are about ``lr`` whatever the gradient, the term's learning rate. With 1.0
        its many weakly determined parameters wandered: on Gaussian inputs (location-
        scatter, D = 8, 2,000 iterations) the maps' weighted L2-UVP was 0.213 % against
        0.045 % without the term, 0.057 % with 0.1; on a product measure 0.574 % and
        0.523 % (1.095 % without).
    select : {"all", "non-gaussian"}, default="all"
        Which directions :meth:`set_` keeps (above).
    """

    #: Rows of each input FastICA is fitted on (as the quantile features').
    ICA_ROWS = 5_000
    #: Level of the normality test of ``select="non-gaussian"``: a direction is kept when
    #: some input's p-value along it is below. On location-scatter inputs (Gaussian, D = 2
    #: and 8, seeds 0-2, 20,000 rows) the smallest p-value over inputs was at least 0.23 on
    #: every direction; on the product measures of ``make_product_measures`` (D = 8, with
    #: and without rotation, 5,000 rows) at most 1e-38.
    GAUSSIAN_LEVEL = 1e-4

    def __init__(
        self,
        n_models: int,
        n_features: int,
        frames: Sequence[str],
        n_knots: int = 33,
        scale: float = 0.1,
        select: str = "all",
    ) -> None:
        super().__init__()
        if not float(scale) > 0:
            raise ValueError(f"scale must be positive, got {scale}.")
        if select not in ("all", "non-gaussian"):
            raise ValueError(f"select must be 'all' or 'non-gaussian', got {select!r}.")
        self.select = select
        self.scale = float(scale)
        frames = tuple(frames)
        if not frames or any(f not in ("axes", "ica") for f in frames):
            raise ValueError(f"frames must be a non-empty sequence of 'axes', 'ica', got {frames}.")
        if int(n_knots) < 2:
            raise ValueError(f"n_knots must be >= 2, got {n_knots}.")
        K, d, Q = int(n_models), int(n_features), int(n_knots)
        J = d * len(frames)
        self.frames = frames
        # t = x @ directions - offset, (K, B, J); the knots along each of the J directions
        self.register_buffer("directions", torch.eye(d).repeat(K, 1, len(frames)))
        self.register_buffer("offset", torch.zeros(K, 1, J))
        self.register_buffer("knots", torch.zeros(K, J, Q))
        self.register_buffer("is_set", torch.zeros((), dtype=torch.bool))
        self.register_buffer("active", torch.ones(K, J, 1))  # 1: the direction is kept
        self.slope = nn.Parameter(torch.zeros(K, J, 1))  # c, phi' up to the first knot
        self.raw = nn.Parameter(torch.zeros(K, J, Q - 1))  # r_l, |r_l| the rise over l
        self._lookup_cache = None  # OrderedDict of kept lookups (_keep_lookup)
        self._tables_cache = None
        self._refresh_active()

    def _refresh_active(self) -> None:
        """Cache on the host whether all, some or none of the directions are kept (read
        in the hot path without a device sync)."""
        n = int(self.active.sum().item())
        self._kept = "all" if n == self.active.numel() else ("none" if n == 0 else "some")

    @property
    def any_active(self) -> bool:
        """Whether any direction is kept (else the term is 0 and may be skipped)."""
        return self._kept != "none"

    def set_active_(self, mask: torch.Tensor) -> None:
        """Keep the directions where ``mask`` (K, J) is true, drop the others."""
        self.active.copy_(torch.as_tensor(mask).reshape(self.active.shape).to(self.active))
        self._refresh_active()

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._lookup_cache = self._tables_cache = None  # the knots may have changed
        self._refresh_active()

    @classmethod
    def non_gaussian(cls, rows: Sequence[torch.Tensor], D: torch.Tensor, o: torch.Tensor):
        """(J,) bool: whether some input's rows (float64 tensors) are non-Gaussian along
        the directions D (d, J) (normality test at level :attr:`GAUSSIAN_LEVEL`)."""
        from scipy.stats import normaltest

        p = np.stack([normaltest((x @ D - o).numpy(), axis=0).pvalue for x in rows])
        return torch.as_tensor(np.nan_to_num(p, nan=1.0).min(0) < cls.GAUSSIAN_LEVEL)

    @torch.no_grad()
    def set_(
        self,
        rows: Sequence,
        weights: Sequence[float] | None = None,
        like: ConvexQuantileTerm | None = None,
    ) -> None:
        """Directions and knots from the K inputs' rows (arrays or tensors (n_k, d)).

        ``weights`` (the K barycentric weights a): the knots of potential k are the
        quantiles ``sum_k' a_k' F^_k'^-1`` of every input's rows along k's directions, the
        1-D barycenter of the inputs' laws along them (exact along the axes of a product
        measure). ``like``: a set term with the same frames whose directions (FastICA's)
        are taken instead of being fitted again. With ``select="non-gaussian"`` the
        directions along which every input's rows are Gaussian are dropped.
        """
        from .maps import empirical_quantiles, ica_frame, score_levels

        K, d, Q = self.knots.shape[0], self.directions.shape[1], self.knots.shape[-1]
        if len(rows) != K:
            raise ValueError(f"expected the rows of {K} inputs, got {len(rows)}.")
        xs = [torch.as_tensor(r).to(torch.float64) for r in rows]
        _, levels = score_levels(min(len(x) for x in xs), Q)
        for k in range(K):
            if like is not None:
                D, o = like.directions[k].double(), like.offset[k, 0].double()
            else:
                blocks = [
                    (torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64))
                    if f == "axes"
                    else ica_frame(xs[k], self.ICA_ROWS)
                    for f in self.frames
                ]
                D = torch.cat([W for _, W in blocks], 1)
                o = torch.cat([m @ W for m, W in blocks])
            sources = [(k, 1.0)] if weights is None else list(enumerate(map(float, weights)))
            knots = sum(a * empirical_quantiles(xs[s] @ D - o, levels) for s, a in sources)
            self.directions[k] = D.to(self.directions)
            self.offset[k, 0] = o.to(self.offset)
            self.knots[k] = knots.to(self.knots)
            if self.select == "non-gaussian":
                self.active[k, :, 0] = self.non_gaussian(xs, D, o).to(self.active)
        self.is_set.fill_(True)
        self._refresh_active()
        self._lookup_cache = self._tables_cache = None

    def _knot_tables(self, index: int | None) -> tuple[torch.Tensor, ...]:
        """What the knots alone give, kept while they are unchanged: the knots, the inner
        ones (contiguous), the interval widths and the widths floored at 1e-12; of
        potential ``index`` only when given."""
        cache = self.__dict__.get("_tables_cache")  # absent from a model pickled without it
        if cache is None or cache[0] is not self.knots or cache[1] != self.knots._version:
            knots = self.knots
            width = knots.diff(dim=-1)
            tables = (knots, knots[..., 1:-1].contiguous(), width, width.clamp_min(1e-12))
            cache = self._tables_cache = (self.knots, self.knots._version, tables)
        if index is None:
            return cache[2]
        return tuple(map(BatchedICNN._select(index), cache[2]))

    #: Lookups kept (the last rows that do not require grad): within one NWB iteration f's
    #: term meets its barycenter points three times, and grad g(y) twice, among 8 row sets.
    LOOKUPS_KEPT = 8

    def _cached_lookup(self, x: torch.Tensor, index: int | None):
        """The kept lookup of the rows x (the same tensor, unchanged, with these knots)."""
        cache = self.__dict__.get("_lookup_cache")
        entry = None if cache is None else cache.get((id(x), index))
        if (
            entry is not None
            and entry[0] is x
            and entry[1] == x._version
            and entry[2] is self.knots
            and entry[3] == self.knots._version
        ):
            cache.move_to_end((id(x), index))
            return entry[4]
        return None

    def _keep_lookup(self, x: torch.Tensor, index: int | None, out: tuple) -> None:
        if x.requires_grad:
            return
        cache = self.__dict__.get("_lookup_cache")
        if cache is None:
            cache = self._lookup_cache = OrderedDict()
        cache[(id(x), index)] = (x, x._version, self.knots, self.knots._version, out)
        cache.move_to_end((id(x), index))
        while len(cache) > self.LOOKUPS_KEPT:
            cache.popitem(last=False)

    def _lookup(self, x: torch.Tensor, index: int | None):
        """The parameter-free part at rows x: the interval of every ``t`` (K, J, B), its
        offset in it (t clamped to the knots), ``t`` beyond the clamp, and the knots.

        Kept for the last :attr:`LOOKUPS_KEPT` row sets that do not require grad, while
        they are unchanged: NWB evaluates g on the same rows in its K1 g steps, and f on
        the same barycenter points in its f steps and its h step (:meth:`cat_rows`)."""
        out = self._cached_lookup(x, index)
        if out is not None:
            return out
        sel = BatchedICNN._select(index)
        knots, inner = self._knot_tables(index)[:2]
        t = torch.baddbmm(-sel(self.offset), x, sel(self.directions)).transpose(1, 2)
        tc = t.clamp(knots[..., :1], knots[..., -1:])
        # the interval i in [0, Q - 2] with t_i <= tc < t_{i+1} (the last one up to t_Q):
        # the count of inner knots at or below tc
        i = torch.searchsorted(inner, tc.contiguous(), right=True)
        out = (i, tc - knots.gather(-1, i), t - tc, knots)
        self._keep_lookup(x, index, out)
        return out

    def cat_rows(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """``torch.cat(parts, dim=1)`` (row sets (K, B_i, d)) whose lookup is put together
        from the parts' (kept, or computed and kept): the term is row-wise, so an
        evaluation on the concatenation reuses the lookups of rows met before or after."""
        x = torch.cat(parts, dim=1)
        if x.requires_grad:
            return x
        looks = [self._lookup(p, None) for p in parts]
        out = tuple(torch.cat([lk[j] for lk in looks], dim=-1) for j in range(3))
        self._keep_lookup(x, None, (*out, looks[0][3]))
        return x

    def value_and_gradient(
        self, x: torch.Tensor, index: int | None = None, need_value: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``psi_k(x)`` (K, B) and ``grad psi_k(x)`` (K, B, d) for x (K, B, d); with
        ``index=k`` term k alone on x (1, B, d). Differentiable in the parameters."""
        sel = BatchedICNN._select(index)
        i, r, beyond, knots = self._lookup(x, index)
        _, _, width, safe_width = self._knot_tables(index)
        rise = self.scale * _reflect(sel(self.raw))
        slope = self.scale * sel(self.slope)
        if self._kept != "all":  # dropped directions: phi = 0, no gradient to their parameters
            keep = sel(self.active)
            rise, slope = rise * keep, slope * keep
        s = rise / safe_width  # phi'' on each interval
        v = torch.cat([slope, slope + rise.cumsum(-1)], -1)  # phi'(t_i)
        vi, si = v.gather(-1, i), s.gather(-1, i)
        dphi = vi + si * r  # (K, J, B)
        value = None
        if need_value:  # phi(t_1) = 0, then the trapezoids of phi'
            P = (0.5 * (v[..., 1:] + v[..., :-1]) * width).cumsum(-1)
            P = torch.cat([torch.zeros_like(slope), P], -1)
            value = (P.gather(-1, i) + (vi + 0.5 * si * r) * r + dphi * beyond).sum(1)
        grad = torch.bmm(dphi.transpose(1, 2), sel(self.directions).transpose(1, 2))
        return value, grad

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lookup_cache"] = None  # rows of the last batch: not part of the model
        state["_tables_cache"] = None
        return state

    def extra_repr(self) -> str:
        return f"frames={self.frames}, n_knots={self.knots.shape[-1]}, select={self.select!r}"


class BatchedICNN(InputConvexNetwork):
    """K input-convex potentials (FICNN, or PICNN with a conditioning vector) in one module.

    Each potential ``psi_k(x; c)`` is convex in x; the optional conditioning vector ``c``
    enters freely, which makes it the partially input-convex network (PICNN) of Amos, Xu
    and Kolter (2017, eq. 3):

    .. code-block:: text

        u_0 = c,                      u_{l+1} = act_u(u_l V_l + v_l)             (free path)
        z_1 = act([x * (u_0 Wxu_0 + bxu_0)] Wx_0 + u_0 Wu_0 + b_0)
        z_{l+1} = act([z_l * relu(u_l Wzu_l + bzu_l)] Wz_l
                      + [x * (u_l Wxu_l + bxu_l)] Wx_l + u_l Wu_l + b_l),   Wz_l >= 0
        psi(x; c) = (last layer as above, width 1) + 1/2 |x Q(u_L)|^2
        Q(u) = Q_0 + reshape(u V_Q)

    Every ``z_l`` is convex in x for any c when the z-weights are non-negative: the gate
    ``relu(.)`` is a non-negative function of c alone, and ``x * (affine in c)`` is linear
    in x. Without conditioning (``context_features=0``) the gates and the u terms vanish
    and the network is the FICNN of Makkuva et al. (2020) used by Fan et al. (2021).

    Parameters
    ----------
    n_models : int
        K, the number of stacked potentials.
    in_features : int
        Dimension d of the convex argument x.
    hidden_layer_sizes : sequence of int, default=(64, 64)
        Widths of the hidden layers (at least one).
    context_features : int, default=0
        Dimension of the conditioning vector c (0: fully input-convex, no context).
    activation : {"celu", "softplus", "leaky_relu"}, default="celu"
        Convex non-decreasing activation of the convex path (CELU as in Fan et al.).
    context_activation : str, default="elu"
        Activation of the free context path (any ``torch.nn.functional`` name).
    quadratic : {True, False, "full", "diagonal"}, default=True
        Add the convex quadratic term ``1/2 |x Q(c)|^2``, Q starting at the identity:
        ``"full"`` a d x d matrix Q per potential, ``"diagonal"`` a diagonal one
        (``1/2 |x * q(c)|^2``, O(d) state), True ``"full"`` up to
        :data:`FULL_QUADRATIC_MAX_FEATURES` (512) features and ``"diagonal"`` above.
    positivity : {"clip", "softplus"}, default="clip"
        How the z-weights stay non-negative (see :class:`InputConvexNetwork`).
    quantile_features : bool or {"axes", "ica", "axes+ica"}, default=False
        Add :class:`ConvexQuantileTerm`, separable convex functions along the data axes
        ("axes" or True), input k's independent components ("ica") or both, knotted at the
        data's quantiles once :meth:`set_quantiles_` has been called (the convex analogue
        of the quantile features of :class:`~skbary.nn.maps.BatchedMap`). The term does
        not depend on the context.
    quantile_knots : int, default=33
        Knots per direction of that term.
    quantile_scale : float, default=0.1
        The term's parameter scale (its learning rate under Adam, see
        :class:`ConvexQuantileTerm`).
    quantile_directions : {"all", "non-gaussian"}, default="all"
        The term's directions: all, or those along which some input's rows are not
        Gaussian (the term's ``select``).

    Notes
    -----
    Shapes: ``x`` is ``(K, B, d)``; ``context`` is ``(K, B, c)``, ``(B, c)`` (the same for
    every potential) or ``(c,)``. The output is ``(K, B)``.

    The quadratic term is convex for every Q. It lets the network represent the quadratic
    potentials of linear (Gaussian) transport maps exactly; CELU layers alone grow only
    linearly, so their gradient is bounded and cannot follow a linear map on unbounded
    support. With it, the output layer starts at zero: ``grad psi_k`` starts at the
    identity (with ``positivity="softplus"`` the output z-weights start at 1e-6, the
    smallest value stored). Fan et al. keep f convex by :meth:`clip_` and g by the penalty
    :meth:`convexity_penalty`.
    """

    def __init__(
        self,
        n_models: int,
        in_features: int,
        hidden_layer_sizes: Sequence[int] = (64, 64),
        context_features: int = 0,
        activation: str = "celu",
        context_activation: str = "elu",
        quadratic: bool | str = True,
        positivity: str = "clip",
        quantile_features: bool | str = False,
        quantile_knots: int = 33,
        quantile_scale: float = 0.1,
        quantile_directions: str = "all",
    ) -> None:
        super().__init__()
        from .maps import quantile_frames

        hidden = check_hidden_layer_sizes(hidden_layer_sizes, allow_empty=False)
        convex_activation(activation)  # raises for a name that is not a convex one
        if not hasattr(F, context_activation):
            raise ValueError(f"context_activation {context_activation!r} is not a torch function.")
        K, d, c = int(n_models), int(in_features), int(context_features)
        self.n_models, self.in_features, self.context_features = K, d, c
        self.hidden_layer_sizes = tuple(hidden)
        self.activation = activation
        self.context_activation = context_activation
        self.quadratic = _quadratic_form(quadratic, d)
        self.positivity = _check_positivity(positivity)
        frames = quantile_frames(quantile_features)
        self.quantile_features = quantile_features
        self.quantile_term = (
            ConvexQuantileTerm(
                K,
                d,
                frames,
                n_knots=quantile_knots,
                scale=quantile_scale,
                select=quantile_directions,
            )
            if frames
            else None
        )
        widths = [*hidden, 1]
        # convex path: x -> z_1 -> ... -> z_L -> psi
        self.Wx = nn.ParameterList()  # (K, d, w_l)
        self.b = nn.ParameterList()  # (K, 1, w_l)
        self.z_weights = nn.ParameterList()  # (K, w_{l-1}, w_l), non-negative, layers 1..L
        for l, w in enumerate(widths):
            self.Wx.append(_uniform((K, d, w), 1.0 / math.sqrt(d)))
            self.b.append(_uniform((K, 1, w), 1.0 / math.sqrt(d)))
            if l > 0:
                fan_in = widths[l - 1]
                W = nn.Parameter(torch.empty(K, fan_in, w))
                self.z_weights.append(_positive_(W, 1.0 / fan_in, self.positivity))
        # context path and its modulations (PICNN only)
        if c > 0:
            u_widths = [c, *hidden]  # u_l has width u_widths[l]
            self.V = nn.ParameterList()
            self.v = nn.ParameterList()
            for l in range(len(hidden)):
                bound = 1.0 / math.sqrt(u_widths[l])
                self.V.append(_uniform((K, u_widths[l], u_widths[l + 1]), bound))
                self.v.append(_uniform((K, 1, u_widths[l + 1]), bound))
            self.Wxu = nn.ParameterList()  # x gate: (K, u_l, d), bias 1
            self.bxu = nn.ParameterList()
            self.Wzu = nn.ParameterList()  # z gate: (K, u_l, w_{l-1}), bias 1
            self.bzu = nn.ParameterList()
            self.Wu = nn.ParameterList()  # (K, u_l, w_l)
            for l, w in enumerate(widths):
                u = u_widths[l]
                bound = 1.0 / math.sqrt(u)
                self.Wxu.append(_uniform((K, u, d), 0.1 * bound))
                self.bxu.append(nn.Parameter(torch.ones(K, 1, d)))
                self.Wu.append(_uniform((K, u, w), bound))
                if l > 0:
                    self.Wzu.append(_uniform((K, u, widths[l - 1]), 0.1 * bound))
                    self.bzu.append(nn.Parameter(torch.ones(K, 1, widths[l - 1])))
        if self.quadratic:
            full = self.quadratic == "full"
            self.Q = nn.Parameter(torch.eye(d).repeat(K, 1, 1) if full else torch.ones(K, 1, d))
            if c > 0:
                self.VQ = nn.Parameter(torch.zeros(K, u_widths[-1], d * d if full else d))
            # the output layer starts at zero: psi = 1/2 |x|^2 exactly, grad psi = identity
            # (a random output layer adds a random drift to the maps, which the generator
            # of NWB then follows until the potentials have learned it away)
            with torch.no_grad():
                for p in (self.Wx[-1], self.b[-1], self.z_weights[-1]):
                    p.zero_()
                if self.positivity == "softplus":  # the raw value of softplus(raw) = 1e-6
                    self.z_weights[-1].fill_(math.log(math.expm1(1e-6)))
                if c > 0:
                    self.Wu[-1].zero_()

    # ------------------------------------------------------------------ initialisation
    def set_linear_(self, shift: torch.Tensor) -> BatchedICNN:
        """Set the linear term of the output layer so that ``grad psi_k`` gains ``shift[k]``.

        With a quadratic term and a fresh network this makes ``grad psi_k(x) = x +
        shift[k]``: the translation between two means, where transport maps start.
        """
        with torch.no_grad():
            self.Wx[-1].copy_(torch.as_tensor(shift, dtype=self.Wx[-1].dtype).unsqueeze(-1))
        return self

    def quantiles_unset(self) -> bool:
        """Whether the potentials hold a :class:`ConvexQuantileTerm` not set yet."""
        return self.quantile_term is not None and not bool(self.quantile_term.is_set)

    def set_quantiles_(
        self, rows: Sequence, weights: Sequence[float] | None = None, like=None
    ) -> BatchedICNN:
        """Set the knots of the quantile term (if any, once: a warm start keeps them) from
        the K inputs' rows; ``weights``: at the quantiles of their barycenter along each
        direction (potentials evaluated on the barycenter); ``like``: potentials whose
        set term's ICA frames are reused. Returns self."""
        if self.quantiles_unset():
            other = getattr(like, "quantile_term", None)
            self.quantile_term.set_(rows, weights=weights, like=other)
        return self

    def cat_rows(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """``torch.cat(parts, dim=1)``, row sets (K, B_i, d) evaluated together; with a
        quantile term, its knot lookup of the concatenation is put together from the
        parts' (:meth:`ConvexQuantileTerm.cat_rows`), so that rows evaluated before or
        after on their own are looked up once."""
        term = self.quantile_term
        if term is not None and term.any_active:
            return term.cat_rows(parts)
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ forward
    def _context(self, context: torch.Tensor | None, B: int, K: int) -> torch.Tensor | None:
        if self.context_features == 0:
            if context is not None:
                raise ValueError("this network takes no context (context_features=0).")
            return None
        if context is None:
            raise ValueError(f"a context of {self.context_features} features is required.")
        if context.dim() == 1:
            context = context.expand(B, -1)
        if context.dim() == 2:
            context = context.unsqueeze(0).expand(K, -1, -1)
        return context

    @staticmethod
    def _select(index: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
        if index is None:
            return lambda p: p
        return lambda p: p[index : index + 1]

    def _quadratic(
        self, x: torch.Tensor, u: torch.Tensor | None, sel, need_grad: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``xq`` (the term is ``1/2 |xq|^2``) and, if asked, its x-gradient."""
        Q = sel(self.Q)
        if self.quadratic == "diagonal":  # Q (K, 1, d), Q(u) (K, B, d)
            if u is not None:
                Q = Q + torch.bmm(u, sel(self.VQ))
            xq = x * Q
            return xq, (xq * Q if need_grad else None)
        if u is None:  # Q (K, d, d)
            xq = torch.bmm(x, Q)
            return xq, (torch.bmm(xq, Q.transpose(1, 2)) if need_grad else None)
        d = self.in_features  # Q(u) (K, B, d, d)
        Q = Q.unsqueeze(1) + torch.bmm(u, sel(self.VQ)).view(*u.shape[:2], d, d)
        xq = torch.einsum("kbi,kbij->kbj", x, Q)
        return xq, (torch.einsum("kbj,kbij->kbi", xq, Q) if need_grad else None)

    _LISTS = ("Wx", "b")
    _CONTEXT_LISTS = ("V", "v", "Wxu", "bxu", "Wzu", "bzu", "Wu")

    def _layer_params(self, index: int | None) -> dict[str, list[torch.Tensor]]:
        """Every ParameterList as a list, of potential ``index`` only when given, and the
        effective z-weights as ``"Wz"``: read once a pass (indexing a ParameterList costs
        microseconds, and a pass reads each several times)."""
        names = self._LISTS + (self._CONTEXT_LISTS if self.context_features else ())
        P = {n: list(getattr(self, n)._parameters.values()) for n in names}
        P["Wz"] = self.effective_z_weights()
        if index is not None:
            P = {n: [p[index : index + 1] for p in ps] for n, ps in P.items()}
        return P

    def _preactivation(self, l: int, x, u, z, P):
        """Pre-activation of layer l, with its x-gate and z-gate (None without a context).

        ``W_x^l (x * xgate) + W_u^l u + W_z^l (z * zgate) + b^l``, the PICNN layer.
        """
        xg = zg = None
        if u is None:
            pre = torch.baddbmm(P["b"][l], x, P["Wx"][l])
            if l > 0:
                pre = pre + torch.bmm(z, P["Wz"][l - 1])
            return pre, xg, zg
        xg = torch.baddbmm(P["bxu"][l], u, P["Wxu"][l])
        pre = torch.baddbmm(P["b"][l], x * xg, P["Wx"][l])
        pre = pre + torch.bmm(u, P["Wu"][l])
        if l > 0:
            zg = F.relu(torch.baddbmm(P["bzu"][l - 1], u, P["Wzu"][l - 1]))
            pre = pre + torch.bmm(z * zg, P["Wz"][l - 1])
        return pre, xg, zg

    def _next_context(self, l: int, u, P):
        """The context path's next layer (None stays None)."""
        if u is None:
            return None
        return getattr(F, self.context_activation)(torch.baddbmm(P["v"][l], u, P["V"][l]))

    def value_and_gradient(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        index: int | None = None,
        need_value: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Potentials and their x-gradients in one pass: (K, B), (K, B, d).

        The gradient is computed by explicit back-propagation through the layers (no
        autograd call), so it is cheap under ``torch.no_grad()`` and, with grad mode on,
        is itself differentiable with respect to the parameters (the g step of NWB
        trains through ``grad g``). ``index=k`` evaluates potential k only (x is then
        (1, B, d)). ``need_value=False`` skips the output layer's value.
        """
        sel = self._select(index)
        act = convex_activation(self.activation)
        u = self._context(context, x.shape[1], x.shape[0])
        P = self._layer_params(index)
        Wx, Wz = P["Wx"], P["Wz"]
        n_layers = len(Wx)
        saved = []  # per hidden layer: (act'(pre), x-gate or None, z-gate or None)
        z = None
        for l in range(n_layers - 1):
            pre, xg, zg = self._preactivation(l, x, u, z, P)
            saved.append((act.derivative(pre), xg, zg))
            if need_value or l < n_layers - 2:  # the last z feeds the value alone
                z = act.function(pre)
            u = self._next_context(l, u, P)
        # output layer (width 1)
        L = n_layers - 1
        WxL, WzL = Wx[L], Wz[L - 1]  # (K, d, 1), (K, w, 1)
        value = None
        if u is None:
            if need_value:
                value = (torch.baddbmm(P["b"][L], x, WxL) + torch.bmm(z, WzL)).squeeze(-1)
            gx = WxL.transpose(1, 2)  # (K, 1, d)
            gz = WzL.transpose(1, 2)  # (K, 1, w)
        else:
            xgL = torch.baddbmm(P["bxu"][L], u, P["Wxu"][L])  # (K, B, d)
            zgL = F.relu(torch.baddbmm(P["bzu"][L - 1], u, P["Wzu"][L - 1]))
            if need_value:
                value = (
                    torch.baddbmm(P["b"][L], x * xgL, WxL)
                    + torch.bmm(u, P["Wu"][L])
                    + torch.bmm(z * zgL, WzL)
                ).squeeze(-1)
            gx = xgL * WxL.transpose(1, 2)
            gz = zgL * WzL.transpose(1, 2)
        # back through the hidden layers
        for l in range(L - 1, -1, -1):
            dpre, xg, zg = saved[l]
            delta = gz * dpre  # (K, B, w_l)
            gxl = torch.bmm(delta, Wx[l].transpose(1, 2))
            gx = gx + (gxl if xg is None else gxl * xg)
            if l > 0:
                gz = torch.bmm(delta, Wz[l - 1].transpose(1, 2))
                if zg is not None:
                    gz = gz * zg
        gx = gx.expand(x.shape) if gx.shape != x.shape else gx
        if self.quadratic:
            xq, gq = self._quadratic(x, u, sel)
            gx = gx + gq
            if need_value:
                value = value + 0.5 * (xq * xq).sum(-1)
        if self.quantile_term is not None and self.quantile_term.any_active:
            tv, tg = self.quantile_term.value_and_gradient(x, index, need_value)
            gx = gx + tg
            if need_value:
                value = value + tv
        return value, gx

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        index: int | None = None,
    ) -> torch.Tensor:
        """Potential values ``psi_k(x[k, b]; context[k, b])``: x (K, B, d) -> (K, B).

        With ``index=k`` only potential k is evaluated: x is then (1, B, d) -> (1, B).
        """
        sel = self._select(index)
        act = convex_activation(self.activation).function
        u = self._context(context, x.shape[1], x.shape[0])
        P = self._layer_params(index)
        n_layers = len(P["Wx"])
        z = None
        for l in range(n_layers):
            pre, _, _ = self._preactivation(l, x, u, z, P)
            if l < n_layers - 1:
                z = act(pre)
                u = self._next_context(l, u, P)
        out = pre.squeeze(-1)
        if self.quadratic:
            xq, _ = self._quadratic(x, u, sel, need_grad=False)
            out = out + 0.5 * (xq * xq).sum(-1)
        if self.quantile_term is not None and self.quantile_term.any_active:
            out = out + self.quantile_term.value_and_gradient(x, index)[0]
        return out

    def gradient(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        index: int | None = None,
    ) -> torch.Tensor:
        """``grad_x psi_k(x[k, b]; c)``: (K, B, d) -> (K, B, d).

        Explicit back-propagation (see :meth:`value_and_gradient`); differentiable with
        respect to the parameters when grad mode is on.
        """
        return self.value_and_gradient(x, context, index, need_value=False)[1]

    def extra_repr(self) -> str:
        return (
            f"n_models={self.n_models}, in_features={self.in_features}, "
            f"hidden_layer_sizes={self.hidden_layer_sizes}, "
            f"context_features={self.context_features}, activation={self.activation!r}, "
            f"quadratic={self.quadratic!r}, positivity={self.positivity!r}, "
            f"quantile_features={self.quantile_features!r}"
        )
