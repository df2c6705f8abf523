"""NWB-I and NWB-II: Wasserstein barycenters with input-convex potentials.

Fan, Taghvaei and Chen, "Scalable computations of Wasserstein barycenter via input convex
neural networks", ICML 2021.

The barycenter nu is the law of a generator ``h(z)``, z ~ eta (N(0, I) or uniform). For
every input k two convex potentials are learned: ``grad f_k`` maps the barycenter onto
input k and ``grad g_k`` (approximately ``grad f_k^*``) maps input k onto the barycenter.
Their min-max-min problem (9) on the batch objective (10),

.. code-block:: text

    sum_k a_k { mean_j [ f_k(grad g_k(Y_kj)) - <Y_kj, grad g_k(Y_kj)> - f_k(h(Z_j)) ]
                + lambda R(g_k) }  +  1/2 mean_j |h(Z_j)|^2,

is solved by Algorithm 1 (one outer iteration is :class:`NWBIteration`)::

    repeat K3 times (max_iter)
        draw Z ~ eta (M rows), Y_k ~ P_k (M rows of every input)     [NWB-II: a_j ~ simplex]
        repeat K2 times (n_f_steps)
            repeat K1 times (n_g_steps)
                g step: decrease (10) + lambda R(g) over every g_k
            f step: increase (10) over every f_k; clip the z-weights of f at 0
        h step: decrease (10) over h

``free_weights=True`` is NWB-II (Algorithm 2): every network also takes the weight vector a
(the potentials are partially input-convex, convex in x only; the generator reads rows
``[z, a]``); a is drawn per row from a law on the simplex, so one fit serves every a.

Roles (:data:`ROLES`): ``f`` and ``g`` (the K potentials each, input-convex; default
:class:`~skbary.nn.icnn.BatchedICNN`, see :func:`check_potentials` for what a user module
must provide) and ``generator`` (h; default :class:`Generator`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nn.icnn import FULL_QUADRATIC_MAX_FEATURES, BatchedICNN
from ..nn.maps import quantile_features_auto, resolve_quantile_features
from ..nn.mlp import check_hidden_layer_sizes
from ..nn.roles import Role
from ..training import MarginalBatches
from ..training.optim import descend

__all__ = [
    "ROLES",
    "WEIGHT_POOL",
    "Generator",
    "NWBIteration",
    "check_potentials",
    "default_potentials",
    "draw_latent",
    "generator_input",
    "quantile_auto",
    "set_potential_quantiles",
    "start_as_translations",
]


def _potential_role(name: str, description: str) -> Role:
    """``f`` and ``g``: K input-convex potentials held by one module."""
    return Role(
        name,
        description,
        defaults={
            "hidden_layer_sizes": (32, 32),
            "activation": "celu",
            "quadratic": True,
            "quantile_features": "auto",
        },
        convex=True,
        batched=True,
    )


ROLES: dict[str, Role] = {
    "f": _potential_role("f", "the potentials f_k, grad f_k mapping the barycenter to input k"),
    "g": _potential_role("g", "the potentials g_k, grad g_k mapping input k to the barycenter"),
    "generator": Role(
        "generator",
        "the generator h, latent rows z ([z, a] for NWB-II) to barycenter points",
        defaults={"hidden_layer_sizes": (64, 64)},
        stacked=False,
    ),
}

#: NWB-II draws its training weight vectors from a pool of this many, drawn once per fit.
WEIGHT_POOL = 1 << 16
_SQRT3 = math.sqrt(3.0)


# ------------------------------------------------------------------ networks
class Generator(nn.Module):
    """h(z) or h(z, a): a PReLU MLP plus a linear skip ``z M(a) + c(a)``, on rows ``[z, a]``.

    The skip starts at the identity (so h starts as the latent law); with a context (NWB-II)
    its matrix and offset are functions of the weight vector, computed by a small MLP whose
    last layer starts at zero. ``skip="diagonal"`` (the default above 512 features) keeps a
    diagonal M: no d x d state.
    """

    def __init__(
        self,
        n_features: int,
        context_features: int = 0,
        hidden_layer_sizes: tuple[int, ...] = (64, 64),
        skip: str = "auto",
    ) -> None:
        super().__init__()
        if skip not in ("auto", "full", "diagonal"):
            raise ValueError(f"skip must be 'auto', 'full' or 'diagonal', got {skip!r}.")
        d, c = n_features, context_features
        if skip == "auto":
            skip = "full" if d <= FULL_QUADRATIC_MAX_FEATURES else "diagonal"
        self.n_features, self.context_features, self.skip_form = d, c, skip
        widths = (d + c, *check_hidden_layer_sizes(hidden_layer_sizes))
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.PReLU(b)]
        last = nn.Linear(widths[-1], d)
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.zero_()
        layers.append(last)
        self.mlp = nn.Sequential(*layers)
        self.M = nn.Parameter(torch.eye(d) if skip == "full" else torch.ones(d))
        self.m = nn.Parameter(torch.zeros(d))
        if c > 0:
            width = hidden_layer_sizes[0] if hidden_layer_sizes else 32
            head = nn.Linear(width, self.M.numel() + d)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            self.skip = nn.Sequential(nn.Linear(c, width), nn.PReLU(width), head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rows ``[z, a]`` (B, d + c) -> (B, d)."""
        d, full = self.n_features, self.skip_form == "full"
        if self.context_features == 0:
            return (x @ self.M if full else x * self.M) + self.m + self.mlp(x)
        z, a = x[:, :d], x[:, d:]
        s = self.skip(a)
        n = self.M.numel()
        if full:
            M = self.M + s[:, :n].view(-1, d, d)
            lin = torch.bmm(z.unsqueeze(1), M).squeeze(1)
        else:
            lin = z * (self.M + s[:, :n])
        return lin + self.m + s[:, n:] + self.mlp(x)


