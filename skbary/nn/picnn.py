"""Batched input-convex potentials: K (partially) input-convex networks in one module.

:class:`BatchedICNN` holds K scalar potentials ``psi_k(x; c)`` evaluated together on a
``(K, B, d)`` tensor (one ``bmm`` per layer, like :class:`~skbary.nn.mlp.BatchedMLP`).
Each is convex in ``x``; the optional conditioning vector ``c`` enters freely, which makes
it the partially input-convex network (PICNN) of Amos, Xu and Kolter (2017, eq. 3):

.. code-block:: text

    u_0 = c,                      u_{l+1} = act_u(u_l V_l + v_l)                 (free path)
    z_1 = act([x * (u_0 Wxu_0 + bxu_0)] Wx_0 + u_0 Wu_0 + b_0)
    z_{l+1} = act([z_l * relu(u_l Wzu_l + bzu_l)] Wz_l
                  + [x * (u_l Wxu_l + bxu_l)] Wx_l + u_l Wu_l + b_l),   Wz_l >= 0
    psi(x; c) = (last layer as above, width 1) + 1/2 |x Q(u_L)|^2
    Q(u) = Q_0 + reshape(u V_Q)                                          (d x d)

Every ``z_l`` is convex in ``x`` for any ``c`` when the z-weights ``Wz_l`` are non-negative
and ``act`` is convex and non-decreasing (CELU): the gate ``relu(.)`` is a non-negative
function of ``c`` alone, and ``x * (affine in c)`` is linear in x. Without conditioning
(``context_features=0``) the gates and the ``u`` terms vanish and the network is the fully
input-convex FICNN of Amos et al. / Makkuva et al. (2020) used by Fan et al. (2021).

The quadratic term ``1/2 |x Q|^2`` (``quadratic=True``) is convex for every Q. It lets the
network represent the quadratic potentials of linear (Gaussian) transport maps exactly;
CELU layers alone grow only linearly, so their gradient is bounded and cannot follow a
linear map on unbounded support. Q starts at the identity, so ``grad psi`` starts near the
identity map. Non-negativity of ``Wz`` is kept either by projection (:meth:`clip_`, used
for Fan et al.'s f networks) or by the soft penalty :meth:`convexity_penalty` (their R,
used for the g networks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BatchedICNN"]

_ACTIVATIONS = {
    "celu": F.celu,
    "softplus": F.softplus,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
}
# derivatives of the activations, as functions of the pre-activation
_DERIVATIVES = {
    "celu": lambda t: torch.exp(t.clamp(max=0.0)),
    "softplus": torch.sigmoid,
    "leaky_relu": lambda t: torch.where(t > 0, 1.0, 0.2).to(t.dtype),
}


def _uniform(shape: tuple[int, ...], bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class BatchedICNN(nn.Module):
    """K input-convex potentials (FICNN, or PICNN with a conditioning vector) in one module.

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
    quadratic : bool, default=True
        Add the convex quadratic term ``1/2 |x Q(c)|^2`` (Q starts at the identity).

    Notes
    -----
    Shapes: ``x`` is ``(K, B, d)``; ``context`` is ``(K, B, c)``, ``(B, c)`` (the same for
    every potential) or ``(c,)``. The output is ``(K, B)``.
    """

    def __init__(
        self,
        n_models: int,
        in_features: int,
        hidden_layer_sizes: Sequence[int] = (64, 64),
        context_features: int = 0,
        activation: str = "celu",
        context_activation: str = "elu",
        quadratic: bool = True,
    ) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden_layer_sizes]
        if not hidden or min(hidden) < 1:
            raise ValueError(
                "hidden_layer_sizes must hold at least one positive width, "
                f"got {hidden_layer_sizes!r}."
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}."
            )
        if not hasattr(F, context_activation):
            raise ValueError(f"context_activation {context_activation!r} is not a torch function.")
        K, d, c = int(n_models), int(in_features), int(context_features)
        self.n_models, self.in_features, self.context_features = K, d, c
        self.hidden_layer_sizes = tuple(hidden)
        self.activation = activation
        self.context_activation = context_activation
        self.quadratic = bool(quadratic)
        widths = [*hidden, 1]
        # convex path: x -> z_1 -> ... -> z_L -> psi
        self.Wx = nn.ParameterList()  # (K, d, w_l)
        self.b = nn.ParameterList()  # (K, 1, w_l)
        self.Wz = nn.ParameterList()  # (K, w_{l-1}, w_l), non-negative, layers 1..L
        for l, w in enumerate(widths):
            self.Wx.append(_uniform((K, d, w), 1.0 / math.sqrt(d)))
            self.b.append(_uniform((K, 1, w), 1.0 / math.sqrt(d)))
            if l > 0:
                fan_in = widths[l - 1]
                self.Wz.append(nn.Parameter(torch.empty(K, fan_in, w).uniform_(0, 1.0 / fan_in)))
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
            self.Q = nn.Parameter(torch.eye(d).repeat(K, 1, 1))
            if c > 0:
                self.VQ = nn.Parameter(torch.zeros(K, u_widths[-1], d * d))
            # the output layer starts at zero: psi = 1/2 |x|^2 exactly, grad psi = identity
            # (a random output layer adds a random drift to the maps, which the generator
            # of NWB then follows until the potentials have learned it away)
            with torch.no_grad():
                for p in (self.Wx[-1], self.b[-1], self.Wz[-1]):
                    p.zero_()
                if c > 0:
                    self.Wu[-1].zero_()

    # ------------------------------------------------------------------ convexity
    def clip_(self) -> BatchedICNN:
        """Project the z-weights onto the non-negative orthant in place (exact convexity)."""
        with torch.no_grad():
            for W in self.Wz:
                W.clamp_(min=0.0)
        return self

    def convexity_penalty(self) -> torch.Tensor:
        """``sum_l |max(-Wz_l, 0)|_F^2`` summed over the K potentials (Fan et al.'s R / lambda)."""
        total = self.Wz[0].new_zeros(())
        for W in self.Wz:
            total = total + F.relu(-W).pow(2).sum()
        return total

    def is_convex(self) -> bool:
        """Whether every z-weight is non-negative, so every potential is convex in x."""
        return all(bool((W >= 0).all()) for W in self.Wz)

    def set_linear_(self, shift: torch.Tensor) -> BatchedICNN:
        """Set the linear term of the output layer so that ``grad psi_k`` gains ``shift[k]``.

        With ``quadratic=True`` and a fresh network this makes ``grad psi_k(x) = x +
        shift[k]``: the translation between two means, where transport maps start.
        """
        with torch.no_grad():
            self.Wx[-1].copy_(torch.as_tensor(shift, dtype=self.Wx[-1].dtype).unsqueeze(-1))
        return self

    def z_parameters(self) -> list[nn.Parameter]:
        """The z-weights (those that must stay non-negative)."""
        return list(self.Wz)

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

    def _select(self, index: int | None):
        if index is None:
            return lambda p: p
        return lambda p: p[index : index + 1]

    def _quadratic_matrix(self, u: torch.Tensor | None, sel) -> torch.Tensor:
        """Q (K, 1, d, d) without context, Q(u) (K, B, d, d) with it."""
        d = self.in_features
        Q = sel(self.Q).unsqueeze(1)
        if u is not None:
            Q = Q + torch.bmm(u, sel(self.VQ)).view(*u.shape[:2], d, d)
        return Q

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
        act = _ACTIVATIONS[self.activation]
        dact = _DERIVATIVES[self.activation]
        u = self._context(context, x.shape[1], x.shape[0])
        n_layers = len(self.Wx)
        saved = []  # per hidden layer: (act'(pre), x-gate or None, z-gate or None)
        z = None
        for l in range(n_layers - 1):
            xg = zg = None
            if u is None:
                pre = torch.baddbmm(sel(self.b[l]), x, sel(self.Wx[l]))
                if l > 0:
                    pre = pre + torch.bmm(z, sel(self.Wz[l - 1]))
            else:
                xg = torch.baddbmm(sel(self.bxu[l]), u, sel(self.Wxu[l]))
                pre = torch.baddbmm(sel(self.b[l]), x * xg, sel(self.Wx[l]))
                pre = pre + torch.bmm(u, sel(self.Wu[l]))
                if l > 0:
                    zg = F.relu(torch.baddbmm(sel(self.bzu[l - 1]), u, sel(self.Wzu[l - 1])))
                    pre = pre + torch.bmm(z * zg, sel(self.Wz[l - 1]))
            saved.append((dact(pre), xg, zg))
            z = act(pre)
            if u is not None:
                u_prev = u
                u = getattr(F, self.context_activation)(
                    torch.baddbmm(sel(self.v[l]), u, sel(self.V[l]))
                )
                saved[-1] = (*saved[-1], u_prev)
        # output layer (width 1)
        L = n_layers - 1
        WxL, WzL = sel(self.Wx[L]), sel(self.Wz[L - 1])  # (K, d, 1), (K, w, 1)
        value = None
        if u is None:
            if need_value:
                value = (torch.baddbmm(sel(self.b[L]), x, WxL) + torch.bmm(z, WzL)).squeeze(-1)
            gx = WxL.transpose(1, 2)  # (K, 1, d)
            gz = WzL.transpose(1, 2)  # (K, 1, w)
        else:
            xgL = torch.baddbmm(sel(self.bxu[L]), u, sel(self.Wxu[L]))  # (K, B, d)
            zgL = F.relu(torch.baddbmm(sel(self.bzu[L - 1]), u, sel(self.Wzu[L - 1])))
            if need_value:
                value = (
                    torch.baddbmm(sel(self.b[L]), x * xgL, WxL)
                    + torch.bmm(u, sel(self.Wu[L]))
                    + torch.bmm(z * zgL, WzL)
                ).squeeze(-1)
            gx = xgL * WxL.transpose(1, 2)
            gz = zgL * WzL.transpose(1, 2)
        # back through the hidden layers
        for l in range(L - 1, -1, -1):
            dpre, xg, zg = saved[l][:3]
            delta = gz * dpre  # (K, B, w_l)
            gxl = torch.bmm(delta, sel(self.Wx[l]).transpose(1, 2))
            gx = gx + (gxl if xg is None else gxl * xg)
            if l > 0:
                gz = torch.bmm(delta, sel(self.Wz[l - 1]).transpose(1, 2))
                if zg is not None:
                    gz = gz * zg
        gx = gx.expand(x.shape) if gx.shape != x.shape else gx
        if self.quadratic:
            if u is None:
                Q = sel(self.Q)
                xq = torch.bmm(x, Q)
                gx = gx + torch.bmm(xq, Q.transpose(1, 2))
            else:
                Q = self._quadratic_matrix(u, sel)
                xq = torch.einsum("kbi,kbij->kbj", x, Q)
                gx = gx + torch.einsum("kbj,kbij->kbi", xq, Q)
            if need_value:
                value = value + 0.5 * (xq * xq).sum(-1)
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
        act = _ACTIVATIONS[self.activation]
        u = self._context(context, x.shape[1], x.shape[0])
        n_layers = len(self.Wx)
        z = None
        for l in range(n_layers):
            if u is None:
                pre = torch.baddbmm(sel(self.b[l]), x, sel(self.Wx[l]))
                if l > 0:
                    pre = pre + torch.bmm(z, sel(self.Wz[l - 1]))
            else:
                xg = torch.baddbmm(sel(self.bxu[l]), u, sel(self.Wxu[l]))
                pre = torch.baddbmm(sel(self.b[l]), x * xg, sel(self.Wx[l]))
                pre = pre + torch.bmm(u, sel(self.Wu[l]))
                if l > 0:
                    gate = F.relu(torch.baddbmm(sel(self.bzu[l - 1]), u, sel(self.Wzu[l - 1])))
                    pre = pre + torch.bmm(z * gate, sel(self.Wz[l - 1]))
            if l < n_layers - 1:
                z = act(pre)
                if u is not None:
                    u = getattr(F, self.context_activation)(
                        torch.baddbmm(sel(self.v[l]), u, sel(self.V[l]))
                    )
        out = pre.squeeze(-1)
        if self.quadratic:
            if u is None:
                xq = torch.bmm(x, sel(self.Q))
            else:
                xq = torch.einsum("kbi,kbij->kbj", x, self._quadratic_matrix(u, sel))
            out = out + 0.5 * (xq * xq).sum(-1)
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
            f"quadratic={self.quadratic}"
        )
