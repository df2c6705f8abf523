"""EnergyBarycenter: the scikit-learn estimator of EgBary (:mod:`skbary.methods.energy`)."""

from __future__ import annotations

import copy
import functools
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..base import ROUTING_FULL_COVARIANCE_MAX_FEATURES, NeuralBarycenter
from ..exceptions import warn_caller
from ..methods import energy as egbary
from ..sampling import GaussianProposal
from ..training import MarginalBatches
from ..training.optim import freeze_, updating
from ..validation import check_rows

__all__ = ["EnergyBarycenter"]

#: epsilon / scale_**2 above this: the plans are independent couplings in float32.
_MAX_EPSILON_RATIO = 1e10
#: epsilon / scale_**2 below this: the standardised epsilon underflows float32 (1e-38) in
#: the networks' arithmetic (a ratio of 1e-34 still trains to the same barycenter).
_MIN_EPSILON_RATIO = 1e-30
_MAX_STORED_ROWS = 100_000
#: epsilon="auto": the paper's 0.01, but at most this share of the inputs' squared scale
#: (``scale_**2``) when the networks work in standard coordinates.
_AUTO_EPSILON, _AUTO_EPSILON_RATIO = 0.01, 0.01
#: Fits of the quadratic cost in the inputs' space with this many features or more warn: at
#: 64 pixels (Ave-digits) and 256 (flat MNIST 0/1) the samples were farther from the
#: barycenter than GaussianBarycenter's (benchmarks/results/ave_digits.md, mnist.md).
_MANY_FEATURES = 64
#: ``langevin_step_size="auto"``: the old fixed step (other costs: the Twister's energy has
#: curvature up to ~6; generators' latent spaces) and the largest step of the quadratic cost.
_STEP_SIZE, _MAX_QUADRATIC_STEP_SIZE = 0.2, 0.4


