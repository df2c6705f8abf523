"""Small-budget parameters of every estimator for the contract tests.

Every estimator exported by ``skbary`` is discovered by :func:`estimator_instances` and
covered by tests/test_contract.py; a new method joins by adding its entry here (fits on
a few hundred rows must finish in about a second).
"""

from __future__ import annotations

import inspect

import skbary
from skbary.base import BaseBarycenter

FAST_PARAMS: dict[str, dict] = {
    "EnergyBarycenter": {
        "max_iter": 5,
        "batch_size": 32,
        "langevin_steps": 5,
        "potential__hidden_layer_sizes": (16,),
    },
    "NOTBarycenter": {"max_iter": 5, "batch_size": 64, "n_map_steps": 1},
    "GaussianBarycenter": {},
    "GenerativeBarycenter": {"max_iter": 5, "batch_size": 32, "transform_max_iter": 3},
    "FreeSupportBarycenter": {"n_support": 20, "max_samples_per_input": 100},
    "ICNNBarycenter": {
        "max_iter": 10,
        "n_g_steps": 2,
        "n_f_steps": 1,
        "batch_size": 64,
    },
    "WINBarycenter": {
        "max_iter": 2,
        "n_generator_steps": 2,
        "n_potential_steps": 2,
        "n_map_steps": 1,
        "batch_size": 32,
        "transform_max_iter": 3,
    },
}


def estimator_classes() -> list[type[BaseBarycenter]]:
    """All estimator classes the package exports."""
    return [
        obj
        for name in skbary.__all__
        if inspect.isclass(obj := getattr(skbary, name))
        and issubclass(obj, BaseBarycenter)
        and not inspect.isabstract(obj)
    ]


def estimator_instances() -> list[BaseBarycenter]:
    """One small-budget instance per exported estimator."""
    out = []
    for cls in estimator_classes():
        if cls.__name__ not in FAST_PARAMS:
            raise KeyError(f"{cls.__name__} has no entry in tests/fast_params.py FAST_PARAMS")
        out.append(cls(**FAST_PARAMS[cls.__name__]))
    return out
