"""Barycenters as generative models (Cohen, Arbel and Deisenroth, 2021): the estimator.

The algorithm (Algorithm 1 with the Sinkhorn, MMD and learned-kernel MMD losses, then the
maps used by ``transform``) lives in :mod:`skbary.methods.generative`; this module is its
scikit-learn interface.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ..base import NeuralBarycenter
from ..divergences import KERNELS
from ..exceptions import NotLearnedError
from ..methods import generative as method
from ..methods.generative import GaussianGenerator
from ..nn.maps import quantile_features_auto
from ..nn.potentials import WithQuadratic
from ..solvers import MaxMinOTSolver
from ..training import MarginalBatches
from ..training.optim import freeze_

__all__ = ["GenerativeBarycenter", "GaussianGenerator"]

_POSITIVE = Interval(numbers.Real, 0, None, closed="neither")
_COUNT = Interval(numbers.Integral, 1, None, closed="left")
_ROLE = [None, nn.Module, callable]


class GenerativeBarycenter(NeuralBarycenter):
    """Barycenter of K sample sets as a generative model (Cohen, Arbel, Deisenroth 2021).

    A generator ``G`` (an MLP by default) is trained by SGD on ``sum_k a_k D(G # rho, P_k)``
    with minibatches from every input (the paper's Algorithm 1); ``sample(n)`` returns
    ``G(z)`` for fresh noise z. The discrepancy D decides what kind of average you get:

    * ``divergence="sinkhorn"``: the debiased Sinkhorn divergence (GeomLoss, tensorized
      backend). Its barycenter approaches the W2 barycenter as ``blur`` -> 0: samples
      *interpolate* between the inputs (a location-scatter family averages to one Gaussian;
      digits 0 and 1 average to digits in between).
    * ``divergence="mmd"``: squared MMD with a fixed kernel. Its barycenter is the
      *mixture* ``sum_k a_k P_k`` (the paper's Proposition 2), so samples look like draws
      of one input or another.
    * ``divergence="smmd"``: MMD with a learned deep kernel ``k(phi_k(x), phi_k(y))``, one
      critic ``phi_k`` per input trained adversarially (``n_critic_steps`` critic updates
      per generator update) with the scaling regulariser of Arbel et al. (2018) or the
      gradient penalty of Binkowski et al. (2018) (the paper's appendix D.3).

    **This method does not learn transport plans.** ``transform(X, k)`` applies a map from
    input k to the learned barycenter that is fitted *after* the generator, with the shared
    reversed max-min OT solver (:class:`~skbary.solvers.MaxMinOTSolver`, as in WIN's
    Algorithm 2), within the same ``max_time``. ``learn_transform=False`` skips it
    (``sample`` only; ``transform`` then raises :class:`~skbary.NotLearnedError`).

    The data are standardised by one translation and one isotropic scale (``center_``,
    ``scale_``), which leave W2 and MMD barycenters unchanged; every generator (the default
    MLP, ``"gaussian"`` and a user's network) produces points in these standardised
    coordinates, and ``blur`` and ``bandwidth`` are in units of the data's standard
    deviation. ``standardize=False`` works in the data's own coordinates.

    Parameters
    ----------
    divergence : {"sinkhorn", "mmd", "smmd"}, default="sinkhorn"
        The discrepancy D.
    generator : None, "gaussian", torch.nn.Module class, instance or factory, default=None
        The generator G, from ``(n, latent_dim)`` noise to ``(n, n_features)`` points.
        None: an MLP (``generator__hidden_layer_sizes=(256, 256, 256)``,
        ``generator__activation="relu"``). ``"gaussian"``: :class:`GaussianGenerator`,
        ``G(z) = m + L z`` (the right family when the barycenter is known to be Gaussian:
        the paper's inductive-bias point), with a diagonal L above 512 features (no
        d x d state; ``bounds`` does not apply to it: a Gaussian squashed into a box is not
        Gaussian). A class or factory is built as ``generator(in_features=latent_dim,
        out_features=n_features, **generator__*)``; an instance is copied, not changed.
    critic : None, torch.nn.Module class, instance or factory, default=None
        SMMD: the feature network ``phi_k`` of every input (K copies), from ``n_features``
        to ``critic__n_outputs`` features (16 by default; for an instance, its own output
        width). None: an MLP (``critic__hidden_layer_sizes=(128, 128)``,
        ``critic__activation="relu"``).
    map : None, torch.nn.Module class, instance or factory, default=None
        The maps ``T_k`` of ``transform`` (K copies), ``n_features -> n_features``. None:
        ``x + MLP(x)`` starting at the identity (``map__hidden_layer_sizes=(128, 128,
        128)``, ``map__activation="relu"``, ``map__residual=True``,
        ``map__quantile_features="auto"``); a user's map is used as given
        (``T_k(x) = net_k(x)``). ``map__quantile_features`` (False, True or "axes", "ica",
        "axes+ica"): the MLP also takes the normal scores of x under input k's training
        marginals along the data axes and/or input k's independent components
        (:class:`~skbary.nn.maps.MarginalQuantiles`, as NOT's and WIN's maps), which lets
        a map follow optimal maps that are steep where a bounded input piles its mass
        against an edge; "auto" is "axes+ica" up to
        :data:`~skbary.nn.maps.QUANTILE_AUTO_MAX_FEATURES` (32) features, False above.
    potential : None, torch.nn.Module class, instance or factory, default=None
        The potentials ``v_k`` of the transform's max-min problem (K copies),
        ``n_features -> 1``. None: an MLP (``potential__hidden_layer_sizes=(128, 128,
        128)``, ``potential__activation="relu"``). ``potential__quadratic=True`` (default
        False) adds a learned quadratic form ``1/2 y^T A_k y + b_k^T y`` to the potentials
        (:class:`~skbary.nn.potentials.WithQuadratic`; "auto": for the default network
        only), as WIN's Algorithm 2 has by default; with CELU potentials (128, 128) it
        helped at 1,500 map iterations (weighted L2-UVP 2.24 -> 1.69 % and 2.41 -> 1.71 %,
        product measures D = 8) but trailed the default over the first 900 on another
        instance (2.47 % against 1.66 %), so it is not the default
        (``benchmarks/results/nongaussian.md``).
    latent_dim : int or None, default=None
        Dimension of the noise z. None: ``n_features`` (the Gaussian family needs exactly
        that), or for a module instance the ``in_features`` of its first ``nn.Linear``.
    {{bounds}}
    blur : float, default=0.3
        Sinkhorn: the entropic blur (temperature ``blur^2``, cost ``|x - y|^2 / 2``), in
        standard deviations of the data. Smaller is closer to W2 and slower (more
        annealing steps). Location-scatter D=8, K=4, 50 s on a loaded 2-core CPU
        (``debias="independent"``): BW2-UVP 0.43% (blur 0.1, 166 steps), 0.10% (0.3, 236
        steps), 0.21% (0.5, 325 steps).
    debias : {"independent", "same"}, default="independent"
        Sinkhorn: how the minibatch divergence's self-terms are formed.
        ``S = OT(x, y) - OT(x, x') / 2 - OT(y, y') / 2`` with ``y'`` a second, independent
        generator batch and ``OT(x, x')`` (no gradient) estimated once before training from
        independent input batches: the expected loss is then zero when ``G # rho`` equals the
        input, whatever the batch size. ``"same"`` uses ``y' = y`` and ``x' = x``, the
        divergence evaluated on one minibatch pair as in the paper (GeomLoss's
        ``SamplesLoss`` on minibatches); its self-terms vanish as blur -> 0 and the
        minibatch bias shrinks the barycenter: location-scatter D=8, batch 256, Gaussian
        generator, 50 s: BW2-UVP 5.9% (trace of the covariance 0.71 of the truth) with
        "same" against 0.06% with "independent".
    kernel : {"auto", "energy", "rq", "gaussian"}, default="auto"
        MMD/SMMD kernel (:func:`skbary.divergences.kernel_matrix`): the energy-distance
        kernel ``-|x - y|``, the mixture of rational quadratics (Binkowski et al. 2018) or
        the Gaussian. "auto": "energy" for ``mmd`` and "rq" (on the critic features) for
        ``smmd``. The energy kernel's long-range pull is what moves mass between separated
        inputs: on two Gaussians 6 standard deviations apart (tests/test_generative.py),
        200 steps reach the mixture with it (energy-distance ratio 0.02) while "rq" and
        "gaussian" still sit on the heavier input (ratios 0.81 and 1.30).
    bandwidth : float or sequence of float, default=1.0
        Lengthscale(s) of the rq / Gaussian kernel, in standard deviations of the data
        (or of the critic features for SMMD).
    n_critic_steps : int, default=5
        SMMD: critic updates per generator update (the paper's 5).
    lr_critic : float, default=2e-4
        SMMD: learning rate of the critics (the paper's 2e-4).
    penalty : {"scaled", "gradient"}, default="scaled"
        SMMD regulariser. ``"scaled"``: the critic maximises
        ``MMD^2 / (1 + penalty_weight * E_{P_k} |grad phi_k|_F^2)`` (Arbel et al. 2018; the
        squared Jacobian norm is estimated with one random projection per point).
        ``"gradient"``: MMD^2 minus ``penalty_weight * E (|grad w_k(x_hat)| - 1)^2`` on
        the witness function w_k at random interpolates (Binkowski et al. 2018).
    penalty_weight : float, default=1.0
        Strength of the SMMD regulariser.
    learn_transform : bool, default=True
        Fit the maps from every input to the barycenter after the generator (for
        ``transform``). False skips them; ``transform`` then raises.
    transform_max_iter : int or None, default=None
        Iterations of the max-min OT solver that fits the maps (one potential update and
        ``n_map_steps`` map updates each). None: 1000 when ``max_time`` is None; with
        ``max_time``, until the fit's time is spent. An integer is honoured either way.
    n_map_steps : int, default=5
        Map updates per potential update of the OT solver.
    lr_map : float, default=1e-3
        Learning rate of the OT maps and of their potentials.
    ema_decay : float in [0, 1), default=0.99
        The maps kept after fit (:meth:`transform`) are an exponential moving average of
        their iterates, updated after every map step (0 disables; NOT's and WIN's
        ``ema_decay``). The generator does not depend on it.
    transform_time_fraction : float in (0, 1), default=0.25
        With ``max_time`` and ``learn_transform``: the share of ``max_time`` reserved for
        the maps; the generator phase stops at ``(1 - transform_time_fraction) * max_time``.
        The maps need 1,500-3,000 iterations to settle (product measures D = 8,
        ``benchmarks/results/nongaussian.md``); on a loaded machine a quarter of 240 s
        bought 666, and half of it cost the generator more than the maps gained.
    standardize : bool or "auto", default="auto"
        Work on ``(x - center_) / scale_``. "auto": yes (the barycenter is invariant).
    {{weights}}
    {{unlabelled_rows}}
    {{dtype}}
    batch_size : int, default=256
        Points per input and from the generator at every step (at least 2).
    lr_generator : float, default=1e-3
        Learning rate of the generator.
    lr_decay : float in (0, 1], default=0.1
        The generator's learning rate falls to ``lr_generator * lr_decay`` over its phase
        (progress = the larger of the fraction of ``max_iter`` done and of the phase's time
        budget used); 1 keeps it constant. The critics and the maps keep their rates.
    lr_schedule : {"geometric", "linear"}, default="geometric"
        The curve of that decay.
    max_iter : int or None, default=None
        Generator updates. None: 2000 when ``max_time`` is None; with ``max_time``, as many
        as the generator's share of the time allows. An integer is honoured either way.
    max_time : float or None, default=None
        Seconds for the whole fit (generator, critics and maps).
        A fit stopped by ``max_time`` runs as many iterations as the machine manages, so it
        is not repeatable, even with ``random_state``; one bounded by the iteration counts
        is, bit for bit, on the CPU.
    optimizer : torch optimiser class, default=torch.optim.Adam
        Used for every network; ``optimizer__*`` parameters are passed to it.
    device : str, default="auto"
    n_threads : int or None, default=1
        torch CPU threads during fit (None keeps torch's setting). One thread is the
        faster setting for these small networks on a 2-core CPU (EgBary/NOT measured 10x
        more iterations per second with 1 than with 2 threads on a busy 2-core machine).
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
    {{training_loop_parameters}}
    **kwargs
        Network settings ``generator__*``, ``critic__*``, ``map__*``, ``potential__*``
        (see each role; for a user class, the keyword arguments it is built with;
        ``critic__n_outputs`` sets the critics' feature dimension for any critic) and
        ``optimizer__*``.

    Attributes
    ----------
    generator_ : torch.nn.Module
        The trained generator (standardised coordinates when ``standardize``).
    critics_ : torch.nn.Module or None
        SMMD: the K feature critics (a stacked module).
    maps_ : MaxMinOTSolver or None
        The maps from every input to the barycenter used by ``transform`` (``maps_.map``)
        and their potentials (``maps_.potential``).
    center_ : ndarray of shape (d,), scale_ : float
        The standardisation (0 and 1 without it).
    bounds_ : tuple of two ndarray of shape (d,), or None
        The box of ``bounds`` in the data's units (None without one).
    latent_dim_ : int
    n_iter_ : int
        Generator updates done.
    n_transform_iter_ : int
        OT solver iterations done.
    history_ : skorch History
        One row per iteration: the weighted loss (``sinkhorn``/``mmd``, or ``generator`` and
        ``critic`` for SMMD) in phase ``"generator"``, then ``potential`` and ``map`` in
        phase ``"transform"``. ``train_loss`` copies the first of them (``map`` in the
        transform phase) and ``train_loss_best`` marks its lowest value so far (the default
        monitors of ``LRScheduler`` and :class:`skbary.callbacks.EarlyStopping`); ``epoch``,
        ``phase``, ``iteration`` and ``time`` (seconds into the fit) number and date each
        row. ``len(history_) == n_iter_`` after any stop (and ``n_iter_ +
        n_transform_iter_`` with the transform phase).
    stop_reason_ : dict
        Why each phase ended ("max_iter", "max_time", "callback", "interrupted").
    fit_time_ : float

    Examples
    --------
    >>> from skbary import GenerativeBarycenter
    >>> from skbary.datasets import make_location_scatter
    >>> bench = make_location_scatter(3, 2, 1000, random_state=0)
    >>> est = GenerativeBarycenter(max_iter=50, transform_max_iter=20, random_state=0)
    >>> est.fit(bench.marginals, bench.weights).sample(4).shape
    (4, 2)
    """

    # the spread around the barycenter's mean: the measured results were made with it
    _standardisation_spread = "pooled"
    _roles = method.ROLES
    _ITERATION_CAPS = {"max_iter": 2000, "transform_max_iter": 1000}
    _parameter_constraints = {
        **NeuralBarycenter._parameter_constraints,
        "divergence": [StrOptions({"sinkhorn", "mmd", "smmd"})],
        "generator": [None, StrOptions({"gaussian"}), nn.Module, callable],
        "critic": _ROLE,
        "map": _ROLE,
        "potential": _ROLE,
        "latent_dim": [_COUNT, None],
        "bounds": [None, StrOptions({"auto", "data"}), tuple, list],
        "blur": [_POSITIVE],
        "debias": [StrOptions({"independent", "same"})],
        "kernel": [StrOptions({"auto", *KERNELS})],
        "bandwidth": [_POSITIVE, "array-like"],
        "n_critic_steps": [_COUNT],
        "lr_critic": [_POSITIVE],
        "penalty": [StrOptions({"scaled", "gradient"})],
        "penalty_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "learn_transform": ["boolean"],
        "transform_max_iter": [_COUNT, None],
        "n_map_steps": [_COUNT],
        "lr_map": [_POSITIVE],
        "ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
        "transform_time_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "lr_generator": [_POSITIVE],
    }

    def __init__(
        self,
        divergence: str = "sinkhorn",
        generator: Any = None,
        critic: Any = None,
        map: Any = None,
        potential: Any = None,
        latent_dim: int | None = None,
        bounds: Any = "auto",
        blur: float = 0.3,
        debias: str = "independent",
        kernel: str = "auto",
        bandwidth: float | tuple[float, ...] = 1.0,
        n_critic_steps: int = 5,
        lr_critic: float = 2e-4,
        penalty: str = "scaled",
        penalty_weight: float = 1.0,
        learn_transform: bool = True,
        transform_max_iter: int | None = None,
        n_map_steps: int = 5,
        lr_map: float = 1e-3,
        ema_decay: float = 0.99,
        transform_time_fraction: float = 0.25,
        standardize: bool | str = "auto",
        weights: Any = None,
        unlabelled_rows: str = "error",
        dtype: type | None = np.float64,
        batch_size: int = 256,
        lr_generator: float = 1e-3,
        lr_decay: float = 0.1,
        lr_schedule: str = "geometric",
        max_iter: int | None = None,
        max_time: float | None = None,
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
        self.divergence = divergence
        self.generator = generator
        self.critic = critic
        self.map = map
        self.potential = potential
        self.latent_dim = latent_dim
        self.bounds = bounds
        self.blur = blur
        self.debias = debias
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.n_critic_steps = n_critic_steps
        self.lr_critic = lr_critic
        self.penalty = penalty
        self.penalty_weight = penalty_weight
        self.learn_transform = learn_transform
        self.transform_max_iter = transform_max_iter
        self.n_map_steps = n_map_steps
        self.lr_map = lr_map
        self.ema_decay = ema_decay
        self.transform_time_fraction = transform_time_fraction
        self.standardize = standardize
        self.weights = weights
        self.unlabelled_rows = unlabelled_rows
        self.dtype = dtype
        self.batch_size = batch_size
        self.lr_generator = lr_generator
        self.lr_decay = lr_decay
        self.lr_schedule = lr_schedule
        self.max_iter = max_iter
        self.max_time = max_time
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

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        if self.bounds not in (None, "auto") and isinstance(self.generator, str):
            raise ValueError(
                'bounds does not apply to generator="gaussian": a Gaussian squashed into a '
                "box is not Gaussian. Use the default generator or your own network."
            )
        bws = np.atleast_1d(np.asarray(self.bandwidth, dtype=object)).ravel()
        if not len(bws) or not all(
            isinstance(b, numbers.Real) and not isinstance(b, bool) and b > 0 for b in bws
        ):
            raise ValueError(
                f"bandwidth must be a positive number or a sequence of them, got "
                f"{self.bandwidth!r}."
            )
        n_out = self._role_setting("critic", "n_outputs", None)
        if n_out is not None and (
            not isinstance(n_out, numbers.Integral) or isinstance(n_out, bool) or n_out < 1
        ):
            raise ValueError(f"critic__n_outputs must be a positive integer, got {n_out!r}.")

    def _boxes(self) -> bool:
        return not isinstance(self.generator, str)  # "gaussian": a squashed one is not

    # ------------------------------------------------------------------ networks
    def _latent_width(self, n_features: int) -> int:
        if self.latent_dim is not None:
            return int(self.latent_dim)
        if isinstance(self.generator, nn.Module):
            first = next((m for m in self.generator.modules() if isinstance(m, nn.Linear)), None)
            if first is None:
                raise ValueError(
                    "latent_dim is needed with a generator module that has no nn.Linear "
                    "layer to read its input width from."
                )
            return int(first.in_features)
        return int(n_features)

    def _critic_width(self, n_features: int) -> int:
        n_out = self._role_setting("critic", "n_outputs", None)
        if n_out is not None:
            return int(n_out)
        if isinstance(self.critic, nn.Module):  # an instance: its own output width
            with torch.no_grad():
                return int(copy.deepcopy(self.critic)(torch.zeros(2, n_features)).shape[-1])
        return 16

    def _build_networks(self, n_marginals: int, n_features: int) -> None:
        K, d = n_marginals, n_features
        self.latent_dim_ = self._latent_width(d)
        if isinstance(self.generator, str):  # "gaussian"
            if self.latent_dim_ != d:
                raise ValueError(
                    f"generator='gaussian' needs latent_dim=None or n_features={d}, got "
                    f"{self.latent_dim!r}."
                )
            if self._nested("generator"):
                raise TypeError(
                    "generator__* settings do not apply to generator='gaussian'; got "
                    f"{sorted(self._nested('generator'))}."
                )
            diagonal = d > method.GAUSSIAN_FULL_MAX_FEATURES
            self.generator_ = GaussianGenerator(d, diagonal=diagonal)
        else:
            self.generator_ = self._network(
                "generator",
                in_features=self.latent_dim_,
                out_features=d,
                default=method.default_generator(self.latent_dim_, d),
            )
            self.generator_ = self._boxed(self.generator_)
        self.critics_ = None
        if self.divergence == "smmd":
            n_out = self._critic_width(d)
            with self._seeded(2):
                self.critics_ = self._network(
                    "critic",
                    in_features=d,
                    out_features=n_out,
                    default=method.default_stack(K, d, n_out),
                )
        self.maps_ = None
        if self.learn_transform:
            with self._seeded(1):
                auto = quantile_features_auto(True, d)  # the quadratic cost
                maps = self._network(
                    "map",
                    in_features=d,
                    out_features=d,
                    default=method.default_maps(K, d, quantile_auto=auto),
                )
                potentials = self._network(
                    "potential",
                    in_features=d,
                    out_features=1,
                    default=method.default_stack(K, d, 1),
                )
            if self._quadratic_part("potential", auto=self._uses_default("potential")):
                potentials = WithQuadratic(potentials, K, d)
            self.maps_ = MaxMinOTSolver(K, d, map=maps, potential=potentials)

    # ------------------------------------------------------------------ fit
    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn((n, self.latent_dim_), generator=self._generator, device=self.device_)

    def _train(self, data: MarginalBatches, weights: NDArray) -> None:
        a = torch.as_tensor(weights, dtype=torch.float32, device=self.device_)
        # the maps' quantile features (if any) from input k's training rows, once; set first,
        # so that their cost (FastICA) comes out of the generator's share of max_time and a
        # short fit still leaves the maps their own
        if self.maps_ is not None:
            self._set_map_quantiles(self.maps_.map, data)
        B = int(self.batch_size)
        g_opt = self._make_optimizer(self.generator_.parameters(), float(self.lr_generator))
        common = {
            "generator": self.generator_,
            "draw_inputs": data.draw,
            "draw_noise": self._noise,
            "weights": a,
            "batch_size": B,
        }
        if self.divergence == "smmd":
            step = method.smmd_step(
                **common,
                critics=self.critics_,
                generator_optimizer=g_opt,
                critic_optimizer=self._make_optimizer(
                    self.critics_.parameters(), float(self.lr_critic)
                ),
                n_critic_steps=self.n_critic_steps,
                kernel="rq" if self.kernel == "auto" else self.kernel,
                bandwidth=self.bandwidth,
                penalty=self.penalty,
                penalty_weight=self.penalty_weight,
                rng=self._generator,
            )
        elif self.divergence == "sinkhorn":
            step = method.sinkhorn_step(
                **common, optimizer=g_opt, blur=float(self.blur), debias=self.debias
            )
        else:
            step = method.mmd_step(
                **common,
                optimizer=g_opt,
                kernel="energy" if self.kernel == "auto" else self.kernel,
                bandwidth=self.bandwidth,
            )
        fraction = 1.0 - self.transform_time_fraction if self.learn_transform else 1.0
        self.generator_.train()
        for p, trainable in zip(self.generator_.parameters(), self.__dict__.get("_trainable", ())):
            p.requires_grad_(trainable)  # a warm start continues the generator frozen below
        self.n_iter_ = self._run(
            step,
            n_iter=self._n_iter("max_iter"),
            deadline=self._deadline(fraction),
            phase="generator",
            decay=[g_opt],
            train_loss={"smmd": "generator"}.get(self.divergence, self.divergence),
        )
        self._trainable = [p.requires_grad for p in self.generator_.parameters()]
        freeze_(self.generator_.eval())

        self.n_transform_iter_ = 0
        if self.maps_ is None:
            return
        lr = float(self.lr_map)
        with self._averaged_networks(
            self.maps_.map.parameters(), self.ema_decay, "transform"
        ) as avg:
            step = method.transform_step(
                maps=self.maps_,
                generator=self.generator_,
                draw_inputs=data.draw,
                draw_noise=self._noise,
                n_features=self.n_features_in_,
                map_optimizer=self._make_optimizer(self.maps_.map.parameters(), lr),
                potential_optimizer=self._make_optimizer(self.maps_.potential.parameters(), lr),
                batch_size=B,
                n_map_steps=self.n_map_steps,
                average=avg,
            )
            self.maps_.train()
            self.n_transform_iter_ = self._run(
                step,
                n_iter=self._n_iter("transform_max_iter"),
                deadline=self._deadline(),
                phase="transform",
                train_loss="map",
            )
        self.maps_.eval()

    # ------------------------------------------------------------------ inference
    def _divergence_hint(self, loss_name: str) -> str:
        if loss_name in ("potential", "map", "transport_cost"):
            return (
                f"The {loss_name} networks of the OT solver fitted for transform diverged. "
                "Lower lr_map (e.g. halve it) or enlarge batch_size."
            )
        if loss_name == "critic":
            return (
                "The SMMD critics diverged. Lower lr_critic (e.g. halve it) or raise "
                "penalty_weight."
            )
        return (
            f"The generator trained on the {loss_name!r} loss diverged. Lower lr_generator "
            "(e.g. halve it) or enlarge batch_size."
        )

    def _sample(self, n: int, rng: np.random.RandomState) -> NDArray:
        return self._apply(self.generator_, self._randn((n, self.latent_dim_), rng))

    def _transform(self, X: NDArray, k: int) -> NDArray:
        if self.maps_ is None:
            raise NotLearnedError(
                "transform needs the maps to the barycenter, which were not fitted "
                "(learn_transform=False). Refit with learn_transform=True."
            )
        if self.n_transform_iter_ == 0:
            raise NotLearnedError(
                "transform needs the maps to the barycenter, whose training never ran: the "
                f"fit stopped first (stop_reason_={self.stop_reason_}). sample works; "
                "continue with partial_fit or fit with warm_start=True, or give transform a "
                "share of max_time (transform_time_fraction)."
            )
        # float64 inference: every row's image is independent of the other rows to
        # round-off far below float32's (scikit-learn's sample-order invariance check).
        maps = copy.deepcopy(self.maps_).double()
        return self._apply(lambda x: maps.transport_one(x, k), X, dtype=torch.float64)
