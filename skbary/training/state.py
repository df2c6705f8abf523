"""Training state that outlives one call of ``fit``: skorch's net surface, warm starts, resume.

:class:`TrainingStateMixin` gives the neural estimators what skorch's callbacks read from a
``NeuralNet`` and what continuing a fit needs, written once:

* ``history`` (an alias of ``history_`` that ``LoadInitState`` may replace), ``module_``
  (every fitted network in one ``ModuleDict``: ``EarlyStopping(load_best=True)``),
  ``optimizer_`` (the optimisers of the running phase as one torch optimiser:
  ``LRScheduler``);
* :meth:`save_params` / :meth:`load_params` with skorch's signature (``Checkpoint``,
  ``LoadInitState``, ``TrainEndCheckpoint``): every network, every optimiser's state, the
  standardisation and the history;
* the optimisers' states kept after a fit (CPU copies), so that ``warm_start=True`` and
  :meth:`partial_fit` continue Adam's moments rather than restarting them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import numbers
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from skorch.history import History
from torch import nn

__all__ = ["OptimizerGroup", "TrainingStateMixin"]

_FORMAT = 1


class OptimizerGroup(torch.optim.Optimizer):
    """Several optimisers seen as one (what skorch's ``LRScheduler`` drives as
    ``net.optimizer_``).

    ``param_groups`` are the optimisers' own group dictionaries, so a learning-rate
    scheduler built on the group sets the rates of the optimisers that train the networks.
    ``step`` and ``zero_grad`` act on all of them.
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        # deliberately not Optimizer.__init__: the groups are the members' own dicts
        self.optimizers = list(optimizers)
        self.param_groups = [g for opt in self.optimizers for g in opt.param_groups]
        for group in self.param_groups:
            # skorch resumes schedules at the history's length (a phase after the first,
            # a warm start); torch's schedulers then need the starting rates
            group.setdefault("initial_lr", group["lr"])
        self.defaults = {}
        self.state = {}
        self._opt_called = True  # the members are stepped by the training step itself

    def step(self, closure: Any = None) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        for opt, sd in zip(self.optimizers, state_dict["optimizers"], strict=True):
            opt.load_state_dict(sd)

    def __repr__(self) -> str:
        return f"OptimizerGroup({', '.join(type(o).__name__ for o in self.optimizers)})"


