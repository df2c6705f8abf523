"""Network building blocks shared by the estimators.

* :mod:`~skbary.nn.mlp` -- MLPs, and K MLPs fused into one batched module (the defaults);
* :mod:`~skbary.nn.stacking` -- K copies of any module batched with ``torch.func``;
* :mod:`~skbary.nn.roles` -- networks the user hands in (``map=``, ``potential=``, ...);
* :mod:`~skbary.nn.init` -- identity and affine starts;
* :mod:`~skbary.nn.conv` -- convolutional networks for images given as flat rows (a ResNet
  potential/critic, a UNet map, a DCGAN generator and critic) and :func:`image_networks`;
* :mod:`~skbary.nn.bounded` -- outputs squashed into a box (the estimators' ``bounds``);
* :mod:`~skbary.nn.maps`, :mod:`~skbary.nn.potentials`, :mod:`~skbary.nn.icnn` -- transport
  maps, congruent potentials, input-convex networks.
"""

from .bounded import BoxOutput
from .conv import ConvCritic, ConvGenerator, ConvMap, ConvPotential, image_networks
from .icnn import FICNN
from .mlp import MLP, BatchedLinear, BatchedMLP, make_activation
from .potentials import CongruentPotentials
from .roles import Role, build_network
from .stacking import StackedModules

__all__ = [
    "FICNN",
    "MLP",
    "BatchedLinear",
    "BatchedMLP",
    "BoxOutput",
    "CongruentPotentials",
    "ConvCritic",
    "ConvGenerator",
    "ConvMap",
    "ConvPotential",
    "Role",
    "StackedModules",
    "build_network",
    "image_networks",
    "make_activation",
]
