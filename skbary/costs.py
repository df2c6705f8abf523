"""Ground costs c(x, y) between rows of an input and points of the barycenter space.

A cost is a torch callable ``cost(x, y) -> Tensor`` taking two tensors of the same leading
shape ``(..., d_in)`` and ``(..., d_bar)`` (x: rows of an input, y: barycenter points) and
returning the cost of each pair, shape ``(...)``. It must be differentiable in ``y``. Users
pass ``cost="quadratic"`` or any such callable; the general-cost estimators call
:func:`resolve_cost` once in ``fit``.

The barycenter problem allows one cost per input, ``sum_k a_k OT_{c_k}(P_k, Q)`` (the NOT
paper's shape-colour experiment compares the shapes of one input and the colours of the
other). A sequence of K costs resolves to a :class:`PerInputCost`, itself a cost on stacked
tensors whose leading axis is the input: ``cost(x, y)[k] = cost_k(x[k], y[k])``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["Cost", "PerInputCost", "quadratic_cost", "resolve_cost"]

Cost = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def quadratic_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2 |x - y|^2`` per pair (the convention of the NOT and EgBary papers)."""
    return 0.5 * ((x - y) ** 2).sum(dim=-1)


_NAMED: dict[str, Cost] = {"quadratic": quadratic_cost}


class PerInputCost:
    """One cost per input on stacked tensors: ``cost(x, y)[k] = costs[k](x[k], y[k])``.

    x and y have the input axis first, ``(K, ..., d_in)`` and ``(K, ..., d_bar)`` (the
    layout of the NOT iteration's plan draws); each cost sees its own input's slice with
    the shapes the single-cost contract gives (broadcastable leading axes) and the results
    are stacked, ``(K, ...)``. The K costs are distinct functions, so they are called one
    after the other (K calls per evaluation, not one).

    Parameters
    ----------
    costs : sequence of callable
        ``costs[k]`` is the cost of input k.
    """

    def __init__(self, costs: Sequence[Cost]) -> None:
        self.costs = tuple(costs)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        K = len(self.costs)
        if x.shape[0] != K or y.shape[0] != K:
            raise ValueError(
                f"a cost per input needs tensors with the {K} inputs on their first axis, got "
                f"shapes {tuple(x.shape)} and {tuple(y.shape)}."
            )
        return torch.stack([c(xk, yk) for c, xk, yk in zip(self.costs, x, y)])

    def __repr__(self) -> str:
        return f"PerInputCost({list(self.costs)!r})"


def _resolve_one(cost: str | Cost) -> Cost:
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


def resolve_cost(cost: str | Cost | Sequence[str | Cost], n_inputs: int | None = None) -> Cost:
    """The cost callable for a ``cost`` parameter value.

    Parameters
    ----------
    cost : "quadratic", callable, or a list or tuple of them
        A name from the table above, a callable ``cost(x, y)`` as described in the module
        docstring, or one of those per input (in the order of the inputs).
    n_inputs : int, optional
        The number of inputs a list or tuple must have one cost for (checked when given).

    Returns
    -------
    callable
        The cost; for a list, the :class:`PerInputCost` of its resolved entries, or the
        entry itself when all K entries resolve to the same function (so
        ``["quadratic"] * K`` is exactly ``"quadratic"``).

    Raises
    ------
    ValueError
        An unknown name, an empty list, or a list whose length is not ``n_inputs``.
    TypeError
        An entry that is neither a name nor a callable (nested lists included).
    """
    if not isinstance(cost, list | tuple):
        return _resolve_one(cost)
    if not cost:
        raise ValueError("cost is an empty list; give one cost per input or a single cost.")
    if n_inputs is not None and len(cost) != int(n_inputs):
        raise ValueError(
            f"cost has {len(cost)} entries but fit got {n_inputs} inputs: give one cost per "
            "input, in the order of the inputs, or a single cost for all of them."
        )
    costs = [_resolve_one(c) for c in cost]
    if all(c is costs[0] for c in costs):
        return costs[0]
    return PerInputCost(costs)
