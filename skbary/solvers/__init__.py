"""Trainable components shared by the methods.

* :mod:`~skbary.solvers.maxmin` -- the max-min neural OT solver: :func:`maxmin_step` (a
  potential step then map steps, any map and potential modules, congruent or with targets),
  used by NOT, WIN and Generative; :class:`MaxMinOTSolver` holds K maps and potentials;
  :func:`fit_ot_maps` trains one outside an estimator.
"""

from .maxmin import MaxMinOTSolver, fit_ot_maps, maxmin_step

__all__ = ["MaxMinOTSolver", "fit_ot_maps", "maxmin_step"]
