"""EgBary: entropic OT barycenters for general costs with energy-guided plans.

Kolesov, Mokrov et al., "Energy-Guided Continuous Entropic Barycenter Estimation for General
Costs", NeurIPS 2024. Only K congruent potentials f_k (``sum_k a_k f_k = 0``) are learned;
the conditional plan from a point x of input k to the barycenter is the energy-based model
``mu_x^{f_k}(y) ∝ exp((f_k(y) - c(x, y)) / eps)``, sampled by Langevin dynamics (or by
self-normalised importance sampling, their appendix D).

Algorithm (their Algorithm 1, Theorem 4.3), one iteration:

1. draw x from every input (one (K, B, d) batch);
2. draw y ~ mu_x^{f_k} for every x (B Langevin chains per input, all K*B chains at once,
   y detached);
3. take a gradient step that decreases ``sum_k a_k mean f_k(y)``, which is ascent on the
   dual objective ``sum_k a_k E_{P_k} f_k^C``.
"""

from __future__ import annotations

import copy
import numbers
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..base import NeuralBarycenter
from ..costs import resolve_cost
from ..nn import CongruentPotentials
from ..sampling import GaussianProposal, langevin
from ..validation import check_rows

__all__ = ["EnergyBarycenter"]

_SAMPLERS = ("langevin", "importance")
_INITS = ("auto", "input", "gaussian")
_MAX_STORED_ROWS = 100_000


def _check_positive(value: Any, name: str, integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}, got {value!r}.")


