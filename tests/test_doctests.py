"""The Examples section of every public estimator (and of the mapper and scorers) runs."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import skbary
from tests.fast_params import estimator_classes

OBJECTS = [*estimator_classes(), skbary.BarycenterMapper, skbary.scorers.get_scorer]
OBJECTS.append(skbary.GaussianBarycenter.from_moments)
OBJECTS.append(skbary.InputStream)


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o.__qualname__)
def test_examples_run(obj):
    assert "Examples\n" in (obj.__doc__ or ""), f"{obj.__qualname__} has no Examples section"
    tests = doctest.DocTestFinder(recurse=False).find(obj, globs={"np": np})
    assert tests and tests[0].examples
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} failing example(s) in {obj.__qualname__}"