def generator_input(z: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
    """The generator's rows: z (NWB-I), or ``[z, a]`` with a (B, K) or (K,) (NWB-II)."""
    return z if a is None else torch.cat([z, a.expand(z.shape[0], -1)], dim=1)


def draw_latent(
    shape: tuple[int, ...], law: str, generator: torch.Generator, device: Any = None
) -> torch.Tensor:
    """z ~ eta: N(0, I), or uniform on ``[-sqrt 3, sqrt 3]`` (unit variance) per coordinate."""
    if law == "uniform":
        return torch.rand(shape, generator=generator, device=device).mul_(2 * _SQRT3).sub_(_SQRT3)
    return torch.randn(shape, generator=generator, device=device)


#: The settings of the default potentials whose default is "auto" (the estimator's rule).
_AUTO_SETTINGS = ("quantile_features", "quantile_directions")


def default_potentials(
    n_models: int,
    n_features: int,
    context_features: int,
    quantile_auto: bool = False,
    role: str = "g",
) -> Callable:
    """BatchedICNN with its sizes fixed: a factory whose signature lists only the settings.

    ``quantile_auto``: what ``quantile_features="auto"`` means, "axes+ica" (True) or False
    (the estimator's rule); ``role`` names the setting in errors. ``quantile_directions=
    "auto"`` is "non-gaussian" with ``quantile_features="auto"`` (the term only along the
    directions where some input is not Gaussian) and "all" with frames named explicitly.
    """

    def factory(
        quantile_features: bool | str = "auto", quantile_directions: str = "auto", **settings: Any
    ) -> BatchedICNN:
        frames = resolve_quantile_features(
            quantile_features, quantile_auto, name=f"{role}__quantile_features"
        )
        if isinstance(quantile_directions, str) and quantile_directions == "auto":
            auto = isinstance(quantile_features, str) and quantile_features == "auto"
            quantile_directions = "non-gaussian" if auto else "all"
        return BatchedICNN(
            n_models, n_features, context_features=context_features,
            quantile_features=frames, quantile_directions=quantile_directions, **settings,
        )  # fmt: skip

    sig = inspect.signature(BatchedICNN)
    factory.__signature__ = sig.replace(
        parameters=[
            p.replace(default="auto") if p.name in _AUTO_SETTINGS else p
            for p in sig.parameters.values()
            if p.name not in ("n_models", "in_features", "context_features")
        ]
    )
    return factory


def quantile_auto(n_features: int, context_features: int) -> bool:
    """The rule of the potentials' ``quantile_features="auto"``: on ("axes+ica") under
    NWB-I with at most :data:`~skbary.nn.maps.QUANTILE_AUTO_MAX_FEATURES` features (NOT's
    rule; the cost is always quadratic here), off under NWB-II, whose potentials depend on
    the weight vector while the term does not."""
    return context_features == 0 and quantile_features_auto(True, n_features)


def set_potential_quantiles(
    f: nn.Module, g: nn.Module, rows: Callable[[], list], weights: Any
) -> None:
    """Set the quantile terms of the potentials (modules with ``set_quantiles_``, once):
    g's knots at every input's quantiles (g_k is evaluated on input k), f's at the
    quantiles of their barycenter along the same directions (f_k is evaluated on the
    barycenter), with g's ICA frames. ``rows()`` gives the K inputs' training rows; it is
    called only when a term needs them."""
    unset = [getattr(net, "quantiles_unset", lambda: False)() for net in (g, f)]
    if not any(unset):
        return
    data = rows()
    if unset[0]:
        g.set_quantiles_(data)
    if unset[1]:
        f.set_quantiles_(data, weights=np.asarray(weights, dtype=np.float64), like=g)


def check_potentials(
    owner: str, role: str, n_models: int, n_features: int, context_features: int, net: nn.Module
) -> None:
    """Check that a user's convex role module serves as the K potentials.

    The module holds all K potentials (like :class:`~skbary.nn.icnn.BatchedICNN`, which it
    may subclass; it is built by :func:`~skbary.nn.roles.build_network` with ``n_models``,
    ``in_features``, ``context_features`` where its ``__init__`` takes them and the
    ``role__*`` settings) and must provide:

    * ``input_convex = True`` (class attribute): it keeps every potential convex in x;
    * ``forward(x, context=None)``: x (K, B, d) -> (K, B), potential k on ``x[k]``;
    * ``gradient(x, context=None, index=None)``: (K, B, d) -> (K, B, d), the x-gradients,
      differentiable in the parameters (the g step trains through ``grad g``); with
      ``index=k``, x is (1, B, d) and only potential k is evaluated.

    Optional: ``value_and_gradient(x, context)`` (both in one pass), ``clip_()`` (projection
    onto the convex set after every f step), ``convexity_penalty()`` (``R(g) / lambda``, 0
    without), ``set_linear_(shift)`` (start ``grad psi_k = x + shift[k]``),
    ``cat_rows(parts)`` (``torch.cat(parts, dim=1)`` that may share work with the parts'
    own evaluations: the f step's rows). ``context`` is the weight vector (B, K) under
    NWB-II and None under NWB-I.
    """
    K, d, c = int(n_models), int(n_features), int(context_features)
    x = torch.zeros(K, 2, d)
    ctx = torch.zeros(2, c) if c else None
    try:
        with torch.no_grad():
            shapes = tuple(net(x, ctx).shape), tuple(net.gradient(x, ctx).shape)
    except Exception as exc:
        raise ValueError(
            f"{owner}: the {role} network ({type(net).__name__}) failed on x of shape "
            f"{(K, 2, d)} with context {None if ctx is None else (2, c)}: {exc}"
        ) from exc
    if shapes != ((K, 2), (K, 2, d)):
        raise ValueError(
            f"{owner}: the {role} network ({type(net).__name__}) gave values and "
            f"gradients of shapes {shapes} on x of shape {(K, 2, d)}; expected "
            f"{((K, 2), (K, 2, d))}."
        )


def start_as_translations(f: nn.Module, g: nn.Module, means: torch.Tensor) -> None:
    """Start the maps at the translations between the barycenter's mean (0) and the input
    means: ``grad f_k(x) = x + m_k``, ``grad g_k(y) = y - m_k`` (modules with ``set_linear_``).
    """
    for net, shift in ((f, means), (g, -means)):
        if hasattr(net, "set_linear_"):
            net.set_linear_(shift)


def _value_and_gradient(net: nn.Module, x: torch.Tensor, ctx: torch.Tensor | None):
    if hasattr(net, "value_and_gradient"):
        return net.value_and_gradient(x, ctx)
    return net(x, ctx), net.gradient(x, ctx)


# ------------------------------------------------------------------ Algorithm 1 / 2
@dataclass
class NWBIteration:
    """One outer iteration of Algorithm 1 (NWB-I) or 2 (NWB-II): ``step(i) -> losses``.

    ``f``, ``g`` follow the convex-role interface (:func:`check_potentials`); ``h`` maps the
    rows ``generator_input(z, a)`` to barycenter points; ``data`` holds the standardised
    inputs; every draw goes through ``generator``.

    With ``h=None`` and ``target`` (``draw(B) -> (K, B, d)``) the barycenter is fixed: its
    points are drawn from ``target`` and no h step is taken. That is the W2 dual of
    Makkuva et al. (2020) between each input and a given law, which
    :func:`~skbary.solvers.fit_convex_maps` solves.
    """

    f: nn.Module
    g: nn.Module
    h: nn.Module | None
    opt_f: torch.optim.Optimizer
    opt_g: torch.optim.Optimizer
    opt_h: torch.optim.Optimizer | None
    data: MarginalBatches
    weights: torch.Tensor  # (K,), the barycenter weights (NWB-I)
    weight_pool: torch.Tensor | None  # (P, K): NWB-II's training weights, one per row
    batch_size: int  # M
    n_g_steps: int  # K1
    n_f_steps: int  # K2
    convexity_penalty: float  # lambda
    latent: str  # "gaussian" or "uniform"
    generator: torch.Generator
    target: Callable[[int], torch.Tensor] | None = None  # the fixed barycenter (h=None)

    def g_step(
        self,
        y: torch.Tensor,
        ctx: torch.Tensor | None,
        G: torch.Tensor | None = None,
        G_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decrease (10) + lambda R(g) over g; returns lambda R(g) (before the step).

        ``G``: ``grad g(y)`` at the current g with its graph, when the caller has it, and
        ``G_rows`` the same values detached (the tensor f met them as)."""
        # (10) in g: f_k(grad g_k(y)) - <y, grad g_k(y)>; its gradient in the weights of g
        # is <grad f_k(G) - y, dG>, so f is not differentiated twice
        if G is None:
            G = self.g.gradient(y, ctx)
        with torch.no_grad():
            dfG = self.f.gradient(G if G_rows is None else G_rows, ctx)
        surrogate = ((dfG - y) * G).sum(-1).mean(1).sum()
        R = getattr(self.g, "convexity_penalty", None)
        penalty = self.convexity_penalty * R() if R is not None else G.new_zeros(())
        descend(self.opt_g, surrogate + penalty)
        return penalty

    def f_step(self, x: torch.Tensor, G: torch.Tensor, ctx2: torch.Tensor | None):
        """Increase (10) over f: mean f_k(grad g_k(y)) - mean f_k(h(z)); clip f."""
        K, B = x.shape[0], self.batch_size
        # both halves in one call; the f of a quantile term looks x up once an iteration
        rows = self.f.cat_rows([x, G]) if hasattr(self.f, "cat_rows") else torch.cat([x, G], 1)
        fv = self.f(rows, ctx2).view(K, 2, B)
        loss = (fv[:, 0] - fv[:, 1]).mean(1).sum()
        descend(self.opt_f, loss)
        getattr(self.f, "clip_", lambda: None)()
        return fv, loss

    def h_step(self, xh: torch.Tensor, x: torch.Tensor, a_kb: torch.Tensor, ctx) -> torch.Tensor:
        """Decrease (10) over h: 1/2 |h(z)|^2 - sum_k a_k f_k(h(z)), from ``xh = h(z)`` (with
        its graph) and ``x``, its rows detached and repeated for the K potentials."""
        with torch.no_grad():  # d/dh = h - sum_k a_k grad f_k(h)
            fx, dfx = _value_and_gradient(self.f, x, ctx)
            direction = (xh - (a_kb[..., None] * dfx).sum(0)) / self.batch_size
            loss = 0.5 * (xh * xh).sum(-1).mean() - (a_kb * fx).sum(0).mean()
        descend(self.opt_h, xh, direction)
        return loss

    def __call__(self, i: int) -> Mapping[str, torch.Tensor]:
        B, gen, dev = self.batch_size, self.generator, self.data.device
        if self.h is None:  # a fixed barycenter: f and g steps only
            return self._potential_steps(self.data.draw(B), self.target(B), None, None)
        z = draw_latent((B, self.data.n_features), self.latent, gen, dev)
        y = self.data.draw(B)  # (K, B, d)
        if self.weight_pool is not None:
            pool = self.weight_pool
            a = pool[torch.randint(0, len(pool), (B,), generator=gen, device=dev)]
            ctx, ctx2, a_kb = a, torch.cat([a, a]), a.T  # context (B, K); a per input (K, B)
        else:
            a, ctx, ctx2, a_kb = None, None, None, self.weights[:, None]
        # one pass of h serves the potential steps (its points, detached) and the h step
        # (its graph): h does not change in between
        xh = self.h(generator_input(z, a))
        x = xh.detach().unsqueeze(0).expand(y.shape[0], -1, -1)
        losses = self._potential_steps(y, x, ctx, ctx2)
        return {**losses, "h": self.h_step(xh, x, a_kb, ctx)}

    def _potential_steps(
        self, y: torch.Tensor, x: torch.Tensor, ctx: torch.Tensor | None, ctx2
    ) -> dict[str, torch.Tensor]:
        """K2 times (K1 g steps, one f step) on inputs y and barycenter points x, both
        (K, B, d); the losses ``{"g", "f"}`` of (10)."""
        G_graph = G = None  # grad g(y) with its graph (and detached), for the next round
        for r in range(self.n_f_steps):
            for j in range(self.n_g_steps):
                penalty = self.g_step(y, ctx, *((G_graph, G) if j == 0 else (None, None)))
            # the f step reads grad g(y) at the g it leaves unchanged: the next round's first
            # g step trains through the same values, so they are computed once, with the graph
            if r < self.n_f_steps - 1:
                G_graph = self.g.gradient(y, ctx)
                G = G_graph.detach()
            else:
                with torch.no_grad():
                    G = self.g.gradient(y, ctx)
            fv, loss_f = self.f_step(x, G, ctx2)
        with torch.no_grad():
            loss_g = (fv[:, 1] - (y * G).sum(-1)).mean(1).sum() + penalty.detach()
        return {"g": loss_g, "f": loss_f.detach()}
