"""The activation table of the package: one entry per name, for every network.

The MLPs (:mod:`skbary.nn.mlp`) build an activation *module* from a name; the input-convex
networks (:mod:`skbary.nn.icnn`) apply the *function* and, for their explicit gradients and
Hessians, its first and second derivatives at the pre-activation. Both read this table.

Only convex non-decreasing activations with derivatives (``convex=True``: CELU, softplus,
leaky ReLU) may be used on the convex path of an input-convex network.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACTIVATIONS", "Activation", "get_activation", "make_activation"]

Fn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation by name.

    Attributes
    ----------
    name : str
    module : callable
        Builds the activation as an ``nn.Module`` (``module(**params)``).
    function : callable
        ``function(t, **params)``, the activation applied to a tensor.
    derivative : callable or None
        ``derivative(t, **params)``, the first derivative at the pre-activation t.
    derivatives : callable or None
        ``derivatives(t, **params)``: ``(first, second)`` derivatives, sharing their work.
    """

    name: str
    module: Callable[..., nn.Module]
    function: Fn
    derivative: Fn | None = None
    derivatives: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def convex(self) -> bool:
        """Convex, non-decreasing and with derivatives: usable on an ICNN's convex path."""
        return self.derivative is not None

    def with_params(self, **params: float) -> Activation:
        """The same activation with fixed parameters (e.g. ``negative_slope=0.2``)."""
        if not params:
            return self
        bind = lambda fn: None if fn is None else functools.partial(fn, **params)  # noqa: E731
        return replace(
            self,
            module=functools.partial(self.module, **params),
            function=bind(self.function),
            derivative=bind(self.derivative),
            derivatives=bind(self.derivatives),
        )


def _celu_d1(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(t.clamp(max=0.0))


def _celu_d12(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    e = torch.exp(t.clamp(max=0.0))
    return e, torch.where(t < 0, e, 0.0 * t)


def _softplus_d12(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(t)
    return s, s * (1.0 - s)


def _leaky_d1(t: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    # the one-sided value at 0 is the slope, as autograd's
    return torch.where(t > 0, 1.0, negative_slope).to(t.dtype)


def _leaky_d12(t: torch.Tensor, negative_slope: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    return _leaky_d1(t, negative_slope), torch.zeros_like(t)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", nn.ReLU, F.relu),
        Activation("leaky_relu", nn.LeakyReLU, F.leaky_relu, _leaky_d1, _leaky_d12),
        Activation("elu", nn.ELU, F.elu),
        Activation("celu", nn.CELU, F.celu, _celu_d1, _celu_d12),
        Activation("silu", nn.SiLU, F.silu),
        Activation("gelu", nn.GELU, F.gelu),
        Activation("tanh", nn.Tanh, torch.tanh),
        Activation("softplus", nn.Softplus, F.softplus, torch.sigmoid, _softplus_d12),
    )
}


def get_activation(name: str, *, convex: bool = False) -> Activation:
    """The table's entry ``name``; ``convex=True`` accepts only the convex ones."""
    names = sorted(n for n, a in ACTIVATIONS.items() if a.convex or not convex)
    if name not in names:
        raise ValueError(f"activation must be one of {names}, got {name!r}.")
    return ACTIVATIONS[name]


def make_activation(name: str) -> nn.Module:
    """Activation module by name (one of :data:`ACTIVATIONS`)."""
    return get_activation(name).module()
