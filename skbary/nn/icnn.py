"""Fully input-convex neural network (Amos, Xu and Kolter, 2017).

``FICNN`` is a scalar potential ``psi(x)`` that is convex in x for every parameter value
that keeps the hidden-to-hidden ("z") weights non-negative:

    z_1     = act(A_0 x + b_0)
    z_{l+1} = act(W_l z_l + A_l x + b_l),     W_l >= 0
    psi(x)  = w_L . z_L + a_L . x + b_L + (strong_convexity / 2) |x|^2,   w_L >= 0

with ``act`` convex and non-decreasing (CELU, softplus, leaky ReLU). Its gradient
``grad psi`` is a monotone map, the form of every optimal transport map for the quadratic
cost (Brenier), which is what ICNN-based barycenter methods and the congruent-potential
datasets need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FICNN"]

_ACTIVATIONS = {
    "celu": F.celu,
    "softplus": F.softplus,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
}


def _act_derivatives(name: str, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Activation value, first and second derivative at u (elementwise)."""
    if name == "softplus":
        s = torch.sigmoid(u)
        return F.softplus(u), s, s * (1.0 - s)
    if name == "celu":
        e = torch.exp(torch.clamp(u, max=0.0))
        neg = u < 0
        return F.celu(u), torch.where(neg, e, torch.ones_like(u)), torch.where(neg, e, 0.0 * u)
    if name == "leaky_relu":
        return F.leaky_relu(u, 0.2), torch.where(u < 0, 0.2, 1.0) + 0.0 * u, torch.zeros_like(u)
    raise ValueError(name)


class FICNN(nn.Module):
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
        loop projects with :meth:`clip_weights_` after every optimiser step (Makkuva et al.,
        Fan et al.); ``"softplus"`` uses ``softplus(raw)`` so any raw value is convex.
    dtype : torch.dtype, optional
        Parameter dtype (float32 by default).

    Notes
    -----
    The z-weights start non-negative (uniform on ``[0, 2 / fan_in]``, so each hidden layer
    averages its input and the activations keep their scale with depth) and the
    input-to-hidden weights use PyTorch's default initialisation. With ``positivity="clip"``
    convexity holds only while the weights are clipped: call :meth:`clip_weights_` after
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
        hidden_sizes = [int(h) for h in hidden_sizes]
        if int(in_features) < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features}.")
        if not hidden_sizes or min(hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must hold positive widths, got {hidden_sizes}.")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}."
            )
        if positivity not in ("clip", "softplus"):
            raise ValueError(f"positivity must be 'clip' or 'softplus', got {positivity!r}.")
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
        with torch.no_grad():
            for W in self.z_weights:
                fan_in = W.shape[1]
                W.uniform_(0.0, 2.0 / fan_in)
                if self.positivity == "softplus":
                    # store the raw value whose softplus is the drawn weight
                    W.copy_(torch.log(torch.expm1(W.clamp_min(1e-6))))

    def z_weight(self, layer: int) -> torch.Tensor:
        """The effective (non-negative when convex) z-weight matrix of a layer."""
        W = self.z_weights[layer]
        return F.softplus(W) if self.positivity == "softplus" else W

    def clip_weights_(self) -> FICNN:
        """Project the z-weights onto the non-negative orthant in place (``positivity="clip"``).

        A no-op with ``positivity="softplus"``. Returns self.
        """
        if self.positivity == "clip":
            with torch.no_grad():
                for W in self.z_weights:
                    W.clamp_(min=0.0)
        return self

    def is_convex(self) -> bool:
        """Whether every effective z-weight is non-negative (so the potential is convex)."""
        return all(bool((self.z_weight(i) >= 0).all()) for i in range(len(self.z_weights)))

    def convexity_penalty(self) -> torch.Tensor:
        """Sum of squared negative parts of the z-weights (a soft alternative to clipping)."""
        total = self.z_weights[0].new_zeros(())
        for i in range(len(self.z_weights)):
            total = total + F.relu(-self.z_weight(i)).pow(2).sum()
        return total

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
        act = _ACTIVATIONS[self.activation]
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
                z, d1, d2 = _act_derivatives(self.activation, u)
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
        with torch.no_grad():
            n_hidden = len(self.hidden_sizes)
            Ws = [self.z_weight(i) for i in range(n_hidden)]
            d1s, d2s = [], []
            z = None
            for layer in range(n_hidden):
                u = self.input_layers[layer](x)
                if layer:
                    u = u + F.linear(z, Ws[layer - 1])
                z, d1, d2 = _act_derivatives(self.activation, u)
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
