"""Where WIN's error on Ave, digits! comes from (benchmarks/results/ave_digits.md).

Three diagnostics on ``load_ave_digits(seed)`` (449 rows per input, 64 pixels):

* ``trajectory``: the truth's BW2-UVP of ``G(z)`` (20,000 draws) every ``--every`` outer
  iterations of Algorithm 1 (a :class:`~skbary.callbacks.HeldOutScoring` that reads the
  truth, for diagnosis only), with ``valid_loss`` when ``validation_fraction`` is given:
  does the error fall then rise (overfitting), and does the held-out score see it?
* ``spectrum``: the variance of ``G(z)`` along the truth's principal axes against the
  truth's: which directions carry the error.
* ``--gaussian-start``: WIN with G, the maps T_k and Algorithm 2's maps started at
  GaussianBarycenter's solution (affine part) plus a zero-started residual MLP: the start
  has the Gaussian's 0.25 % BW2-UVP, so a rise during training is the solver's own error.

Extra estimator parameters go as JSON; the fits train on every row without early stopping
(``early_stopping=False``, the behaviour before it existed) unless the JSON says otherwise::

    python -m benchmarks.diag_ave_digits trajectory '{"max_iter": 300}'
    python -m benchmarks.diag_ave_digits trajectory \
        '{"max_iter": 300, "validation_fraction": 0.2, "validation_interval": 10}'
    python -m benchmarks.diag_ave_digits spectrum \
        '{"max_iter": 100, "lr_generator": 1e-4, "lr_potential": 1e-4, "lr_map": 1e-4}'
    python -m benchmarks.diag_ave_digits trajectory --gaussian-start \
        '{"max_iter": 200, "transform_max_iter": 1500}'
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch
from scipy.linalg import sqrtm
from torch import nn

from skbary import GaussianBarycenter, WINBarycenter
from skbary.callbacks import HeldOutScoring
from skbary.datasets import load_ave_digits
from skbary.metrics import barycenter_moments, bw_uvp, score_benchmark
from skbary.nn.init import last_linear, zero_
from skbary.nn.mlp import MLP, BatchedLinear, BatchedMLP


class _SkipPlus(nn.Module):
    """K maps ``affine_k(x) + MLP_k(x)``."""

    def __init__(self, skip: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.skip, self.net = skip, net

    def forward(self, x):
        return self.skip(x) + self.net(x)

    def forward_one(self, x, k):
        return self.skip.forward_one(x, k) + self.net.forward_one(x, k)


class _GeneratorSkip(nn.Module):
    def __init__(self, lin: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.lin, self.net = lin, net

    def forward(self, z):
        return self.lin(z) + self.net(z)


class GaussianStartWIN(WINBarycenter):
    """WIN whose networks start at a fitted GaussianBarycenter's solution (``gauss``)."""

    gauss: GaussianBarycenter | None = None

    def _build_networks(self, K: int, d: int) -> None:
        super()._build_networks(K, d)
        g, c, s = self.gauss, self.center_, self.scale_
        m, Ms, mk = g.barycenter_mean_, g.maps_, g.means_
        width = (min(max(64, 2 * d), 512),) * 2

        def residual(net):
            zero_(last_linear(net))
            return net

        def maps(M, b):
            skip = BatchedLinear(K, d, d)
            skip.weight.data = torch.as_tensor(M, dtype=torch.float32)
            skip.bias.data = torch.as_tensor(b[:, None, :], dtype=torch.float32)
            return _SkipPlus(skip, residual(BatchedMLP(K, d, d, width, "relu")))

        with self._seeded(5):
            lin = nn.Linear(d, d)
            root = np.real(sqrtm(g.barycenter_covariance_))
            lin.weight.data = torch.as_tensor(root / s, dtype=torch.float32)
            lin.bias.data = torch.as_tensor((m - c) / s, dtype=torch.float32)
            self.generator_ = _GeneratorSkip(lin, residual(MLP(d, d, width, "relu")))
            inv = np.stack([np.linalg.inv(M) for M in Ms])  # barycenter -> input k
            b_inv = np.stack([((c - m) @ inv[k] + mk[k] - c) / s for k in range(K)])
            self.inverse_maps_.map = maps(inv, b_inv)
            if self.maps_ is not None:
                b_fwd = np.stack([((c - mk[k]) @ Ms[k] + m - c) / s for k in range(K)])
                self.maps_.map = maps(Ms, b_fwd)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", choices=["trajectory", "spectrum"])
    p.add_argument("params", nargs="?", default="{}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--gaussian-start", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    # Algorithm 2 only runs with --gaussian-start (whose final L2-UVP is reported)
    base = {"early_stopping": False, "learn_transform": args.gaussian_start}
    params = {**base, **json.loads(args.params)}
    bench = load_ave_digits(args.seed)
    mean, cov = barycenter_moments(bench)
    cls = WINBarycenter
    if args.gaussian_start:
        cls = GaussianStartWIN
        cls.gauss = GaussianBarycenter().fit(bench.marginals, bench.weights)
    callbacks = None
    if args.task == "trajectory":

        def truth(est, X, y):
            return -bw_uvp(est.sample(20_000, random_state=1), mean, cov)

        callbacks = [HeldOutScoring(truth, name="bw", every=args.every)]
    est = cls(random_state=args.seed, callbacks=callbacks, **params)
    start = time.perf_counter()
    est.fit(bench.marginals, bench.weights)
    wall = time.perf_counter() - start
    if args.task == "trajectory":
        print("| outer iteration | BW2-UVP of G(z) % (truth) | valid_loss |")
        print("|---|---|---|")
        for r in est.history_:
            if r["phase"] == "barycenter" and ("bw" in r or "valid_loss" in r):
                bw = f"{-r['bw']:.2f}" if "bw" in r else "-"
                vl = f"{r['valid_loss']:.3f}" if "valid_loss" in r else "-"
                print(f"| {r['iteration']} | {bw} | {vl} |")
    else:
        Y = est.sample(50_000, random_state=0)
        lam, U = np.linalg.eigh(cov)
        lam, U = lam[::-1], U[:, ::-1]
        var = np.einsum("ij,jk,ki->i", U.T, np.cov(Y.T), U)
        print("| principal axis of the truth | truth variance | G(z) variance |")
        print("|---|---|---|")
        for i in [0, 1, 2, 3, 5, 10, 20, 30, 40, 50, 60, 63]:
            print(f"| {i} | {lam[i]:.4g} | {var[i]:.4g} |")
        print(f"\ntotal variance: truth {lam.sum():.3f}, G(z) {var.sum():.3f}")
    bw = bw_uvp(est.sample(100_000, random_state=0), mean, cov)
    l2 = "-"
    if est.maps_ is not None:
        l2 = f"{score_benchmark(est, bench, n_samples=2, energy_samples=0)['l2_uvp_weighted']:.3f}"
    print(
        f"\nfinal: BW2-UVP {bw:.3f} %, weighted L2-UVP {l2} %, "
        f"{est.n_iter_} outer iterations, {wall:.0f} s"
    )


if __name__ == "__main__":
    main()
