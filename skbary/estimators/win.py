"""Wasserstein Iterative Networks (WIN; Korotin, Egiazarian, Li, Burnaev, NeurIPS 2022).

Algorithm 1 (the fixed-point iteration of Alvarez-Esteban et al. 2016 with networks):
repeat

1. OT solvers: for every input k, ``K_v`` updates of the potential v_k, each followed by
   ``K_T`` updates of the map T_k, of the reversed max-min problem between the generated
   law G#S and input k (:class:`~skbary.ot_solver.MaxMinOTSolver`, all K at once; the maps
   are warm-started from the previous outer iteration);
2. generator regression: ``G_0 <- copy(G)``; ``K_G`` updates of G on
   ``l(G(z), sum_k a_k T_k(G_0(z)))``, so that G#S follows H(G_0#S), the fixed-point map.

Algorithm 2 (maps from the inputs to the learned barycenter, used by ``transform``): the
same solver between every input (source) and G#S (target).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ..base import NeuralBarycenter
from ..nn.mlp import MLP
from ..ot_solver import MaxMinOTSolver

__all__ = ["WINBarycenter"]


def _hidden(setting: Any, d: int) -> tuple[int, ...]:
    """Hidden widths; None is ``[max(64, 2D)] * 2`` (the paper: ``[max(100, 2D)] * 3``)."""
    if setting is None:
        return (max(64, 2 * d),) * 2
    return tuple(int(h) for h in setting)


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's regression loss ``1/2 |x - x'|^2``, averaged over the batch."""
    return 0.5 * ((pred - target) ** 2).sum(-1).mean()


class _Generator(nn.Module):
    """G: R^H -> R^D, an MLP; residual (``z + MLP(z)``, starting at the identity) if H = D."""

    def __init__(self, latent: int, d: int, hidden: tuple[int, ...], activation: str, residual):
        super().__init__()
        self.residual = bool(residual) and latent == d
        self.net = MLP(latent, d, hidden, activation)
        if self.residual:
            with torch.no_grad():
                self.net[-1].weight.zero_()
                self.net[-1].bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        return z + out if self.residual else out


