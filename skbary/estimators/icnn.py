"""ICNNBarycenter: the scikit-learn shell of NWB-I and NWB-II (Fan, Taghvaei, Chen, 2021).

The algorithm (roles, initialisation, the steps of Algorithm 1/2) is in
:mod:`skbary.methods.icnn`.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..base import InverseTransformMixin, NeuralBarycenter
from ..methods import icnn as nwb
from ..training import MarginalBatches
from ..training.optim import updating
from ..validation import check_n_samples, check_weights

__all__ = ["ICNNBarycenter"]

#: Training rows kept per input after fit, at most ``_KEPT_BYTES`` in all (fewer for wide or
#: many inputs): their image under the maps grad g_k is the barycenter ``add_input`` maps a
#: new input onto (the generator's draws are less accurate: on location-scatter K = 4,
#: D = 8 the added map was 2-4x the fitted maps' L2-UVP against them, 1x against these).
_KEPT_ROWS, _KEPT_BYTES = 20_000, 32 << 20
#: Training rows per input (a seeded subsample beyond) whose quantiles knot the potentials'
#: quantile terms: 50,000 rows per input took 4.6 s at D = 8 (f's knots read every input
#: along every potential's directions), a few % of a 240 s budget.
_QUANTILE_ROWS = 20_000


class ICNNBarycenter(InverseTransformMixin, NeuralBarycenter):
    """Wasserstein-2 barycenter with input-convex potentials: NWB-I and NWB-II.

    Fan, Taghvaei and Chen, "Scalable computations of Wasserstein barycenter via input
    convex neural networks", ICML 2021. A generator h represents the barycenter; for every
    input k, ``grad g_k`` maps input k onto the barycenter (:meth:`transform`) and
    ``grad f_k`` maps the barycenter back to input k (:meth:`inverse_transform`). The
    three nested loops of their Algorithm 1 train g (``n_g_steps`` per f step, with the
    convexity penalty R), f (``n_f_steps`` per generator step, clipped to stay convex) and
    h (:mod:`skbary.methods.icnn`).

    With ``free_weights=True`` (NWB-II, their Algorithm 2) all networks take the weight
    vector as an extra input and are trained on weight vectors drawn from
    ``weight_distribution``; afterwards ``sample(n, weights=a)``, ``transform(X, k,
    weights=a)`` and ``inverse_transform(Y, k, weights=a)`` serve any a without refitting.

    Parameters
    ----------
    free_weights : bool, default=False
        False: NWB-I, the barycenter of the fit weights. True: NWB-II, the barycenters of
        all weight vectors in one fit.
    {{weights}}
        With ``free_weights=True`` they are the default weights of ``sample``/``transform``.
    {{unlabelled_rows}}
    {{dtype}}
    f : None, nn.Module subclass, instance or factory, default=None
        The K potentials f_k (``grad f_k``: barycenter -> input k). None:
        :class:`~skbary.nn.icnn.BatchedICNN` (fully input-convex, or partially with
        ``free_weights``) with the ``f__*`` settings ``hidden_layer_sizes`` (default
        (32, 32)), ``activation`` ("celu"), ``quadratic`` (True: a convex quadratic term
        ``1/2 |x Q|^2``, so linear maps are represented exactly; Q is a full d x d matrix
        per input up to 512 features and diagonal above), ``quantile_features`` ("auto";
        False, True or "axes", "ica", "axes+ica": a
        :class:`~skbary.nn.icnn.ConvexQuantileTerm`, separable convex functions along the
        data axes and/or each input's independent components whose derivatives are
        monotone piecewise-linear with knots at the data's quantiles, set from the
        training rows: g's at input k's quantiles, f's at those of the inputs' barycenter
        along the same directions; "auto" is "axes+ica" under NWB-I with at most 32
        features and False otherwise, NOT's rule), ``quantile_knots`` (33),
        ``quantile_scale`` (0.1), ``context_activation``, ``positivity``. On product
        measures (D = 8, 4,000 iterations) the term lowered the maps' weighted L2-UVP by
        39-52 % (1.095 -> 0.523 %, 1.359 -> 0.833 %); on Gaussian inputs it costs
        accuracy, most at D = 2 (location-scatter, 2,000 iterations: 0.047 -> 0.128 %;
        ``benchmarks/results/nongaussian.md``), where ``f__quantile_features=False,
        g__quantile_features=False`` gives the former potentials. A user module must be
        input-convex and hold all K potentials:
        a ``BatchedICNN`` subclass, or a module with

        * ``input_convex = True`` (class attribute);
        * ``__init__`` taking ``n_models``, ``in_features``, ``context_features`` (each
          passed if accepted) and the ``f__*`` settings;
        * ``forward(x, context=None)``: x (K, B, d) -> (K, B);
        * ``gradient(x, context=None, index=None)``: the x-gradients (K, B, d),
          differentiable in the parameters; ``index=k`` evaluates potential k alone on x of
          shape (1, B, d);

        and optionally ``value_and_gradient(x, context)``, ``clip_()`` (called after every f
        step), ``convexity_penalty()`` (R / lambda; 0 without) and ``set_linear_(shift)``
        (start at ``grad psi_k(x) = x + shift[k]``). ``context`` is the weight vector
        (B, K) under NWB-II, None under NWB-I. A network that is not input-convex is
        rejected.
    g : None, nn.Module subclass, instance or factory, default=None
        The K potentials g_k (``grad g_k``: input k -> barycenter); as ``f``, with the
        ``g__*`` settings.
    generator : None, nn.Module subclass, instance or factory, default=None
        h. None: a PReLU MLP (``generator__hidden_layer_sizes``, default (64, 64)) plus a
        linear skip starting at the identity (full d x d up to 512 features, diagonal
        above; ``generator__skip``). A user module maps latent rows (B, d) to barycenter
        points (B, d); under NWB-II it gets the rows ``[z, a]`` (B, d + K), the latent
        point followed by the weight vector.
    {{bounds}}
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
    lr : float, default=3e-3
        Adam learning rate of f, g and h (the paper's is 1e-3; 3e-3 serves the NWB-II
        corners better, docs/icnn.md).
    lr_decay : float, default=0.1
        Factor by which the learning rates have fallen at the end of training (1.0 keeps
        them constant); the paper drops them by 90 % every 20 epochs.
    lr_schedule : {"linear", "geometric"}, default="geometric"
        The curve to ``lr_decay``: ``lr * lr_decay ** p``, p the larger of the fractions of
        ``max_iter`` and of ``max_time`` used (geometric), or linear in p.
    n_g_steps : int, default=3
        K1, updates of g per update of f (the paper's 6).
    n_f_steps : int, default=2
        K2, updates of f per update of h (the paper's 4).
    convexity_penalty : float, default=0.1
        lambda of the penalty ``R(g) = lambda sum_l |max(-W_l, 0)|_F^2`` on the negative
        z-weights of g (the paper's 0.1). f is kept convex by clipping instead.
    ema_decay : float in [0, 1), default=0.99
        The potentials g that ``transform`` (and ``sample(source="maps")``, ``add_input``'s
        target) uses and the generator h that ``sample`` draws from end as exponential
        averages of their weights over the outer iterations (with the warm-up
        ``min(decay, (1 + t) / (10 + t))``); training uses the iterates, so f does not
        depend on it. 0 keeps the last iterates. The iterates carry the noise of the
        adversarial steps: location-scatter at D = 2 (2,000 iterations), weighted L2-UVP
        0.047 % and 0.027 % (seeds 0, 1) for the last iterate of g, 0.012 % and 0.010 %
        averaged; along one 16,000-iteration fit (bench_icnn's nwb1 task, D = 2) the BW2-UVP
        of h's draws every 1,000 iterations was 0.07-0.84 % for the iterate and 0.008-0.048 %
        for the average (D = 8, 14,000 iterations: 0.16-0.46 % and 0.018-0.034 %)
        (docs/icnn.md).
    standardize : bool or "auto", default="auto"
        Translate the inputs by the barycenter's mean and divide them by one scale before
        training (``center_``, ``scale_``); W2 barycenters commute with that map, so results
        are returned in the original units. "auto" standardises.
    n_threads : int or None, default=1
        torch intra-op threads during a CPU fit (restored afterwards); None keeps torch's
        setting. The networks are small, so one thread loses little, and on a busy machine
        it wins by far: on the shared 2-core test machine, 56 against 8 outer iterations in
        15 s (10 segments example). Ignored on CUDA.
    max_iter : int or None, default=None
        Outer iterations (generator updates), K3. None: 10000 when ``max_time`` is None;
        with ``max_time``, as many as the time allows. An integer is honoured either way.
    max_time : float or None, default=None
        Wall-clock budget in seconds for the whole fit.
        A fit stopped by ``max_time`` runs as many iterations as the machine manages, so it
        is not repeatable, even with ``random_state``; one bounded by the iteration counts
        is, bit for bit, on the CPU.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Optimiser of every network, with ``optimizer__*`` keyword arguments; Adam and AdamW
        default to betas (0.5, 0.9) here (less momentum damps the rotation of the
        adversarial updates: 0.07 % against 0.31 % BW2-UVP with (0.9, 0.999), 2-D test fit).
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds network initialisation and every training draw; with ``max_time=None`` a CPU
        fit is repeatable (with ``max_time`` the learning-rate schedule follows the clock).
    verbose : int, default=0
        >0 shows a progress bar with the losses.
    {{training_loop_parameters}}
    **kwargs
        Network settings ``f__*``, ``g__*``, ``generator__*`` (see the roles above) and
        ``optimizer__*``.

    Attributes
    ----------
    generator_ : torch.nn.Module
        h, on standardised coordinates.
    f_, g_ : torch.nn.Module
        The K potentials f_k and g_k (partially input-convex when ``free_weights``).
    center_ : ndarray of shape (d,)
    scale_ : float
        The standardisation ``x -> (x - center_) / scale_`` (0 and 1 when off).
    bounds_ : tuple of two ndarray of shape (d,), or None
        The box of ``bounds`` in the data's units (None without one).
    n_iter_ : int
        Outer iterations run.
    history_ : skorch History
        Per outer iteration: ``g`` (the g objective), ``f`` (minus the f objective), ``h``
        (the generator objective). ``train_loss`` copies ``g`` and ``train_loss_best`` marks
        its lowest value so far (the default monitors of ``LRScheduler`` and
        :class:`skbary.callbacks.EarlyStopping`); ``epoch``, ``phase``, ``iteration`` and
        ``time`` (seconds into the fit) number and date each row. ``len(history_) ==
        n_iter_`` after any stop.
    stop_reason_ : dict
        ``{"train": "max_iter" | "max_time" | "callback" | "interrupted"}``.
    fit_time_ : float
        Seconds spent in fit.
    n_features_in_, n_marginals_, weights_, input_labels_ :
        See :class:`~skbary.base.BaseBarycenter`.

    Notes
    -----
    Up to 20,000 training rows per input (32 MB at most in all) are kept after fit: their
    image under the maps, ``sum_k a_k grad g_k # P_k``, is the barycenter that
    :meth:`add_input` learns a new input's map onto (more accurate than the generator's
    draws, ``benchmarks/results/unseen_input.md``).

    Examples
    --------
    >>> from skbary import ICNNBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 1000, random_state=0)
    >>> est = ICNNBarycenter(max_iter=20, random_state=0).fit(bench.marginals)
    >>> est.sample(4).shape
    (4, 2)
    """

    _roles = nwb.ROLES
    _ITERATION_CAPS = {"max_iter": 10000}
    _parameter_constraints = {
        **NeuralBarycenter._parameter_constraints,
        "free_weights": ["boolean"],
        "f": [None, callable, nn.Module],
        "g": [None, callable, nn.Module],
        "generator": [None, callable, nn.Module],
        "bounds": [None, StrOptions({"auto", "data"}), tuple, list],
        "latent_distribution": [StrOptions({"gaussian", "uniform"})],
        "weight_distribution": [StrOptions({"uniform", "dirichlet"})],
        "weight_concentration": [Interval(numbers.Real, 0, None, closed="neither"), "array-like"],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_g_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_f_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "convexity_penalty": [Interval(numbers.Real, 0, None, closed="left")],
        "ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        free_weights: bool = False,
        weights: Any = None,
        unlabelled_rows: str = "error",
        dtype: type | None = np.float64,
        f: Any = None,
        g: Any = None,
        generator: Any = None,
        bounds: Any = "auto",
        latent_distribution: str = "gaussian",
        weight_distribution: str = "uniform",
        weight_concentration: Any = 1.0,
        batch_size: int = 256,
        lr: float = 3e-3,
        lr_decay: float = 0.1,
        lr_schedule: str = "geometric",
        n_g_steps: int = 3,
        n_f_steps: int = 2,
        convexity_penalty: float = 0.1,
        ema_decay: float = 0.99,
        standardize: bool | str = "auto",
        n_threads: int | None = 1,
        max_iter: int | None = None,
        max_time: float | None = None,
        optimizer: type = torch.optim.Adam,
        device: str = "auto",
        random_state: Any = None,
        verbose: int = 0,
        callbacks: Any = None,
        warm_start: bool = False,
        validation_fraction: float | None = None,
        validation_interval: int | None = None,
        early_stopping: bool | str = "auto",
        n_iter_no_change: int = 10,
        **kwargs: Any,
    ) -> None:
        self.free_weights = free_weights
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.dtype = dtype
        self.f = f
        self.g = g
        self.generator = generator
        self.bounds = bounds
        self.latent_distribution = latent_distribution
        self.weight_distribution = weight_distribution
        self.weight_concentration = weight_concentration
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.lr_schedule = lr_schedule
        self.n_g_steps = n_g_steps
        self.n_f_steps = n_f_steps
        self.convexity_penalty = convexity_penalty
        self.ema_decay = ema_decay
        self.standardize = standardize
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.max_time = max_time
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self._set_prefixed(kwargs)

    # ------------------------------------------------------------------ fit
    def _concentration(self, K: int) -> NDArray[np.float64]:
        """Dirichlet parameters of the NWB-II training weights (ones: uniform)."""
        if self.weight_distribution == "uniform":
            return np.ones(K)
        alpha = np.asarray(self.weight_concentration, dtype=np.float64)
        alpha = np.broadcast_to(alpha, (K,)) if alpha.ndim == 0 else alpha
        if alpha.shape != (K,) or not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
            raise ValueError(
                f"weight_concentration must be a positive number or {K} positive numbers "
                f"(one per input), got {self.weight_concentration!r}."
            )
        return alpha

    def _potentials(self, role: str, K: int, d: int, c: int) -> nn.Module:
        return self._network(
            role,
            in_features=d,
            out_features=1,
            n_models=K,
            default=nwb.default_potentials(
                K, d, c, quantile_auto=nwb.quantile_auto(d, c), role=role
            ),
            sizes={"context_features": c},
            check=functools.partial(nwb.check_potentials, type(self).__name__, role, K, d, c),
        )

    def _build_networks(self, n_marginals: int, n_features: int) -> None:
        K, d = n_marginals, n_features
        c = K if self.free_weights else 0
        self.f_ = self._potentials("f", K, d, c)
        self.g_ = self._potentials("g", K, d, c)
        self.generator_ = self._boxed(
            self._network(
                "generator",
                in_features=d + c,
                out_features=d,
                default=functools.partial(nwb.Generator, d, c),
            )
        )
        # the maps start as the translations between the barycenter's mean and the inputs'
        means = (self._input_means - self.center_) / self.scale_
        nwb.start_as_translations(self.f_, self.g_, torch.as_tensor(means, dtype=torch.float32))

    def _train(self, data: MarginalBatches, weights: NDArray) -> None:
        K = data.n_marginals
        nwb.set_potential_quantiles(
            self.f_, self.g_, lambda: self._training_rows(data, _QUANTILE_ROWS), weights
        )
        opt_g, opt_f, opt_h = (
            self._make_optimizer(net.parameters(), self.lr)
            for net in (self.g_, self.f_, self.generator_)
        )
        pool = None
        if self.free_weights:
            draws = check_random_state(self._seed).dirichlet(
                self._concentration(K), size=nwb.WEIGHT_POOL
            )
            pool = torch.as_tensor(draws, dtype=torch.float32, device=self.device_)
        step = nwb.NWBIteration(
            self.f_,
            self.g_,
            self.generator_,
            opt_f,
            opt_g,
            opt_h,
            data,
            weights=torch.as_tensor(weights, dtype=torch.float32, device=self.device_),
            weight_pool=pool,
            batch_size=self.batch_size,
            n_g_steps=self.n_g_steps,
            n_f_steps=self.n_f_steps,
            convexity_penalty=self.convexity_penalty,
            latent=self.latent_distribution,
            generator=self._generator,
        )
        # transform's maps are grad g and sample's draws h(z): both keep an average of their
        # outer iterations' weights (training reads the iterates)
        averaged = [*self.g_.parameters(), *self.generator_.parameters()]
        with self._averaged_networks(averaged, self.ema_decay, "train", warmup=True) as average:
            self.n_iter_ = self._run(
                updating(step, average),
                n_iter=self._n_iter("max_iter"),
                deadline=self._deadline(),
                phase="train",
                decay=[opt_g, opt_f, opt_h],
                train_loss="g",
            )
        # rows whose image under the maps is the barycenter add_input learns a new map onto
        per_input = _KEPT_BYTES // (4 * data.n_features * K)
        self._keep_training_rows(data, max_rows=max(1, min(_KEPT_ROWS, per_input)))

    def _make_optimizer(self, params: Any, lr: float, **defaults: Any) -> torch.optim.Optimizer:
        """The shared optimiser, with Adam's (and AdamW's) betas defaulting to (0.5, 0.9)."""
        if self.optimizer in (torch.optim.Adam, torch.optim.AdamW):
            defaults = {"betas": (0.5, 0.9), **defaults}
        return super()._make_optimizer(params, lr, **defaults)

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
    def sample(
        self,
        n: int,
        random_state: Any = None,
        weights: Any = None,
        source: str = "generator",
    ) -> NDArray[np.float64]:
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
        source : {"generator", "maps"}, default="generator"
            "generator": the generator h of the paper, continuous draws. "maps": the maps'
            image of the kept training rows, ``sum_k a_k grad g_k # P_k`` (input k with
            probability a_k, a uniform kept row of it, mapped by ``grad g_k``), the
            barycenter ``add_input`` maps a new input onto. It comes from at most 20,000
            rows per input, so ``n`` above their number repeats points (with a
            :class:`~skbary.exceptions.DiscreteSampleWarning`), but it was the more
            accurate of the two on non-Gaussian inputs: marginal W2 of ``sample(100000)``
            0.30 % and 0.34 % against the generator's 0.49 % and 0.51 % (product measures,
            D = 8, families a and b, seed 0, ``max_time=240``;
            ``benchmarks/results/nongaussian.md``).

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self)
        n = check_n_samples(n)
        if source not in ("generator", "maps"):
            raise ValueError(f"source must be 'generator' or 'maps', got {source!r}.")
        ctx = self._weight_context(weights)
        if random_state is None:
            random_state = self.random_state
        rng = check_random_state(random_state)
        if source == "generator":
            return self._draw_chunked(n, rng, lambda m, r: self._draw(m, r, ctx))
        self._warn_if_discrete(
            n,
            support=(
                sum(len(r) for r in self._rows),
                "sample(source='maps') maps ICNN's kept training rows (at most 20,000 per "
                "input); sample(n) draws continuous points from the generator.",
            ),
        )
        mix = None if weights is None else ctx.cpu().numpy().astype(np.float64)

        def push(rows: NDArray, k: int) -> NDArray:
            return self._grad_map(self.g_, rows, k, ctx)

        return self._draw_chunked(
            n, rng, lambda m, r: self._sample_from_rows(m, r, push, proportions=mix)
        )

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
        X = self._check_rows(X)
        ctx = self._weight_context(weights)
        return self._route(lambda Xk, kk: self._map(self.g_, Xk, kk, ctx), X, k, added_inputs=True)

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
        Y = self._check_rows(Y, name="Y")
        ctx = self._weight_context(weights)
        if k is None and self.n_marginals_ > 1:
            raise ValueError("inverse_transform needs k, the input to map to.")
        return self._route(lambda Yk, kk: self._map(self.f_, Yk, kk, ctx), Y, k)

    def _map(self, net: nn.Module, X: NDArray, k: int, ctx: torch.Tensor | None) -> NDArray:
        return self._from_model(self._grad_map(net, self._to_model(X), k, ctx), fresh=True)

    # the hooks, in standardised coordinates
    def _draw(self, n: int, rng: np.random.RandomState, ctx: torch.Tensor | None) -> NDArray:
        g = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
        z = nwb.draw_latent((n, self.n_features_in_), self.latent_distribution, g)
        return self._apply(
            lambda t: self.generator_(nwb.generator_input(t, ctx)), z.to(self.device_)
        )

    def _grad_map(
        self, net: nn.Module, X: NDArray, k: int, ctx: torch.Tensor | None
    ) -> NDArray[np.float64]:
        def fn(t: torch.Tensor) -> torch.Tensor:
            c = None if ctx is None else ctx.expand(t.shape[0], -1)
            return net.gradient(t.unsqueeze(0), c, index=k)[0]

        return self._apply(fn, X, grad=True)

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        return self._draw(n, rng, self._weight_context(None))

    def _added_map_target(self, n: int, rng: np.random.RandomState) -> NDArray:
        """The maps' image of the kept training rows, ``sum_k a_k grad g_k # P_k``."""
        return self._sample_from_rows(n, rng, self._transform)

    def _transform(self, X: NDArray, k: int) -> NDArray:
        return self._grad_map(self.g_, X, k, self._weight_context(None))

    def _inverse_transform(self, Y: NDArray, k: int) -> NDArray:
        return self._grad_map(self.f_, Y, k, self._weight_context(None))