class _FittedGenerator(nn.Module):
    """The data-space generator of a fitted skbary generative model: ``G(z) * scale + center``.

    Wraps e.g. ``GenerativeBarycenter().fit([X])`` (``generator_`` a module on standardised
    data, ``scale_``/``center_`` the standardisation), so its samples live where the inputs do.
    """

    def __init__(self, estimator: Any) -> None:
        super().__init__()
        self.module = copy.deepcopy(estimator.generator_).cpu()
        self.latent_dim = int(estimator.latent_dim_)
        center = np.asarray(getattr(estimator, "center_", 0.0), dtype=np.float32)
        self.register_buffer("center", torch.as_tensor(center))
        self.scale = float(getattr(estimator, "scale_", 1.0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.module(z) * self.scale + self.center


def _frozen(generator: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """A frozen copy of the manifold generator (not trained): module, callable or fitted model."""
    if not callable(generator):  # a fitted skbary generative model
        generator = _FittedGenerator(generator)
    if isinstance(generator, nn.Module):
        generator = freeze_(copy.deepcopy(generator).eval())
    return generator


class EnergyBarycenter(NeuralBarycenter):
    """Entropic OT barycenter for a general cost, with energy-guided plans (EgBary).

    Minimises ``sum_k a_k EOT_{c, eps}(P_k, Q)`` over the barycenter Q, where
    ``EOT_{c, eps}(P, Q) = min_pi E_pi c(x, y) - eps E_{x~P} H(pi(.|x))``, through its dual: K
    congruent potentials ``f_k = g_k - sum_j a_j g_j`` trained by the gradient of Theorem 4.3
    (Kolesov, Mokrov et al., NeurIPS 2024; :mod:`skbary.methods.energy`). The plan from x in
    input k is ``mu_x^{f_k}(y) ∝ exp((f_k(y) - c(x, y)) / eps)``; :meth:`transform` draws
    from it, :meth:`barycentric_projection` averages draws, :meth:`sample` maps rows of the
    inputs.

    With ``generator=G`` (a frozen torch module, latent (N, latent_dim) -> data (N, d)) the
    cost is ``c(x, G(z))``: the barycenter is a distribution of latent codes z, so it lives
    on the manifold G spans (their sections 5.2-5.3). Decode with :meth:`decode`.

    Standardisation: with the quadratic cost and no generator (``standardize="auto"``) the
    networks work in standard coordinates ``x' = (x - center_) / scale_``. The problem is
    exactly invariant when epsilon is rescaled with the cost: ``c(x', y') = c(x, y) /
    scale_**2``, so eps acts as ``epsilon / scale_**2`` inside, and since the Langevin step is
    measured in units of the energy ``f - c`` (whose curvature the change of units leaves
    alone), the chains are the same chains. Everything public (``epsilon``, draws, the
    ``history_`` losses) is in the data's units. A user cost is not standardised unless
    ``standardize=True``; it then still receives points in the data's units (evaluated at the
    unstandardised points and divided by ``scale_**2``), so the problem does not change.

    Many inputs: a Langevin step needs every f_k at the chains of input k, exactly all K
    networks at all K*B chains (K^2 B evaluations). Up to 4 inputs that exact drift is
    used; above, f_k at each chain is replaced by an unbiased estimate from g_k and one
    other random network (stochastic-gradient Langevin,
    :meth:`~skbary.methods.energy.Congruent.at_chains`), so an iteration costs O(K B)
    (docs/scaling.md).

    Image-sized inputs: with the quadratic cost in the inputs' space and 64 features or more,
    fit warns (UserWarning). On flat 16 x 16 MNIST 0/1 (256 features, 300 s) the samples lost
    to GaussianBarycenter's on the energy distance with 64- and 256-wide potentials, and on
    Ave-digits (64 pixels) on BW2-UVP (``benchmarks/results/mnist.md``, ``ave_digits.md``).

    Parameters
    ----------
    epsilon : float or "auto", default="auto"
        Entropic regularisation eps, in the data's squared units. The plans have spread
        ~sqrt(eps) along every coordinate; smaller eps is closer to the unregularised
        barycenter (the location-scatter L2-UVP grows with eps, see docs/energy.md) but needs
        more Langevin accuracy. "auto" is 0.01, the paper's value for the 2D and Gaussian
        experiments, or ``0.01 * scale_**2`` where that is smaller (standardised inputs whose
        per-coordinate spread ``scale_`` is below 1), so that the plans' noise is at most a
        tenth of the inputs' spread; the value used is ``epsilon_``. On flat 16 x 16 MNIST
        pixels (``scale_`` 0.17) 0.01 put noise of 0.1 on every pixel: the samples scored
        Frechet 8.7 and energy distance 0.074, 22 % of their pixels outside [0, 1]; a sample
        of the exact barycenter with that noise added scores 1.9 and 0.046
        (``benchmarks/results/mnist.md``).
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
        networks on the K*B chains, so this sets the price of an iteration. With 30 steps
        (the "map" start, see ``langevin_init``, the step 0.4 and the averaged potentials)
        location-scatter D=2 reached a weighted L2-UVP of 0.038-0.044 % at eps=0.01 in
        120-s fits on one thread (seeds 0-1), and the Twister (start at x, step 0.2, last
        iterate) BW2-UVPs of 1.0-2.6 % in 600 s (docs/energy.md).
    langevin_step_size : float or "auto", default="auto"
        ULA step in units of the energy ``f_k - c``: ``y <- y + (s/2) grad_y (f_k(y) - c(x,
        y)) + sqrt(s * eps) xi`` (the README's ``eta`` is ``s * eps``), so a good value does
        not depend on eps nor on the data's units. It contracts without oscillating for
        ``s <= 2 / L`` (and is stable for ``s < 4 / L``), L the curvature of ``c(x, .) -
        f_k``: up to ~6 for the Twister cost, where 0.2 beat 0.5 (BW2-UVP 23-43 % against
        45-66 % after 150 iterations). For the quadratic cost L is at most ``1 / a_k`` (the
        map's Jacobian is at least ``a_k`` at a W2 barycenter), so "auto" is ``2 min_k a_k``
        clipped to [0.2, 0.4] for the quadratic cost without a generator, 0.2 otherwise. The
        potentials are fitted to the chains' ends after ``langevin_steps`` steps, so the
        distance the chains travel, ``s * langevin_steps``, bounds how close to its own
        plans the fit comes: on product measures (D=8, K=3, weights (0.2, 0.3, 0.5), 2,000
        iterations) 0.4 against 0.2 lowered the barycentric projection's L2-UVP from 0.82 to
        0.75 % and the samples' marginal W2 from 0.18 to 0.10 % at the same cost, while 60
        steps of 0.4 in the same time (half the iterations) scored 0.97 %
        (benchmarks/results/nongaussian.md).
    langevin_init : {"auto", "map", "input", "gaussian"} or callable, default="auto"
        Where chains start. "input": at x itself (natural when x and y share a space and
        ``c(x, .)`` is smallest at x); "map": at ``x + grad f_k(x)``, one noiseless unit
        step of the energy from x (for the quadratic cost, the first Picard iterate of the
        plan's mode ``y = x + grad f_k(y)``); "gaussian": a Gaussian fitted to the pooled
        inputs (diagonal above 512 features; N(0, I) in a generator's latent space); a
        callable ``init(x) -> y0`` maps a tensor (..., d_in) to (..., d), in the data's
        units. "auto" is "map" for the quadratic cost without a generator, "input" for
        other costs and "gaussian" with a generator. Why "map": the potentials are trained
        against the chains as they are, so chains that stop short of the plan bias the
        fitted barycenter and maps (the chain-end laws of all inputs are what training
        equalises). On Gaussian inputs this bias is exact to compute: location-scatter
        D=2 (K=3, eps=0.01, 30 steps of 0.2) holds 0.13-0.26 % L2-UVP of it from x, 0.05-0.09 %
        from the "map" start (0.01-0.02 % from x with 60 steps; docs/energy.md).
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
        (cov diagonal above 512 features; N(0, scale^2 I) in a generator's latent space).
    generator : torch.nn.Module, callable, fitted generative estimator or None, default=None
        Manifold constraint: a map G from latent codes (N, latent_dim) to points (N, d) of
        the inputs' space; the cost becomes ``c(x, G(z))``. Not a trained network (not a
        role): it is copied and frozen in fit. A fitted ``GenerativeBarycenter`` (a
        barycenter of one input is a generative model of it) is accepted as is: its
        generator and standardisation are used. Excludes ``standardize=True``.
    latent_dim : int or None, default=None
        Latent dimension of ``generator``; None reads ``generator.latent_dim``,
        ``generator.latent_dim_`` (fitted estimators) or ``generator.in_features``.
    potential : None, torch.nn.Module subclass, instance or factory, default=None
        The networks g_k of the potentials ``f_k = g_k - sum_j a_j g_j`` (one per input,
        rows of the barycenter space -> 1 value). None: K batched MLPs configured by
        ``potential__hidden_layer_sizes`` (default (64, 64): each Langevin step evaluates
        the networks at every chain, so width costs quadratically in training and
        inference) and ``potential__activation`` (default "silu": smooth potentials give
        smooth Langevin drifts). A class or factory is built with ``in_features``,
        ``out_features`` and the ``potential__*`` settings; an instance is copied K times.
    {{weights}}
    {{unlabelled_rows}}
    {{dtype}}
    batch_size : int, default=256
        Rows drawn from every input per iteration (B; K*B chains run together).
    lr : float, default=5e-3
        Learning rate of the potentials (Adam). 5e-3 reached 0.15 % L2-UVP where 1e-3
        reached 0.65 % in the same 150 s (location-scatter D=2, step size 0.5, before
        standardisation); the Twister's potentials must grow to slopes ~4, which 1e-3 is
        too slow for.
    lr_decay : float in (0, 1], default=0.1
        Factor the learning rate reaches at the end of the budget (``max_iter`` or
        ``max_time``, whichever ends training first); 1 keeps it constant.
    lr_schedule : {"linear", "geometric"}, default="linear"
        Curve of the decay (:class:`~skbary.training.LRDecay`).
    ema_decay : float in [0, 1), default=0.99
        The potentials kept after fit (which every draw and projection uses) are an
        exponential average of their iterates (with the warm-up ``min(decay, (1 + t) / (10 +
        t))``); training uses the iterates, so the fitted iterates do not depend on it, and
        0 keeps the last one. On product measures (D=8, 2,000 iterations, the L2-UVP of the
        barycentric projection every 500 iterations) the iterate scored 1.91, 1.04, 1.06,
        0.84 % and the average 1.27, 0.89, 0.84, 0.82 %: a fit cut early by ``max_time``
        keeps a better map.
    max_iter : int or None, default=None
        Training iterations. None: 20000 when ``max_time`` is None; with ``max_time``, as
        many as the time allows. An integer is honoured either way.
    max_time : float or None, default=None
        Wall-clock budget (seconds) of the whole fit. The training loop starts no iteration
        after it and the Langevin chains of the iteration running then stop early, so the
        fit overruns it by at most one Langevin step and one update.
        A fit stopped by ``max_time`` runs as many iterations as the machine manages, so it
        is not repeatable, even with ``random_state``; one bounded by the iteration counts
        is, bit for bit, on the CPU.
    standardize : bool or "auto", default="auto"
        Work in standard coordinates (see above). "auto": True for the quadratic cost
        without a generator, False otherwise.
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
    {{training_loop_parameters}}
    **kwargs
        Nested parameters: ``potential__*`` (settings of the ``potential`` network) and
        ``optimizer__*``.

    Attributes
    ----------
    epsilon_ : float
        The entropic regularisation used, in the data's squared units (``epsilon`` with
        "auto" resolved).
    potentials_ : skbary.methods.energy.Congruent
        The learned congruent potentials (in standard coordinates when ``standardized_``);
        ``potentials_.g`` is the ``potential`` network.
    generator_ : torch.nn.Module or callable or None
        The frozen copy of ``generator``.
    center_ : ndarray of shape (d,)
    scale_ : float
        The standardisation ``x -> (x - center_) / scale_`` (0 and 1 when off).
    standardized_ : bool
        Whether the networks work in standard coordinates.
    n_iter_ : int
        Training iterations run.
    history_ : skorch History
        Per iteration, in the data's units: ``potential`` (``sum_k a_k mean f_k(y)``,
        minimised) and ``cost`` (``sum_k a_k mean c(x, y)`` of the sampled plans).
        ``train_loss`` copies ``potential`` and ``train_loss_best`` marks its lowest value
        so far (the default monitors of ``LRScheduler`` and
        :class:`skbary.callbacks.EarlyStopping`); ``epoch``, ``phase``, ``iteration`` and
        ``time`` (seconds into the fit) number and date each row. ``len(history_) ==
        n_iter_`` after any stop.
    stop_reason_ : dict
        Why training stopped ("max_iter", "max_time", "callback" or "interrupted").
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

    _roles = egbary.ROLES
    _ITERATION_CAPS = {"max_iter": 20000}
    _parameter_constraints = {
        **NeuralBarycenter._parameter_constraints,
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "cost": [StrOptions({"quadratic"}), callable],
        "sampler": [StrOptions({"langevin", "importance"})],
        "langevin_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "langevin_step_size": [
            Interval(numbers.Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "langevin_init": [StrOptions({"auto", "map", "input", "gaussian"}), callable],
        "inference_steps": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_proposals": [Interval(numbers.Integral, 1, None, closed="left")],
        "proposal_scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "generator": "no_validation",  # module, callable or fitted model: see _check_params
        "latent_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
        **{role: [None, callable] for role in egbary.ROLES},
    }

    def __init__(
        self,
        epsilon: float | str = "auto",
        cost: str | Callable = "quadratic",
        sampler: str = "langevin",
        langevin_steps: int = 30,
        langevin_step_size: float | str = "auto",
        langevin_init: str | Callable = "auto",
        inference_steps: int | None = None,
        n_proposals: int = 4096,
        proposal_scale: float = 1.5,
        generator: Any = None,
        latent_dim: int | None = None,
        potential: Any = None,
        weights: Any = None,
        unlabelled_rows: str = "error",
        dtype: type | None = np.float64,
        batch_size: int = 256,
        lr: float = 5e-3,
        lr_decay: float = 0.1,
        lr_schedule: str = "linear",
        ema_decay: float = 0.99,
        max_iter: int | None = None,
        max_time: float | None = None,
        standardize: bool | str = "auto",
        optimizer: type = torch.optim.Adam,
        device: str = "auto",
        n_threads: int | None = 1,
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
        self.latent_dim = latent_dim
        self.potential = potential
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.dtype = dtype
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.lr_schedule = lr_schedule
        self.ema_decay = ema_decay
        self.max_iter = max_iter
        self.max_time = max_time
        self.standardize = standardize
        self.optimizer = optimizer
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self._set_prefixed(kwargs)

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        if self.generator is None:
            if self.latent_dim is not None:
                raise ValueError("latent_dim is only used with a generator; leave it None.")
            return
        if not callable(self.generator) and not isinstance(
            getattr(self.generator, "generator_", None), nn.Module
        ):
            raise TypeError(
                "generator must be a torch module or callable latent -> data, or a fitted "
                f"generative estimator; got {type(self.generator).__name__}."
            )
        self._resolve_latent_dim()
        if self.langevin_init in ("input", "map"):
            raise ValueError(
                f"langevin_init={self.langevin_init!r} starts chains at x, which needs x and "
                "y in one space; with a generator use 'gaussian' (or 'auto')."
            )
        if self.standardize is True:
            raise ValueError(
                "standardize=True does not apply with a generator (the barycenter lives in "
                "its latent space); use standardize='auto' or False."
            )

    def _resolve_latent_dim(self) -> int:
        if self.latent_dim is not None:
            return int(self.latent_dim)
        for attr in ("latent_dim", "latent_dim_", "in_features"):
            value = getattr(self.generator, attr, None)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0:
                return int(value)
        raise ValueError(
            "latent_dim must be given with a generator that has no latent_dim or in_features "
            "attribute."
        )

    def _standardise_auto(self) -> bool:
        """Exactly invariant (epsilon rescaled) for the quadratic cost in the inputs' space."""
        return self.generator is None and isinstance(self.cost, str)

    @property
    def n_features_out_(self) -> int:
        """Dimension of the barycenter space (the latent dimension with a generator)."""
        return getattr(self, "_n_out", self.n_features_in_)

    # ------------------------------------------------------------------ fit
    def _build_networks(self, n_marginals: int, n_features: int) -> None:
        if self.generator is None:
            self.generator_ = None
            self._n_out = n_features
        else:
            self.generator_ = _frozen(self.generator)
            self._n_out = self._resolve_latent_dim()
        d = self._n_out
        g = self._network(
            "potential",
            in_features=d,
            out_features=1,
            default=functools.partial(egbary.default_potentials, n_marginals, d),
        )
        self.potentials_ = egbary.Congruent(g, self.weights_)

    def _store_inputs(self, data: MarginalBatches) -> None:
        """Rows kept for :meth:`sample` (at most 100,000 per input) and the Gaussian of them.

        The Gaussian (chain starts "gaussian", importance proposals) is fitted only when
        used; above 512 features its covariance is diagonal (no d x d state).
        """
        self._keep_training_rows(data, max_rows=_MAX_STORED_ROWS)
        self._init_mean = self._init_chol = self._proposal_cov = None
        if not (self.sampler == "importance" or self._chain_init() == "gaussian"):
            return
        dev, d = self.device_, self._n_out
        if self.generator_ is None:
            pooled = torch.as_tensor(np.concatenate(self._rows), device=dev)
            gauss = GaussianProposal.fit(
                pooled, scale=1.0, max_dense_features=ROUTING_FULL_COVARIANCE_MAX_FEATURES
            )
        else:  # N(0, I) in the latent space
            gauss = GaussianProposal(torch.zeros(d, device=dev), torch.ones(d, device=dev))
        L = gauss.chol
        self._init_mean, self._init_chol = gauss.mean, L
        s2 = float(self.proposal_scale) ** 2
        self._proposal_cov = s2 * (L * L if gauss.diagonal else L @ L.T)

    def _step_size(self) -> float:
        """``langevin_step_size`` with "auto" resolved.

        For the quadratic cost in the inputs' space the energy ``f_k - c(x, .)`` of a plan
        has curvature ``(grad T_k)^-1`` about its mode, T_k the map to the barycenter; at a
        W2 barycenter ``sum_j a_j T_j^-1 = id`` with every ``grad T_j^-1 >= 0``, so
        ``grad T_k >= a_k`` and the curvature is at most ``1 / a_k``. The ULA step
        ``y + (s/2) grad E`` then contracts without oscillating for ``s <= 2 min_k a_k``:
        "auto" takes that, between 0.2 (the step of other costs) and 0.4.
        """
        if self.langevin_step_size != "auto":
            return float(self.langevin_step_size)
        if self.generator is not None or not isinstance(self.cost, str):
            return _STEP_SIZE
        widest = 2.0 * float(np.min(self.weights_))
        return min(_MAX_QUADRATIC_STEP_SIZE, max(_STEP_SIZE, widest))

    def _chain_init(self) -> str | Callable:
        """``langevin_init`` with "auto" resolved."""
        if self.langevin_init == "auto":
            if self.generator is not None:
                return "gaussian"
            return "map" if isinstance(self.cost, str) else "input"
        return self.langevin_init

    def _train(self, data: MarginalBatches, weights: NDArray) -> None:
        self.epsilon_ = self._resolve_epsilon()
        ratio = self.epsilon_ / float(self.scale_) ** 2
        if ratio > _MAX_EPSILON_RATIO:
            raise ValueError(
                f"epsilon={self.epsilon_!r} is {ratio:.3g} times the inputs' squared scale "
                f"(scale_={self.scale_:.3g}): the entropic plans would be the independent "
                "coupling and the energies overflow. Give epsilon in the data's squared units "
                "(e.g. 0.01 * scale_**2) or rescale the data."
            )
        if ratio < _MIN_EPSILON_RATIO:
            raise ValueError(
                f"epsilon={self.epsilon_!r} is {ratio:.3g} times the inputs' squared scale "
                f"(scale_={self.scale_:.3g}): in the standardised coordinates the networks "
                "train in, it is below float32's smallest number. Give epsilon in the data's "
                "squared units (e.g. 0.01 * scale_**2) or rescale the data."
            )
        self._warn_if_many_features()
        self._store_inputs(data)
        a = torch.as_tensor(weights, dtype=torch.float32, device=self.device_)
        opt = self._make_optimizer(self.potentials_.parameters(), self.lr)
        common = dict(
            potentials=self.potentials_,
            plans=self._plans(),
            draw_inputs=data.draw,
            weights=a,
            optimizer=opt,
            batch_size=self.batch_size,
            generator=self._generator,
        )
        deadline = self._deadline()
        if self.sampler == "langevin":
            step = egbary.langevin_step(n_steps=self.langevin_steps, deadline=deadline, **common)
        else:
            step = egbary.importance_step(**common)
        step = self._in_data_units(step)
        # the potentials kept are an average of their iterates (training reads the iterates)
        params = self.potentials_.parameters()
        with self._averaged_networks(params, self.ema_decay, "train", warmup=True) as average:
            self.n_iter_ = self._run(
                updating(step, average),
                n_iter=self._n_iter("max_iter"),
                deadline=deadline,
                phase="train",
                decay=[opt],
                train_loss="potential",
            )

    def _warn_if_many_features(self) -> None:
        """Warn when the quadratic barycenter is sought in :data:`_MANY_FEATURES` dimensions or
        more, where the measured fits lost to the closed-form Gaussian barycenter."""
        if self.generator_ is not None or not isinstance(self.cost, str):
            return
        if self._n_out < _MANY_FEATURES:
            return
        warn_caller(
            f"EnergyBarycenter on {self._n_out} features: at image sizes its samples were "
            "farther from the barycenter than GaussianBarycenter's (flat 16 x 16 MNIST 0/1, "
            "256 features, 300 s on one CPU thread: energy distance 0.022-0.041 against "
            "0.0078; Ave-digits, 64 pixels: BW2-UVP 5 % against 0.3 %). Use NOTBarycenter, "
            "ICNNBarycenter or GenerativeBarycenter on such data, or EnergyBarycenter with "
            "generator= (the paper's recipe for images: the barycenter in a pretrained "
            "generator's latent space; not measured here).",
            UserWarning,
        )

    def _resolve_epsilon(self) -> float:
        """``epsilon`` with "auto" resolved (see the parameter), in the data's units."""
        if self.epsilon != "auto":
            return float(self.epsilon)
        if not self.standardized_:
            return _AUTO_EPSILON
        return min(_AUTO_EPSILON, _AUTO_EPSILON_RATIO * float(self.scale_) ** 2)

    def _in_data_units(self, step: Callable) -> Callable:
        """Report the losses in the data's units (energies scale with ``scale_**2``)."""
        if self.scale_ == 1.0:
            return step
        s2 = float(self.scale_) ** 2
        # in float64: energies of data at scale 1e30 exceed float32's range in data units
        wide = torch.float32 if self.device_.type == "mps" else torch.float64
        return lambda i: {name: value.to(wide) * s2 for name, value in step(i).items()}

    def _plans(self) -> egbary.EnergyPlans:
        """The plans in the model's coordinates (standardised or not)."""
        s, importance = float(self.scale_), self.sampler == "importance"
        return egbary.EnergyPlans(
            cost=self._model_cost(),
            epsilon=self.epsilon_ / s**2,
            step_size=self._step_size(),
            start=self._chain_start,
            embed=self.generator_,
            proposal=GaussianProposal(self._init_mean, self._proposal_cov) if importance else None,
            n_proposals=int(self.n_proposals),
            drift_start=self._chain_init() == "map",
        )

    def _center_tensor(self) -> torch.Tensor:
        return torch.as_tensor(self.center_, dtype=torch.float32, device=self.device_)

    def _chain_start(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        init = self._chain_init()
        if callable(init):
            if not self.standardized_:
                return torch.as_tensor(init(x), dtype=x.dtype, device=x.device)
            center, s = self._center_tensor(), float(self.scale_)
            y0 = torch.as_tensor(init(x * s + center), dtype=x.dtype, device=x.device)
            return (y0 - center) / s
        if init in ("input", "map"):  # "map": the plans take a drift step from x
            return x.clone()
        z = torch.randn((*x.shape[:-1], self._n_out), generator=gen, device=x.device, dtype=x.dtype)
        L = self._init_chol
        return self._init_mean + (z * L if L.dim() == 1 else z @ L.T)

    def _divergence_hint(self, loss_name: str) -> str:
        return (
            f"The congruent potentials (potential__*) diverged while {loss_name!r} was "
            f"tracked. Lower lr (now {self.lr}) or langevin_step_size (now "
            f"{self._step_size()}; Langevin chains blow up when it exceeds 4 / the "
            "curvature of the cost), or raise epsilon."
        )

    # ------------------------------------------------------------------ inference
    def _inference_generator(self, rng: np.random.RandomState) -> torch.Generator:
        seed = int(rng.randint(0, 2**31 - 1))
        return torch.Generator(device=self.device_).manual_seed(seed)

    def _inference_steps(self) -> int:
        return int(self.inference_steps or self.langevin_steps)

    def _draws(
        self, X: NDArray, k: int, gen: torch.Generator, n_steps: int | None = None
    ) -> NDArray:
        """One draw from the plan of every row (model coordinates)."""
        plans, n_steps = self._plans(), n_steps or self._inference_steps()
        return self._apply(
            lambda x: egbary.draw_plans(self.potentials_, plans, x, k, 1, gen, n_steps)[:, 0],
            X,
            grad=True,
        )

    #: transform seeds one stream per call and input: rows are mapped in one call
    _rowwise_inference = False

    def _transform(self, X: NDArray, k: int) -> NDArray:
        gen = self._inference_generator(check_random_state(self.random_state))
        # a different stream per input, so inputs mapped in one call get independent noise
        gen.manual_seed(gen.initial_seed() + k)
        return self._draws(X, k, gen)

    def _sample(self, n: int, rng: np.random.RandomState, n_steps: int | None = None) -> NDArray:
        gen = self._inference_generator(rng)
        return self._sample_from_rows(n, rng, lambda rows, k: self._draws(rows, k, gen, n_steps))

    def _probe_sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        # chains of at most 20 steps: potentials that ran away blow them up within a few
        return self._sample(n, rng, n_steps=min(self._inference_steps(), 20))

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
            Draws averaged per row (Langevin sampler); the Monte Carlo error of the mean has
            variance ~eps / n_draws per coordinate (0.01% L2-UVP at eps=0.01 for 64 draws).
            The importance sampler averages its ``n_proposals`` weighted proposals instead.
        random_state : int, RandomState or None
            Seed of the draws; None uses the estimator's ``random_state``.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        plans, n_steps, gens = self._plans(), self._inference_steps(), []

        def project(Xm: NDArray, kk: int, n_draws: int, rng: np.random.RandomState) -> NDArray:
            if not gens:  # one stream for every input of the call
                gens.append(self._inference_generator(rng))
            x = self._tensor(Xm)
            y = egbary.plan_means(self.potentials_, plans, x, kk, n_draws, gens[0], n_steps)
            return y.detach().cpu().numpy()

        return self._projection(X, k, n_draws, random_state, project)

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
        return self._apply(self.generator_, Z)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform is one random draw per row from the plan: a row's image depends on the
        # other rows of the call (their noise comes from one stream), not only on the row.
        tags.non_deterministic = True
        return tags