def _to_cpu(obj: Any) -> Any:
    """A copy of ``obj`` with every tensor cloned onto the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def _atomic_write(target: Any, write: Any) -> None:
    """``write(file)`` to a path through a temporary file renamed in one step (a process
    killed while saving leaves the previous checkpoint intact), or to a file object."""
    if not isinstance(target, str | os.PathLike):
        write(target)
        return
    target = os.fspath(target)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(target))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _history_bytes(history: History) -> bytes:
    return json.dumps(history.to_list()).encode()


class TrainingStateMixin:
    """skorch's ``NeuralNet`` surface for callbacks, checkpoints and warm starts.

    Mixed into :class:`~skbary.base.NeuralBarycenter`; relies on its fit template
    (``_optimizers`` registered by ``_make_optimizer``, ``_run`` marking the optimisers of
    each phase).
    """

    # ------------------------------------------------------------------ skorch's net surface
    @property
    def history(self) -> History:
        """Alias of ``history_`` under the name skorch callbacks read (``net.history``)."""
        return self.history_

    @history.setter
    def history(self, value: History) -> None:
        self.history_ = value

    def _fitted_module_names(self) -> list[str]:
        params = set(self._get_param_names())
        return [
            name
            for name, value in vars(self).items()
            if isinstance(value, nn.Module) and name not in params
        ]

    @property
    def module_(self) -> nn.ModuleDict:
        """Every fitted network in one ``ModuleDict`` keyed by attribute name.

        Its ``state_dict``/``load_state_dict`` read and write the estimator's own networks
        (what ``EarlyStopping(load_best=True)`` keeps and restores).
        """
        names = self._fitted_module_names()
        if not names:
            raise AttributeError(f"{type(self).__name__} has no networks before fit.")
        return nn.ModuleDict({name: getattr(self, name) for name in names})

    @property
    def optimizer_(self) -> OptimizerGroup:
        """The optimisers of the running phase as one optimiser (``LRScheduler``)."""
        group = self.__dict__.get("_optimizer_group")
        if group is None:
            phase = self.__dict__.get("_phase_optimizers")
            if not phase:
                raise AttributeError(
                    "optimizer_ exists only during a training phase (the optimisers are "
                    "built by each phase)."
                )
            group = self._optimizer_group = OptimizerGroup(phase)
        return group

    # ------------------------------------------------------------------ optimiser states
    def _register_optimizer(self, opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Record an optimiser of this fit; give it the saved state of its position."""
        registry = self.__dict__.get("_optimizers")
        if registry is None:  # outside fit (a method building a helper optimiser)
            return opt
        index = len(registry)
        registry.append(opt)
        pending = self.__dict__.get("_pending_optimizer_states") or []
        if index < len(pending):
            self._load_optimizer_state(opt, pending[index], index)
        return opt

    @staticmethod
    def _load_optimizer_state(
        opt: torch.optim.Optimizer, saved: Mapping[str, Any], index: int
    ) -> None:
        kind = type(opt).__qualname__
        if saved["class"] != kind:
            raise ValueError(
                f"The saved state of optimiser {index} is a {saved['class']}'s, this fit "
                f"builds a {kind}: a warm start or resume continues the optimiser it saved. "
                "Use the same optimizer, or fit with warm_start=False."
            )
        sd = opt.state_dict()
        n_params = sum(len(g["params"]) for g in sd["param_groups"])
        if any(int(k) >= n_params for k in saved["state"]):
            raise ValueError(
                f"The saved state of optimiser {index} has more parameters than the network it "
                "would continue; the networks changed since it was saved."
            )
        # the moments continue; the rates and other settings are this fit's parameters
        sd["state"] = copy.deepcopy(saved["state"])
        opt.load_state_dict(sd)

    def _optimizer_states_now(self) -> list[dict[str, Any]]:
        """CPU copies of the states of this fit's optimisers (then saved ones not rebuilt)."""
        live = [
            {"class": type(opt).__qualname__, "state": _to_cpu(opt.state_dict()["state"])}
            for opt in self.__dict__.get("_optimizers", [])
        ]
        pending = self.__dict__.get("_pending_optimizer_states") or []
        return live + [_to_cpu(s) for s in pending[len(live) :]]

    # ------------------------------------------------------------------ warm start
    def _architecture(self) -> dict[str, Any]:
        """The parameters the networks are built from (a warm start cannot change them)."""
        out = {}
        for role in getattr(self, "_roles", {}):
            out[role] = getattr(self, role, None)
            for key, value in self._nested(role, self._roles[role].defaults).items():
                out[f"{role}__{key}"] = value
        return out

    def _continues(self) -> bool:
        """Whether this fit continues the fitted networks (``warm_start`` or ``partial_fit``).

        Called once the data are validated. Raises when the fitted networks cannot take
        these inputs or were built from other settings.
        """
        wanted = bool(getattr(self, "warm_start", False) or self.__dict__.get("_partial"))
        shape = self.__dict__.get("_fit_shape")
        if not wanted or shape is None:
            return False
        name = type(self).__name__
        now = (self.n_marginals_, self.n_features_in_)
        if now[1] != shape[1]:
            raise ValueError(
                f"X has {now[1]} features, but {name} is expecting {shape[1]} features as "
                "input: it continues its fitted networks (warm_start=True or partial_fit). "
                "Fit with warm_start=False to start afresh."
            )
        if now != shape:
            raise ValueError(
                f"{name} continues its fitted networks (warm_start=True or partial_fit), which "
                f"take {shape[0]} inputs of {shape[1]} features; got {now[0]} inputs of "
                f"{now[1]} features. Fit with warm_start=False to start afresh."
            )
        before = self.__dict__.get("_fit_architecture", {})
        for key, value in self._architecture().items():
            old = before.get(key)
            try:
                same = old is value or bool(old == value)
            except Exception:  # arrays, modules without __eq__
                same = False
            if not same:
                raise ValueError(
                    f"{name} continues its fitted networks (warm_start=True or partial_fit), "
                    f"but {key!r} changed since they were built ({old!r} -> {value!r}). "
                    "Fit with warm_start=False to build them again."
                )
        return True

    def _take_over_fitted_state(self) -> None:
        """Work on copies of the fitted state, so that a continued fit that fails leaves the
        estimator's previous model exactly as it was (the fit is transactional)."""
        params = set(self._get_param_names())
        names = [k for k in vars(self) if k not in params and not k.startswith("__")]
        self.__dict__.update(copy.deepcopy({k: self.__dict__[k] for k in names}))

    def partial_fit(
        self,
        X: Any,
        y: Any = None,
        weights: Any = None,
        n_iter: int | None = None,
        sample_weight: Any = None,
    ) -> Any:
        """Continue training for ``n_iter`` further iterations (the first call fits).

        The networks, the optimisers' states (Adam's moments) and the standardisation of the
        fitted model are continued; ``history_`` gains one row per new iteration and
        ``n_iter_`` counts all of them. Later phases (the transform maps of WIN and
        Generative) run their own budget again after the main phase. Each call decays the
        learning rates over its own budget (``lr_decay``).

        Parameters
        ----------
        X, y, weights, sample_weight :
            As in :meth:`fit`; the inputs must have the fitted number of inputs and
            features (they may be new rows: a stream).
        n_iter : int, optional
            Iterations of the main phase in this call; None runs what ``max_iter`` gives
            (left at None: the method's default count, or until ``max_time``).

        Returns
        -------
        self : object
        """
        if n_iter is not None and (
            isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1
        ):
            raise ValueError(f"n_iter must be a positive integer or None, got {n_iter!r}.")
        max_iter = self.max_iter
        self._partial = True
        if n_iter is not None:
            self.max_iter = int(n_iter)
        try:
            self.fit(X, y, weights=weights, sample_weight=sample_weight)
        finally:
            self.max_iter = max_iter
            self.__dict__.pop("_partial", None)
        return self

    # ------------------------------------------------------------------ validation split
    #: Whether ``early_stopping="auto"`` stops this method early on small inputs: where
    #: longer training was measured to overfit them (WIN; benchmarks/results/ave_digits.md).
    _EARLY_STOPPING_AUTO = False
    #: Small inputs for "auto": the smallest input has at least the first and fewer than the
    #: second number of rows (fewer than 200 leave a held-out tenth of under 20 rows, which
    #: scores nothing but noise).
    _EARLY_STOPPING_ROWS = (200, 2000)
    #: The share held out for early stopping when ``validation_fraction`` is None
    #: (scikit-learn's default ``validation_fraction``).
    _EARLY_STOPPING_FRACTION = 0.1

    def _uses_early_stopping(self, marginals: Sequence[np.ndarray]) -> bool:
        """``early_stopping`` resolved for these inputs ("auto": small inputs only)."""
        flag = getattr(self, "early_stopping", False)
        if isinstance(flag, str):  # "auto"
            low, high = self._EARLY_STOPPING_ROWS
            return self._EARLY_STOPPING_AUTO and low <= min(len(m) for m in marginals) < high
        return bool(flag)

    def _hold_out(self, marginals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Split off ``validation_fraction`` of every input's rows (seeded); return the rest.

        The held-out rows (data units) are kept for :meth:`_held_out_objective` during fit.
        With ``sample_weight`` the training rows keep their weights and the held-out rows
        are redrawn in proportion to theirs (an unweighted sample of the held-out part).
        Early stopping (``early_stopping``) holds out ``_EARLY_STOPPING_FRACTION`` when
        ``validation_fraction`` is None.
        """
        fraction = getattr(self, "validation_fraction", None)
        self._early_stop = self._uses_early_stopping(marginals)
        if fraction is None and self._early_stop:
            fraction = self._EARLY_STOPPING_FRACTION
        self._valid_rows = None
        if fraction is None:
            return list(marginals)
        rng = np.random.RandomState((int(self._seed) + 1) % 2**32)
        row_weights = self.__dict__.get("_row_weights")
        train, valid, new_weights = [], [], []
        for k, X in enumerate(marginals):
            n = len(X)
            n_valid = int(round(float(fraction) * n))
            if n_valid < 1 or n - n_valid < 2:
                raise ValueError(
                    f"validation_fraction={fraction} of input {k}'s {n} rows leaves "
                    f"{n - n_valid} to train on and {n_valid} to score: each needs rows "
                    "(at least 2 to train, 1 to score). Use a fraction that fits, or None."
                )
            order = rng.permutation(n)
            held, kept = order[:n_valid], np.sort(order[n_valid:])
            if row_weights is not None:  # sample_weight: held-out rows drawn by weight
                w_held, w_kept = row_weights[k][held], row_weights[k][kept]
                if not (w_held.sum() > 0 and w_kept.sum() > 0):
                    raise ValueError(
                        f"validation_fraction={fraction} leaves input {k} with no positive "
                        "sample_weight on its training or its held-out rows."
                    )
                held = held[rng.choice(len(held), len(held), p=w_held / w_held.sum())]
                new_weights.append(w_kept)
            valid.append(np.asarray(X)[held])
            train.append(np.asarray(X)[kept])
        self._valid_rows = valid
        if row_weights is not None:
            self._row_weights = new_weights
        return train

    def _held_out_objective(self) -> float:
        """The barycenter cost ``sum_k a_k W2^2`` of the current model on the held-out rows."""
        from ..metrics import barycenter_cost

        valid = self._valid_rows
        n = min(512, *(len(v) for v in valid))
        Y = self.sample(n, random_state=int(self._seed))
        return barycenter_cost(Y, valid, self.weights_, n_samples=n, random_state=0)

    # ------------------------------------------------------------------ save / load
    def save_params(
        self,
        f_params: Any = None,
        f_optimizer: Any = None,
        f_criterion: Any = None,
        f_history: Any = None,
        use_safetensors: bool = False,
        **kwargs: Any,
    ) -> None:
        """Save the networks, the optimisers' states and/or the history (skorch's API).

        Parameters
        ----------
        f_params : str, path or file object, optional
            Every fitted network's ``state_dict`` with the standardisation (``center_``,
            ``scale_``) and the iteration count, in one ``torch.save`` file.
        f_optimizer : str, path or file object, optional
            The states of every optimiser of the fit (in the order the method builds them).
        f_criterion : optional
            Accepted for skorch's ``Checkpoint``; there is no criterion (nothing is written).
        f_history : str, path or file object, optional
            The history as JSON (skorch's format).
        use_safetensors : bool, default=False
            Not supported (the files hold more than tensors).
        **kwargs
            ``f_<name>`` saves the one network ``<name>_`` (e.g. ``f_generator``).
        """
        if use_safetensors:
            raise ValueError(f"{type(self).__name__}.save_params does not write safetensors.")
        f_module = kwargs.pop("f_module", None)  # skorch's Checkpoint names f_params so
        if f_module is not None:
            if f_params is not None:
                raise TypeError("save_params got both f_params and f_module; choose one.")
            f_params = f_module
        if not self._fitted_module_names():
            raise AttributeError(f"{type(self).__name__} has nothing to save before fit.")
        n_rows = len(self.history_)
        if f_params is not None:
            payload = {
                "format": _FORMAT,
                "estimator": type(self).__name__,
                "n_rows": n_rows,
                "modules": {
                    n: _to_cpu(getattr(self, n).state_dict()) for n in self._fitted_module_names()
                },
                "center_": np.asarray(getattr(self, "center_", 0.0), dtype=np.float64).tolist(),
                "scale_": float(getattr(self, "scale_", 1.0)),
            }
            _atomic_write(f_params, lambda f: torch.save(payload, f))
        if f_optimizer is not None:
            payload = {
                "format": _FORMAT,
                "n_rows": n_rows,
                "optimizers": self._optimizer_states_now(),
            }
            _atomic_write(f_optimizer, lambda f: torch.save(payload, f))
        if f_history is not None:
            data = _history_bytes(self.history_)
            if isinstance(f_history, str | os.PathLike):
                _atomic_write(f_history, lambda f: f.write(data))
            else:
                f_history.write(data.decode() if isinstance(f_history, io.TextIOBase) else data)
        for key, target in kwargs.items():
            if target is None:
                continue
            module = self._named_module(key)
            _atomic_write(target, lambda f, m=module: torch.save(_to_cpu(m.state_dict()), f))

    def _named_module(self, key: str) -> nn.Module:
        if not key.startswith("f_"):
            raise TypeError(f"unexpected argument {key!r}; files are named f_<network>.")
        name = key[2:] + "_"
        module = getattr(self, name, None)
        if not isinstance(module, nn.Module):
            raise AttributeError(
                f"{key} names the network {name!r}, which {type(self).__name__} does not have; "
                f"its networks: {self._fitted_module_names()}."
            )
        return module

    def load_params(
        self,
        f_params: Any = None,
        f_optimizer: Any = None,
        f_criterion: Any = None,
        f_history: Any = None,
        checkpoint: Any = None,
        use_safetensors: bool = False,
        **kwargs: Any,
    ) -> None:
        """Load what :meth:`save_params` saved (skorch's API; ``LoadInitState`` calls it).

        Called during a fit (``LoadInitState`` at the start of training), it continues the
        saved run: the networks, the optimisers' states, the history (so ``n_iter_`` and
        the iteration numbers continue) and the minibatch stream; once this fit has run
        iterations (``Checkpoint(load_best=True)`` restoring the best networks at the end of
        a phase), the history is kept whole. Called on a fitted
        estimator, it replaces its networks and history (and the optimiser states a
        ``warm_start`` continues). Nothing is changed when a file is missing or does not
        fit (``FileNotFoundError``, ``ValueError``).

        Parameters
        ----------
        f_params, f_optimizer, f_criterion, f_history :
            As in :meth:`save_params` (``f_criterion`` is ignored).
        checkpoint : skorch.callbacks.Checkpoint, optional
            Read its file names (the explicit ``f_*`` override them).
        use_safetensors : bool, default=False
            Not supported.
        **kwargs
            ``f_<name>`` loads the one network ``<name>_``.
        """
        if use_safetensors:
            raise ValueError(f"{type(self).__name__}.load_params does not read safetensors.")
        name = type(self).__name__
        history = None
        files: dict[str, Any] = {}
        if checkpoint is not None:
            if f_history is None and checkpoint.f_history is not None:
                history = History.from_file(checkpoint.f_history_)
            saved_history = self.__dict__.get("history_")
            self.history_ = history if history is not None else saved_history
            try:  # the file names may be formatted with the last row of the history
                files.update(checkpoint.get_formatted_files(self))
            finally:
                self.history_ = saved_history
        files.update({k: v for k, v in kwargs.items() if v is not None})
        if "f_module" in files:
            files["f_params"] = files.pop("f_module")
        for key, value in (("f_params", f_params), ("f_optimizer", f_optimizer)):
            if value is not None:
                files[key] = value
        if f_history is not None:
            history = History.from_file(f_history)

        def load(target: Any) -> Any:
            return torch.load(target, map_location="cpu", weights_only=False)

        params = load(files["f_params"]) if files.get("f_params") else None
        optim = load(files["f_optimizer"]) if files.get("f_optimizer") else None
        extra = {
            k: load(v) for k, v in files.items() if k.startswith("f_") and v and k not in (
                "f_params", "f_optimizer", "f_criterion", "f_history", "f_pickle"
            )
        }  # fmt: skip
        if params is not None:
            if params.get("estimator") != name:
                raise ValueError(
                    f"{files['f_params']!r} holds a {params.get('estimator')}'s networks, not a "
                    f"{name}'s."
                )
            mine = set(self._fitted_module_names())
            theirs = set(params["modules"])
            if mine != theirs:
                raise ValueError(
                    f"The checkpoint's networks {sorted(theirs)} are not this {name}'s "
                    f"{sorted(mine)}."
                )
            center = np.asarray(params["center_"], dtype=np.float64)
            mine_center = np.asarray(getattr(self, "center_", 0.0), dtype=np.float64)
            mine_scale = float(getattr(self, "scale_", 1.0))
            if center.shape != mine_center.shape or not (
                np.allclose(center, mine_center, rtol=1e-6, atol=1e-9 * max(mine_scale, 1e-300))
                and np.isclose(params["scale_"], mine_scale, rtol=1e-6)
            ):
                raise ValueError(
                    "The checkpoint was trained on inputs standardised with another center and "
                    "scale than this fit's: resume it on the same inputs."
                )
        if history is not None and params is not None:
            n_rows = int(params["n_rows"])
            if len(history) > n_rows:  # the history file was written after the networks
                history = History(history[:n_rows])
            elif len(history) < n_rows:
                warnings.warn(
                    f"The checkpoint's networks were saved after {n_rows} iterations, its "
                    f"history after {len(history)}; the iteration count continues from "
                    f"{len(history)}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        # every file is read and checked: now change the estimator
        if params is not None:
            for module_name, sd in params["modules"].items():
                getattr(self, module_name).load_state_dict(sd)
        for key, sd in extra.items():
            self._named_module(key).load_state_dict(sd)
        loop = self.__dict__.get("_loop")
        if loop is not None and loop.n_rows_written:
            # restoring the best networks during training (Checkpoint(load_best=True) at the
            # end of a phase): the history stays the whole log of the iterations run
            history = None
        if history is not None:
            self.history_ = history
            generator = self.__dict__.get("_generator")
            if generator is not None:  # continue the minibatch stream, not repeat it
                generator.manual_seed(int(self._seed) + len(history))
        if optim is not None:
            states = list(optim["optimizers"])
            if "_optimizers" in self.__dict__:
                self._pending_optimizer_states = states
                for index, opt in enumerate(self._optimizers[: len(states)]):
                    self._load_optimizer_state(opt, states[index], index)
            else:
                self._optimizer_states = states
