"""OT maps as gradients of input-convex potentials: the W2 dual between samples.

For the quadratic cost the OT map from P onto Q is ``grad g`` for a convex g (Brenier), and
the minimax dual of Makkuva, Taghvaei, Oh and Lee, "Optimal transport mapping via input
convex neural networks" (ICML 2020), learns it from samples with two input-convex
potentials::

    max_f min_g  E_{y ~ P} [ f(grad g(y)) - <y, grad g(y)> ] - E_{x ~ Q} f(x)

It is NWB's inner problem (:class:`~skbary.methods.icnn.NWBIteration`) with the barycenter
held fixed, so it is solved by the same iteration with ``h=None``: K1 g steps (plus the
convexity penalty of g), then an f step with f clipped convex, K2 times per iteration.

:func:`fit_convex_maps` trains K such maps in the shared loop; the estimators use it to map
an input unseen in fit onto their fitted barycenter (``add_input``), where it is far more
accurate than the max-min solver on the same budget: on location-scatter inputs in 8
dimensions, 0.05-0.08 % L2-UVP in 1,000 iterations against 0.7-2 % (seeds 0-3).

The potentials are built by ICNN's :func:`~skbary.methods.icnn.default_potentials`: with
``quantile_features="auto"`` (up to 32 features) they hold the convex quantile term along
the directions where the source or the target is not Gaussian, knotted at their
quantiles, so that an input added to a fitted ICNN is mapped by potentials of the same
form as the fitted inputs' (on Gaussian inputs the term drops every direction and the
maps are the plain ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from skorch.history import History
from torch import nn

from ..training import LRDecay, train_module
from ..training.optim import ParameterAverage

__all__ = ["ConvexMaps", "fit_convex_maps"]

Draw = Callable[[int], torch.Tensor]


@dataclass(frozen=True)
class _Source:
    """What the iteration reads of its data source (a draw callable, as a MarginalBatches)."""

    draw: Draw
    device: torch.device
    n_features: int


class ConvexMaps(nn.Module):
    """K OT maps ``T_k = grad g_k`` with their dual potentials f_k (``grad f_k ~ T_k^-1``).

    Parameters
    ----------
    n_problems : int
        K.
    n_features : int
        d, the dimension of sources and targets.
    hidden_layer_sizes : tuple of int, default=(32, 32)
        Widths of every potential (:class:`~skbary.nn.icnn.BatchedICNN`, with its quadratic
        term, so linear maps are represented exactly).
    quantile_features : bool or {"auto", "axes", "ica", "axes+ica"}, default="auto"
        The potentials' convex quantile term (:class:`~skbary.nn.icnn.ConvexQuantileTerm`),
        set by :meth:`set_quantiles_`: "auto" is "axes+ica" along the non-Gaussian
        directions up to 32 features (ICNN's default potentials), off above; another
        value keeps every direction of its frames.
    """

    def __init__(
        self,
        n_problems: int,
        n_features: int,
        hidden_layer_sizes: tuple[int, ...] = (32, 32),
        quantile_features: bool | str = "auto",
    ) -> None:
        super().__init__()
        from ..methods.icnn import default_potentials, quantile_auto

        K, d = int(n_problems), int(n_features)
        build = default_potentials(K, d, 0, quantile_auto=quantile_auto(d, 0))
        self.f, self.g = (
            build(hidden_layer_sizes=hidden_layer_sizes, quantile_features=quantile_features)
            for _ in range(2)
        )

    def set_quantiles_(self, source: torch.Tensor, target: torch.Tensor) -> None:
        """Knot the quantile terms (if any) at draws of the sources and the targets, both
        (K, n, d): g's at source k's quantiles along its axes and ICA frame, f's (f reads
        target points) at target k's along the same directions. A direction is kept in
        both when it is kept for the source or the target."""
        if not self.g.quantiles_unset():
            return
        self.g.set_quantiles_(list(source.detach().cpu()))
        self.f.set_quantiles_(list(target.detach().cpu()), like=self.g)
        g, f = self.g.quantile_term, self.f.quantile_term
        keep = torch.maximum(g.active, f.active)
        g.set_active_(keep)
        f.set_active_(keep)

    def start_as_translations(self, shift: torch.Tensor) -> None:
        """Start ``T_k(y) = y + shift[k]`` (and ``grad f_k(x) = x - shift[k]``)."""
        self.g.set_linear_(shift)
        self.f.set_linear_(-shift)

    def transport(self, y: torch.Tensor) -> torch.Tensor:
        """Map k applied to ``y[k]``: (K, B, d) -> (K, B, d)."""
        return self.g.gradient(y)

    def transport_one(self, y: torch.Tensor, k: int) -> torch.Tensor:
        """Map k alone: (B, d) -> (B, d)."""
        return self.g.gradient(y.unsqueeze(0), index=k)[0]


def fit_convex_maps(
    draw_source: Draw,
    draw_target: Draw,
    n_problems: int,
    n_features: int,
    *,
    n_iter: int = 1000,
    deadline: float | None = None,
    batch_size: int = 256,
    n_g_steps: int = 3,
    n_f_steps: int = 2,
    convexity_penalty: float = 0.1,
    lr: float = 3e-3,
    lr_decay: float = 0.1,
    ema_decay: float = 0.99,
    hidden_layer_sizes: tuple[int, ...] = (32, 32),
    quantile_features: bool | str = "auto",
    device: torch.device | str = "cpu",
    random_state: int = 0,
) -> tuple[ConvexMaps, History]:
    """Learn K OT maps, source law k onto target law k, for the quadratic cost.

    The counterpart of :func:`~skbary.solvers.fit_ot_maps` (same draws, same loop) for
    maps that are gradients of convex potentials.

    Parameters
    ----------
    draw_source, draw_target : callable
        ``draw(batch_size) -> Tensor (K, B, d)`` on ``device``: minibatches of the K source
        and the K target laws (e.g. :meth:`MarginalBatches.draw`).
    n_problems, n_features : int
        K and d.
    n_iter : int, default=1000
        Iterations (each ``n_f_steps`` times ``n_g_steps`` g steps and one f step).
    deadline : float or None
        ``time.perf_counter()`` value after which no new iteration starts.
    batch_size : int, default=256
    n_g_steps, n_f_steps, convexity_penalty : int, int, float
        K1, K2 and lambda of Makkuva et al. / Fan et al. (NWB's defaults).
    lr : float, default=3e-3
        Adam's rate (betas (0.5, 0.9), as NWB), decayed geometrically to ``lr * lr_decay``
        over the budget (iterations or time, whichever ends first).
    ema_decay : float, default=0.99
        The maps returned are an exponential average of g's iterates (0: the last
        iterate); on location-scatter inputs in 8 dimensions it takes 1,000 iterations
        from 0.07-0.11 % to 0.05-0.08 % L2-UVP.
    hidden_layer_sizes : tuple of int, default=(32, 32)
    quantile_features : bool or str, default="auto"
        The potentials' convex quantile term (:class:`ConvexMaps`), knotted at the 4,096
        draws of each law that estimate the means.
    device : str or torch.device, default="cpu"
    random_state : int, default=0
        Seeds the potentials' initialisation.

    Returns
    -------
    maps : ConvexMaps
        Started at the translations between the means (estimated from 4,096 draws of
        each law), trained, in eval mode.
    history : skorch.history.History
        One row per iteration with the ``g`` and ``f`` losses.
    """
    from ..methods.icnn import NWBIteration

    device, K, d = torch.device(device), int(n_problems), int(n_features)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        maps = ConvexMaps(K, d, tuple(hidden_layer_sizes), quantile_features)
    maps.to(device).train()
    with torch.no_grad():  # start at the translation between the means (4,096 draws each)
        target, source = draw_target(4096), draw_source(4096)
        maps.start_as_translations(target.mean(1) - source.mean(1))
    maps.set_quantiles_(source, target)
    opt_f, opt_g = (
        torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.9)) for net in (maps.f, maps.g)
    )
    iteration = NWBIteration(
        maps.f, maps.g, None, opt_f, opt_g, None, _Source(draw_source, device, d),
        weights=torch.ones(K, device=device), weight_pool=None, batch_size=int(batch_size),
        n_g_steps=int(n_g_steps), n_f_steps=int(n_f_steps),
        convexity_penalty=float(convexity_penalty), latent="gaussian",
        generator=torch.Generator(device=device), target=draw_target,
    )  # fmt: skip
    schedule = LRDecay([opt_f, opt_g], lr_decay, "geometric", n_iter, deadline)
    average = ParameterAverage(maps.g.parameters(), ema_decay, warmup=True) if ema_decay else None

    def step(i: int) -> dict[str, torch.Tensor]:
        schedule.update(i)
        losses = iteration(i)
        if average is not None:
            average.update()
        return losses

    history = train_module(
        maps, step, n_iter=n_iter, deadline=deadline, phase="convex_maps", average=average
    )
    return maps, history
