"""Networks a user hands in, for the tests that every role of every estimator trains them.

* :class:`UserMLP` -- a plain torch MLP taking the role's sizes, as a user writes one;
* :class:`UserConv` -- a small convolutional network on 1 x 16 x 16 images given as flat rows
  of 256 columns (other input widths are first lifted to 16 x 16 by a linear layer, as a
  DCGAN-style generator does);
* :func:`image_inputs` -- three small inputs of flat 16 x 16 "images";
* :func:`params_changed` -- whether a fitted role network moved away from a reference;
* :class:`LastTransformAverage` -- a user callback that copies the running average of the
  ``transform`` maps at the end of every iteration of that phase;
* :func:`transform_quantile_frames` -- the quantile frames of the default ``transform`` maps;
* :func:`steep_edge_error` -- how well a network's map follows an optimal map that is steep
  where a bounded input piles up its mass (the quantile features' case).
"""

from __future__ import annotations

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

SIDE = 16
N_PIXELS = SIDE * SIDE


class UserMLP(nn.Module):
    """``in_features -> hidden -> hidden -> out_features`` with SiLU activations."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UserConv(nn.Module):
    """A small CNN on 1 x 16 x 16 images given as flat rows."""

    def __init__(self, in_features: int, out_features: int, channels: int = 4) -> None:
        super().__init__()
        lift = [] if in_features == N_PIXELS else [nn.Linear(in_features, N_PIXELS)]
        self.net = nn.Sequential(
            *lift,
            nn.Unflatten(1, (1, SIDE, SIDE)),
            nn.Conv2d(1, channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(channels * (SIDE // 2) ** 2, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def image_inputs(n: int = 60, seed: int = 0) -> list[np.ndarray]:
    """Three inputs of ``n`` flat 16 x 16 images: blobs at three places, plus noise."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    out = []
    for cy, cx in [(4, 4), (8, 11), (12, 6)]:
        rows = []
        for _ in range(n):
            py, px = cy + rng.randn(), cx + rng.randn()
            img = np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / 6.0)
            rows.append(img.ravel() + 0.05 * rng.randn(N_PIXELS))
        out.append(np.asarray(rows))
    return out


def params_changed(module: nn.Module, reference: dict[str, torch.Tensor]) -> bool:
    """Whether any parameter of ``module`` differs from the ``reference`` state dict."""
    state = module.state_dict()
    return any(
        not torch.equal(state[k].detach().cpu(), v.detach().cpu())
        for k, v in reference.items()
        if k in state
    )


class LastTransformAverage(Callback):
    """Copies the estimator's running average of its maps (``_ema``) after every iteration
    of the ``transform`` phase (WIN's Algorithm 2, Generative's maps)."""

    def on_epoch_end(self, net, **kwargs):
        if net.history[-1]["phase"] == "transform":
            self.average = [t.clone() for t in net._ema]


def transform_quantile_frames(est) -> list[str] | None:
    """The frames of the quantile features of ``est.maps_.map`` (the default maps of
    ``transform``: ResidualMaps around the MLP, plus an affine part after WIN's Gaussian
    start), or None without features."""
    from skbary.nn.maps import BatchedMap

    nets = [m for m in est.maps_.map.modules() if isinstance(m, BatchedMap)]
    quantiles = nets[0].quantiles if nets else None
    return None if quantiles is None else [q.frame for q in quantiles]


def steep_edge_error(net: nn.Module, predict) -> float:
    """Mean squared error after fitting ``predict(x)`` (200 Adam steps, lr 3e-3) to the
    optimal map from an arcsine input onto a barycenter with an exponential tail,
    ``x -> (x + F_1^-1(F_0(x))) / 2``, which climbs to infinity at the arcsine's upper edge.

    ``net`` (K = 1, one feature) has its quantiles set from the 1,000 input rows first;
    ``predict`` is the map it defines (the network itself, or an ICNN's gradient).
    """
    from scipy import stats

    rng = np.random.RandomState(0)
    arcsine, expon = stats.beta(0.5, 0.5, loc=-2.0, scale=4.0), stats.expon(loc=-1.0)
    x64 = arcsine.rvs(size=(1, 1000, 1), random_state=rng)
    y = torch.tensor(0.5 * x64 + 0.5 * expon.isf(arcsine.sf(x64)), dtype=torch.float32)
    x = torch.tensor(x64, dtype=torch.float32)
    net.set_quantiles_([x[0]])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(200):
        opt.zero_grad()
        ((predict(x) - y) ** 2).mean().backward()
        opt.step()
    return float(((predict(x) - y) ** 2).mean().detach())