class WINBarycenter(NeuralBarycenter):
    """W2 barycenter by Wasserstein Iterative Networks (Korotin et al., NeurIPS 2022).

    A generator G pushes a standard normal latent law S to the barycenter. Each outer
    iteration (Algorithm 1 of the paper) trains, for every input k, a map T_k from G#S to
    input k and a potential v_k with the reversed max-min OT solver, then regresses G onto
    ``sum_k a_k T_k(G_old(z))`` (one step of the fixed-point iteration
    ``P <- [sum_k a_k T_{P -> P_k}] # P``). After it, the maps from every input to G#S are
    learned by the same solver (Algorithm 2) for :meth:`transform`.

    Computations run in standardised coordinates: the data are centred on the weighted mean
    of the input means (the barycenter's mean) and divided by one scalar (the root mean
    variance). Quadratic OT commutes with such a change of coordinates, so the barycenter
    is unchanged, and the learning rates need not depend on the data's units.

    Parameters
    ----------
    weights : array-like of shape (K,), default=None
        Barycenter weights when ``fit`` gets none; uniform if both are None.
    latent_dim : int or None, default=None
        Dimension H of the latent normal law; None uses the data dimension D, which makes G
        residual (``z + MLP(z)``, starting as the identity: G#S starts at N(0, I) in
        standardised coordinates).
    n_generator_steps : int, default=20
        K_G, generator regression updates per outer iteration (paper: 50).
    n_potential_steps : int, default=20
        K_v, potential updates per outer iteration (paper: 50).
    n_map_steps : int, default=3
        K_T, map updates per potential update, in both algorithms (paper: 10). Measured
        (location-scatter K=4, D=8, 50,000 rows, max_time=50, one thread on the shared
        2-core CPU): (K_G, K_v, K_T) = (20, 20, 3) reaches BW2-UVP 0.11 % and transform
        L2-UVP 1.34 %; the paper's (50, 50, 10) 0.21 % and 2.37 % in the same time (fewer,
        longer outer iterations and a slower Algorithm 2).
    regression_loss : "mse" or callable, default="mse"
        l of the generator regression: "mse" is ``1/2 |x - x'|^2`` averaged over the batch
        (the paper's choice for vectors); a callable ``loss(pred, target) -> 0-d tensor``
        receives (B, D) tensors in the data's own coordinates (e.g. a perceptual loss).
    batch_size : int, default=256
        Minibatch size of every network and input (paper: 1024 on a GPU). With 32-wide
        networks, batch 128 and K_G = K_v = 10 the same D=8 run failed (BW2-UVP 16.7 %).
    lr_generator : float, default=1e-3
        Adam learning rate of G (paper: 1e-4; in the D=8 run above 1e-4 gave BW2-UVP
        0.15 % against 0.11 % for 1e-3: the standardised, residual G tolerates it).
    lr_potential : float, default=1e-3
        Learning rate of the potentials v_k, in both algorithms (paper: 1e-3).
    lr_map : float, default=1e-3
        Learning rate of the maps T_k, in both algorithms (paper: 1e-3).
    max_iter : int, default=300
        Outer iterations of Algorithm 1 (paper: 12K generator + potential updates, i.e. 300
        outer iterations of K_G + K_v = 40).
    max_time : float or None, default=None
        Seconds for the whole fit. Algorithm 1 gets ``1 - transform_time_fraction`` of it
        and stops early when it is spent; Algorithm 2 gets what is left.
    learn_transform : bool, default=True
        Learn the maps from the inputs to the barycenter after Algorithm 1 (Algorithm 2).
        False skips it (faster); :meth:`transform` then raises.
    transform_max_iter : int, default=3000
        Potential updates of Algorithm 2 (each followed by ``n_map_steps`` map updates).
    transform_time_fraction : float in (0, 1), default=0.3
        Share of ``max_time`` reserved for Algorithm 2.
    sample_from : {"generator", "maps"}, default="generator"
        What :meth:`sample` returns: ``G(z)``, or ``sum_k a_k T_k(G(z))`` (one more
        fixed-point step; the variant with the better FID in the paper's Table 1). On the
        Gaussian location-scatter task G(z) was as good or better in our runs (D=8, 50 s:
        0.11 % against 0.28 %; D=2: 0.18 % against 0.96 %); the maps add their own noise.
    optimizer : torch optimiser class, default=torch.optim.Adam
        Optimiser of every network (``optimizer__betas`` etc. are passed to it).
    device : {"auto", "cpu", "cuda"}, default="auto"
    n_threads : int or None, default=1
        torch CPU threads during fit (None keeps torch's setting). The max-min solver
        ran 76 updates/s with one thread against 0.9 with two on the busy 2-core machine
        (40 with two and OMP_WAIT_POLICY=PASSIVE): one thread is the default.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
    callbacks : list of skorch callbacks, default=None
    **kwargs
        Nested network settings: ``generator__hidden_layer_sizes``,
        ``generator__activation``, ``map__hidden_layer_sizes``, ``map__activation``,
        ``map__residual`` (maps start at the identity), ``potential__hidden_layer_sizes``,
        ``potential__activation`` (ReLU by default, as in the paper). Hidden sizes default
        to ``[max(64, 2D)] * 2`` for all three networks: in the D=8 run above the paper's
        depth (``[64] * 3``) gave BW2-UVP 0.38 % / L2-UVP 1.65 % against 0.11 % / 1.34 %,
        having run fewer iterations in the same time. ``optimizer__*`` go to the optimiser.

    Attributes
    ----------
    generator_ : nn.Module
        G, in standardised coordinates.
    solver_ : MaxMinOTSolver
        The maps T_k (barycenter -> input k) and potentials v_k.
    transform_solver_ : MaxMinOTSolver or None
        The maps input k -> barycenter of Algorithm 2 (None when skipped).
    center_ : ndarray of shape (D,)
    scale_ : float
        The standardisation ``x -> (x - center_) / scale_``.
    n_iter_ : int
        Outer iterations of Algorithm 1 run.
    n_transform_iter_ : int
        Iterations of Algorithm 2 run.
    history_, stop_reason_, fit_time_, n_features_in_, n_marginals_, weights_ :
        See :class:`~skbary.base.NeuralBarycenter`.
    """

    _network_defaults = {
        "generator": {"hidden_layer_sizes": None, "activation": "relu"},
        "map": {"hidden_layer_sizes": None, "activation": "relu", "residual": True},
        "potential": {"hidden_layer_sizes": None, "activation": "relu"},
    }
    _learns_inverse = True

    def __init__(
        self,
        weights: Any = None,
        latent_dim: int | None = None,
        n_generator_steps: int = 20,
        n_potential_steps: int = 20,
        n_map_steps: int = 3,
        regression_loss: str | Callable = "mse",
        batch_size: int = 256,
        lr_generator: float = 1e-3,
        lr_potential: float = 1e-3,
        lr_map: float = 1e-3,
        max_iter: int = 300,
        max_time: float | None = None,
        learn_transform: bool = True,
        transform_max_iter: int = 3000,
        transform_time_fraction: float = 0.3,
        sample_from: str = "generator",
        optimizer: type = torch.optim.Adam,
        device: str = "auto",
        n_threads: int | None = 1,
        random_state: Any = None,
        verbose: int = 0,
        callbacks: Any = None,
        **kwargs: Any,
    ) -> None:
        self.weights = weights
        self.latent_dim = latent_dim
        self.n_generator_steps = n_generator_steps
        self.n_potential_steps = n_potential_steps
        self.n_map_steps = n_map_steps
        self.regression_loss = regression_loss
        self.batch_size = batch_size
        self.lr_generator = lr_generator
        self.lr_potential = lr_potential
        self.lr_map = lr_map
        self.max_iter = max_iter
        self.max_time = max_time
        self.learn_transform = learn_transform
        self.transform_max_iter = transform_max_iter
        self.transform_time_fraction = transform_time_fraction
        self.sample_from = sample_from
        self.optimizer = optimizer
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self._set_prefixed(kwargs)

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        def pos_int(name: str, zero_ok: bool = False) -> int:
            v = getattr(self, name)
            low = 0 if zero_ok else 1
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                kind = "non-negative" if zero_ok else "positive"
                raise ValueError(f"{name} must be a {kind} integer, got {v!r}.")
            return int(v)

        for name in ("n_generator_steps", "n_potential_steps", "batch_size", "transform_max_iter"):
            pos_int(name)
        pos_int("n_map_steps")
        if self.latent_dim is not None:
            pos_int("latent_dim")
        for name in ("lr_generator", "lr_potential", "lr_map"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}.")
        f = self.transform_time_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < 1:
            raise ValueError(f"transform_time_fraction must lie in (0, 1), got {f!r}.")
        if self.sample_from not in ("generator", "maps"):
            raise ValueError(
                f"sample_from must be 'generator' or 'maps', got {self.sample_from!r}."
            )
        if not (self.regression_loss == "mse" or callable(self.regression_loss)):
            raise ValueError(
                "regression_loss must be 'mse' or a callable loss(pred, target), "
                f"got {self.regression_loss!r}."
            )
        if not isinstance(self.learn_transform, bool | np.bool_):
            raise TypeError(f"learn_transform must be True or False, got {self.learn_transform!r}.")

    # ------------------------------------------------------------------ fit
    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        self._check_params()
        self._begin_fit()
        K, d = len(marginals), marginals[0].shape[1]
        H = d if self.latent_dim is None else int(self.latent_dim)
        self.latent_dim_ = H
        data = self._batches(self._fit_standardisation(marginals, weights))
        dev, g, B = self.device_, self._generator, int(self.batch_size)
        a = torch.as_tensor(weights, dtype=torch.float32, device=dev)[:, None, None]

        gp = self._network_params("generator")
        mp = self._network_params("map")
        pp = self._network_params("potential")
        solver_kw = {
            "map_hidden_layer_sizes": _hidden(mp["hidden_layer_sizes"], d),
            "potential_hidden_layer_sizes": _hidden(pp["hidden_layer_sizes"], d),
            "activation": mp["activation"],
            "potential_activation": pp["activation"],
            "residual": mp.get("residual", True),
        }
        with self._seeded(0):
            self.generator_ = _Generator(
                H, d, _hidden(gp["hidden_layer_sizes"], d), gp["activation"], residual=True
            )
        with self._seeded(1):
            self.solver_ = MaxMinOTSolver(K, d, **solver_kw)
        self.generator_.to(dev)
        self.solver_.to(dev)
        generator_old = copy.deepcopy(self.generator_)
        for p in generator_old.parameters():
            p.requires_grad_(False)

        if self.regression_loss == "mse":
            loss_fn = _mse
        else:
            center = torch.as_tensor(self.center_, dtype=torch.float32, device=dev)
            s = self.scale_

            def loss_fn(pred, target):
                return self.regression_loss(pred * s + center, target * s + center)

        def latent(n: int) -> torch.Tensor:
            return torch.randn(n, H, generator=g, device=dev)

        def draw_generated(n: int) -> torch.Tensor:
            with torch.no_grad():
                return self.generator_(latent(n)).expand(K, n, d)

        solver_step = self.solver_.make_step(
            draw_generated,
            data.draw,
            batch_size=B,
            n_map_steps=self.n_map_steps,
            potential_optimizer=self._make_optimizer(
                self.solver_.potential.parameters(), self.lr_potential
            ),
            map_optimizer=self._make_optimizer(self.solver_.map.parameters(), self.lr_map),
        )
        opt_g = self._make_optimizer(self.generator_.parameters(), self.lr_generator)
        K_v, K_G = int(self.n_potential_steps), int(self.n_generator_steps)

        frac = 1.0 - float(self.transform_time_fraction) if self.learn_transform else 0.98
        deadline = self._deadline(frac)
        zero = torch.zeros((), device=dev)

        def out_of_time() -> bool:
            # An outer iteration holds K_v (1 + K_T) + K_G updates: stop inside it when the
            # phase's time is spent, so that max_time bounds the fit tightly.
            return deadline is not None and time.perf_counter() >= deadline

        def outer_step(i: int) -> dict[str, torch.Tensor]:
            # OT solvers update (maps warm-started from the previous outer iteration).
            sums = {"potential": zero, "map": zero}
            n_v = 0
            for _ in range(K_v):
                if out_of_time():
                    break
                for name, value in solver_step(0).items():
                    sums[name] = sums[name] + value
                n_v += 1
            # Generator regression onto sum_k a_k T_k(G_old(z)).
            generator_old.load_state_dict(self.generator_.state_dict())
            loss_g_sum, n_g = zero, 0
            for _ in range(K_G):
                if out_of_time():
                    break
                z = latent(B)
                with torch.no_grad():
                    x = generator_old(z)
                    target = (a * self.solver_.transport(x.expand(K, B, d))).sum(0)
                loss_g = loss_fn(self.generator_(z), target)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                loss_g_sum = loss_g_sum + loss_g.detach()
                n_g += 1
            out = {name: value / max(n_v, 1) for name, value in sums.items()}
            out["generator"] = loss_g_sum / max(n_g, 1)
            return out

        self.n_iter_ = self._run(
            outer_step, n_iter=self.max_iter, deadline=deadline, phase="barycenter"
        )

        # Algorithm 2: maps from every input to the learned barycenter G#S.
        self.transform_solver_ = None
        self.n_transform_iter_ = 0
        if self.learn_transform:
            self.generator_.eval()
            with self._seeded(2):
                self.transform_solver_ = MaxMinOTSolver(K, d, **solver_kw)
            self.transform_solver_.to(dev)
            inv = self.transform_solver_
            inv_step = inv.make_step(
                data.draw,
                draw_generated,
                batch_size=B,
                n_map_steps=self.n_map_steps,
                potential_optimizer=self._make_optimizer(
                    inv.potential.parameters(), self.lr_potential
                ),
                map_optimizer=self._make_optimizer(inv.map.parameters(), self.lr_map),
            )

            def transform_step(i: int) -> dict[str, torch.Tensor]:
                return {f"transform_{k}": v for k, v in inv_step(i).items()}

            self.n_transform_iter_ = self._run(
                transform_step,
                n_iter=self.transform_max_iter,
                deadline=self._deadline(0.98),
                phase="transform",
            )
        self._end_fit()

    def _divergence_hint(self, loss_name: str) -> str:
        which = {
            "potential": ("potential networks v_k", "lr_potential"),
            "map": ("map networks T_k", "lr_map"),
            "generator": ("generator G", "lr_generator"),
            "transform_potential": ("potentials of the transform maps", "lr_potential"),
            "transform_map": ("transform maps (inputs -> barycenter)", "lr_map"),
        }
        net, lr = which.get(loss_name, ("networks", "the learning rates"))
        return (
            f"The {net} diverged. Try a smaller {lr} (e.g. half the current value) or a "
            "larger batch_size."
        )

    # ------------------------------------------------------------------ inference
    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        z = self._randn((n, self.latent_dim_), rng)
        K, d = self.n_marginals_, self.n_features_in_
        a = torch.as_tensor(self.weights_, dtype=torch.float32, device=self.device_)[:, None, None]

        def fn(zc: torch.Tensor) -> torch.Tensor:
            y = self.generator_(zc)
            if self.sample_from == "maps":
                y = (a * self.solver_.transport(y.expand(K, len(zc), d))).sum(0)
            return y

        return self._unstandardise(self._apply(fn, z))

    def _transform(self, X: NDArray, k: int) -> NDArray:
        if self.transform_solver_ is None:
            raise RuntimeError(
                "transform needs the maps to the barycenter, which were not learned "
                "(learn_transform=False). Refit with learn_transform=True."
            )
        inv = self.transform_solver_
        Y = self._apply(lambda x: inv.transport_one(x, k), self._standardise(X))
        return self._unstandardise(Y)

    def _inverse_transform(self, Y: NDArray, k: int) -> NDArray:
        X = self._apply(lambda y: self.solver_.transport_one(y, k), self._standardise(Y))
        return self._unstandardise(X)
