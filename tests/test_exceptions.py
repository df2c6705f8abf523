"""skbary.exceptions.warn_caller: warnings raised inside the package name the user's line."""

import pytest

from skbary.exceptions import warn_caller


def test_warn_caller_names_the_calling_line_outside_the_package():
    with pytest.warns(UserWarning, match="look here") as seen:
        warn_caller("look here")
    assert seen[0].filename == __file__  # this file is outside skbary and scikit-learn


def test_warn_caller_keeps_the_category():
    with pytest.warns(RuntimeWarning):
        warn_caller("a runtime matter", RuntimeWarning)
