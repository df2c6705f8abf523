"""WINBarycenter: the scikit-learn shell of Wasserstein Iterative Networks.

The algorithm (Korotin et al., NeurIPS 2022: its roles, initialisation and the steps of
Algorithms 1 and 2) is in :mod:`skbary.methods.win`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from ..base import InverseTransformMixin, NeuralBarycenter
from ..exceptions import NotLearnedError, warn_caller
from ..methods import win
from ..nn.affine import DENSE_MAX_FEATURES, dense
from ..nn.maps import quantile_features_auto
from ..training import MarginalBatches
from ..training.optim import LowestSmoothedLoss
from ..training.schedules import PhaseProgress
from .gaussian import GaussianBarycenter

__all__ = ["WINBarycenter"]

# generator_selection="residual": the fixed-point residual smoothed over about 50 outer
# iterations (its per-iteration spread is about a fifth of its level), and only the second
# half of Algorithm 1 competes (at the start the maps T_k have learned nothing, so G and
# sum_k a_k T_k(G) agree trivially and the residual is low); LowestSmoothedLoss also waits for
# 2 / (1 - 0.98) = 100 outer iterations, so a short fit keeps its last G
RESIDUAL_SMOOTHING = 0.98
RESIDUAL_AFTER = 0.5
# Algorithm 1 stopped by max_time before this many outer iterations warns: LowestSmoothedLoss
# has not started choosing, and on flat 16 x 16 MNIST 0/1 (D = 256, benchmarks/results/
# mnist.md) G was far from the barycenter and not approaching it: Frechet 44, 74 and 42 after
# 7, 18 and 47 outer iterations (30, 120 and 300 s); with G started at the inputs'
# per-coordinate spread (tried, not kept) 37 after 5 and 55-76 from 10 to 45
MIN_OUTER_ITERATIONS = round(2 / (1 - RESIDUAL_SMOOTHING))
# lr_potential="auto": the potentials' learning rate, 1e-3 (the paper's) but from the
# Gaussian start on small inputs, where the solvers start at their saddle point and Adam's
# steps of about lr, whatever the gradient, are a random walk away from it: on Ave, digits!
# (449 rows per input, seed 0, benchmarks/results/ave_digits.md) the Gaussian start with
# lr_potential=1e-3 went from 0.35 % BW2-UVP after 10 outer iterations to 61 % after 50;
# with 1e-4 (the other rates 1e-3) 0.35 % and 1.5 %, and 1.0-1.25 % from 100 to 300. On
# 5,000 rows per input (product measures D = 8, seed 0, 300 outer iterations) 1e-4 was too
# slow for the non-Gaussian part: weighted L2-UVP 2.19 % against 0.83 % with 1e-3
LR_POTENTIAL = 1e-3
LR_POTENTIAL_SMALL_GAUSSIAN = 1e-4


def _tracked(
    step: Callable[[int], dict[str, torch.Tensor]],
    selection: LowestSmoothedLoss,
    snapshot: Callable[[], Any],
) -> Callable[[int], dict[str, torch.Tensor]]:
    """``step`` reporting its fixed-point residual (``generator``) to ``selection``."""

    def run(i: int) -> dict[str, torch.Tensor]:
        losses = step(i)
        residual = float(losses["generator"])
        if residual != 0.0:  # 0: the deadline cut the iteration before G's regression ran
            selection.update(i, residual, snapshot)
        return losses

    return run


class WINBarycenter(InverseTransformMixin, NeuralBarycenter):
    """W2 barycenter by Wasserstein Iterative Networks (Korotin et al., NeurIPS 2022).

    A generator G pushes a standard normal latent law S to the barycenter. Each outer
    iteration (Algorithm 1 of the paper) trains, for every input k, a map T_k from G#S to
    input k and a potential v_k with the reversed max-min OT solver, then regresses G onto
    ``sum_k a_k T_k(G_old(z))`` (one step of the fixed-point iteration
    ``P <- [sum_k a_k T_{P -> P_k}] # P``). After it, the maps from every input to G#S are
    learned by the same solver (Algorithm 2) for :meth:`transform`.

    With ``standardize`` (the default) the computations run in standardised coordinates:
    the data are centred on the barycenter's mean and divided by one scalar. Quadratic OT
    commutes with this change of coordinates, so the barycenter is unchanged, and the
    learning rates need not depend on the data's units. WIN keeps no d x d state.

    Parameters
    ----------
    {{weights}}
    {{unlabelled_rows}}
    {{dtype}}
    latent_dim : int or None, default=None
        Dimension H of the latent normal law; None uses the data dimension D, which makes the
        default G residual (``z + MLP(z)``, starting as the identity: G#S starts at N(0, I)
        in standardised coordinates).
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
    lr_potential : float or "auto", default="auto"
        Learning rate of the potentials v_k, in both algorithms. "auto": 1e-3 (the
        paper's), but 1e-4 from the Gaussian start (``init``) on small inputs (the
        smallest input has fewer than 2,000 training rows), where the max-min solvers start
        at their saddle point and larger steps walk them off it (Ave, digits!, 449 rows per
        input, seed 0: BW2-UVP 61 % after 50 outer iterations with 1e-3, 1.5 % with 1e-4;
        ``benchmarks/results/ave_digits.md``). On 5,000 rows per input 1e-4 learned the
        non-Gaussian part too slowly (product measures D = 8, Gaussian start: weighted
        L2-UVP 2.19 % against 0.83 % with 1e-3).
    lr_map : float, default=1e-3
        Learning rate of the maps, both roles: ``inverse_map`` (Algorithm 1) and ``map``
        (Algorithm 2) (paper: 1e-3).
    max_iter : int or None, default=None
        Outer iterations of Algorithm 1. None: 300 when ``max_time`` is None (the paper's
        12K generator + potential updates, i.e. 300 outer iterations of K_G + K_v = 40);
        with ``max_time``, as many as Algorithm 1's share of the time allows. An integer is
        honoured either way.
    max_time : float or None, default=None
        Seconds for the whole fit. Algorithm 1 gets ``1 - transform_time_fraction`` of it
        and stops early when it is spent (checked inside an outer iteration too);
        Algorithm 2 gets what is left. When it stops Algorithm 1 before 100 outer iterations
        (counting a warm start's), fit warns (``sklearn.exceptions.ConvergenceWarning``):
        on flat 16 x 16 MNIST 0/1 (D = 256) 300 s on one CPU thread gave 44-47, and samples
        8-12 times farther from the barycenter than GaussianBarycenter's by the Frechet
        distance (``benchmarks/results/mnist.md``).
        A fit stopped by ``max_time`` runs as many iterations as the machine manages, so it
        is not repeatable, even with ``random_state``; one bounded by the iteration counts
        is, bit for bit, on the CPU.
    lr_decay : float in (0, 1], default=1.0
        Factor every learning rate reaches at the end of each algorithm (1.0: constant, the
        paper's and the measured setting).
    lr_schedule : {"linear", "geometric"}, default="linear"
        Curve of that decay over each algorithm's iterations or time, whichever ends first.
    init : {"auto", "gaussian", "identity"}, default="auto"
        Start of the networks. ``"identity"``: the default G and maps start at the identity
        and the potentials at random (the paper's start, in standardised coordinates).
        ``"gaussian"``: G, the maps of both algorithms and the potentials of both max-min
        solvers start at the closed-form Gaussian barycenter of the training rows
        (:class:`~skbary.GaussianBarycenter`: G at ``z -> S^1/2 z + m``, the maps at its
        linear maps, the potentials at the quadratic forms whose optimal maps these are,
        their networks' output layers zeroed); the networks then learn what is not
        Gaussian. It needs the default networks (residual maps, ``latent_dim`` None or D,
        potentials with their quadratic form), at most
        :data:`~skbary.nn.affine.DENSE_MAX_FEATURES` features and more rows than features
        in every input. ``"auto"``: ``"gaussian"`` where it is possible and the smallest
        input has fewer than 2,000 training rows (the small inputs of
        ``early_stopping="auto"``; not for streamed inputs), else ``"identity"``. On 449
        rows per input the fixed-point iteration from the identity overfits and diverges:
        Ave, digits! (64 pixels, 300 outer iterations, 3 seeds;
        ``benchmarks/results/ave_digits.md``) BW2-UVP 0.89-0.96 % with the Gaussian start
        (and ``lr_potential="auto"``) against 11.1-15.2 % from the identity, weighted
        L2-UVP 1.38-1.73 % against 13.8-18.5 % (GaussianBarycenter: 0.25-0.30 %,
        1.17-1.38 %). On 5,000 rows per input (product measures D = 8, seed 0, 300 outer
        iterations; not "auto"'s rule) the Gaussian start gave weighted L2-UVP 0.83 %
        against 0.92 % from the identity, and marginal W2 of the samples 0.26 % against
        0.25 %.
    learn_transform : bool, default=True
        Learn the maps from the inputs to the barycenter after Algorithm 1 (Algorithm 2).
        False skips it (faster); :meth:`transform` then raises
        :class:`~skbary.exceptions.NotLearnedError`.
    transform_max_iter : int or None, default=None
        Potential updates of Algorithm 2 (each followed by ``n_map_steps`` map updates).
        None: 3000 when ``max_time`` is None; with ``max_time``, until the fit's time is
        spent. An integer is honoured either way.
    transform_time_fraction : float in (0, 1), default=0.3
        Share of ``max_time`` reserved for Algorithm 2.
    ema_decay : float in [0, 1), default=0.99
        The maps of Algorithm 2 kept after fit (:meth:`transform`) are an exponential
        moving average of their iterates, updated after every map step (0 disables; NOT's
        ``ema_decay``); G and Algorithm 1's maps do not depend on it. Product measures
        (``benchmarks/results/nongaussian.md``, D = 8, 5,000 rows per input, the same G,
        3,000 iterations of Algorithm 2): weighted L2-UVP 1.74 % against 2.15 % without
        (the iterates swing by about 0.1-0.3 % from one 250 iterations to the next).
    generator_ema_decay : float in [0, 1), default=0.9
        The G kept after Algorithm 1 (:meth:`sample`, and the target of Algorithm 2) is an
        exponential moving average of the outer iterations' G, updated once per outer
        iteration, with a warm-up (the decay is ``min(decay, (1 + t) / (10 + t))`` at the
        t-th update, so a short fit is not pulled back to its start); 0 keeps the last
        iterate, as the paper does. The fixed-point iterates swing around the barycenter;
        their average is closer to it: product measures (``benchmarks/results/nongaussian.md``,
        D = 8, 5,000 rows per input, 500 outer iterations, the average kept by a callback)
        marginal W2 of G's samples 0.144 -> 0.085 % (family a, seed 0) and 0.136 -> 0.099 %
        (family b, seed 1).
    generator_selection : {"residual", "last"}, default="residual"
        Which outer iteration's (averaged) G is kept. ``"residual"``: among the second
        half of Algorithm 1's outer iterations (by count or time; and from the 100th on, so
        a shorter fit keeps its last), the one whose smoothed
        fixed-point residual is lowest; the residual is Algorithm 1's own regression loss
        ``l(G(z), sum_k a_k T_k(G_old(z)))`` on fresh latents (the ``generator`` column of
        ``history_``), smoothed over about 50 outer iterations, so the choice uses training
        data only. The maps T_k of that iteration are kept with it. ``"last"``: the last
        iteration's, as the paper does. The fixed-point iteration can leave the barycenter
        late in a long fit when its max-min solvers lose their balance; the residual then
        doubles: product measures (``benchmarks/results/nongaussian.md``, family b, seed 1,
        D = 8, 50,000 rows, 1,171 outer iterations) marginal W2 of G 0.12-0.20 % up to
        iteration 700, 0.7-1.8 % after it, the smoothed residual 0.0047 at its lowest and
        0.0124 at the end. Early stopping on held-out rows (``early_stopping``), when on,
        chooses instead.
    sample_from : {"generator", "maps"}, default="generator"
        What :meth:`sample` returns: ``G(z)``, or ``sum_k a_k T_k(G(z))`` (one more
        fixed-point step; the variant with the better FID in the paper's Table 1). On the
        Gaussian location-scatter task G(z) was as good or better in our runs (D=8, 50 s:
        0.11 % against 0.28 %; D=2: 0.18 % against 0.96 %); the maps add their own noise.
    standardize : bool or "auto", default="auto"
        Standardise the inputs (see above); "auto" does (the problem is invariant: the
        quadratic cost, and a callable ``regression_loss`` sees data coordinates).
    generator : None, nn.Module subclass, instance or factory, default=None
        G, one network from ``latent_dim`` to D features. None: an MLP with ReLU,
        residual and starting at the identity when ``latent_dim`` is D. A module is used
        as given (no identity start). Settings ``generator__*`` (default network:
        ``hidden_layer_sizes``, ``activation``).
    {{bounds}}
    inverse_map : None, nn.Module subclass, instance or factory, default=None
        The maps T_k of Algorithm 1 (barycenter -> input k; :meth:`inverse_transform`), one
        network D -> D per input. None: batched MLPs, residual (``x + MLP(x)``, starting at
        the identity) unless ``inverse_map__residual=False``. Settings ``inverse_map__*``
        (default network: ``hidden_layer_sizes``, ``activation``, ``residual``).
    map : None, nn.Module subclass, instance or factory, default=None
        The maps of Algorithm 2 (input k -> barycenter; :meth:`transform`), one network
        D -> D per input; the same default as ``inverse_map``, settings ``map__*``, plus
        ``map__quantile_features`` ("auto"; False, True or "axes", "ica", "axes+ica"): the
        MLP also takes the normal scores of x under input k's training marginals along the
        data axes and/or input k's independent components
        (:class:`~skbary.nn.maps.MarginalQuantiles`, NOT's ``map__quantile_features``),
        which lets the maps follow optimal maps that are steep where a bounded input piles
        its mass against an edge. "auto" is "axes+ica" up to
        :data:`~skbary.nn.maps.QUANTILE_AUTO_MAX_FEATURES` (32) features, False above (the
        rule of NOT's quadratic cost). Product measures D = 8 (5,000 rows per input, the
        same G, 3,000 iterations of Algorithm 2, no EMA): weighted L2-UVP 2.15 % against
        2.61 % without; with the exact barycenter as the target 1.96 % against 2.32 %.
    potential : None, nn.Module subclass, instance or factory, default=None
        The potentials v_k of both max-min solvers, one network D -> 1 per input and per
        solver. None: batched MLPs. Settings ``potential__*`` (default network:
        ``hidden_layer_sizes``, ``activation``; unset, Algorithm 1's are ReLU as in the
        paper, Algorithm 2's CELU and at least 128 wide,
        :func:`~skbary.methods.win.default_potentials`), and ``potential__quadratic``
        ("auto"; True, False): the potentials also hold a learned quadratic form
        ``1/2 y^T A_k y + b_k^T y`` (:class:`~skbary.nn.potentials.WithQuadratic`), which an
        MLP, close to affine away from its training points, misses where inputs and
        barycenter differ in scale. "auto": Algorithm 2's default potentials only (its
        maps' error fell with it; G did not improve with it in Algorithm 1); True: both
        algorithms' potentials, a user's too; False: none.
    optimizer : torch optimiser class, default=torch.optim.Adam
        Optimiser of every network (``optimizer__betas`` etc. are passed to it).
    device : {"auto", "cpu", "cuda"}, default="auto"
    n_threads : int or None, default=1
        torch CPU threads during fit (None keeps torch's setting). The max-min solver
        ran 76 updates/s with one thread against 0.9 with two on the busy 2-core machine
        (40 with two and OMP_WAIT_POLICY=PASSIVE): one thread is the default.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
    {{training_loop_parameters}}
    **kwargs
        Role settings ``generator__*``, ``inverse_map__*``, ``map__*``, ``potential__*``
        (for a module class or factory, its own keyword arguments). The default hidden
        sizes of all four are ``[min(max(64, 2D), 512)] * 2``: in the D=8 run above the
        paper's depth (``[64] * 3``) gave BW2-UVP 0.38 % / L2-UVP 1.65 % against 0.11 % /
        1.34 %, having run fewer iterations in the same time. ``optimizer__*`` go to the optimiser.

    Attributes
    ----------
    generator_ : nn.Module
        G, in standardised coordinates.
    inverse_maps_ : MaxMinOTSolver
        The maps T_k (barycenter -> input k) and their potentials v_k (Algorithm 1).
    maps_ : MaxMinOTSolver or None
        The maps input k -> barycenter and their potentials (Algorithm 2; None when
        skipped).
    latent_dim_ : int
        H.
    init_ : {"gaussian", "identity"}
        The start the networks took (``init``; a warm start keeps the first fit's).
    center_ : ndarray of shape (D,)
    scale_ : float
        The standardisation ``x -> (x - center_) / scale_``.
    bounds_ : tuple of two ndarray of shape (d,), or None
        The box of ``bounds`` in the data's units (None without one).
    n_iter_ : int
        Outer iterations of Algorithm 1 run.
    generator_iter_ : int
        The outer iteration (counted as ``n_iter_`` is) whose G and maps T_k were kept
        (``generator_selection``, or held-out early stopping's best when it is on).
    n_transform_iter_ : int
        Iterations of Algorithm 2 run.
    history_ : skorch History
        One row per outer iteration of Algorithm 1 (phase ``"barycenter"``: the inverse
        maps' solver losses and ``generator``), then of Algorithm 2 (phase ``"transform"``:
        the maps' solver losses, prefixed ``transform_``). ``train_loss`` copies
        ``generator`` (``transform_map`` in Algorithm 2) and ``train_loss_best`` marks its
        lowest value so far (the default monitors of ``LRScheduler`` and
        :class:`skbary.callbacks.EarlyStopping`); ``epoch``, ``phase``, ``iteration`` and
        ``time`` number and date each row. ``len(history_) == n_iter_ + n_transform_iter_``
        after any stop.
    stop_reason_, fit_time_, n_features_in_, n_marginals_, weights_ :
        See :class:`~skbary.base.NeuralBarycenter`.

    Examples
    --------
    >>> from skbary import WINBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 1000, random_state=0)
    >>> est = WINBarycenter(max_iter=3, transform_max_iter=20, random_state=0)
    >>> est.fit(bench.marginals, bench.weights).sample(4).shape
    (4, 2)
    >>> est.inverse_transform(est.sample(3), k=1).shape
    (3, 2)
    """

    # the spread around the barycenter's mean: the measured results were made with it
    _standardisation_spread = "pooled"
    _roles = win.ROLES
    _ITERATION_CAPS = {"max_iter": 300, "transform_max_iter": 3000}
    # an outer iteration is K_v (1 + K_T) + K_G = 100 updates: score the held-out rows often
    _VALIDATION_INTERVAL = 10
    # on 449 rows per input WIN diverges after ~200 outer iterations; early stopping keeps
    # BW2-UVP at 15 % where 300 iterations reach 69 % (benchmarks/results/ave_digits.md)
    _EARLY_STOPPING_AUTO = True
    _parameter_constraints = {
        **NeuralBarycenter._parameter_constraints,
        "latent_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "bounds": [None, StrOptions({"auto", "data"}), tuple, list],
        "n_generator_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_potential_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_map_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "regression_loss": [StrOptions({"mse"}), callable],
        "lr_generator": [Interval(numbers.Real, 0, None, closed="neither")],
        "lr_potential": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "lr_map": [Interval(numbers.Real, 0, None, closed="neither")],
        "init": [StrOptions({"auto", "gaussian", "identity"})],
        "learn_transform": ["boolean"],
        "transform_max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "transform_time_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
        "generator_ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
        "generator_selection": [StrOptions({"residual", "last"})],
        "sample_from": [StrOptions({"generator", "maps"})],
        **{role: [None, callable] for role in win.ROLES},
    }

    def __init__(
        self,
        weights: Any = None,
        unlabelled_rows: str = "error",
        dtype: type | None = np.float64,
        latent_dim: int | None = None,
        n_generator_steps: int = 20,
        n_potential_steps: int = 20,
        n_map_steps: int = 3,
        regression_loss: str | Callable = "mse",
        batch_size: int = 256,
        lr_generator: float = 1e-3,
        lr_potential: float | str = "auto",
        lr_map: float = 1e-3,
        max_iter: int | None = None,
        max_time: float | None = None,
        lr_decay: float = 1.0,
        lr_schedule: str = "linear",
        init: str = "auto",
        learn_transform: bool = True,
        transform_max_iter: int | None = None,
        transform_time_fraction: float = 0.3,
        ema_decay: float = 0.99,
        generator_ema_decay: float = 0.9,
        generator_selection: str = "residual",
        sample_from: str = "generator",
        standardize: bool | str = "auto",
        generator: Any = None,
        bounds: Any = "auto",
        inverse_map: Any = None,
        map: Any = None,
        potential: Any = None,
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
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.dtype = dtype
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
        self.lr_decay = lr_decay
        self.lr_schedule = lr_schedule
        self.init = init
        self.learn_transform = learn_transform
        self.transform_max_iter = transform_max_iter
        self.transform_time_fraction = transform_time_fraction
        self.ema_decay = ema_decay
        self.generator_ema_decay = generator_ema_decay
        self.generator_selection = generator_selection
        self.sample_from = sample_from
        self.standardize = standardize
        self.generator = generator
        self.bounds = bounds
        self.inverse_map = inverse_map
        self.map = map
        self.potential = potential
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

    # ------------------------------------------------------------------ fit
    def _build_networks(self, n_marginals: int, n_features: int) -> None:
        K, d = n_marginals, n_features
        H = d if self.latent_dim is None else int(self.latent_dim)
        self.latent_dim_ = H
        # One seed offset per network group, as before the redesign: G 0, Algorithm 1's
        # solver 1, Algorithm 2's solver 2 (maps built before potentials).
        with self._seeded(0):
            self.generator_ = self._boxed(
                self._network(
                    "generator",
                    in_features=H,
                    out_features=d,
                    default=win.default_generator(H, d),
                )
            )
        # the potentials' quadratic form: "auto" gives it to Algorithm 2's default potentials
        # (its maps' error fell with it), not to Algorithm 1's (G was no better); True to both
        quadratic = self._quadratic_part("potential", auto=self._uses_default("potential"))
        quadratic_inverse = self._quadratic_part("potential", auto=False)
        with self._seeded(1):
            self.inverse_maps_ = win.ot_solver(
                self._network, "inverse_map", K, d, quadratic=quadratic_inverse
            )
        self.maps_ = None
        if self.learn_transform:
            with self._seeded(2):  # WIN's cost is the quadratic one
                auto = quantile_features_auto(True, d)
                self.maps_ = win.ot_solver(
                    self._network, "map", K, d, quantile_auto=auto, quadratic=quadratic
                )
        self.init_ = None  # resolved from the training rows when training starts (_train)

    def _gaussian_start_blocker(self, data: MarginalBatches) -> str | None:
        """Why the Gaussian start (``init``) is not possible here, None when it is."""
        d = data.n_features
        custom = [role for role in win.ROLES if not self._uses_default(role)]
        if custom:
            return f"the default networks (these roles are the user's: {', '.join(custom)})"
        if self.latent_dim_ != d:
            return f"latent_dim None or the number of features ({d}), got {self.latent_dim}"
        if self.bounds_ is not None:  # an affine start would move G's samples off the box
            return "a generator without a box (bounds=None; these inputs get one from bounds)"
        for role in ("inverse_map", "map"):
            if not self._role_setting(role, "residual", True):
                return f"residual maps ({role}__residual=False)"
        if self._role_setting("potential", "quadratic", "auto") is False:
            return "the potentials' quadratic form (potential__quadratic=False)"
        if not dense(d):
            return f"at most {DENSE_MAX_FEATURES} features (d x d affine parts), got {d}"
        n_min = int(data.counts.min())
        if n_min <= d:
            return f"more rows than features in every input (invertible covariances), got {n_min}"
        return None

    def _resolve_init(self, data: MarginalBatches) -> str:
        """``init`` resolved for these training rows: "gaussian" or "identity"."""
        blocker = self._gaussian_start_blocker(data)
        if self.init == "gaussian":
            if blocker is not None:
                raise ValueError(f"init='gaussian' needs {blocker}; use init='identity'.")
            return "gaussian"
        if self.init == "auto" and blocker is None and self._small_inputs(data):
            return "gaussian"
        return "identity"

    def _small_inputs(self, data: MarginalBatches) -> bool:
        """Whether the smallest input has fewer training rows than the small inputs of
        ``early_stopping="auto"`` (streamed inputs never do)."""
        streamed = any(st is not None for st in data.streams)
        return not streamed and int(data.counts.min()) < self._EARLY_STOPPING_ROWS[1]

    def _start_at_gaussian(self, data: MarginalBatches, weights: NDArray) -> None:
        """Every network at GaussianBarycenter's solution of the training rows
        (:func:`~skbary.methods.win.gaussian_start_`)."""
        rows = [r.astype(np.float64) for r in self._training_rows(data)]
        gauss = GaussianBarycenter(weights=weights).fit(rows)
        with self._seeded(3):  # the affine layers' initialisation (overwritten) draws from it
            self.generator_ = win.gaussian_start_(
                self.generator_,
                self.inverse_maps_,
                self.maps_,
                gauss.barycenter_mean_,
                gauss.barycenter_covariance_,
                gauss.means_,
                gauss.maps_,
            )
        self._to_device()

    def _lr_potential(self, data: MarginalBatches) -> float:
        """``lr_potential`` resolved ("auto": see :data:`LR_POTENTIAL_SMALL_GAUSSIAN`)."""
        if not isinstance(self.lr_potential, str):
            return float(self.lr_potential)
        small_gaussian = self.init_ == "gaussian" and self._small_inputs(data)
        return LR_POTENTIAL_SMALL_GAUSSIAN if small_gaussian else LR_POTENTIAL

    def _regression_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """l in standardised coordinates; a user's loss receives data coordinates."""
        if isinstance(self.regression_loss, str):
            return win.mse
        user_loss = self.regression_loss
        center = torch.as_tensor(self.center_, dtype=torch.float32, device=self.device_)
        s = self.scale_

        def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return user_loss(pred * s + center, target * s + center)

        return loss

    def _train(self, data: MarginalBatches, weights: NDArray) -> None:
        dev, g, H = self.device_, self._generator, self.latent_dim_
        a = torch.as_tensor(weights, dtype=torch.float32, device=dev)
        if "init_" not in self.__dict__:  # fitted before init existed: the identity start
            self.init_ = "identity"
        if self.init_ is None:  # networks just built (a warm start keeps its start)
            self.init_ = self._resolve_init(data)
            if self.init_ == "gaussian":
                self._start_at_gaussian(data, weights)

        def latent(n: int) -> torch.Tensor:
            return torch.randn(n, H, generator=g, device=dev)

        # Algorithm 2's quantile features (if any) from input k's training rows, once; set
        # first, so that their cost (FastICA) comes out of Algorithm 1's share of max_time
        # and a short fit still leaves Algorithm 2 its own
        if self.maps_ is not None:
            self._set_map_quantiles(self.maps_.map, data)

        self._barycenter(data, latent, a)  # Algorithm 1
        self._transform_maps(data, latent)  # Algorithm 2

    def _barycenter(self, data: MarginalBatches, latent: Callable, a: torch.Tensor) -> None:
        """Algorithm 1: the barycenter G#S. The G kept is the exponential moving average of
        the outer iterations' G (``generator_ema_decay``)."""
        inv = self.inverse_maps_
        optimizers = [
            self._make_optimizer(self.generator_.parameters(), self.lr_generator),
            self._make_optimizer(inv.potential.parameters(), self._lr_potential(data)),
            self._make_optimizer(inv.map.parameters(), self.lr_map),
        ]
        frac = 1.0 - float(self.transform_time_fraction) if self.learn_transform else 0.98
        deadline = self._deadline(frac)
        params, decay = self.generator_.parameters(), float(self.generator_ema_decay)
        with self._averaged_networks(params, decay, "barycenter", warmup=True) as average:
            step = win.fixed_point_step(
                generator=self.generator_,
                inverse_maps=inv,
                draw_inputs=data.draw,
                latent=latent,
                weights=a,
                generator_optimizer=optimizers[0],
                potential_optimizer=optimizers[1],
                map_optimizer=optimizers[2],
                regression_loss=self._regression_loss(),
                n_potential_steps=self.n_potential_steps,
                n_map_steps=self.n_map_steps,
                n_generator_steps=self.n_generator_steps,
                batch_size=self.batch_size,
                deadline=deadline,
                average=average,
            )
            n_iter = self._n_iter("max_iter")
            done_before = sum(1 for row in self.history_ if row.get("phase") == "barycenter")
            early_stop, selection = bool(self.__dict__.get("_early_stop")), None
            if self.generator_selection == "residual" and not early_stop:
                selection = LowestSmoothedLoss(
                    RESIDUAL_SMOOTHING, RESIDUAL_AFTER, PhaseProgress(n_iter, deadline)
                )
                step = _tracked(step, selection, self._networks_now)
            self.n_iter_ = self._run(
                step,
                n_iter=n_iter,
                deadline=deadline,
                phase="barycenter",
                decay=optimizers,
                train_loss="generator",
            )
            self.generator_iter_ = self.n_iter_
            if early_stop:  # held-out early stopping kept its best
                rows = [r for r in self.history_ if r.get("phase") == "barycenter"]
                best = [t for t, r in enumerate(rows, 1) if r.get("valid_loss_best")]
                self.generator_iter_ = best[-1] if best else self.n_iter_
            if selection is not None and selection.best is not None:
                self._restore_networks(selection.best)
                self.generator_iter_ = done_before + selection.best_iteration + 1
        self._warn_if_cut_short(self.n_iter_)

    def _warn_if_cut_short(self, n_outer: int) -> None:
        """ConvergenceWarning when ``max_time`` stopped Algorithm 1 before
        :data:`MIN_OUTER_ITERATIONS` outer iterations (``n_outer``, a warm start's included)."""
        if self.stop_reason_.get("barycenter") != "max_time" or n_outer >= MIN_OUTER_ITERATIONS:
            return
        warn_caller(
            f"WINBarycenter: max_time stopped Algorithm 1 after {n_outer} outer iterations "
            f"(the paper runs 300; generator_selection chooses from the "
            f"{MIN_OUTER_ITERATIONS}th on), so its generator may be far from the barycenter: "
            "on flat 16 x 16 MNIST digits (256 features) 300 s on one CPU thread gave 44-47 "
            "and samples 8-12 times farther from the barycenter than GaussianBarycenter's by "
            "the Frechet distance (benchmarks/results/mnist.md). Give it more time or a GPU "
            "(device='cuda'), or use NOTBarycenter, ICNNBarycenter or GenerativeBarycenter, "
            "which beat GaussianBarycenter there in the same time.",
            ConvergenceWarning,
        )

    def _transform_maps(self, data: MarginalBatches, latent: Callable) -> None:
        """Algorithm 2: maps from every input to the learned barycenter G#S."""
        self.n_transform_iter_ = 0
        if self.maps_ is None:
            return
        self.generator_.eval()
        optimizers = [
            self._make_optimizer(self.maps_.potential.parameters(), self._lr_potential(data)),
            self._make_optimizer(self.maps_.map.parameters(), self.lr_map),
        ]
        maps = self.maps_.map.parameters()
        with self._averaged_networks(maps, self.ema_decay, "transform") as average:
            step = win.maps_to_barycenter_step(
                maps=self.maps_,
                generator=self.generator_,
                draw_inputs=data.draw,
                latent=latent,
                potential_optimizer=optimizers[0],
                map_optimizer=optimizers[1],
                n_map_steps=self.n_map_steps,
                batch_size=self.batch_size,
                average=average,
            )
            self.n_transform_iter_ = self._run(
                step,
                n_iter=self._n_iter("transform_max_iter"),
                deadline=self._deadline(0.98),
                phase="transform",
                decay=optimizers,
                train_loss="transform_map",
            )

    def _divergence_hint(self, loss_name: str) -> str:
        algorithm2 = loss_name.startswith("transform_")
        name = loss_name.removeprefix("transform_")
        maps = "maps input k -> barycenter" if algorithm2 else "maps T_k (barycenter -> input k)"
        net, lr = {
            "generator": ("generator G", "lr_generator"),
            "potential": (f"potentials v_k of the {maps}", "lr_potential"),
        }.get(name, (maps, "lr_map"))
        return (
            f"The {net} diverged. Try a smaller {lr} (e.g. half the current value) or a "
            "larger batch_size."
        )

    # ------------------------------------------------------------------ inference
    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        z = self._randn((n, self.latent_dim_), rng)
        a = torch.as_tensor(self.weights_, dtype=torch.float32, device=self.device_)

        def fn(zc: torch.Tensor) -> torch.Tensor:
            y = self.generator_(zc)
            if self.sample_from == "maps":
                y = win.average_of_maps(self.inverse_maps_, y, a)
            return y

        return self._apply(fn, z)

    def _transform(self, X: NDArray, k: int) -> NDArray:
        if self.maps_ is None:
            raise NotLearnedError(
                "transform needs the maps to the barycenter, which were not learned "
                "(learn_transform=False). Refit with learn_transform=True."
            )
        if self.n_transform_iter_ == 0:
            raise NotLearnedError(
                "transform needs the maps to the barycenter, whose training (Algorithm 2) "
                f"never ran: the fit stopped first (stop_reason_={self.stop_reason_}). "
                "sample works; continue with partial_fit or fit with warm_start=True, or "
                "give transform a share of max_time (transform_time_fraction)."
            )
        return self._apply(lambda x: self.maps_.transport_one(x, k), X)

    def _inverse_transform(self, Y: NDArray, k: int) -> NDArray:
        return self._apply(lambda y: self.inverse_maps_.transport_one(y, k), Y)
