"""Ground costs c(x, y) between rows of an input and points of the barycenter space.

A cost is a torch callable ``cost(x, y) -> Tensor`` taking two tensors of the same leading
shape ``(..., d_in)`` and ``(..., d_bar)`` (x: rows of an input, y: barycenter points) and
returning the cost of each pair, shape ``(...)``. It must be differentiable in ``y``. Users
pass ``cost="quadratic"`` or any such callable; the general-cost estimators call
:func:`resolve_cost` once in ``fit``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["Cost", "quadratic_cost", "resolve_cost"]

Cost = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def quadratic_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2 |x - y|^2`` per pair (the convention of the NOT and EgBary papers)."""
    return 0.5 * ((x - y) ** 2).sum(dim=-1)


_NAMED: dict[str, Cost] = {"quadratic": quadratic_cost}


def resolve_cost(cost: str | Cost) -> Cost:
    """The cost callable for a ``cost`` parameter value.

    Parameters
    ----------
    cost : "quadratic" or callable
        A name from the table above, or a callable ``cost(x, y)`` as described in the
        module docstring.

    Returns
    -------
    callable
    """
    if isinstance(cost, str):
        try:
            return _NAMED[cost]
        except KeyError:
            raise ValueError(
                f"cost must be one of {sorted(_NAMED)} or a callable, got {cost!r}."
            ) from None
    if not callable(cost):
        raise TypeError(f"cost must be 'quadratic' or a callable cost(x, y), got {cost!r}.")
    return cost
