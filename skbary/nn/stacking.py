"""K copies of any torch module evaluated as one batched module.

The methods train one network per input (K maps, K potentials) and evaluate all of them at
once on a tensor of shape ``(K, B, ...)``. The default networks are fused batched MLPs
(:class:`~skbary.nn.mlp.BatchedMLP`: one batched matrix product per layer). For a module
the user hands in, :class:`StackedModules` stacks the K copies' parameters with
``torch.func.stack_module_state`` and evaluates them with ``torch.func.vmap`` over
``functional_call``: one call for all K, whatever the architecture (MLPs, convolutions).
Modules that ``vmap`` cannot batch (batch-norm running statistics updated in place, data-
dependent Python control flow) fall back to a loop over the K copies, which is exact and
slower; :attr:`StackedModules.vectorised` says which path is used.

Both kinds share one interface, which is what the methods call:

* ``net(x)``: x of shape ``(K, B, *in_shape)`` -> ``(K, B, *out_shape)``, network k on ``x[k]``;
* ``net.forward_one(x, k)``: x ``(B, *in_shape)`` -> network k alone (inference).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["StackedModules"]


def _key(name: str) -> str:
    return name.replace(".", "__")


class StackedModules(nn.Module):
    """K modules of one architecture, evaluated together on ``(K, B, ...)`` inputs.

    Parameters
    ----------
    modules : sequence of nn.Module
        The K networks (same class and parameter shapes, independent values). Their
        parameters are copied into stacked tensors ``(K, *shape)``, the trainable state of
        this module; the originals are not used afterwards.
    probe : Tensor, optional
        An input ``(B, *in_shape)`` for one network, used to check once that ``vmap``
        batches the architecture; without it the vectorised path is assumed.

    Attributes
    ----------
    n_models : int
        K.
    vectorised : bool
        True when the K networks run in one ``vmap`` call, False for the loop fallback.
    """

    def __init__(self, modules: Sequence[nn.Module], probe: torch.Tensor | None = None) -> None:
        super().__init__()
        modules = list(modules)
        if not modules:
            raise ValueError("StackedModules needs at least one module.")
        self.n_models = len(modules)
        params, buffers = stack_module_state(modules)
        self._param_names = list(params)
        self._buffer_names = list(buffers)
        self.stacked = nn.ParameterDict(
            {_key(n): nn.Parameter(p.detach().clone()) for n, p in params.items()}
        )
        for n, b in buffers.items():
            self.register_buffer("buf__" + _key(n), b.clone())
        # The architecture without state: functional_call supplies every parameter/buffer.
        skeleton = copy.deepcopy(modules[0]).to("meta")
        self._skeleton = [skeleton]  # a list, so that it is not a submodule (no parameters)
        self.module_type = type(modules[0])
        self.vectorised = True
        if probe is not None:
            self.vectorised = self._vmap_works(probe)

    # ------------------------------------------------------------------ state
    def _stacked_params(self) -> dict[str, torch.Tensor]:
        return {n: self.stacked[_key(n)] for n in self._param_names}

    def _stacked_buffers(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, "buf__" + _key(n)) for n in self._buffer_names}

    def _call(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        skeleton = self._skeleton[0]
        skeleton.train(self.training)
        return functional_call(skeleton, (params, buffers), (x,), strict=True)

    def _vmap_works(self, probe: torch.Tensor) -> bool:
        x = probe.unsqueeze(0).expand(self.n_models, *probe.shape).to(self._device())
        try:
            with torch.no_grad():
                self._vmapped(x)
        except Exception:  # any vmap limitation means: loop instead
            return False
        return True

    def _device(self) -> torch.device:
        for p in self.stacked.values():
            return p.device
        return torch.device("cpu")

    # ------------------------------------------------------------------ evaluation
    def _vmapped(self, x: torch.Tensor) -> torch.Tensor:
        return vmap(self._call, in_dims=(0, 0, 0), randomness="different")(
            self._stacked_params(), self._stacked_buffers(), x
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network k on ``x[k]`` for every k: ``(K, B, ...)`` -> ``(K, B, ...)``."""
        if self.vectorised:
            return self._vmapped(x)
        return torch.stack([self.forward_one(x[k], k) for k in range(self.n_models)])

    def forward_one(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Network k alone: ``(B, ...)`` -> ``(B, ...)``."""
        params = {n: p[k] for n, p in self._stacked_params().items()}
        buffers = {n: b[k] for n, b in self._stacked_buffers().items()}
        return self._call(params, buffers, x)

    def unstack(self, k: int) -> nn.Module:
        """Network k as an ordinary module (a copy on this module's device)."""
        skeleton = self._skeleton[0]
        module = copy.deepcopy(skeleton).to_empty(device=self._device())
        state = {n: p[k].detach() for n, p in self._stacked_params().items()}
        state.update({n: b[k] for n, b in self._stacked_buffers().items()})
        module.load_state_dict(state)
        return module

    def extra_repr(self) -> str:
        path = "vmap" if self.vectorised else "loop"
        return f"n_models={self.n_models}, module={self.module_type.__name__}, path={path}"
