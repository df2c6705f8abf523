"""Convolutional networks for images given as flat rows, for every role of every estimator.

Scaled-down versions of what the papers train on images:

* :class:`ConvPotential` -- a ResNet critic (image -> ``out_features`` numbers): the
  ``ResNet_D`` of the NOT barycenter code, ``src/models.py`` (Mescheder et al.'s critic:
  residual blocks with a 0.1 residual ratio, pixel normalisation, average-pool downsampling
  to 4 x 4, a linear head); for potentials, critics and SMMD feature networks;
* :class:`ConvMap` -- a UNet (image -> image of the same shape, or several images): the
  NOT barycenter code's transport maps (there with batch norm and 4 levels at 32 x 32);
  extra input columns (a stochastic plan's noise, NWB-II's weight vector) enter as extra
  channels, and the map starts near the identity;
* :class:`ConvGenerator` -- a DCGAN generator (latent row -> image): a linear layer to a
  4 x 4-ish grid, then transposed convolutions doubling the side (Radford et al.'s layout;
  group norm for batch norm), for the generator roles of WIN, ICNN and Generative;
* :class:`ConvCritic` -- a DCGAN discriminator (image -> ``out_features`` numbers): strided
  4 x 4 convolutions halving the side, a linear head; the "DCGAN-like critics" of Cohen et
  al.'s SMMD experiments (their appendix D.3); at 16 channels about ten times cheaper per
  image than the ResNet at 8, which is what makes ten of them affordable on a CPU.

Every network takes and returns flat rows, ``(B, in_features) -> (B, out_features)``, so
each is a role network as :mod:`skbary.nn.roles` builds it: pass the class as the role
parameter (``NOTBarycenter(map=ConvMap, potential=ConvPotential)``) and its settings as
``role__*`` (``map__channels=32``). The image shape ``(C, H, W)``:

* is inferred from the role's sizes when it is not given: the image side of the network
  (the input of a potential, the smaller of a map's input and output, the output of a
  generator) must then be a square grey (``H * H``) or colour (``3 * H * H``) image, which
  are never ambiguous;
* or is given once for all the roles of an estimator by :func:`image_networks`
  (``NOTBarycenter(**image_networks(NOTBarycenter, (3, 32, 32)))``), or per role as
  ``role__image_shape``.

No batch normalisation: the methods evaluate the K per-input copies of a network in one
``torch.func.vmap`` call (:class:`~skbary.nn.stacking.StackedModules`), which batch
statistics updated in place would break; the ResNet uses pixel normalisation, as the
papers' code does, and the UNet and the generator group normalisation, both per sample.
No state grows with the number of pixels squared.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .activations import get_activation, make_activation
from .init import scale_

__all__ = [
    "ConvCritic",
    "ConvGenerator",
    "ConvMap",
    "ConvPotential",
    "image_networks",
    "infer_image_shape",
]

ImageShape = tuple[int, int, int]


def infer_image_shape(n_features: int, image_shape: Sequence[int] | None = None) -> ImageShape:
    """The ``(C, H, W)`` of images with ``n_features`` pixels.

    Parameters
    ----------
    n_features : int
        Values per image.
    image_shape : sequence of int, optional
        ``(C, H, W)`` or ``(H, W)`` (one channel); checked against ``n_features``. When None,
        a square grey image (``n_features = H * H``) or a square colour one
        (``3 * H * H``); no width is both.

    Returns
    -------
    tuple of 3 int
    """
    n = int(n_features)
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) or (H, W), got {image_shape!r}.")
        if math.prod(shape) != n:
            raise ValueError(
                f"image_shape {shape} has {math.prod(shape)} values but the rows have {n}."
            )
        return shape  # type: ignore[return-value]
    for channels in (1, 3):
        side = math.isqrt(n // channels)
        if n % channels == 0 and side * side * channels == n and side > 0:
            return (channels, side, side)
    raise ValueError(
        f"rows of {n} values are not square grey (H * H) or colour (3 * H * H) images: give "
        "the shape, image_networks(estimator, image_shape=(C, H, W)) or role__image_shape."
    )


def _image_shape(image_shape: Sequence[int] | None, n_features: int) -> ImageShape:
    """The given shape, checked, or the one inferred from ``n_features`` image values."""
    if image_shape is None:
        return infer_image_shape(n_features)
    return infer_image_shape(math.prod(int(s) for s in image_shape), image_shape)


def _n_levels(height: int, width: int, n_levels: int | None) -> int:
    """Halvings of the image (both sides even each time, the smaller ending at least 4)."""
    if n_levels is not None:
        factor = 2 ** int(n_levels)
        if int(n_levels) < 0 or height % factor or width % factor:
            raise ValueError(f"n_levels={n_levels} does not halve {height} x {width} images.")
        return int(n_levels)
    levels = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width = height // 2, width // 2
        levels += 1
    return levels


def _width(channels: int, level: int, max_channels: int) -> int:
    return min(int(channels) * 2**level, int(max_channels))


def _group_norm(width: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(width, 8), width)


def _activation(name: str) -> nn.Module:
    """An activation module by name; LeakyReLU with the GANs' slope 0.2."""
    if name == "leaky_relu":
        return get_activation(name).with_params(negative_slope=0.2).module()
    return make_activation(name)


