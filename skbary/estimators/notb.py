"""NOTBarycenter: the scikit-learn shell of the NOT barycenter.

The algorithm (Kolesov, Mokrov et al., ICML 2024: its roles, plans, congruent potentials,
weak costs and the iteration of Algorithm 1) is in :mod:`skbary.methods.notb`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..base import NeuralBarycenter
from ..costs import quadratic_cost, resolve_cost
from ..methods import notb
from ..nn.maps import quantile_features_auto, set_quantiles_
from ..training import MarginalBatches
from ..validation import check_n_samples, check_rows

__all__ = ["NOTBarycenter"]

_POSITIVE = Interval(numbers.Real, 0, None, closed="neither")
_COUNT = Interval(numbers.Integral, 1, None, closed="left")


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
    {{weights}}
    {{unlabelled_rows}}
    {{dtype}}
    cost : "quadratic", callable, or a list of them, default="quadratic"
        Ground cost ``c(x, y)``: ``"quadratic"`` is ``1/2 |x - y|^2``; a callable takes torch
        tensors x (..., n_features_in) and y (..., n_features_out) and returns the cost of
        every pair (...), differentiable in y (:mod:`skbary.costs`). A list (or tuple) gives
        one cost per input, ``c_k`` for input k in the order of the inputs (the paper's
        ``sum_k a_k OT_{c_k}(P_k, Q)``; ``examples/shape_colour.py`` compares the shapes of
        one input and the colours of the other); its length must be the number of inputs
        of ``fit`` (ValueError otherwise). A list of K equal entries is that single cost.
        ``add_input`` needs a single cost (a new input has none of its own).
    n_features_out : int, default=None
        Dimension of the barycenter space; None means that of the inputs. Only a callable
        ``cost`` can link spaces of different dimensions (and then ``standardize`` must
        not be True: the barycenter space has no coordinates of the inputs to share).
    plan : {"deterministic", "stochastic", "gaussian"}, default="deterministic"
        Parametrisation of the plans (paper section 4.2): a map ``T_k(x)``; a map
        ``T_k(x, s)`` of x and standard normal noise s (``map__noise_dim`` columns, default
        ``n_features_out``; the map network takes rows ``[x, s]``); or
        ``N(mu_k(x), diag sigma_k(x)^2)`` (needed for ``regularization="kl"``; the map
        network outputs ``2 * n_features_out`` columns, ``mu`` then the offset of
        ``log sigma`` from ``log(map__init_std)``, clamped to
        ``[map__min_log_std, map__max_log_std]``; defaults 0.1, -10, 5).
    regularization : {None, "kl", "energy"}, default=None
        Weak cost (paper eqs. 7-8): None is the classical cost ``E c(x, y)``; ``"kl"`` adds
        ``reg_strength * KL(pi(.|x) || prior)`` computed in closed form (Gaussian plans);
        ``"energy"`` adds ``reg_strength * E^2(pi(.|x), prior)``, the squared energy
        distance with ``l(y, y') = |y - y'|``, estimated from ``n_noise_samples`` draws per
        row and as many prior draws.
    reg_strength : float, default=1.0
        eps (KL) or gamma (energy); the paper's 2D Twister runs use 1.
    prior : array-like of shape (n, n_features_out), default=None
        Prior mu_0 of the regularised costs, in data units: None is N(0, I) in the
        barycenter space; an array gives samples of it (the energy term draws rows of it;
        the KL term uses the Gaussian with their mean and covariance, a diagonal one above
        512 features).
    n_noise_samples : int, default=4
        Draws of the noise per input row in training (``|S[x]|`` of Algorithm 1) for
        stochastic and Gaussian plans; at least 2 for ``regularization="energy"``.
    map : None, nn.Module subclass or instance, or callable, default=None
        The network of the maps T_k (one per input; :mod:`skbary.nn.roles`). Rows of
        ``n_features_in`` columns (plus ``map__noise_dim`` noise columns for
        ``plan="stochastic"``) to ``n_features_out`` columns (``2 * n_features_out`` for
        ``plan="gaussian"``). None: ``skip_k(x) + MLP_k(x[, s])`` with a learnable affine
        skip at the identity and a small last layer (a fresh map is about the identity);
        settings ``map__hidden_layer_sizes`` ((128, 128)), ``map__activation`` ("relu"),
        ``map__skip`` (True), ``map__init_scale`` (0.1), ``map__quantile_features``
        ("auto"; True or "axes" also feeds the MLP every coordinate's normal score under
        input k's training marginals, :class:`~skbary.nn.maps.MarginalQuantiles`, which lets
        the maps follow optimal maps that are steep where a bounded input piles its mass
        against an edge; "ica" takes the scores along input k's independent components
        (FastICA), which finds such edges when the inputs are seen under a rotation;
        "axes+ica" feeds both; "auto" is "axes+ica" for the quadratic cost with
        deterministic plans, no regularisation and at most 32 input features, False
        otherwise. Product measures D = 8, 2,000 iterations, weighted L2-UVP: 1.08 / 1.45 %
        without, 0.65 / 0.70 % with "axes+ica" (family a, seeds 0, 1), 0.95 / 1.23 % against
        0.56 / 0.76 % (rotated family b, seeds 1, 2; "axes" alone: 0.88 % on seed 1);
        ``max_time=240`` on 50,000 rows: 0.20-0.36 % on six instances of both families;
        ``benchmarks/results/nongaussian.md``; not for Gaussian
        plans). A user's network is used as given (no skip, no identity start).
    potential : None, nn.Module subclass or instance, or callable, default=None
        The network of the functions g_k of the congruent potentials
        ``f_k = g_k - sum_j a_j g_j`` (one per input; rows of ``n_features_out`` columns
        to 1). None: an MLP, settings ``potential__hidden_layer_sizes`` ((128, 128)) and
        ``potential__activation`` ("celu"). ``potential__quadratic`` ("auto", True or
        False) adds a learnable ``1/2 y^T A_k y + b_k^T y`` to every g_k (zero at start);
        "auto" turns it on for the quadratic cost with the default network
        (location-scatter D = 16: L2-UVP 0.064% after 750 iterations against 0.32%
        without; for other costs it slowed the Twister). Above 512 barycenter features
        A_k is diagonal (no d x d matrices).
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
    lr_decay : float, default=1.0
        Factor both learning rates reach at the end of the fit (1.0: constant). Decay to
        0.1 measured no better than none (0.30% both at D = 16).
    lr_schedule : {"linear", "geometric"}, default="linear"
        Curve of the decay (progress: the larger of ``i / max_iter`` and the elapsed share
        of ``max_time``).
    standardize : bool or "auto", default="auto"
        Work in standardised coordinates (the inputs centred on the barycenter's mean and
        divided by one scale, see :class:`~skbary.base.NeuralBarycenter`). "auto": on for
        the quadratic cost without regularisation (the problem is then exactly invariant),
        off otherwise. True with a callable cost or a regularisation solves the same problem
        as off: the cost receives data coordinates and is divided by ``scale_**2``, the
        prior is moved, and ``reg_strength`` becomes ``reg_strength / scale_**2`` (KL) or
        ``/ scale_`` (energy). The losses in ``history_`` are in units of ``scale_**2``.
    n_threads : int or None, default=1
        torch intra-op threads during a CPU fit (restored afterwards); None keeps torch's
        setting. On the shared 2-core machine, busy with other jobs, a D = 16 fit ran 10.6-12.1
        iterations/s with one thread against 0.6-2.1 with two. Ignored on CUDA.
    max_iter : int or None, default=None
        Maximal number of iterations (one potential step and ``n_map_steps`` map steps).
        None: 10000 when ``max_time`` is None; with ``max_time``, as many as the time
        allows. An integer is honoured either way.
    max_time : float, default=None
        Wall-clock budget of the whole fit in seconds (None: no limit).
        A fit stopped by ``max_time`` runs as many iterations as the machine manages, so it
        is not repeatable, even with ``random_state``; one bounded by the iteration counts
        is, bit for bit, on the CPU.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Optimiser of both players; ``optimizer__betas`` etc. are passed to it.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where training runs.
    random_state : int, RandomState or None, default=None
        Seeds network initialisation, minibatches and noise (CPU fits are repeatable); also
        the noise of ``transform`` and ``sample`` when they get no ``random_state``.
    verbose : int, default=0
        >0 shows a progress bar with the losses.
    {{training_loop_parameters}}
    **kwargs
        Network settings ``map__*`` and ``potential__*`` (above), ``optimizer__*``.

    Attributes
    ----------
    maps_ : nn.Module
        The K maps (:class:`~skbary.nn.maps.BatchedMap`,
        :class:`~skbary.nn.maps.BatchedGaussianMap`, or the user's network stacked into a
        :class:`~skbary.nn.stacking.StackedModules`), in standardised coordinates when
        ``standardized_``.
    potentials_ : skbary.methods.notb.Potentials
        The K congruent potentials (``potentials_.g``: the ``potential`` network).
    noise_dim_ : int
        Noise columns of the plans (0 for deterministic plans).
    n_features_out_ : int
        Dimension of the barycenter space.
    center_, scale_, standardized_ :
        The standardisation (see :class:`~skbary.base.NeuralBarycenter`).
    history_ : skorch History
        Per iteration: ``potential`` (V_f), ``map`` (V_T, the dual objective estimate),
        ``transport_cost`` (``sum_k a_k E C^_k``). ``train_loss`` copies ``map`` and
        ``train_loss_best`` marks its lowest value so far (the default monitors of
        ``LRScheduler`` and :class:`skbary.callbacks.EarlyStopping`); ``epoch``, ``phase``,
        ``iteration`` and ``time`` (seconds into the fit) number and date each row.
        ``len(history_) == n_iter_`` after any stop.
    n_iter_ : int
        Iterations run.
    stop_reason_ : dict
        ``{"train": "max_iter" | "max_time" | "callback" | "interrupted"}``.

    Notes
    -----
    ``sample(n)`` draws from the mixture ``sum_k a_k T_k # P^_k``: the input of every draw
    is k with probability a_k, the row is a uniformly drawn *training* row of that input, and
    the draw is its image by T_k (one noise draw for stochastic plans).

    Examples
    --------
    >>> from skbary import NOTBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 1000, random_state=0)
    >>> est = NOTBarycenter(max_iter=50, random_state=0).fit(bench.marginals, bench.weights)
    >>> est.transform(bench.marginals[0][:3], k=0).shape
    (3, 2)
    >>> est.sample(4, smoothing=1.0).shape
    (4, 2)
    """

    _roles = notb.ROLES
    _ITERATION_CAPS = {"max_iter": 10000}
    _parameter_constraints = {
        **NeuralBarycenter._parameter_constraints,
        "cost": [StrOptions({"quadratic"}), callable, list, tuple],
        "n_features_out": [_COUNT, None],
        "plan": [StrOptions({"deterministic", "stochastic", "gaussian"})],
        "regularization": [StrOptions({"kl", "energy"}), None],
        "reg_strength": [_POSITIVE],
        "prior": ["array-like", None],
        "n_noise_samples": [_COUNT],
        "map": [None, callable],
        "potential": [None, callable],
        "n_map_steps": [_COUNT],
        "lr_map": [_POSITIVE],
        "lr_potential": [_POSITIVE],
        "ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        weights: Any = None,
        unlabelled_rows: str = "error",
        dtype: type | None = np.float64,
        cost: Any = "quadratic",
        n_features_out: int | None = None,
        plan: str = "deterministic",
        regularization: str | None = None,
        reg_strength: float = 1.0,
        prior: Any = None,
        n_noise_samples: int = 4,
        map: Any = None,
        potential: Any = None,
        n_map_steps: int = 3,
        batch_size: int = 256,
        lr_map: float = 1e-3,
        lr_potential: float = 1e-3,
        ema_decay: float = 0.99,
        lr_decay: float = 1.0,
        lr_schedule: str = "linear",
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
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.dtype = dtype
        self.cost = cost
        self.n_features_out = n_features_out
        self.plan = plan
        self.regularization = regularization
        self.reg_strength = reg_strength
        self.prior = prior
        self.n_noise_samples = n_noise_samples
        self.map = map
        self.potential = potential
        self.n_map_steps = n_map_steps
        self.batch_size = batch_size
        self.lr_map = lr_map
        self.lr_potential = lr_potential
        self.ema_decay = ema_decay
        self.lr_decay = lr_decay
        self.lr_schedule = lr_schedule
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

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
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
        if self.regularization == "energy" and self.n_noise_samples < 2:
            raise ValueError(
                "regularization='energy' needs n_noise_samples >= 2 (the energy distance of "
                f"a plan is estimated from pairs of its draws); got {self.n_noise_samples}."
            )
        settings = self._nested("map")
        gaussian_only = dict.fromkeys(("init_std", "min_log_std", "max_log_std"), "gaussian")
        only = {"noise_dim": "stochastic", **gaussian_only}
        for name, plan in only.items():
            if name in settings and self.plan != plan:
                raise ValueError(f"map__{name} applies to plan={plan!r} only; plan={self.plan!r}.")
        noise_dim = settings.get("noise_dim")
        if noise_dim is not None and (
            isinstance(noise_dim, bool) or not isinstance(noise_dim, numbers.Integral)
            or noise_dim < 1
        ):  # fmt: skip
            raise ValueError(f"map__noise_dim must be an integer >= 1, got {noise_dim!r}.")
        init_std = settings.get("init_std", 0.1)
        if isinstance(init_std, bool) or not isinstance(init_std, numbers.Real) or init_std <= 0:
            raise ValueError(f"map__init_std must be a positive number, got {init_std!r}.")
        quadratic = self._role_setting("potential", "quadratic", "auto")
        if not (isinstance(quadratic, bool | np.bool_) or quadratic == "auto"):
            raise ValueError(
                f"potential__quadratic must be 'auto', True or False, got {quadratic!r}."
            )

    def _is_quadratic(self) -> bool:
        return resolve_cost(self.cost) is quadratic_cost

    def _standardise_auto(self) -> bool:
        # the quadratic cost commutes with the standardisation; the weak costs compare the
        # plans with a prior given in data units, and a user cost is the user's units
        return self._is_quadratic() and self.regularization is None

    # ------------------------------------------------------------------ networks
    def _build_networks(self, n_marginals: int, n_features: int) -> None:
        K, d_in = n_marginals, n_features
        resolve_cost(self.cost, n_inputs=K)  # a list of costs: one per input, checked first
        d_out = d_in if self.n_features_out is None else int(self.n_features_out)
        if d_out != d_in and self._is_quadratic():
            raise ValueError(
                f"n_features_out={d_out} differs from the inputs' {d_in} columns, which the "
                "quadratic cost cannot compare; pass a callable cost(x, y)."
            )
        if d_out != d_in and self.standardized_:
            raise ValueError(
                f"standardize=True cannot be used with n_features_out={d_out} != the inputs' "
                f"{d_in} columns (the barycenter space has no input coordinates); leave "
                "standardize='auto' or set it to False."
            )
        if self.prior is not None:
            prior = check_rows(self.prior, d_out, type(self).__name__, name="prior")
            if prior.shape[0] < 2:
                raise ValueError("prior must hold at least 2 samples (rows).")
        self._n_features_out = d_out
        setting = self._role_setting
        self._plans = notb.Plans(
            self.plan,
            d_out,
            noise_dim={"deterministic": 0, "gaussian": d_out}.get(
                self.plan, int(setting("map", "noise_dim", None) or d_out)
            ),
            init_std=float(setting("map", "init_std", 0.1)),
            min_log_std=float(setting("map", "min_log_std", -10.0)),
            max_log_std=float(setting("map", "max_log_std", 5.0)),
        )
        self.noise_dim_ = self._plans.noise_dim
        self.maps_ = self._network(
            "map",
            in_features=self._plans.in_features(d_in),
            out_features=self._plans.out_features(),
            default=notb.default_map(
                K,
                d_in,
                self._plans,
                quantile_auto=quantile_features_auto(
                    self._is_quadratic()
                    and self.regularization is None
                    and self.plan == "deterministic",
                    d_in,
                ),
            ),
        )
        g = self._network(
            "potential", in_features=d_out, out_features=1, default=notb.default_potential(K, d_out)
        )
        default = self._is_quadratic() and self._uses_default("potential")
        quadratic = self._quadratic_part("potential", auto=default)
        self.potentials_ = notb.Potentials(self.weights_, g, d_out, quadratic)

    # ------------------------------------------------------------------ training
    def _model_cost(self) -> Any:
        """The cost in the networks' coordinates (the base's conversion); a list of costs is
        stacked along the input axis (:class:`~skbary.costs.PerInputCost`), the layout of the
        iteration's plan draws, before the change of coordinates."""
        return self._in_model_coordinates(resolve_cost(self.cost, n_inputs=self.n_marginals_))

    def _model_prior(self) -> tuple[notb.Prior | None, float]:
        """The prior in the networks' coordinates, and reg_strength converted to them."""
        if self.regularization is None:
            return None, float(self.reg_strength)
        D, s = self._n_features_out, float(self.scale_)
        c = self.center_ if self.standardized_ else np.zeros(D)
        if self.prior is None:
            prior = notb.Prior(D, loc=-c / s, std=1.0 / s)
        else:
            rows = check_rows(self.prior, D, type(self).__name__, name="prior")
            prior = notb.Prior(D, rows=(rows - c) / s if self.standardized_ else rows)
        power = 2 if self.regularization == "kl" else 1
        return prior.to(self.device_), float(self.reg_strength) / s**power

    def _train(self, data: MarginalBatches, weights: NDArray) -> None:
        a = torch.as_tensor(weights, dtype=torch.float32, device=self.device_)
        # the rows that sample() maps (set before training, so that callbacks can sample
        # mid-fit with the current, not yet averaged, maps)
        self._keep_training_rows(data)
        set_quantiles_(self.maps_, self._rows)
        S = 1 if self.plan == "deterministic" else int(self.n_noise_samples)
        prior, reg = self._model_prior()
        opt_map = self._make_optimizer(self.maps_.parameters(), self.lr_map)
        opt_pot = self._make_optimizer(self.potentials_.parameters(), self.lr_potential)
        push = notb.transport_push(
            self._plans, self.maps_, self._model_cost(), S, self._generator,
            regularization=self.regularization, prior=prior, reg_strength=reg,
        )  # fmt: skip
        with self._averaged_networks(self.maps_.parameters(), self.ema_decay, "train") as average:
            step = notb.iteration(
                draw=data.draw,
                push=push,
                potentials=self.potentials_,
                weights=a,
                batch_size=self.batch_size,
                n_map_steps=self.n_map_steps,
                map_optimizer=opt_map,
                potential_optimizer=opt_pot,
                average=average,
                generator=self._generator,
            )
            self.n_iter_ = self._run(
                step,
                n_iter=self._n_iter("max_iter"),
                deadline=self._deadline(),
                phase="train",
                decay=[opt_map, opt_pot],
                train_loss="map",
            )

    def _learn_input_map(
        self, X: NDArray, w: NDArray | None, max_iter: int | None, max_time: float | None
    ) -> Any:
        if isinstance(self.cost, list | tuple):
            raise ValueError(
                "add_input maps a new input with the estimator's cost, but NOTBarycenter was "
                f"fitted with one cost per input (cost={self.cost!r}): a new input has no cost "
                "of its own. Fit a model with the new input among the inputs instead."
            )
        return super()._learn_input_map(X, w, max_iter, max_time)

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

    # ------------------------------------------------------------------ inference
    @property
    def n_features_out_(self) -> int:
        """Dimension of the barycenter space."""
        return int(self._n_features_out)

    def _map_rows(self, X: NDArray | torch.Tensor, k: int, rng: np.random.RandomState) -> NDArray:
        """T_k on rows (standardised coordinates), one noise draw per row."""
        plans, maps, nd = self._plans, self.maps_, self.noise_dim_
        if nd == 0:
            return self._apply(lambda t: plans.apply_one(maps, t, k), X)
        Xt = X if isinstance(X, torch.Tensor) else self._tensor(X)
        noise = self._randn((Xt.shape[0], nd), rng)
        d = Xt.shape[1]
        both = torch.cat([Xt, noise], dim=1)
        return self._apply(lambda t: plans.apply_one(maps, t[:, :d], k, t[:, d:]), both)

    def _transform_rng(self, k: int) -> np.random.RandomState:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            return np.random.RandomState([int(rs) % (2**32), int(k)])
        return check_random_state(rs)

    @property
    def _rowwise_inference(self) -> bool:
        # stochastic plans draw the noise of all rows from one stream per call
        return self.noise_dim_ == 0

    def _transform(self, X: NDArray, k: int) -> NDArray:
        return self._map_rows(X, k, self._transform_rng(k))

    def sample(
        self, n: int, random_state: Any = None, smoothing: float = 0.0
    ) -> NDArray[np.float64]:
        """Draw ``n`` points from the fitted barycenter, ``sum_k a_k T_k # P_k``.

        NOT learns maps, not a generator: a draw is a training row of input k (k with
        probability a_k) pushed by T_k. With a deterministic plan and ``smoothing=0`` the
        draws therefore come from the finitely many kept training rows (at most 100,000 per
        input): ``n`` above their number repeats points, with a
        :class:`~skbary.exceptions.DiscreteSampleWarning`.

        Parameters
        ----------
        n : int
            Number of points, a positive integer.
        random_state : int, RandomState or None
            Seed of the draw; None uses the estimator's ``random_state``.
        smoothing : float >= 0, default=0.0
            0 pushes the empirical inputs (the exact push-forward of the training rows).
            A positive value pushes their Gaussian kernel density estimates instead: each
            row is jittered by ``smoothing`` times Scott's bandwidth (each coordinate's
            standard deviation times n_k^(-1/(d+4))) before T_k, which gives continuous
            draws from a barycenter widened by about that bandwidth. 1.0 is Scott's rule.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self)
        n = check_n_samples(n)
        if (
            isinstance(smoothing, bool)
            or not isinstance(smoothing, numbers.Real)
            or not np.isfinite(smoothing)
            or smoothing < 0
        ):
            raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing!r}.")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        if smoothing == 0:
            self._warn_if_discrete(n)
        return self._draw_chunked(
            n, rng, lambda m, r: self._sample_from_rows(m, r, self._push_rows(r), float(smoothing))
        )

    def _push_rows(self, rng: np.random.RandomState) -> Callable[[NDArray, int], NDArray]:
        return lambda rows, k: self._map_rows(rows, k, rng)

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        return self._sample_from_rows(n, rng, self._push_rows(rng))

    def _discrete_support(self) -> tuple[int, str] | None:
        if self.noise_dim_ > 0:
            return None
        n_rows = sum(len(r) for r in self._rows)
        return n_rows, (
            "NOT pushes its kept training rows through deterministic maps; pass "
            "sample(n, smoothing=1.0) for continuous draws (the pushed kernel density "
            "estimate of the inputs)."
        )

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
        plans, maps = self._plans, self.maps_

        def project(Xm: NDArray, kk: int, n_draws: int, rng: np.random.RandomState) -> NDArray:
            Xt = self._tensor(Xm)
            if self.plan != "stochastic":
                return self._apply(lambda t: plans.apply_one(maps, t, kk), Xt)
            total = np.zeros((Xm.shape[0], self.n_features_out_))
            for _ in range(n_draws):
                total += self._map_rows(Xt, kk, rng)
            return total / n_draws

        return self._projection(X, k, n_draws, random_state, project)
