"""Trainable components shared by the methods.

* :mod:`~skbary.solvers.maxmin` -- the max-min neural OT solver: :func:`maxmin_step` (a
  potential step then map steps, any map and potential modules, congruent or with targets),
  used by NOT, WIN and Generative; :class:`MaxMinOTSolver` holds K maps and potentials;
  :func:`fit_ot_maps` trains one outside an estimator.
* :mod:`~skbary.solvers.convex` -- OT maps as gradients of input-convex potentials (the W2
  dual of Makkuva et al., NWB's inner problem with the barycenter fixed):
  :func:`fit_convex_maps`, used to map inputs unseen in fit onto a fitted barycenter.
"""

from .convex import ConvexMaps, fit_convex_maps
from .maxmin import MaxMinOTSolver, fit_ot_maps, maxmin_step

__all__ = ["ConvexMaps", "MaxMinOTSolver", "fit_convex_maps", "fit_ot_maps", "maxmin_step"]