class PixelNorm(nn.Module):
    """Each pixel's feature vector divided by its root mean square (per sample)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class ResBlock(nn.Module):
    """``act(shortcut(x) + res_ratio * conv(act(norm(conv(x)))))`` (Mescheder et al.'s block)."""

    def __init__(
        self, fin: int, fout: int, activation: str, res_ratio: float, pixel_norm: bool
    ) -> None:
        super().__init__()
        hidden = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, hidden, 3, padding=1)
        self.conv_1 = nn.Conv2d(hidden, fout, 3, padding=1)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()
        self.shortcut = nn.Conv2d(fin, fout, 1, bias=False) if fin != fout else nn.Identity()
        self.act = _activation(activation)
        self.res_ratio = float(res_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.conv_1(self.act(self.norm(self.conv_0(x))))
        return self.act(self.shortcut(x) + self.res_ratio * self.norm(dx))


class _Rows(nn.Module):
    """Shared reading of flat rows: the image part, and extra columns as extra channels."""

    def _setup_rows(self, in_features: int, shape: ImageShape) -> int:
        """Record the layout; returns the channels the network sees."""
        self.image_shape = shape
        self.n_pixels = math.prod(shape)
        C, H, W = shape
        extra = int(in_features) - self.n_pixels
        if extra < 0:
            raise ValueError(
                f"rows of {in_features} values hold no {shape} image ({self.n_pixels} values)."
            )
        self.n_extra = extra
        # extra columns: whole images become channels (a plan's noise), others are lifted
        # to one channel by a linear layer (a weight vector, a short code)
        self.lift = nn.Linear(extra, H * W) if extra and extra % (H * W) else None
        extra_channels = 0 if not extra else (1 if self.lift is not None else extra // (H * W))
        return C + extra_channels

    def _image_and_extra(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        C, H, W = self.image_shape
        B = x.shape[0]
        image = x[:, : self.n_pixels].reshape(B, C, H, W)
        if not self.n_extra:
            return image, image
        extra = x[:, self.n_pixels :]
        extra = self.lift(extra) if self.lift is not None else extra
        return image, torch.cat([image, extra.reshape(B, -1, H, W)], dim=1)


class ConvPotential(_Rows):
    """A ResNet critic: flat images -> ``out_features`` values (ResNet_D, scaled down).

    ``conv 3x3 -> [ResBlock, ResBlock(width x 2), avg-pool / 2] per level -> linear``, the
    width doubling at each level up to ``max_channels``, down to a 4 x 4-ish grid.

    Parameters
    ----------
    in_features : int
        Values per row: one image (more columns enter as extra channels).
    out_features : int, default=1
        Outputs (1 for a potential; a critic's feature count).
    image_shape : sequence of int, optional
        ``(C, H, W)``; inferred from ``in_features`` when None (see
        :func:`infer_image_shape`).
    channels : int, default=16
        Width of the first level (the papers use 64 at 32 x 32 and 64 x 64).
    max_channels : int, default=128
    n_levels : int, optional
        Downsamplings (default: halve the side while it stays even and at least 4).
    activation : str, default="leaky_relu"
        Hidden activation ("leaky_relu" has slope 0.2, as in ResNet_D; "celu" or "silu" give
        the smooth gradients Langevin sampling likes).
    res_ratio : float, default=0.1
        Factor on each block's residual branch.
    pixel_norm : bool, default=True
        Pixel normalisation inside the blocks.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        image_shape: Sequence[int] | None = None,
        channels: int = 16,
        max_channels: int = 128,
        n_levels: int | None = None,
        activation: str = "leaky_relu",
        res_ratio: float = 0.1,
        pixel_norm: bool = True,
    ) -> None:
        super().__init__()
        shape = _image_shape(image_shape, in_features)
        cin = self._setup_rows(in_features, shape)
        _, H, W = shape
        levels = _n_levels(H, W, n_levels)
        w0 = _width(channels, 0, max_channels)
        self.conv_img = nn.Conv2d(cin, w0, 3, padding=1)
        self.act = _activation(activation)
        blocks: list[nn.Module] = []
        for level in range(levels + 1):
            fin = _width(channels, level, max_channels)
            fout = _width(channels, level + 1, max_channels)
            if level:
                blocks.append(nn.AvgPool2d(3, stride=2, padding=1))
            blocks += [
                ResBlock(fin, fin, activation, res_ratio, pixel_norm),
                ResBlock(fin, fout, activation, res_ratio, pixel_norm),
            ]
        self.blocks = nn.Sequential(*blocks)
        side_h, side_w = H // 2**levels, W // 2**levels
        width = _width(channels, levels + 1, max_channels)
        self.fc = nn.Linear(width * side_h * side_w, int(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rows (B, in_features) -> (B, out_features)."""
        _, h = self._image_and_extra(x)
        h = self.blocks(self.act(self.conv_img(h)))
        return self.fc(h.flatten(1))


class _DoubleConv(nn.Sequential):
    """``(conv 3x3 -> group norm -> act) x 2`` (the UNet's block, group norm for batch norm)."""

    def __init__(self, fin: int, fout: int, activation: str, norm: bool) -> None:
        layers: list[nn.Module] = []
        for a, b in ((fin, fout), (fout, fout)):
            layers += [nn.Conv2d(a, b, 3, padding=1)]
            if norm:
                layers.append(_group_norm(b))
            layers.append(_activation(activation))
        super().__init__(*layers)


class ConvMap(_Rows):
    """A UNet transport map on flat images: ``x -> x + unet([x, extra])`` (scaled down).

    ``[DoubleConv, avg-pool / 2] per level, DoubleConv at the bottom, then [upsample x 2,
    concatenate the skip, DoubleConv] per level, conv 1x1``. The rows hold the image first;
    further columns (a stochastic plan's noise, a weight vector) enter as extra channels
    (whole images of noise) or through a linear layer to one channel. The output is
    ``out_features / (H * W)`` channels, e.g. one image, or two for a Gaussian plan's mean
    and log-std offset; with ``skip`` the input image is added to the first ``C`` of them
    and the last layer starts small, so a fresh map is close to the identity.

    Parameters
    ----------
    in_features : int
        Values per row: the image, then any extra columns.
    out_features : int
        A multiple of the image's ``H * W``.
    image_shape : sequence of int, optional
        ``(C, H, W)`` of the image; inferred from ``min(in_features, out_features)`` when
        None (see :func:`infer_image_shape`).
    channels : int, default=16
        Width of the first level (the NOT code uses 48 at 32 x 32).
    max_channels : int, default=128
    n_levels : int, optional
        Downsamplings (default: halve the side while it stays even and at least 4).
    activation : str, default="silu"
    norm : bool, default=True
        Group normalisation after each convolution.
    skip : bool, default=True
        Add the input image to the output (the map starts near the identity).
    init_scale : float, default=0.1
        Factor on the last layer's initial weights.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        image_shape: Sequence[int] | None = None,
        channels: int = 16,
        max_channels: int = 128,
        n_levels: int | None = None,
        activation: str = "silu",
        norm: bool = True,
        skip: bool = True,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        shape = _image_shape(image_shape, min(int(in_features), int(out_features)))
        cin = self._setup_rows(in_features, shape)
        C, H, W = shape
        if int(out_features) % (H * W):
            raise ValueError(
                f"ConvMap outputs whole {H} x {W} images; out_features={out_features} is not "
                f"a multiple of {H * W}."
            )
        self.out_channels = int(out_features) // (H * W)
        self.skip = bool(skip) and self.out_channels >= C
        levels = _n_levels(H, W, n_levels)
        widths = [_width(channels, i, max_channels) for i in range(levels + 1)]
        self.inc = _DoubleConv(cin, widths[0], activation, norm)
        self.downs = nn.ModuleList(
            _DoubleConv(widths[i], widths[i + 1], activation, norm) for i in range(levels)
        )
        self.ups = nn.ModuleList(
            _DoubleConv(widths[i + 1] + widths[i], widths[i], activation, norm)
            for i in reversed(range(levels))
        )
        self.pool = nn.AvgPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.outc = nn.Conv2d(widths[0], self.out_channels, 1)
        scale_(self.outc, init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rows (B, in_features) -> (B, out_features)."""
        image, h = self._image_and_extra(x)
        h = self.inc(h)
        skips = [h]
        for down in self.downs:
            h = down(self.pool(h))
            skips.append(h)
        skips.pop()
        for up in self.ups:
            h = up(torch.cat([self.up(h), skips.pop()], dim=1))
        out = self.outc(h)
        if self.skip:
            C = self.image_shape[0]
            out = torch.cat([out[:, :C] + image, out[:, C:]], dim=1)
        return out.flatten(1)


class ConvGenerator(nn.Module):
    """A DCGAN generator: latent rows -> flat images (scaled down).

    ``[linear, act] per hidden layer -> linear -> (width, h0, w0) -> [transposed conv 4x4 /
    2, group norm, act] per level -> conv 3x3 to the image's channels``, the width halving
    at each level; ``h0 = H / 2^L``. The official DCGAN code for MNIST
    (``Newmu/dcgan_code``, ``mnist/train_cond_dcgan.py``) has one hidden fully connected
    layer (1024 units) before the 7 x 7 grid and ends in a sigmoid; here the output is
    unbounded (the estimators' ``bounds`` add the sigmoid, in the data's range).

    Parameters
    ----------
    in_features : int
        The latent dimension (any width: the linear layer lifts it).
    out_features : int
        A multiple of the image's size (one image per output row, or several stacked as
        channels).
    image_shape : sequence of int, optional
        ``(C, H, W)``; inferred from ``out_features`` when None.
    channels : int, default=16
        Width at full resolution (doubling towards the smallest grid).
    max_channels : int, default=128
    n_levels : int, optional
        Upsamplings (default: halve the side while it stays even and at least 4).
    activation : str, default="relu"
    norm : bool, default=True
        Group normalisation after the linear layer and each transposed convolution.
    hidden_layer_sizes : sequence of int, default=()
        Fully connected layers from the latent to the grid's linear layer (DCGAN's MNIST
        generator: one of 1024).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        image_shape: Sequence[int] | None = None,
        channels: int = 16,
        max_channels: int = 128,
        n_levels: int | None = None,
        activation: str = "relu",
        norm: bool = True,
        hidden_layer_sizes: Sequence[int] = (),
    ) -> None:
        super().__init__()
        shape = _image_shape(image_shape, int(out_features))
        self.image_shape = shape
        C, H, W = shape
        levels = _n_levels(H, W, n_levels)
        self.start = (_width(channels, levels, max_channels), H // 2**levels, W // 2**levels)
        stem: list[nn.Module] = []
        width = int(in_features)
        for hidden in hidden_layer_sizes:
            stem += [nn.Linear(width, int(hidden)), _activation(activation)]
            width = int(hidden)
        stem.append(nn.Linear(width, math.prod(self.start)))
        self.fc = nn.Sequential(*stem) if len(stem) > 1 else stem[0]
        layers: list[nn.Module] = []
        if norm:
            layers.append(_group_norm(self.start[0]))
        layers.append(_activation(activation))
        for level in reversed(range(levels)):
            fin = _width(channels, level + 1, max_channels)
            fout = _width(channels, level, max_channels)
            layers.append(nn.ConvTranspose2d(fin, fout, 4, stride=2, padding=1))
            if norm:
                layers.append(_group_norm(fout))
            layers.append(_activation(activation))
        out_channels = int(out_features) // (H * W)
        layers.append(nn.Conv2d(_width(channels, 0, max_channels), out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Latent rows (B, in_features) -> (B, out_features)."""
        h = self.fc(z).reshape(z.shape[0], *self.start)
        return self.body(h).flatten(1)


class ConvCritic(_Rows):
    """A DCGAN critic: flat images -> ``out_features`` values (Radford et al., scaled down).

    ``[conv 4x4 / 2, act] per level -> linear``, the width doubling at each level up to
    ``max_channels``, down to a 4 x 4-ish grid: the discriminator of DCGAN without its batch
    normalisation (the K stacked copies are evaluated in one ``vmap`` call, and the
    gradient penalties of SMMD critics are per sample anyway). Cohen et al. train "DCGAN-like"
    critics for their SMMD barycenters of MNIST and CelebA; pass it as
    ``GenerativeBarycenter(critic=ConvCritic)`` or
    ``image_networks(GenerativeBarycenter, shape, critic=ConvCritic)``.

    Parameters
    ----------
    in_features : int
        Values per row: one image (more columns enter as extra channels).
    out_features : int, default=1
        Outputs (an SMMD critic's feature count).
    image_shape : sequence of int, optional
        ``(C, H, W)``; inferred from ``in_features`` when None (see
        :func:`infer_image_shape`).
    channels : int, default=16
        Width of the first convolution (DCGAN uses 64 at 64 x 64).
    max_channels : int, default=128
    n_levels : int, optional
        Strided convolutions (default: halve the side while it stays even and at least 4).
    activation : str, default="leaky_relu"
        Hidden activation ("leaky_relu" has DCGAN's slope 0.2).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        image_shape: Sequence[int] | None = None,
        channels: int = 16,
        max_channels: int = 128,
        n_levels: int | None = None,
        activation: str = "leaky_relu",
    ) -> None:
        super().__init__()
        shape = _image_shape(image_shape, in_features)
        fin = self._setup_rows(in_features, shape)
        _, H, W = shape
        levels = _n_levels(H, W, n_levels)
        layers: list[nn.Module] = []
        for level in range(levels):
            fout = _width(channels, level, max_channels)
            layers += [nn.Conv2d(fin, fout, 4, stride=2, padding=1), _activation(activation)]
            fin = fout
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(fin * (H // 2**levels) * (W // 2**levels), int(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rows (B, in_features) -> (B, out_features)."""
        _, h = self._image_and_extra(x)
        return self.fc(self.body(h).flatten(1))


#: The convolutional network of each role name.
ROLE_NETWORKS: dict[str, type[nn.Module]] = {
    "map": ConvMap,
    "inverse_map": ConvMap,
    "potential": ConvPotential,
    "critic": ConvPotential,
    "generator": ConvGenerator,
}


def image_networks(
    estimator: Any, image_shape: Sequence[int], **roles: Callable[..., nn.Module]
) -> dict[str, Callable[..., nn.Module]]:
    """The convolutional network of every role of ``estimator``, for images of one shape.

    Returns the role parameters to pass to the estimator, each a factory
    (``functools.partial`` of :class:`ConvMap`, :class:`ConvPotential` or
    :class:`ConvGenerator` with ``image_shape`` bound), so that the shape is given once::

        est = NOTBarycenter(**image_networks(NOTBarycenter, data.image_shape), max_time=60)

    Roles that must be input-convex (ICNN's ``f`` and ``g``) keep their default networks.
    The networks' other settings stay ``role__*`` parameters of the estimator
    (``map__channels=32``).

    Parameters
    ----------
    estimator : estimator class or instance
    image_shape : sequence of int
        ``(C, H, W)`` (or ``(H, W)``) of the images the rows hold.
    **roles : callable
        Another network class for a role name (``potential=MyResNet``); it is bound to
        ``image_shape`` too, so it must take that keyword.

    Returns
    -------
    dict
        Role name -> factory.
    """
    shape = tuple(int(s) for s in image_shape)
    infer_image_shape(math.prod(shape), shape)  # checks the shape
    known = getattr(estimator, "_roles", None)
    if not known:
        raise TypeError(f"{estimator!r} is not a neural barycenter estimator (it has no roles).")
    unknown = sorted(set(roles) - set(known))
    if unknown:
        raise ValueError(f"{unknown} are not network roles of {estimator!r}: {sorted(known)}.")
    out = {}
    for name, role in known.items():
        cls = roles.get(name, ROLE_NETWORKS.get(name))
        if cls is None or role.convex or role.batched:
            continue
        out[name] = functools.partial(cls, image_shape=shape)
    return out
