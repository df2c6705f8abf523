"""NWB-I and NWB-II: barycenters with input-convex potentials (Fan, Taghvaei, Chen, 2021).

The barycenter nu is the law of a generator ``h(z)``, z ~ N(0, I). For every input k two
convex potentials are learned: ``grad f_k`` maps the barycenter onto input k and
``grad g_k`` (approximately ``grad f_k^*``) maps input k onto the barycenter. The
min-max-min problem (their eq. 9) on the batch objective (10),

.. code-block:: text

    sum_k a_k { mean_j [ f_k(grad g_k(Y_kj)) - <Y_kj, grad g_k(Y_kj)> - f_k(h(Z_j)) ]
                + lambda R(g_k) }  +  1/2 mean_j |h(Z_j)|^2,

is solved by the three nested loops of their Algorithm 1: ``g_steps`` (K1) updates of
every g_k decreasing (10), then one update of every f_k increasing it followed by clipping
its z-weights at 0, the pair repeated ``f_steps`` (K2) times, then one update of h
decreasing it. ``free_weights=True`` is NWB-II (Algorithm 2): every network also takes the
weight vector a as an input (f_k, g_k partially input-convex, convex in x only), a is drawn
from a distribution on the simplex during training, and one fit serves every a.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..base import NeuralBarycenter
from ..nn.picnn import BatchedICNN
from ..validation import check_n_samples, check_rows, check_weights

__all__ = ["ICNNBarycenter"]

_WEIGHT_POOL = 1 << 16
_SQRT3 = math.sqrt(3.0)


class _Generator(nn.Module):
    """h(z) or h(z, a): a PReLU MLP plus a linear skip ``z M(a) + c(a)``.

    The skip starts at the identity (so h starts as the latent law N(0, I)); with a
    context (NWB-II) its matrix and offset are functions of the weight vector, computed by
    a small MLP whose last layer starts at zero.
    """

    def __init__(
        self,
        n_features: int,
        context_features: int,
        hidden_layer_sizes: tuple[int, ...],
    ) -> None:
        super().__init__()
        d, c = n_features, context_features
        self.n_features, self.context_features = d, c
        widths = (d + c, *hidden_layer_sizes)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.PReLU(b)]
        last = nn.Linear(widths[-1], d)
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.zero_()
        layers.append(last)
        self.mlp = nn.Sequential(*layers)
        self.M = nn.Parameter(torch.eye(d))
        self.m = nn.Parameter(torch.zeros(d))
        if c > 0:
            width = hidden_layer_sizes[0] if hidden_layer_sizes else 32
            head = nn.Linear(width, d * d + d)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            self.skip = nn.Sequential(nn.Linear(c, width), nn.PReLU(width), head)

    def forward(self, z: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        if a is None:
            return z @ self.M + self.m + self.mlp(z)
        d = self.n_features
        a = a.expand(z.shape[0], -1)
        s = self.skip(a)
        M = self.M + s[:, : d * d].view(-1, d, d)
        lin = torch.bmm(z.unsqueeze(1), M).squeeze(1) + self.m + s[:, d * d :]
        return lin + self.mlp(torch.cat([z, a], dim=1))


class ICNNBarycenter(NeuralBarycenter):
    """Wasserstein-2 barycenter with input-convex potentials: NWB-I and NWB-II.

    Fan, Taghvaei and Chen, "Scalable computations of Wasserstein barycenter via input
    convex neural networks", ICML 2021. A generator h represents the barycenter; for every
    input k, ``grad g_k`` maps input k onto the barycenter (:meth:`transform`) and
    ``grad f_k`` maps the barycenter back to input k (:meth:`inverse_transform`). The
    three nested loops of their Algorithm 1 train g (``g_steps`` per f step, with the
    convexity penalty R), f (``f_steps`` per generator step, clipped to stay convex) and h.

    With ``free_weights=True`` (NWB-II, their Algorithm 2) all networks take the weight
    vector as an extra input and are trained on weight vectors drawn from
    ``weight_distribution``; afterwards ``sample(n, weights=a)``, ``transform(X, k,
    weights=a)`` and ``inverse_transform(Y, k, weights=a)`` serve any a without refitting.

    Internally every input is standardised by one shift and one scale shared by all inputs
    (the weighted mean of the input means, and the root mean square spread); W2 barycenters
    commute with such a map, so results are returned in the original units.

    Parameters
    ----------
    free_weights : bool, default=False
        False: NWB-I, the barycenter of the fit weights. True: NWB-II, the barycenters of
        all weight vectors in one fit.
    weights : array-like of shape (K,), default=None
        Barycenter weights when ``fit`` gets none; uniform if both are None. With
        ``free_weights=True`` they are the default weights of ``sample``/``transform``.
    latent_distribution : {"gaussian", "uniform"}, default="gaussian"
        The law eta of the generator's input z (dimension d): N(0, I), or uniform on
        ``[-sqrt 3, sqrt 3]^d`` (unit variance; with a linear generator it gives the uniform
        laws on segments of the paper's sharp-marginal experiment).
    weight_distribution : {"uniform", "dirichlet"}, default="uniform"
        NWB-II only: the law of the training weight vectors, uniform on the simplex (the
        paper's choice) or Dirichlet(``weight_concentration``).
    weight_concentration : float or array-like of shape (K,), default=1.0
        Concentration of the Dirichlet law (``weight_distribution="dirichlet"``); 1 is the
        uniform law, larger values concentrate the weights near the centre of the simplex.
    batch_size : int, default=256
        M, rows drawn from every input and from the latent law per outer iteration.
    lr : float, default=1e-3
        Adam learning rate of f, g and h (the paper's 0.001).
    lr_decay : float, default=0.1
        Factor by which the learning rate has fallen at the end of training: it decays
        exponentially with progress, ``lr * lr_decay ** p``, p the larger of the fraction
        of ``max_iter`` and of ``max_time`` used (the paper drops it by 90 % every 20
        epochs). 1 keeps it constant.
    g_steps : int, default=6
        K1, updates of g per update of f (the paper's 6).
    f_steps : int, default=4
        K2, updates of f per update of h (the paper's 4).
    convexity_penalty : float, default=0.1
        lambda of the penalty ``R(g) = lambda sum_l |max(-W_l, 0)|_F^2`` on the negative
        z-weights of g (the paper's 0.1). f is kept convex by clipping instead.
    n_threads : int or None, default=1
        torch intra-op threads during a CPU fit (restored afterwards); None keeps torch's
        setting. The networks are small, so one thread loses little, and on a busy machine
        it wins by far: on the shared 2-core test machine, 56 against 8 outer iterations in
        15 s (10 segments example). Ignored on CUDA.
    max_iter : int, default=10000
        Outer iterations (generator updates), K3.
    max_time : float or None, default=None
        Wall-clock budget in seconds for the whole fit.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Optimiser of every network, with ``optimizer__*`` keyword arguments.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds network initialisation and every training draw; with ``max_time=None`` a CPU
        fit is repeatable (with ``max_time`` the learning-rate schedule follows the clock).
    verbose : int, default=0
        >0 shows a progress bar with the losses.
    callbacks : list of skorch callbacks, default=None
    **kwargs
        Nested network settings: ``f__hidden_layer_sizes`` (default (64, 64)),
        ``f__activation`` ("celu"), ``f__quadratic`` (True: the potentials carry a convex
        quadratic term ``1/2 |x Q|^2``, so linear maps are represented exactly), the same
        for ``g__*``, ``generator__hidden_layer_sizes`` ((64, 64)), and ``optimizer__*``.

    Attributes
    ----------
    generator_ : torch.nn.Module
        h, on standardised coordinates.
    f_, g_ : BatchedICNN
        The K potentials f_k and g_k (partially input-convex when ``free_weights``).
    shift_ : ndarray of shape (d,)
    scale_ : float
        The standardisation ``x -> (x - shift_) / scale_``.
    n_iter_ : int
        Outer iterations run.
    history_ : skorch History
        Per outer iteration: ``g`` (the g objective), ``f`` (minus the f objective),
        ``h`` (the generator objective).
    stop_reason_ : dict
        ``{"train": "max_iter" | "max_time" | "callback"}``.
    fit_time_ : float
        Seconds spent in fit.
    n_features_in_, n_marginals_, weights_, input_labels_ :
        See :class:`~skbary.base.BaseBarycenter`.

    Examples
    --------
    >>> from skbary import ICNNBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 1000, random_state=0)
    >>> est = ICNNBarycenter(max_iter=20, random_state=0).fit(bench.marginals)
    >>> est.sample(4).shape
    (4, 2)
    """

    _learns_inverse = True
    _h_lr_factor = 1.0
    _warmup = 0
    _network_defaults = {
        "f": {"hidden_layer_sizes": (32, 32), "activation": "celu", "quadratic": True},
        "g": {"hidden_layer_sizes": (32, 32), "activation": "celu", "quadratic": True},
        "generator": {"hidden_layer_sizes": (64, 64)},
    }

    def __init__(
        self,
        free_weights: bool = False,
        weights: Any = None,
        latent_distribution: str = "gaussian",
        weight_distribution: str = "uniform",
        weight_concentration: Any = 1.0,
        batch_size: int = 256,
        lr: float = 3e-3,
        lr_decay: float = 0.1,
        g_steps: int = 3,
        f_steps: int = 2,
        convexity_penalty: float = 0.1,
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
        self.free_weights = free_weights
        self.weights = weights
        self.latent_distribution = latent_distribution
        self.weight_distribution = weight_distribution
        self.weight_concentration = weight_concentration
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.g_steps = g_steps
        self.f_steps = f_steps
        self.convexity_penalty = convexity_penalty
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
    def _check_params(self) -> None:
        if not isinstance(self.free_weights, bool | np.bool_):
            raise TypeError(f"free_weights must be True or False, got {self.free_weights!r}.")
        for name in ("batch_size", "g_steps", "f_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("lr", "convexity_penalty"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float | np.floating)
                or not math.isfinite(value)
                or value < 0
                or (name == "lr" and value == 0)
            ):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
        if (
            isinstance(self.lr_decay, bool)
            or not isinstance(self.lr_decay, int | float | np.floating)
            or not 0 < self.lr_decay <= 1
        ):
            raise ValueError(f"lr_decay must be a number in (0, 1], got {self.lr_decay!r}.")
        if self.latent_distribution not in ("gaussian", "uniform"):
            raise ValueError(
                "latent_distribution must be 'gaussian' or 'uniform', "
                f"got {self.latent_distribution!r}."
            )
        if self.weight_distribution not in ("uniform", "dirichlet"):
            raise ValueError(
                "weight_distribution must be 'uniform' or 'dirichlet', "
                f"got {self.weight_distribution!r}."
            )
        for name in ("f", "g"):
            params = self._network_params(name)
            unknown = set(params) - {"hidden_layer_sizes", "activation", "quadratic"}
            if unknown:
                raise TypeError(f"unknown {name}__ settings: {sorted(unknown)}.")
        unknown = set(self._network_params("generator")) - {"hidden_layer_sizes"}
        if unknown:
            raise TypeError(f"unknown generator__ settings: {sorted(unknown)}.")

    def _concentration(self, K: int) -> NDArray[np.float64]:
        if self.weight_distribution == "uniform":
            return np.ones(K)
        try:
            alpha = np.asarray(self.weight_concentration, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"weight_concentration must be a number or {K} numbers, "
                f"got {self.weight_concentration!r}."
            ) from exc
        alpha = np.broadcast_to(alpha, (K,)) if alpha.ndim == 0 else alpha
        if alpha.shape != (K,) or not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
            raise ValueError(
                f"weight_concentration must be a positive number or {K} positive numbers "
                f"(one per input), got {self.weight_concentration!r}."
            )
        return np.asarray(alpha, dtype=np.float64)

    # ------------------------------------------------------------------ fit
    def _fit(self, marginals: list[NDArray], weights: NDArray) -> None:
        self._check_params()
        K, d = len(marginals), marginals[0].shape[1]
        alpha = self._concentration(K) if self.free_weights else None
        free = bool(self.free_weights)
        self._begin_fit()
        dev, gen = self.device_, self._generator

        # standardisation shared by all inputs (W2 barycenters commute with it)
        means = np.stack([m.mean(axis=0) for m in marginals])
        spread = np.array([((m - m.mean(axis=0)) ** 2).sum(axis=1).mean() for m in marginals])
        self.shift_ = weights @ means
        self.scale_ = float(np.sqrt(max(weights @ spread, 1e-24) / d))
        data = self._batches([(m - self.shift_) / self.scale_ for m in marginals])

        c = K if free else 0
        with self._seeded():
            f = BatchedICNN(K, d, context_features=c, **self._network_params("f"))
            g = BatchedICNN(K, d, context_features=c, **self._network_params("g"))
            h = _Generator(d, c, tuple(self._network_params("generator")["hidden_layer_sizes"]))
        # the maps start as the translations between the barycenter's mean (0 here) and
        # the input means: grad f_k(x) = x + m_k, grad g_k(y) = y - m_k
        m = torch.as_tensor((means - self.shift_) / self.scale_, dtype=torch.float32)
        f.set_linear_(m)
        g.set_linear_(-m)
        self.f_, self.g_, self.generator_ = f.to(dev), g.to(dev), h.to(dev)
        f_params, g_params = list(f.parameters()), list(g.parameters())
        h_params = list(h.parameters())
        opts = [self._make_optimizer(p, self.lr) for p in (g_params, f_params, h_params)]
        opt_g, opt_f, opt_h = opts
        lr_factors = (1.0, 1.0, self._h_lr_factor)

        a_fixed = torch.as_tensor(weights, dtype=torch.float32, device=dev)
        if free:
            pool = check_random_state(self._seed).dirichlet(alpha, size=_WEIGHT_POOL)
            pool = torch.as_tensor(pool, dtype=torch.float32, device=dev)
        B, lam = int(self.batch_size), float(self.convexity_penalty)
        uniform_latent = self.latent_distribution == "uniform"
        log_decay = math.log(float(self.lr_decay))
        n_iter = int(self.max_iter)

        def set_lr(i: int) -> None:
            p = i / n_iter
            if self.max_time is not None:
                p = max(p, (time.perf_counter() - self._t0) / float(self.max_time))
            lr = float(self.lr) * math.exp(log_decay * min(p, 1.0))
            for opt, factor in zip(opts, lr_factors):
                for group in opt.param_groups:
                    group["lr"] = lr * factor

        def step(i: int) -> Mapping[str, torch.Tensor]:
            if log_decay:
                set_lr(i)
            if uniform_latent:
                z = torch.rand(B, d, generator=gen, device=dev).mul_(2 * _SQRT3).sub_(_SQRT3)
            else:
                z = torch.randn(B, d, generator=gen, device=dev)
            y = data.draw(B)  # (K, B, d)
            if free:
                a = pool[torch.randint(0, _WEIGHT_POOL, (B,), generator=gen, device=dev)]
                ctx, a_kb = a, a.T  # context (B, K); weights per input and row (K, B)
                ctx2 = torch.cat([a, a])
            else:
                a, ctx, ctx2, a_kb = None, None, None, a_fixed[:, None]
            with torch.no_grad():
                x = h(z, a).unsqueeze(0).expand(K, -1, -1)
            for _ in range(self.f_steps):
                for _ in range(self.g_steps):
                    # (10) in g: f_k(grad g_k(y)) - <y, grad g_k(y)>; its gradient in the
                    # weights of g is <grad f_k(G) - y, dG>, so f is not differentiated twice
                    G = g.gradient(y, ctx)
                    with torch.no_grad():
                        dfG = f.gradient(G, ctx)
                    surrogate = ((dfG - y) * G).sum(-1).mean(1).sum()
                    penalty = lam * g.convexity_penalty()
                    opt_g.zero_grad(set_to_none=True)
                    (surrogate + penalty).backward()
                    opt_g.step()
                with torch.no_grad():
                    G = g.gradient(y, ctx)
                # (10) in f, to increase: mean f_k(grad g_k(y)) - mean f_k(h(z)); both
                # halves in one call
                fv = f(torch.cat([x, G], dim=1), ctx2).view(K, 2, B)
                loss_f = (fv[:, 0] - fv[:, 1]).mean(1).sum()
                opt_f.zero_grad(set_to_none=True)
                loss_f.backward()
                opt_f.step()
                f.clip_()
            if i < self._warmup:
                return {"g": loss_f.detach(), "f": loss_f.detach(), "h": loss_f.detach()}
            # (10) in h: 1/2 |h(z)|^2 - sum_k a_k f_k(h(z)); d/dh = h - sum_k a_k grad f_k(h)
            xh = h(z, a)
            with torch.no_grad():
                fx, dfx = f.value_and_gradient(xh.detach().unsqueeze(0).expand(K, -1, -1), ctx)
                direction = (xh - (a_kb[..., None] * dfx).sum(0)) / B
                loss_h = 0.5 * (xh * xh).sum(-1).mean() - (a_kb * fx).sum(0).mean()
            opt_h.zero_grad(set_to_none=True)
            xh.backward(direction)
            opt_h.step()
            with torch.no_grad():
                loss_g = (fv[:, 1] - (y * G).sum(-1)).mean(1).sum() + penalty.detach()
            return {"g": loss_g, "f": loss_f.detach(), "h": loss_h}

        self.n_iter_ = self._run(step, n_iter=n_iter, deadline=self._deadline(), phase="train")
        self._end_fit()

    def _make_optimizer(self, params: Any, lr: float) -> torch.optim.Optimizer:
        """The shared optimiser, with Adam's betas defaulting to (0.5, 0.9).

        Less momentum damps the rotation of the adversarial f/g/h updates (measured: BW2-UVP
        0.07 % against 0.31 % with torch's (0.9, 0.999) after 120 iterations, 2-D test fit).
        """
        if self.optimizer in (torch.optim.Adam, torch.optim.AdamW):
            return super()._make_optimizer(params, lr, betas=(0.5, 0.9))
        return super()._make_optimizer(params, lr)

    def _divergence_hint(self, loss_name: str) -> str:
        network = {
            "g": "the potentials g_k (maps from the inputs to the barycenter)",
            "f": "the potentials f_k (maps from the barycenter to the inputs)",
            "h": "the generator h",
        }.get(loss_name, "the networks")
        return (
            f"Training of {network} diverged. Lower the learning rate `lr` (e.g. to "
            f"{float(self.lr) / 2:g}) or raise batch_size; a larger convexity_penalty keeps g "
            "closer to convex."
        )

    # ------------------------------------------------------------------ weights argument
    def _weight_context(self, weights: Any) -> torch.Tensor | None:
        """The conditioning vector for ``weights`` (NWB-II), or None (NWB-I)."""
        if not self.free_weights:
            if weights is not None:
                raise ValueError(
                    "weights= can only be given with free_weights=True (NWB-II); this "
                    "estimator learned the barycenter of the fit weights only."
                )
            return None
        a = self.weights_ if weights is None else check_weights(weights, self.n_marginals_)
        return torch.as_tensor(a, dtype=torch.float32, device=self.device_)

    # ------------------------------------------------------------------ inference
    def sample(self, n: int, random_state: Any = None, weights: Any = None) -> NDArray[np.float64]:
        """Draw ``n`` points from the fitted barycenter.

        Parameters
        ----------
        n : int
            Number of points, a positive integer.
        random_state : int, RandomState or None
            Seed of the draw; None uses the estimator's ``random_state``.
        weights : array-like of shape (K,), optional
            NWB-II only (``free_weights=True``): the weight vector of the barycenter to draw
            from; default the fit weights. Raises ValueError for NWB-I.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self)
        n = check_n_samples(n)
        ctx = self._weight_context(weights)
        if random_state is None:
            random_state = self.random_state
        return self._draw(n, check_random_state(random_state), ctx)

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        return self._draw(n, rng, self._weight_context(None))

    def _draw(
        self, n: int, rng: np.random.RandomState, ctx: torch.Tensor | None
    ) -> NDArray[np.float64]:
        shape = (n, self.n_features_in_)
        if self.latent_distribution == "uniform":
            g = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
            z = (torch.rand(shape, generator=g) * (2 * _SQRT3) - _SQRT3).to(self.device_)
        else:
            z = self._randn(shape, rng)
        Y = self._apply(lambda t: self.generator_(t, ctx), z)
        return Y * self.scale_ + self.shift_

    def _grad_map(
        self, net: BatchedICNN, X: NDArray, k: int, ctx: torch.Tensor | None
    ) -> NDArray[np.float64]:
        Xs = (X - self.shift_) / self.scale_

        def fn(t: torch.Tensor) -> torch.Tensor:
            c = None if ctx is None else ctx.expand(t.shape[0], -1)
            return net.gradient(t.unsqueeze(0), c, index=k)[0]

        return self._apply(fn, Xs, grad=True) * self.scale_ + self.shift_

    def transform(self, X: Any, k: Any = None, weights: Any = None) -> NDArray[np.float64]:
        """Map rows of input ``k`` onto the barycenter: ``grad g_k``.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)
        k : int, array-like of shape (n,), or None
            The input of all rows or of each row (None guesses it, see the base class).
        weights : array-like of shape (K,), optional
            NWB-II only: the barycenter's weight vector (default the fit weights).

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self)
        ctx = self._weight_context(weights)
        X = check_rows(X, self.n_features_in_, type(self).__name__)
        return self._route(lambda Xk, kk: self._grad_map(self.g_, Xk, kk, ctx), X, k)

    def inverse_transform(self, Y: Any, k: Any = None, weights: Any = None) -> NDArray[np.float64]:
        """Map barycenter points to input ``k``: ``grad f_k``.

        Parameters
        ----------
        Y : array-like of shape (n, n_features_out_)
        k : int or array-like of shape (n,)
            The input to map to (required when there is more than one input).
        weights : array-like of shape (K,), optional
            NWB-II only: the barycenter's weight vector (default the fit weights).

        Returns
        -------
        ndarray of shape (n, n_features_in_)
        """
        check_is_fitted(self)
        ctx = self._weight_context(weights)
        Y = check_rows(Y, self.n_features_out_, type(self).__name__, name="Y")
        if k is None:
            if self.n_marginals_ > 1:
                raise ValueError("inverse_transform needs k, the input to map to.")
            k = self.input_labels_[0]
        return self._route(lambda Yk, kk: self._grad_map(self.f_, Yk, kk, ctx), Y, k)

    def _transform(self, X: NDArray, k: int) -> NDArray:
        return self._grad_map(self.g_, X, k, self._weight_context(None))

    def _inverse_transform(self, Y: NDArray, k: int) -> NDArray:
        return self._grad_map(self.f_, Y, k, self._weight_context(None))