class _FittedGenerator(nn.Module):
    """The data-space generator of a fitted skbary generative model: ``G(z) * scale + center``.

    Wraps ``GenerativeBarycenter().fit([X])`` (``generator_`` a module on standardised data,
    ``scale_``/``center_`` the standardisation), so its samples live where the inputs do.
    """

    def __init__(self, estimator: Any) -> None:
        super().__init__()
        self.module = copy.deepcopy(estimator.generator_).cpu()
        self.n_latent = int(estimator.latent_dim_)
        center = np.asarray(getattr(estimator, "center_", 0.0), dtype=np.float32)
        self.register_buffer("center", torch.as_tensor(center))
        self.scale = float(getattr(estimator, "scale_", 1.0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.module(z) * self.scale + self.center


class EnergyBarycenter(NeuralBarycenter):
    """Entropic OT barycenter for a general cost, with energy-guided plans (EgBary).

    Minimises ``sum_k a_k EOT_{c, eps}(P_k, Q)`` over the barycenter Q, where
    ``EOT_{c, eps}(P, Q) = min_pi E_pi c(x, y) - eps E_{x~P} H(pi(.|x))``, through its dual: K
    congruent potentials ``f_k = g_k - sum_j a_j g_j`` (:class:`~skbary.nn.CongruentPotentials`)
    trained by the gradient of Theorem 4.3. The plan from x in input k is
    ``mu_x^{f_k}(y) ∝ exp((f_k(y) - c(x, y)) / eps)``; :meth:`transform` draws from it,
    :meth:`barycentric_projection` averages draws, :meth:`sample` maps rows of the inputs.

    With ``generator=G`` (a frozen torch module, latent (N, n_latent) -> data (N, d)) the
    cost is ``c(x, G(z))``: the barycenter is a distribution of latent codes z, so it lives
    on the manifold G spans (their sections 5.2-5.3). Decode with :meth:`decode`.

    Parameters
    ----------
    epsilon : float, default=0.01
        Entropic regularisation eps. The plans have spread ~sqrt(eps); smaller eps is closer
        to the unregularised barycenter (the location-scatter L2-UVP grows with eps, see
        docs/energy.md) but needs more Langevin accuracy. 0.01 is the paper's value for the
        2D and Gaussian experiments.
    cost : "quadratic" or callable, default="quadratic"
        Ground cost ``c(x, y)`` (:mod:`skbary.costs`): "quadratic" is ``1/2 |x - y|^2``; a
        callable takes tensors (..., d_in), (..., d) and returns (...), differentiable in y.
    sampler : {"langevin", "importance"}, default="langevin"
        How plans are sampled in training and inference. "langevin": unadjusted Langevin
        chains (the paper's main method). "importance": self-normalised importance sampling
        from a Gaussian proposal fitted to the pooled inputs (their appendix D);
        simulation-free and fast in low dimension, but its effective sample size collapses
        as the dimension grows or eps shrinks.
    langevin_steps : int, default=30
        Langevin steps per training iteration (and per draw at inference, see
        ``inference_steps``). Each step costs one forward and backward pass of the K
        networks on the K*B chains, so this sets the price of an iteration. 30 short-run
        steps from x suffice: with the defaults, location-scatter D=2 (eps=0.01) reached a
        weighted L2-UVP of 0.71 % (BW2-UVP of 1e5 samples 0.13 %) and the Twister BW2-UVPs
        of 1.0-2.6 % in 600-s fits on 2 CPU cores (docs/energy.md).
    langevin_step_size : float, default=0.2
        ULA step in units of the energy ``f_k - c``: ``y <- y + (s/2) grad_y (f_k(y) - c(x,
        y)) + sqrt(s * eps) xi`` (the README's ``eta`` is ``s * eps``), so a good value does
        not depend on eps. Stable for ``s < 2 / L`` with L the curvature of
        ``c(x, .) - f_k``: 1-4 for the quadratic cost on location-scatter inputs, up to ~6
        for the Twister cost, where 0.2 beat 0.5 (BW2-UVP 23-43 % against 45-66 % after
        150 iterations).
    langevin_init : {"auto", "input", "gaussian"} or callable, default="auto"
        Where chains start. "input": at x itself (natural when x and y share a space and
        ``c(x, .)`` is smallest at x); "gaussian": a Gaussian fitted to the pooled inputs
        (N(0, I) in a generator's latent space); a callable ``init(x) -> y0`` maps a tensor
        (..., d_in) to (..., d). "auto" is "input" without a generator, else "gaussian".
    inference_steps : int or None, default=None
        Langevin steps of :meth:`transform`, :meth:`sample` and
        :meth:`barycentric_projection`; None uses ``langevin_steps``. The potentials are
        trained against the short-run chains, so sampling with the same chains is
        consistent: doubling the steps at inference made the L2-UVP slightly worse
        (0.147 % -> 0.168 %, location-scatter D=2, 184 iterations, step size 0.5).
    n_proposals : int, default=4096
        Importance sampler only: proposals per training iteration and per inference chunk.
    proposal_scale : float, default=1.5
        Importance sampler only: the proposal is N(mean, scale^2 cov) of the pooled inputs
        (of the latent codes N(0, I) with a generator).
    generator : torch.nn.Module, callable, fitted generative estimator or None, default=None
        Manifold constraint: a map G from latent codes (N, n_latent) to points (N, d) of the
        inputs' space; the cost becomes ``c(x, G(z))``. Copied and frozen in fit. A fitted
        ``GenerativeBarycenter`` (a barycenter of one input is a generative model of it)
        is accepted as is: its generator and standardisation are used.
    n_latent : int or None, default=None
        Latent dimension of ``generator``; None reads ``generator.n_latent``,
        ``generator.latent_dim_`` (fitted estimators) or ``generator.in_features``.
    weights : array-like of shape (K,), default=None
        Barycenter weights when ``fit`` gets none; uniform if both are None.
    batch_size : int, default=256
        Rows drawn from every input per iteration (B; K*B chains run together).
    lr : float, default=5e-3
        Learning rate of the potentials (Adam). 5e-3 reached 0.15 % L2-UVP where 1e-3
        reached 0.65 % in the same 150 s (location-scatter D=2, step size 0.5); the
        Twister's potentials must grow to slopes ~4, which 1e-3 is too slow for.
    lr_decay : float in (0, 1], default=0.1
        The learning rate decays linearly to ``lr_decay * lr`` at the end of the budget
        (``max_iter`` or ``max_time``, whichever ends training first); 1 keeps it constant.
    max_iter : int, default=20000
        Training iterations.
    max_time : float or None, default=None
        Wall-clock budget (seconds) of the whole fit.
    optimizer : torch optimiser class, default=torch.optim.Adam
        With ``optimizer__*`` keyword arguments.
    device : {"auto", "cpu", "cuda"}, default="auto"
    n_threads : int or None, default=1
        torch CPU threads during fit (None keeps torch's setting). One thread is the
        faster setting for these small networks on a 2-core CPU (EgBary/NOT measured 10x
        more iterations per second with 1 than with 2 threads on a busy 2-core machine).
    random_state : int, RandomState or None, default=None
        Seeds training and, when the draw methods get none, inference.
    verbose : int, default=0
        Progress bar with the current losses when > 0.
    callbacks : list of skorch callbacks or None, default=None
    **kwargs
        Nested parameters: ``potential__hidden_layer_sizes`` (default (64, 64): each
        Langevin step evaluates all K networks on all chains, so width costs quadratically
        in training and inference),
        ``potential__activation`` (default "silu": smooth potentials give smooth Langevin
        drifts), ``optimizer__*``.

    Attributes
    ----------
    potentials_ : CongruentPotentials
        The learned congruent potentials.
    generator_ : torch.nn.Module or callable or None
        The frozen copy of ``generator``.
    n_iter_ : int
        Training iterations run.
    history_ : skorch History
        Per iteration: ``potential`` (``sum_k a_k mean f_k(y)``, minimised) and ``cost``
        (``sum_k a_k mean c(x, y)`` of the sampled plans).
    stop_reason_ : dict
        Why training stopped ("max_iter", "max_time" or "callback").
    n_features_in_, n_marginals_, weights_, input_labels_, fit_time_ :
        See :class:`~skbary.base.BaseBarycenter`.

    Examples
    --------
    >>> from skbary import EnergyBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 1000, random_state=0)
    >>> est = EnergyBarycenter(max_iter=50, random_state=0).fit(bench.marginals)
    >>> est.sample(5).shape
    (5, 2)
    """

    _network_defaults = {"potential": {"hidden_layer_sizes": (64, 64), "activation": "silu"}}

    def __init__(
        self,
        epsilon: float = 0.01,
        cost: str | Callable = "quadratic",
        sampler: str = "langevin",
        langevin_steps: int = 30,
        langevin_step_size: float = 0.2,
        langevin_init: str | Callable = "auto",
        inference_steps: int | None = None,
        n_proposals: int = 4096,
        proposal_scale: float = 1.5,
        generator: Any = None,
        n_latent: int | None = None,
        weights: Any = None,
        batch_size: int = 256,
        lr: float = 5e-3,
        lr_decay: float = 0.1,
        max_iter: int = 20000,
        max_time: float | None = None,
        optimizer: type = torch.optim.Adam,
        device: str = "auto",
        n_threads: int | None = 1,
        random_state: Any = None,
        verbose: int = 0,
        callbacks: Any = None,
        **kwargs: Any,
    ) -> None:
        self.epsilon = epsilon
        self.cost = cost
        self.sampler = sampler
        self.langevin_steps = langevin_steps
        self.langevin_step_size = langevin_step_size
        self.langevin_init = langevin_init
        self.inference_steps = inference_steps
        self.n_proposals = n_proposals
        self.proposal_scale = proposal_scale
        self.generator = generator
        self.n_latent = n_latent
        self.weights = weights
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.max_iter = max_iter
        self.max_time = max_time
        self.optimizer = optimizer
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self._set_prefixed(kwargs)

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        _check_positive(self.epsilon, "epsilon")
        resolve_cost(self.cost)
        if self.sampler not in _SAMPLERS:
            raise ValueError(f"sampler must be one of {_SAMPLERS}, got {self.sampler!r}.")
        _check_positive(self.langevin_steps, "langevin_steps", integer=True)
        _check_positive(self.langevin_step_size, "langevin_step_size")
        if not callable(self.langevin_init) and self.langevin_init not in _INITS:
            raise ValueError(
                f"langevin_init must be one of {_INITS} or a callable, got {self.langevin_init!r}."
            )
        if self.inference_steps is not None:
            _check_positive(self.inference_steps, "inference_steps", integer=True)
        _check_positive(self.n_proposals, "n_proposals", integer=True)
        _check_positive(self.proposal_scale, "proposal_scale")
        _check_positive(self.batch_size, "batch_size", integer=True)
        _check_positive(self.lr, "lr")
        if (
            isinstance(self.lr_decay, bool)
            or not isinstance(self.lr_decay, numbers.Real)
            or not 0 < self.lr_decay <= 1
        ):
            raise ValueError(f"lr_decay must be a number in (0, 1], got {self.lr_decay!r}.")
        if (
            self.generator is not None
            and not callable(self.generator)
            and not isinstance(getattr(self.generator, "generator_", None), nn.Module)
        ):
            raise TypeError(
                f"generator must be a torch module or callable latent -> data, got "
                f"{type(self.generator).__name__}."
            )
        if self.generator is None and self.n_latent is not None:
            raise ValueError("n_latent is only used with a generator; leave it None.")
        if self.generator is not None:
            n_latent = self._resolve_n_latent()
            _check_positive(n_latent, "n_latent", integer=True)
        if self.langevin_init == "input" and self.generator is not None:
            raise ValueError(
                "langevin_init='input' starts chains at x, which needs x and y in one space; "
                "with a generator use 'gaussian' (or 'auto')."
            )

    def _resolve_n_latent(self) -> int:
        if self.n_latent is not None:
            return self.n_latent
        for attr in ("n_latent", "latent_dim_", "in_features"):
            value = getattr(self.generator, attr, None)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                return int(value)
        raise ValueError(
            "n_latent must be given with a generator that has no n_latent or in_features attribute."
        )

    @property
    def n_features_out_(self) -> int:
        """Dimension of the barycenter space (the latent dimension with a generator)."""
        return getattr(self, "_n_out", self.n_features_in_)

    # ------------------------------------------------------------------ the energy
    def _embed(self, y: torch.Tensor) -> torch.Tensor:
        """Barycenter points in the inputs' space: G(y) with a generator, else y."""
        if self.generator_ is None:
            return y
        lead = y.shape[:-1]
        out = self.generator_(y.reshape(-1, y.shape[-1]))
        return out.reshape(*lead, -1)

    def _cost_fn(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return resolve_cost(self.cost)(x, e)

    def _init_chains(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        init = self.langevin_init
        if callable(init):
            return torch.as_tensor(init(x), dtype=x.dtype, device=x.device)
        if init == "input" or (init == "auto" and self.generator_ is None):
            return x.clone()
        shape = (*x.shape[:-1], self._n_out)
        z = torch.randn(shape, generator=gen, device=x.device, dtype=x.dtype)
        return self._init_mean + z @ self._init_chol.T

    def _langevin(
        self, x: torch.Tensor, f: Callable, n_steps: int, gen: torch.Generator
    ) -> torch.Tensor:
        """Chains y ~ mu_x^f for every row of x (..., d_in); f maps (..., d) -> (...)."""

        def energy(y: torch.Tensor) -> torch.Tensor:
            return f(y) - self._cost_fn(x, self._embed(y))

        return langevin(
            energy,
            self._init_chains(x, gen),
            n_steps=n_steps,
            step_size=float(self.langevin_step_size),
            temperature=float(self.epsilon),
            generator=gen,
        )

    def _importance_logits(
        self, x: torch.Tensor, F: torch.Tensor, e: torch.Tensor, log_q: torch.Tensor
    ) -> torch.Tensor:
        """Log-weights (..., M) of proposals (images e (M, D), f values F (..., 1, M))."""
        xe = x.unsqueeze(-2).expand(*x.shape[:-1], e.shape[0], x.shape[-1])
        ee = e.expand(*x.shape[:-1], *e.shape)
        return (F - self._cost_fn(xe, ee)) / self.epsilon - log_q

    # ------------------------------------------------------------------ fit
    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        self._check_params()
        self._begin_fit()
        dev = self.device_
        K = len(marginals)
        d_in = marginals[0].shape[1]
        if self.generator is None:
            self.generator_ = None
            self._n_out = d_in
        else:
            self._n_out = int(self._resolve_n_latent())
            gen = self.generator
            if not callable(gen):  # a fitted skbary generative model (GenerativeBarycenter)
                gen = _FittedGenerator(gen)
            if isinstance(gen, nn.Module):
                gen = copy.deepcopy(gen).to(dev).eval()
                for p in gen.parameters():
                    p.requires_grad_(False)
            self.generator_ = gen
        # Stored rows for sample(): every input (capped), float32.
        rng = check_random_state(self._seed)
        self._inputs = []
        for m in marginals:
            if m.shape[0] > _MAX_STORED_ROWS:
                m = m[rng.choice(m.shape[0], _MAX_STORED_ROWS, replace=False)]
            self._inputs.append(np.ascontiguousarray(m, dtype=np.float32))
        # The Gaussian of chain starts and importance proposals.
        if self.generator_ is None:
            pooled = torch.as_tensor(np.concatenate(self._inputs), device=dev)
            prop = GaussianProposal.fit(pooled, scale=1.0)
        else:
            prop = GaussianProposal(
                torch.zeros(self._n_out, device=dev), torch.eye(self._n_out, device=dev)
            )
        self._init_mean, self._init_chol = prop.mean, prop.chol
        self._proposal_cov = float(self.proposal_scale) ** 2 * (prop.chol @ prop.chol.T)

        net = self._network_params("potential")
        with self._seeded():
            self.potentials_ = CongruentPotentials(weights, self._n_out, **net)
        self.potentials_.to(dev)
        opt = self._make_optimizer(self.potentials_.parameters(), self.lr)
        data = self._batches(marginals)
        a = torch.as_tensor(weights, dtype=torch.float32, device=dev)
        B = int(self.batch_size)
        potentials = self.potentials_

        if self.sampler == "langevin":

            def step(i: int) -> dict[str, torch.Tensor]:
                x = data.draw(B)  # (K, B, d_in)
                y = self._langevin(x, potentials, self.langevin_steps, self._generator)
                f = potentials(y)  # (K, B)
                loss = (a * f.mean(dim=1)).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    c = (a * self._cost_fn(x, self._embed(y)).mean(dim=1)).sum()
                return {"potential": loss, "cost": c}

        else:
            proposal = GaussianProposal(self._init_mean, self._proposal_cov)
            M = int(self.n_proposals)

            def step(i: int) -> dict[str, torch.Tensor]:
                x = data.draw(B)  # (K, B, d_in)
                y = proposal.sample(M, self._generator)  # (M, d)
                F = potentials.all_at(y)  # (K, M)
                with torch.no_grad():
                    e = self._embed(y)
                    logits = self._importance_logits(
                        x, F.detach()[:, None, :], e, proposal.log_prob(y)
                    )
                    w = torch.softmax(logits, dim=-1)  # (K, B, M)
                    c = (
                        a
                        * (
                            w
                            * self._cost_fn(
                                x.unsqueeze(-2).expand(K, B, M, d_in), e.expand(K, B, *e.shape)
                            )
                        )
                        .sum(-1)
                        .mean(-1)
                    ).sum()
                loss = (a * (w.mean(dim=1) * F).sum(dim=-1)).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                return {"potential": loss, "cost": c}

        self.n_iter_ = self._run(
            self._with_lr_decay(step, opt), n_iter=self.max_iter, deadline=self._deadline()
        )
        self._end_fit()

    def _with_lr_decay(self, step: Callable, opt: torch.optim.Optimizer) -> Callable:
        """Linear decay of the learning rate to ``lr_decay * lr`` at the end of the budget.

        Progress is the larger of ``i / max_iter`` and the fraction of ``max_time`` used, so
        the decay ends when training does, whichever limit stops it.
        """
        if self.lr_decay == 1:
            return step
        base = [g["lr"] for g in opt.param_groups]
        drop = 1.0 - float(self.lr_decay)

        def decayed(i: int) -> dict[str, torch.Tensor]:
            progress = i / self.max_iter
            if self.max_time is not None:
                used = (time.perf_counter() - self._t0) / float(self.max_time)
                progress = max(progress, used)
            scale = 1.0 - drop * min(progress, 1.0)
            for g, lr0 in zip(opt.param_groups, base):
                g["lr"] = lr0 * scale
            return step(i)

        return decayed

    def _divergence_hint(self, loss_name: str) -> str:
        return (
            f"The congruent potentials (potential__*) diverged while {loss_name!r} was "
            f"tracked. Lower lr (now {self.lr}) or langevin_step_size (now "
            f"{self.langevin_step_size}; Langevin chains blow up when it exceeds 2 / the "
            "curvature of the cost), or raise epsilon."
        )

    # ------------------------------------------------------------------ inference
    def _inference_generator(self, rng: np.random.RandomState) -> torch.Generator:
        seed = int(rng.randint(0, 2**31 - 1))
        return torch.Generator(device=self.device_).manual_seed(seed)

    def _draws(
        self, X: NDArray, k: int, n_draws: int, gen: torch.Generator, chunk: int = 16384
    ) -> torch.Tensor:
        """``n_draws`` draws from mu_x^{f_k} for every row: (n, n_draws, d) on the device."""
        Xt = self._tensor(X)
        out = []
        rows = max(1, chunk // n_draws)
        n_steps = self.inference_steps or self.langevin_steps

        def f_k(y: torch.Tensor) -> torch.Tensor:
            lead = y.shape[:-1]
            return self.potentials_.all_at(y.reshape(-1, y.shape[-1]))[k].reshape(lead)

        for start in range(0, Xt.shape[0], rows):
            x = Xt[start : start + rows]
            if self.sampler == "langevin":
                xx = x.unsqueeze(1).expand(-1, n_draws, -1)
                out.append(self._langevin(xx, f_k, n_steps, gen))
            else:
                out.append(self._importance_draws(x, k, n_draws, gen))
        return torch.cat(out)

    def _importance_draws(
        self, x: torch.Tensor, k: int, n_draws: int, gen: torch.Generator
    ) -> torch.Tensor:
        proposal = GaussianProposal(self._init_mean, self._proposal_cov)
        y = proposal.sample(int(self.n_proposals), gen)
        with torch.no_grad():
            F = self.potentials_.all_at(y)[k]
            logits = self._importance_logits(x, F, self._embed(y), proposal.log_prob(y))
            w = torch.softmax(logits, dim=-1)  # (n, M)
            idx = torch.multinomial(w, n_draws, replacement=True, generator=gen)
        return y[idx]

    def _transform(self, X: NDArray, k: int) -> NDArray:
        rng = check_random_state(self.random_state)
        gen = self._inference_generator(rng)
        # a different stream per input, so inputs mapped in one call get independent noise
        gen.manual_seed(gen.initial_seed() + k)
        return self._draws(X, k, 1, gen)[:, 0].cpu().numpy()

    def barycentric_projection(
        self, X: ArrayLike, k: Any = None, n_draws: int = 64, random_state: Any = None
    ) -> NDArray[np.float64]:
        """Mean of the learned plan from each row: ``E_{y ~ mu_x^{f_k}} y``.

        The deterministic map of the method (what the papers score with L2-UVP).

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)
        k : int, array-like of shape (n,), or None
            Input of the rows, as in :meth:`transform`.
        n_draws : int, default=64
            Draws averaged per row; the Monte Carlo error of the mean has variance
            ~eps / n_draws per coordinate (0.01% L2-UVP at eps=0.01 for 64 draws).
        random_state : int, RandomState or None
            Seed of the draws; None uses the estimator's ``random_state``.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self)
        _check_positive(n_draws, "n_draws", integer=True)
        X = check_rows(X, self.n_features_in_, type(self).__name__)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        gen = self._inference_generator(rng)

        def project(Xk: NDArray, kk: int) -> NDArray:
            if self.sampler == "importance":
                return self._importance_mean(Xk, kk)
            return self._draws(Xk, kk, int(n_draws), gen).mean(dim=1).cpu().numpy()

        return self._route(project, X, k)

    def _importance_mean(self, X: NDArray, k: int, chunk: int = 2048) -> NDArray:
        """Self-normalised estimate of E y under the plan (proposals drawn once per chunk)."""
        rng = check_random_state(self.random_state)
        gen = self._inference_generator(rng)
        proposal = GaussianProposal(self._init_mean, self._proposal_cov)
        Xt = self._tensor(X)
        outs = []
        with torch.no_grad():
            for start in range(0, Xt.shape[0], chunk):
                x = Xt[start : start + chunk]
                y = proposal.sample(int(self.n_proposals), gen)
                F = self.potentials_.all_at(y)[k]
                logits = self._importance_logits(x, F, self._embed(y), proposal.log_prob(y))
                outs.append(torch.softmax(logits, dim=-1) @ y)
        return torch.cat(outs).cpu().numpy()

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        counts = rng.multinomial(n, self.weights_)
        gen = self._inference_generator(rng)
        outs = []
        for k, count in enumerate(counts):
            if count == 0:
                continue
            rows = self._inputs[k][rng.randint(0, self._inputs[k].shape[0], size=count)]
            outs.append(self._draws(rows, k, 1, gen)[:, 0])
        Y = torch.cat(outs).cpu().numpy()
        return Y[rng.permutation(n)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform is one random draw per row from the plan: a row's image depends on the
        # other rows of the call (their noise comes from one stream), not only on the row.
        tags.non_deterministic = True
        return tags

    def decode(self, Z: ArrayLike) -> NDArray[np.float64]:
        """Push barycenter points through the generator: G(z) (identity without one).

        Parameters
        ----------
        Z : array-like of shape (n, n_features_out_)

        Returns
        -------
        ndarray of shape (n, n_features_in_)
        """
        check_is_fitted(self)
        Z = check_rows(Z, self.n_features_out_, type(self).__name__, name="Z")
        if self.generator_ is None:
            return np.asarray(Z, dtype=np.float64)
        return self._apply(self._embed, Z)
