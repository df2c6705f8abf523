"""NOT barycenter: the bi-level neural optimal-transport barycenter.

Kolesov, Mokrov, Udovichenko, Gazdieva, Pammer, Burnaev, Korotin, "Estimating Barycenters of
Distributions with Neural Optimal Transport", ICML 2024 (``papers/notb-neural-ot-barycenters``).

Per input k a (stochastic) map T_k into the barycenter space and a potential f_k, the
potentials congruent (``sum_k a_k f_k = 0`` exactly, :class:`~skbary.nn.CongruentPotentials`).
Algorithm 1 of the paper solves the max-min problem (their eq. 14)::

    sup_{f congruent} inf_T  sum_k a_k { E_x C_k(x, T_k(x, .)#S) - E_{x,s} f_k(T_k(x, s)) }

One iteration: a potential step that *decreases* ``V_f = sum_k a_k E f_k(T_k(x, s))``, then
``n_map_steps`` (M_T) map steps that decrease ``V_T = sum_k a_k E[C^_k - f_k(T_k(x, s))]``.
No generator is trained: the barycenter is the common image ``T_k # P_k`` of the inputs.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..base import NeuralBarycenter
from ..costs import quadratic_cost, resolve_cost
from ..nn import CongruentPotentials
from ..nn.maps import BatchedGaussianMap, BatchedMap
from ..validation import check_rows

__all__ = ["NOTBarycenter"]

_PLANS = ("deterministic", "stochastic", "gaussian")
_REGULARIZATIONS = (None, "kl", "energy")


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_positive_float(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


class _Potentials(torch.nn.Module):
    """Congruent potentials ``f_k = g_k - sum_j a_j g_j`` with an optional quadratic part.

    ``g_k(y) = mlp_k(y) + 1/2 y^T A_k y + b_k^T y`` when ``quadratic``: the MLPs are a
    :class:`~skbary.nn.CongruentPotentials` and the quadratic terms (zero at the start) make
    the potentials of Gaussian problems exactly representable. Congruence holds exactly
    for both parts.
    """

    def __init__(self, weights: NDArray, n_features: int, quadratic: bool, **mlp: Any) -> None:
        super().__init__()
        self.g = CongruentPotentials(weights, n_features, **mlp)
        K = len(weights)
        self.quadratic = bool(quadratic)
        if self.quadratic:
            self.A = torch.nn.Parameter(torch.zeros(K, n_features, n_features))
            self.b = torch.nn.Parameter(torch.zeros(K, n_features))

    @property
    def weights(self) -> torch.Tensor:
        return self.g.weights

    def _centred(self) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.g.weights
        A = 0.5 * (self.A + self.A.transpose(1, 2))
        return A - (a[:, None, None] * A).sum(0), self.b - (a[:, None] * self.b).sum(0)

    def all_at(self, y: torch.Tensor) -> torch.Tensor:
        """Every f_k at the same points: y (N, d) -> (K, N)."""
        f = self.g.all_at(y)
        if self.quadratic:
            A, b = self._centred()
            f = f + 0.5 * torch.einsum("nd,kde,ne->kn", y, A, y) + b @ y.T
        return f

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """f_k at its own points: y (K, B, d) -> (K, B)."""
        f = self.g(y)
        if self.quadratic:
            A, b = self._centred()
            f = f + 0.5 * (torch.bmm(y, A) * y).sum(-1) + (y * b[:, None, :]).sum(-1)
        return f


class _LinearDecay:
    """Learning rates decayed linearly to ``final * lr`` over the run.

    Progress is the larger of ``i / max_iter`` and the elapsed fraction of ``max_time``, so
    the decay ends when the fit ends, whichever limit stops it.
    """

    def __init__(
        self,
        optimizers: list[torch.optim.Optimizer],
        final: float,
        max_iter: int,
        t0: float,
        max_time: float | None,
    ) -> None:
        self.groups = [(g, g["lr"]) for opt in optimizers for g in opt.param_groups]
        self.final, self.max_iter, self.t0, self.max_time = final, max_iter, t0, max_time

    def update(self, i: int) -> None:
        if self.final == 1.0:
            return
        progress = i / self.max_iter
        if self.max_time is not None:
            progress = max(progress, (time.perf_counter() - self.t0) / self.max_time)
        factor = 1.0 - (1.0 - self.final) * min(progress, 1.0)
        for group, lr in self.groups:
            group["lr"] = lr * factor


class NOTBarycenter(NeuralBarycenter):
    """Neural optimal-transport barycenter (NOT barycenter, Kolesov et al., ICML 2024).

    Learns, for every input k, a transport map T_k from input k onto the barycenter and a
    potential f_k; the potentials are congruent (``sum_k a_k f_k = 0``) by construction, which
    makes the max-min game of the paper's Algorithm 1 solve the barycenter problem without a
    generator. Works with the quadratic cost, any differentiable cost ``c(x, y)`` (also
    between spaces of different dimensions), and the regularised (weak) costs eps-KL and
    gamma-energy with a prior.

    Parameters
    ----------
    weights : array-like of shape (K,), default=None
        Barycenter weights used when ``fit`` receives none (uniform when None).
    cost : "quadratic" or callable, default="quadratic"
        Ground cost ``c(x, y)``: ``"quadratic"`` is ``1/2 |x - y|^2``; a callable takes torch
        tensors x (..., n_features_in) and y (..., n_features_out) and returns the cost of
        every pair (...), differentiable in y (:mod:`skbary.costs`).
    n_features_out : int, default=None
        Dimension of the barycenter space; None means that of the inputs. Only a callable
        ``cost`` can link spaces of different dimensions.
    plan : {"deterministic", "stochastic", "gaussian"}, default="deterministic"
        Parametrisation of the plans (paper section 4.2): a map ``T_k(x)``; a map
        ``T_k(x, s)`` of x and standard normal noise s (``map__noise_dim`` columns, default
        ``n_features_out``); or ``N(mu_k(x), diag sigma_k(x)^2)`` (needed for
        ``regularization="kl"``).
    regularization : {None, "kl", "energy"}, default=None
        Weak cost (paper eqs. 7-8): None is the classical cost ``E c(x, y)``; ``"kl"`` adds
        ``reg_strength * KL(pi(.|x) || prior)`` computed in closed form (Gaussian plans);
        ``"energy"`` adds ``reg_strength * E^2(pi(.|x), prior)``, the squared energy
        distance with ``l(y, y') = |y - y'|``, estimated from ``n_noise_samples`` draws per
        row and as many prior draws.
    reg_strength : float, default=1.0
        eps (KL) or gamma (energy); the paper's 2D Twister runs use 1.
    prior : array-like of shape (n, n_features_out), default=None
        Prior mu_0 of the regularised costs: None is N(0, I) in the barycenter space; an
        array gives samples of it (the energy term draws rows of it; the KL term uses the
        Gaussian with their mean and covariance).
    n_noise_samples : int, default=4
        Draws of the noise per input row in training (``|S[x]|`` of Algorithm 1) for
        stochastic and Gaussian plans; at least 2 for ``regularization="energy"``.
    n_map_steps : int, default=3
        M_T, map steps per potential step (paper's Table 4: 3; 10 was no better per
        iteration on location-scatter D = 16 and 3x slower).
    batch_size : int, default=256
        Rows drawn from every input per step (paper: 1024). A quarter of the cost per step
        and, at equal iterations, no worse: weighted L2-UVP 0.42% vs 0.65% after 250
        iterations (location-scatter D = 16, without EMA).
    lr_map : float, default=1e-3
        Learning rate of the maps (paper: 1e-3). On the Twister 3e-3 converged faster
        on average but swung far on the way.
    lr_potential : float, default=1e-3
        Learning rate of the potentials (paper: 1e-3).
    ema_decay : float, default=0.99
        The maps kept after fit are an exponential moving average of the iterates, updated
        after every map step (0 disables). Location-scatter D = 16: L2-UVP 0.30% against
        0.42% without, after 250 iterations.
    lr_final_factor : float, default=1.0
        Both learning rates decay linearly to ``lr_final_factor * lr`` over the fit
        (progress: the larger of ``i / max_iter`` and the elapsed share of ``max_time``).
        Decay to 0.1 measured no better than none (0.30% both at D = 16).
    n_threads : int or None, default=1
        torch intra-op threads during a CPU fit (restored afterwards); None keeps torch's
        setting. On the shared 2-core machine, busy with other jobs, a D = 16 fit ran 10.6-12.1
        iterations/s with one thread against 0.6-2.1 with two. Ignored on CUDA.
    max_iter : int, default=10000
        Maximal number of iterations (one potential step and ``n_map_steps`` map steps).
    max_time : float, default=None
        Wall-clock budget of the whole fit in seconds (None: no limit).
    optimizer : torch optimizer class, default=torch.optim.Adam
        Optimiser of both players; ``optimizer__betas`` etc. are passed to it.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where training runs.
    random_state : int, RandomState or None, default=None
        Seeds network initialisation, minibatches and noise (CPU fits are repeatable); also
        the noise of ``transform`` and ``sample`` when they get no ``random_state``.
    verbose : int, default=0
        >0 shows a progress bar with the losses.
    callbacks : list of skorch callbacks, default=None
        Called once per iteration (``history_`` rows).
    **kwargs
        Network settings: ``map__hidden_layer_sizes`` (default (128, 128)),
        ``map__activation`` ("relu"), ``map__skip`` (True: learnable affine skip, identity at
        start), ``map__noise_dim``; ``potential__hidden_layer_sizes`` ((128, 128)),
        ``potential__activation`` ("celu"), ``potential__quadratic`` ("auto": for the
        quadratic cost each g_k gets a learnable ``1/2 y^T A_k y + b_k^T y`` next to its
        MLP; location-scatter D = 16: L2-UVP 0.064% after 750 iterations against 0.32%
        without; off for other costs, where it slowed the Twister); ``optimizer__*``.

    Attributes
    ----------
    maps_ : BatchedMap or BatchedGaussianMap
        The K maps.
    potentials_ : CongruentPotentials
        The K congruent potentials.
    n_features_out_ : int
        Dimension of the barycenter space.
    history_ : skorch History
        Per iteration: ``potential`` (V_f), ``map`` (V_T, the dual objective estimate),
        ``transport_cost`` (``sum_k a_k E C^_k``).
    n_iter_ : int
        Iterations run.
    stop_reason_ : dict
        ``{"train": "max_iter" | "max_time" | "callback"}``.

    Notes
    -----
    ``sample(n)`` draws from the mixture ``sum_k a_k T_k # P^_k``: the input of every draw
    is k with probability a_k, the row is a uniformly drawn *training* row of that input, and
    the draw is its image by T_k (one noise draw for stochastic plans).
    """

    _network_defaults = {
        "map": {"hidden_layer_sizes": (128, 128), "activation": "relu", "skip": True},
        "potential": {"hidden_layer_sizes": (128, 128), "activation": "celu", "quadratic": "auto"},
    }

    def __init__(
        self,
        weights: Any = None,
        cost: Any = "quadratic",
        n_features_out: int | None = None,
        plan: str = "deterministic",
        regularization: str | None = None,
        reg_strength: float = 1.0,
        prior: Any = None,
        n_noise_samples: int = 4,
        n_map_steps: int = 3,
        batch_size: int = 256,
        lr_map: float = 1e-3,
        lr_potential: float = 1e-3,
        ema_decay: float = 0.99,
        lr_final_factor: float = 1.0,
        n_threads: int | None = 1,
        max_iter: int = 10000,
        max_time: float | None = None,
        optimizer: type = torch.optim.Adam,
        device: str = "auto",
        random_state: Any = None,
        verbose: int = 0,
        callbacks: Any = None,
        **kwargs: Any,
    ) -> None:
        self.weights = weights
        self.cost = cost
        self.n_features_out = n_features_out
        self.plan = plan
        self.regularization = regularization
        self.reg_strength = reg_strength
        self.prior = prior
        self.n_noise_samples = n_noise_samples
        self.n_map_steps = n_map_steps
        self.batch_size = batch_size
        self.lr_map = lr_map
        self.lr_potential = lr_potential
        self.ema_decay = ema_decay
        self.lr_final_factor = lr_final_factor
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.max_time = max_time
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self._set_prefixed(kwargs)

    # ------------------------------------------------------------------ validation
    def _check_params(self, d_in: int) -> dict[str, Any]:
        if self.plan not in _PLANS:
            raise ValueError(f"plan must be one of {_PLANS}, got {self.plan!r}.")
        if self.regularization not in _REGULARIZATIONS:
            raise ValueError(
                f"regularization must be one of {_REGULARIZATIONS}, got {self.regularization!r}."
            )
        if self.regularization == "kl" and self.plan != "gaussian":
            raise ValueError(
                "regularization='kl' needs plan='gaussian' (the KL term is computed in closed "
                f"form for Gaussian plans); got plan={self.plan!r}."
            )
        if self.regularization == "energy" and self.plan == "deterministic":
            raise ValueError(
                "regularization='energy' needs a stochastic plan: use plan='stochastic' or "
                "plan='gaussian'."
            )
        reg = _check_positive_float(self.reg_strength, "reg_strength")
        cost = resolve_cost(self.cost)
        if self.n_features_out is None:
            d_out = d_in
        else:
            d_out = _check_positive_int(self.n_features_out, "n_features_out")
        if d_out != d_in and cost is quadratic_cost:
            raise ValueError(
                f"n_features_out={d_out} differs from the inputs' {d_in} columns, which the "
                "quadratic cost cannot compare; pass a callable cost(x, y)."
            )
        min_noise = 2 if self.regularization == "energy" else 1
        n_noise = _check_positive_int(self.n_noise_samples, "n_noise_samples", min_noise)
        out = {
            "cost": cost,
            "d_out": d_out,
            "reg": reg,
            "n_noise": n_noise if self.plan != "deterministic" else 1,
            "n_map_steps": _check_positive_int(self.n_map_steps, "n_map_steps"),
            "batch_size": _check_positive_int(self.batch_size, "batch_size"),
            "lr_map": _check_positive_float(self.lr_map, "lr_map"),
            "lr_potential": _check_positive_float(self.lr_potential, "lr_potential"),
        }
        ema = self.ema_decay
        if isinstance(ema, bool) or not isinstance(ema, numbers.Real) or not 0 <= ema < 1:
            raise ValueError(f"ema_decay must be a number in [0, 1), got {ema!r}.")
        final = self.lr_final_factor
        if isinstance(final, bool) or not isinstance(final, numbers.Real) or not 0 < final <= 1:
            raise ValueError(f"lr_final_factor must be a number in (0, 1], got {final!r}.")
        out["prior"] = None
        if self.prior is not None:
            out["prior"] = check_rows(self.prior, d_out, type(self).__name__, name="prior")
            if out["prior"].shape[0] < 2:
                raise ValueError("prior must hold at least 2 samples (rows).")
        return out

    # ------------------------------------------------------------------ networks
    def _build_maps(self, K: int, d_in: int, d_out: int) -> torch.nn.Module:
        params = dict(self._network_params("map"))
        noise_dim = params.pop("noise_dim", None)
        if self.plan == "gaussian":
            return BatchedGaussianMap(K, d_in, d_out, **params)
        if self.plan == "stochastic":
            noise_dim = d_out if noise_dim is None else noise_dim
            noise_dim = _check_positive_int(noise_dim, "map__noise_dim")
            return BatchedMap(K, d_in, d_out, noise_dim=noise_dim, **params)
        return BatchedMap(K, d_in, d_out, noise_dim=0, **params)

    def _divergence_hint(self, loss_name: str) -> str:
        if loss_name == "potential":
            return (
                "The potentials f_k (potentials_) diverged: lower lr_potential (e.g. half), "
                "raise batch_size, or give the maps more steps (n_map_steps)."
            )
        return (
            "The maps T_k (maps_) diverged: lower lr_map (e.g. half) or lr_potential, or raise "
            "batch_size; with a user cost, check that it is finite and differentiable."
        )

    # ------------------------------------------------------------------ plans
    def _draw_plan(
        self, x: torch.Tensor, n_noise: int, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Draws of the plans for rows x (K, B, d_in).

        Returns y (K, B, S, d_out), x repeated to (K, B, S, d_in), and the Gaussian
        parameters (mu, log_std) stacked as (2, K, B, d_out) for Gaussian plans (else None).
        """
        K, B, d = x.shape
        maps = self.maps_
        if self.plan == "deterministic":
            return maps(x).unsqueeze(2), x.unsqueeze(2), None
        D = self.n_features_out_
        if self.plan == "gaussian":
            mu, log_std = maps.mean_log_std(x)
            if noise is None:
                noise = torch.randn(
                    (K, B, n_noise, D), generator=self._generator, device=self.device_
                )
            y = mu.unsqueeze(2) + torch.exp(log_std).unsqueeze(2) * noise
            return y, x.unsqueeze(2), torch.stack([mu, log_std])
        if noise is None:
            noise = torch.randn(
                (K, B, n_noise, maps.noise_dim), generator=self._generator, device=self.device_
            )
        xr = x.unsqueeze(2).expand(K, B, n_noise, d)
        y = maps(xr.reshape(K, B * n_noise, d), noise.reshape(K, B * n_noise, -1))
        return y.view(K, B, n_noise, -1), xr, None

    def _prior_draws(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Draws from the prior, shape ``shape + (d_out,)``."""
        D = self.n_features_out_
        if self._prior_rows is None:
            return torch.randn((*shape, D), generator=self._generator, device=self.device_)
        n = self._prior_rows.shape[0]
        u = torch.rand(shape, generator=self._generator, device=self.device_)
        return self._prior_rows[(u * n).long()]

    def _regularizer(self, y: torch.Tensor, gauss: torch.Tensor | None) -> torch.Tensor:
        """Per-row weak-cost term (K, B) (without reg_strength)."""
        if self.regularization == "kl":
            return BatchedGaussianMap.kl_to_gaussian(
                gauss[0], gauss[1], self._prior_mean, self._prior_precision, self._prior_logdet
            )
        # energy: 2 E|y - y0| - E_{s != s'} |y_s - y_s'|, per row, from S draws each
        K, B, S, D = y.shape
        y0 = self._prior_draws((K, B, S))

        def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            sq = ((a.unsqueeze(-2) - b.unsqueeze(-3)) ** 2).sum(-1)
            return torch.sqrt(sq + 1e-12)

        cross = dist(y, y0).mean(dim=(-1, -2))
        self_d = dist(y, y).sum(dim=(-1, -2)) / (S * (S - 1))
        return 2.0 * cross - self_d

    # ------------------------------------------------------------------ fit
    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        K, d_in = len(marginals), marginals[0].shape[1]
        p = self._check_params(d_in)
        self._begin_fit()
        self._n_features_out = p["d_out"]
        self._cost = p["cost"]
        D, B, S = p["d_out"], p["batch_size"], p["n_noise"]
        data = self._batches(marginals)
        a = torch.as_tensor(weights, dtype=torch.float32, device=self.device_)
        # rows that sample() maps (the training rows of every input); set before training so
        # that callbacks can sample mid-fit (with the current, not yet averaged, maps)
        self._train_rows = data.data
        self._train_counts = data.counts.cpu().numpy()

        # prior of the regularised costs
        self._prior_rows = None
        if p["prior"] is not None:
            self._prior_rows = self._tensor(p["prior"])
        if self.regularization == "kl":
            if p["prior"] is None:
                m0, P0, logdet = np.zeros(D), np.eye(D), 0.0
            else:
                m0 = p["prior"].mean(axis=0)
                C0 = np.atleast_2d(np.cov(p["prior"], rowvar=False))
                C0 = C0 + 1e-6 * np.trace(C0) / D * np.eye(D)
                P0 = np.linalg.inv(C0)
                logdet = float(np.linalg.slogdet(C0)[1])
            self._prior_mean = self._tensor(m0)
            self._prior_precision = self._tensor(P0)
            self._prior_logdet = torch.tensor(logdet, device=self.device_)

        with self._seeded():
            maps = self._build_maps(K, d_in, D)
            pot_settings = dict(self._network_params("potential"))
            quadratic = pot_settings.pop("quadratic", "auto")
            if isinstance(quadratic, str) and quadratic == "auto":
                quadratic = self._cost is quadratic_cost
            potentials = _Potentials(weights, D, quadratic, **pot_settings)
        self.maps_ = maps.to(self.device_)
        self.potentials_ = potentials.to(self.device_)
        opt_map = self._make_optimizer(self.maps_.parameters(), p["lr_map"])
        opt_pot = self._make_optimizer(self.potentials_.parameters(), p["lr_potential"])
        pot_params = list(self.potentials_.parameters())
        map_params = list(self.maps_.parameters())
        cost, reg, n_map_steps = self._cost, p["reg"], p["n_map_steps"]
        ema_decay = float(self.ema_decay)
        ema = [t.detach().clone() for t in map_params] if ema_decay > 0 else None
        self._ema = ema  # read by callbacks that score the averaged maps mid-fit
        schedule = _LinearDecay(
            [opt_map, opt_pot],
            float(self.lr_final_factor),
            self.max_iter,
            self._t0,
            None if self.max_time is None else float(self.max_time),
        )

        def potentials_at(y: torch.Tensor) -> torch.Tensor:
            # y (K, B, S, D) -> f_k at its own block, mean over draws: (K, B)
            return self.potentials_(y.reshape(K, -1, D)).view(K, B, -1).mean(-1)

        def set_grad(params: list[torch.Tensor], flag: bool) -> None:
            for t in params:
                t.requires_grad_(flag)

        def step(i: int) -> dict[str, torch.Tensor]:
            schedule.update(i)
            # potential step: decrease V_f = sum_k a_k E f_k(T_k(x, s))
            set_grad(pot_params, True)
            set_grad(map_params, False)
            x = data.draw(B)
            with torch.no_grad():
                y, _, _ = self._draw_plan(x, S)
            v_f = (a * potentials_at(y).mean(1)).sum()
            opt_pot.zero_grad(set_to_none=True)
            v_f.backward()
            opt_pot.step()
            # M_T map steps: decrease V_T = sum_k a_k E [C^(x, T_k(x, .)) - f_k(T_k(x, s))]
            set_grad(pot_params, False)
            set_grad(map_params, True)
            for _ in range(n_map_steps):
                x = data.draw(B)
                y, xr, gauss = self._draw_plan(x, S)
                c = cost(xr, y).mean(-1)  # (K, B)
                if self.regularization is not None:
                    c = c + reg * self._regularizer(y, gauss)
                transport = (a * c.mean(1)).sum()
                v_t = transport - (a * potentials_at(y).mean(1)).sum()
                opt_map.zero_grad(set_to_none=True)
                v_t.backward()
                opt_map.step()
                if ema is not None:
                    torch._foreach_lerp_(ema, map_params, 1.0 - ema_decay)
            return {"potential": v_f, "map": v_t, "transport_cost": transport}

        self.n_iter_ = self._run(
            step, n_iter=self.max_iter, deadline=self._deadline(), phase="train"
        )
        set_grad(pot_params + map_params, True)
        if ema is not None and self.n_iter_ > 0:
            with torch.no_grad():
                for t, e in zip(map_params, ema):
                    t.copy_(e)
        self.__dict__.pop("_ema", None)
        self._end_fit()

    # ------------------------------------------------------------------ inference
    @property
    def n_features_out_(self) -> int:
        """Dimension of the barycenter space."""
        return int(self._n_features_out)

    def _map_one(self, k: int, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """T_k on rows x (n, d_in); noise (n, noise_dim) for stochastic plans (None: mean)."""
        maps = self.maps_
        if self.plan == "gaussian":
            h = maps.mlp.forward_one(x, k)
            D = self.n_features_out_
            mu = h[:, :D]
            if maps.skip is not None:
                mu = mu + torch.addmm(maps.skip.bias[k], x, maps.skip.weight[k])
            if noise is None:
                return mu
            log_std = (h[:, D:] + maps.log_std_offset).clamp(maps.min_log_std, maps.max_log_std)
            return mu + torch.exp(log_std) * noise
        inp = x if noise is None or not maps.stochastic else torch.cat([x, noise], dim=-1)
        h = maps.mlp.forward_one(inp, k)
        if maps.skip is not None:
            h = h + torch.addmm(maps.skip.bias[k], x, maps.skip.weight[k])
        return h

    def _noise_dim(self) -> int:
        return 0 if self.plan == "deterministic" else int(self.maps_.noise_dim)

    def _map_rows(self, X: NDArray | torch.Tensor, k: int, rng: np.random.RandomState) -> NDArray:
        nd = self._noise_dim()
        Xt = X if isinstance(X, torch.Tensor) else self._tensor(X)
        if nd == 0:
            return self._apply(lambda t: self._map_one(k, t, None), Xt)
        noise = self._randn((Xt.shape[0], nd), rng)
        both = torch.cat([Xt, noise], dim=1)
        d = Xt.shape[1]
        return self._apply(lambda t: self._map_one(k, t[:, :d], t[:, d:]), both)

    def _transform_rng(self, k: int) -> np.random.RandomState:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            return np.random.RandomState([int(rs) % (2**32), int(k)])
        return check_random_state(rs)

    def _transform(self, X: NDArray, k: int) -> NDArray:
        return self._map_rows(X, k, self._transform_rng(k))

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        counts = rng.multinomial(n, self.weights_)
        out = []
        for k, m in enumerate(counts):
            if m == 0:
                continue
            idx = rng.randint(0, int(self._train_counts[k]), size=int(m))
            rows = self._train_rows[k, torch.as_tensor(idx, device=self._train_rows.device)]
            out.append(self._map_rows(rows.to(self.device_), k, rng))
        Y = np.concatenate(out, axis=0)
        return Y[rng.permutation(n)]

    def barycentric_projection(
        self, X: Any, k: Any = None, n_draws: int = 100, random_state: Any = None
    ) -> NDArray[np.float64]:
        """Conditional mean ``E[T_k(x, s)]`` of the plan of every row (a deterministic map).

        Deterministic plans return ``transform(X, k)``; Gaussian plans their exact mean
        ``mu_k(x)``; stochastic plans the average of ``n_draws`` draws per row.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)
        k : int, array-like of shape (n,), or None
            Input label of all rows or of each row (as in :meth:`transform`).
        n_draws : int, default=100
            Noise draws averaged per row (stochastic plans only).
        random_state : int, RandomState or None
            Seed of the draws; None uses the estimator's ``random_state``.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self)
        X = check_rows(X, self.n_features_in_, type(self).__name__)
        n_draws = _check_positive_int(n_draws, "n_draws")
        if random_state is None:
            random_state = self.random_state
        rng = check_random_state(random_state)

        def project(Xk: NDArray, kk: int) -> NDArray:
            if self.plan != "stochastic":
                return self._apply(lambda t: self._map_one(kk, t, None), Xk)
            Xt = self._tensor(Xk)
            total = np.zeros((Xk.shape[0], self.n_features_out_))
            for _ in range(n_draws):
                total += self._map_rows(Xt, kk, rng)
            return total / n_draws

        return self._route(project, X, k)
