"""Networks the user hands in: one rule for every role of every neural estimator.

Every network an estimator trains plays a *role* (``map``, ``inverse_map``, ``potential``,
``generator``, ``critic``, ``f``, ``g``), and every role is a constructor parameter of the
estimator named after it, with skorch's ``module=`` semantics:

* ``None`` -- the method's default network (fast fused batched MLPs), configured by the
  ``role__*`` settings (``map__hidden_layer_sizes=(64, 64)``);
* an ``nn.Module`` subclass -- built with the role's sizes (``in_features``,
  ``out_features``, passed when its ``__init__`` takes them) and the ``role__*`` settings as
  keyword arguments;
* an ``nn.Module`` instance -- used as given (deep-copied once per input where the method
  needs K networks; the instance passed in is never trained itself, so ``clone`` and
  ``GridSearchCV`` stay correct);
* any other callable -- a factory called like a class, returning a module.

Where the method needs one network per input, the K user networks are stacked into a
:class:`~skbary.nn.stacking.StackedModules` (``torch.func`` batching). Unknown ``role__*``
names are rejected with a message that names them. Roles that must be input-convex (ICNN's
potentials) accept only modules marked ``input_convex = True`` and say so.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .stacking import StackedModules

__all__ = ["Role", "build_network"]


@dataclass(frozen=True)
class Role:
    """A network role of an estimator.

    Parameters
    ----------
    name : str
        The estimator parameter naming the network (and the ``name__*`` settings prefix).
    description : str
        What the network computes, for messages.
    defaults : mapping
        Settings of the default network, overridden by ``name__*``.
    stacked : bool, default=True
        One network per input (True) or a single network.
    convex : bool, default=False
        The network must be input-convex.
    reserved : tuple of str, default=()
        ``name__*`` settings the method reads itself (for example ``map__noise_dim``); they
        are never passed to a network.
    batched : bool, default=False
        The user's module itself holds the K networks (built with ``n_models=K``, evaluated
        on ``(K, B, ...)``), as input-convex potentials with shared machinery do; it is not
        stacked, and the method checks its interface (``check=`` of
        :func:`build_network`).
    """

    name: str
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    stacked: bool = True
    convex: bool = False
    reserved: tuple[str, ...] = ()
    batched: bool = False


def _accepted(fn: Callable[..., Any]) -> tuple[set[str], bool]:
    """Keyword names ``fn`` accepts, and whether it takes ``**kwargs``."""
    target = fn.__init__ if isinstance(fn, type) else fn
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return set(), True
    names, var_kw = set(), False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
            names.add(p.name)
    return names, var_kw


def _check_names(
    owner: str,
    role: Role,
    settings: Mapping[str, Any],
    fn: Callable[..., Any],
    label: str | None = None,
) -> None:
    names, var_kw = _accepted(fn)
    unknown = sorted(set(settings) - names) if not var_kw else []
    if unknown:
        target = label or getattr(getattr(fn, "func", fn), "__name__", None) or type(fn).__name__
        listed = ", ".join(f"{role.name}__{n}" for n in unknown)
        allowed = ", ".join(
            f"{role.name}__{n}"
            for n in sorted(
                (names | set(role.reserved)) - {"in_features", "out_features", "n_models"}
            )
        )
        raise TypeError(
            f"{owner} got unknown setting(s) {listed} for its {role.name} network "
            f"({target}); accepted: {allowed or 'none'}."
        )


def _not_convex(owner: str, role: Role, got: str) -> TypeError:
    return TypeError(
        f"{owner}: {role.name} ({role.description}) must be input-convex: pass an "
        "input-convex network from skbary.nn.icnn (BatchedICNN or a subclass) or a module "
        f"with the attribute input_convex = True that keeps itself convex; got {got}."
    )


def _construct(fn: Callable[..., nn.Module], sizes: Mapping[str, int], settings: Mapping[str, Any]):
    names, var_kw = _accepted(fn)
    kwargs = {k: v for k, v in sizes.items() if var_kw or k in names}
    kwargs.update(settings)
    return fn(**kwargs)


def build_network(
    owner: str,
    role: Role,
    spec: Any,
    settings: Mapping[str, Any],
    *,
    in_features: int,
    out_features: int,
    n_models: int,
    default: Callable[..., nn.Module],
    sizes: Mapping[str, int] | None = None,
    check: Callable[[nn.Module], None] | None = None,
) -> nn.Module:
    """Build the network of ``role`` from the estimator parameter ``spec``.

    Parameters
    ----------
    owner : str
        The estimator's class name (for messages).
    role : Role
    spec : None, nn.Module subclass, nn.Module instance or callable
        The estimator parameter named ``role.name``.
    settings : mapping
        The user's ``role.name__*`` settings (prefix stripped; reserved ones removed).
    in_features, out_features : int
        Sizes of one network's input and output rows.
    n_models : int
        K, the number of networks when ``role.stacked`` (ignored otherwise).
    default : callable
        Builds the default network from keyword settings (``role.defaults`` updated with
        ``settings``); for a stacked role it returns the K networks as one batched module.
    sizes : mapping, optional
        Further size arguments offered to a user's class or factory (passed only where its
        signature takes them), e.g. ``context_features``.
    check : callable, optional
        ``check(module)`` raises if the built module does not serve the role; replaces the
        default probe (a ``(2, in_features)`` batch must give ``(2, out_features)``).

    Returns
    -------
    nn.Module
        For a stacked role, a module mapping ``(K, B, in)`` to ``(K, B, out)`` with
        ``forward_one(x, k)``; otherwise one network mapping ``(B, in)`` to ``(B, out)``.
    """
    settings = dict(settings)
    if spec is None:
        merged = {k: v for k, v in {**role.defaults, **settings}.items() if k not in role.reserved}
        _check_names(owner, role, settings, default, label="the default network")
        try:
            return default(**merged)
        except TypeError as exc:
            if "unexpected keyword argument" not in str(exc):
                raise
            listed = ", ".join(f"{role.name}__{n}" for n in sorted(settings)) or "none"
            raise TypeError(
                f"{owner} got an unknown setting for its default {role.name} network ({exc}); "
                f"the {role.name}__* settings given: {listed}."
            ) from exc
    offered = {"in_features": int(in_features), "out_features": int(out_features)}
    if role.batched:
        offered = {"n_models": int(n_models), "in_features": int(in_features)}
    offered.update(sizes or {})
    count = int(n_models) if role.stacked and not role.batched else 1
    if role.convex and isinstance(spec, type) and not getattr(spec, "input_convex", False):
        raise _not_convex(owner, role, spec.__name__)
    if isinstance(spec, nn.Module):
        if settings:
            listed = ", ".join(f"{role.name}__{n}" for n in sorted(settings))
            raise TypeError(
                f"{owner}: {listed} cannot apply to {role.name}=, a module instance; pass its "
                f"class ({type(spec).__name__}) to have it built with these settings."
            )
        modules = [copy.deepcopy(spec) for _ in range(count)]
    elif callable(spec):
        _check_names(owner, role, settings, spec)
        modules = [_construct(spec, offered, settings) for _ in range(count)]
        for m in modules:
            if not isinstance(m, nn.Module):
                raise TypeError(
                    f"{owner}: {role.name}={spec!r} returned {type(m).__name__}, not a "
                    "torch.nn.Module."
                )
    else:
        raise TypeError(
            f"{owner}: {role.name} must be None, a torch.nn.Module subclass or instance, or "
            f"a factory returning one; got {type(spec).__name__}."
        )
    if role.convex and not getattr(modules[0], "input_convex", False):
        raise _not_convex(owner, role, type(modules[0]).__name__)
    if check is not None:
        check(modules[0])
        return modules[0]
    if role.batched:
        return modules[0]
    probe = torch.zeros(2, int(in_features))
    try:
        with torch.no_grad():
            out = modules[0](probe)
    except Exception as exc:
        raise ValueError(
            f"{owner}: the {role.name} network ({type(modules[0]).__name__}) failed on rows of "
            f"{in_features} features: {exc}"
        ) from exc
    if tuple(out.shape) != (2, int(out_features)):
        raise ValueError(
            f"{owner}: the {role.name} network ({type(modules[0]).__name__}) maps rows of "
            f"{in_features} features to shape {tuple(out.shape[1:])}; {role.description} "
            f"needs {out_features} output features per row."
        )
    if not role.stacked:
        return modules[0]
    return StackedModules(modules, probe=probe)
