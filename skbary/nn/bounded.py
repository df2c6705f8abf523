"""Outputs kept in a box: a network's last layer squashed into ``[low, high]`` per feature.

Image generators end in a squashing function matched to the pixels' range: Radford et al.'s
DCGAN generators end in ``tanh`` for images scaled to [-1, 1], and the official DCGAN code
for MNIST (``Newmu/dcgan_code``, ``mnist/train_cond_dcgan.py``) in a sigmoid for pixels in
[0, 1]. :class:`BoxOutput` is that last layer for any network and any box, so that it can
be trained as part of the fit (unlike clipping the samples afterwards, which moves them away
from the barycenter: benchmarks/results/mnist.md), and :func:`resolve_bounds` turns an
estimator's ``bounds`` parameter into the box, in the data's units.

For the quadratic cost the box of the inputs' rows always holds the barycenter: every
barycenter point is a weighted mean ``sum_k a_k T_k(x)`` of points of the inputs' supports,
so each of its coordinates lies between the smallest and the largest value that coordinate
takes in the inputs. ``bounds="data"`` is that box. ``bounds="auto"`` takes it when the rows
say that it is the support's own box: when values repeat on its faces (pixels at 0 and 1,
clipped or saturated readings, counts at 0), which continuous data do not do (each face of a
continuous feature is reached by one row), so the sample's range is the law's and not an
estimate that the next draw could leave.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

__all__ = ["AUTO_MIN_SHARE", "BoxOutput", "resolve_bounds", "share_on_faces"]

#: ``bounds="auto"`` boxes the data when at least this share of the inputs' values repeat
#: a face of their box (flat MNIST 0/1: about 0.8; continuous data: 0).
AUTO_MIN_SHARE = 0.01


class BoxOutput(nn.Module):
    """``low + (high - low) * sigmoid(net(x) + offset)``: outputs squashed into a box.

    ``offset`` is fixed so that a zero output of ``net`` gives ``start`` (the data's mean,
    as an unbounded network in standardised coordinates starts there): without it a fresh
    network starts at the box's middle, grey images, and the sigmoid's logits must grow to
    several units before the background reaches its bound (MNIST 0/1, 60 s: energy
    distance 0.029 starting at the middle, 0.0071 starting at the mean). Features whose
    ``low`` equals their ``high`` are that constant.

    Parameters
    ----------
    net : torch.nn.Module
        Maps ``(B, in_features)`` to ``(B, d)`` (its outputs are the sigmoid's logits,
        less the offset).
    low, high : array-like of shape (d,)
        The box, in the coordinates the outputs are used in (an estimator's model
        coordinates); ``low <= high``.
    start : array-like of shape (d,), optional
        The output for ``net(x) = 0``, kept at least ``1e-3`` of the box's width inside
        it; the box's middle when None.
    """

    #: How close to a bound (relative to the box's width) ``start`` may be.
    MARGIN = 1e-3

    def __init__(self, net: nn.Module, low: Any, high: Any, start: Any = None) -> None:
        super().__init__()
        self.net = net
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        if low.ndim != 1 or low.shape != high.shape or (high < low).any():
            raise ValueError("BoxOutput needs 1-d low and high of one length, low <= high.")
        span = high - low
        if start is None:
            u = np.full_like(span, 0.5)
        else:
            start = np.broadcast_to(np.asarray(start, dtype=np.float64), low.shape)
            u = np.divide(start - low, span, out=np.full_like(span, 0.5), where=span > 0)
        u = np.clip(u, self.MARGIN, 1.0 - self.MARGIN)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("span", torch.as_tensor(span, dtype=torch.float32))
        self.register_buffer("offset", torch.as_tensor(np.log(u / (1.0 - u)), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rows (B, in_features) -> (B, d), each feature in ``[low, high]``."""
        return torch.addcmul(self.low, self.span, torch.sigmoid(self.net(x) + self.offset))


def share_on_faces(marginals: Sequence[NDArray], low: NDArray, high: NDArray) -> float:
    """Share of the inputs' values that repeat a face of the box ``[low, high]``.

    A value counts when it equals its feature's ``low`` or ``high`` and is not the first
    to reach that face: every face of the data's own box is reached at least once, so
    continuous data score 0 and pixels with a background at 0 score the background's share.
    """
    n_faces = np.where(high > low, 2, 1).sum()  # a constant feature has one face
    on = sum(int(((m == low) | (m == high)).sum()) for m in marginals)
    n_values = sum(m.size for m in marginals)
    return max(on - int(n_faces), 0) / max(n_values, 1)


def resolve_bounds(
    bounds: Any, marginals: Sequence[NDArray], name: str = "bounds"
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The box ``(low, high)`` of an estimator's ``bounds`` parameter, in data units.

    Parameters
    ----------
    bounds : None, "auto", "data" or (low, high)
        None: no box. ``"data"``: per feature, the smallest and largest value of the rows
        of all the inputs (the box that holds the quadratic barycenter). ``"auto"``: that
        box when at least :data:`AUTO_MIN_SHARE` of the inputs' values repeat one of its
        faces (:func:`share_on_faces`: images, clipped or count data), else None. ``(low, high)``:
        two numbers (the same for every feature, e.g. ``(0, 1)`` for pixels) or two
        arrays of one value per feature; finite, ``low <= high``, and holding every row of
        every input (a box that cuts the inputs cannot hold their barycenter).
    marginals : sequence of ndarray of shape (n_k, d)
        The inputs' rows (those the fit trains on).
    name : str
        The parameter's name, for messages.

    Returns
    -------
    tuple of two ndarray of shape (d,), or None
    """
    if bounds is None:
        return None
    d = marginals[0].shape[1]
    lows = np.min([np.min(m, axis=0) for m in marginals], axis=0)
    highs = np.max([np.max(m, axis=0) for m in marginals], axis=0)
    if isinstance(bounds, str):
        if bounds not in ("auto", "data"):
            raise ValueError(f'{name} must be None, "auto", "data" or (low, high), got {bounds!r}.')
        if bounds == "auto" and share_on_faces(marginals, lows, highs) < AUTO_MIN_SHARE:
            return None
        return lows.astype(np.float64), highs.astype(np.float64)
    if len(bounds) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {len(bounds)} entries.")
    try:
        low, high = (np.broadcast_to(np.asarray(b, dtype=np.float64), (d,)) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name}=(low, high) needs two numbers or two arrays of {d} values (one per "
            f"feature): {exc}"
        ) from exc
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError(f"{name} must be finite, got {bounds!r}.")
    if (low > high).any():
        j = int(np.argmax(low > high))
        raise ValueError(f"{name} has low > high at feature {j}: {low[j]} > {high[j]}.")
    out = (lows < low) | (highs > high)
    if out.any():
        j = int(np.argmax(out))
        raise ValueError(
            f"{name}={bounds!r} does not hold the inputs: feature {j} takes values in "
            f"[{lows[j]:.6g}, {highs[j]:.6g}], outside [{low[j]:.6g}, {high[j]:.6g}]. "
            'Widen the box, or pass bounds="data" (the inputs\' own range).'
        )
    return low.copy(), high.copy()
