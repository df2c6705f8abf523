"""The input-form rule of skbary.validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skbary import GaussianBarycenter, stack
from skbary.validation import is_list_form, resolve_fit_input


def test_stack_builds_the_flat_form():
    X, y = stack([np.zeros((2, 3)), np.ones((4, 3))])
    assert X.shape == (6, 3)
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="at least one"):
        stack([])


def test_the_rule():
    assert is_list_form([np.zeros((2, 2)), np.zeros((3, 2))])
    assert is_list_form((np.zeros((2, 2)),))
    assert is_list_form([pd.DataFrame(np.zeros((2, 2)))])
    assert is_list_form([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    assert not is_list_form(np.zeros((4, 2)))
    assert not is_list_form([[1.0, 2.0], [3.0, 4.0]])  # rows of one array
    assert not is_list_form(pd.DataFrame(np.zeros((4, 2))))
    with pytest.raises(ValueError, match="mixing"):
        is_list_form([np.zeros((2, 2)), [1.0, 2.0]])
    with pytest.raises(ValueError, match="1-D arrays"):
        is_list_form([np.zeros(3), np.zeros(4)])
    with pytest.raises(TypeError):
        is_list_form(None)


def test_weights_from_positional_keyword_or_parameter():
    Xs = [np.random.RandomState(k).randn(20, 2) for k in range(2)]
    _, a, labels, *_ = resolve_fit_input(Xs, [0.3, 0.7])
    np.testing.assert_allclose(a, [0.3, 0.7])
    np.testing.assert_array_equal(labels, [0, 1])
    _, a, *_ = resolve_fit_input(Xs, None, weights=[0.6, 0.4], default_weights=[0.5, 0.5])
    np.testing.assert_allclose(a, [0.6, 0.4])
    _, a, *_ = resolve_fit_input(Xs, default_weights=[0.1, 0.9])
    np.testing.assert_allclose(a, [0.1, 0.9])
    X, y = stack(Xs)
    _, a, *_ = resolve_fit_input(X, y, weights=[0.2, 0.8], default_weights=[0.5, 0.5])
    np.testing.assert_allclose(a, [0.2, 0.8])
    with pytest.raises(ValueError, match="one entry per row"):
        resolve_fit_input(Xs, y)


def test_flat_form_labels_need_not_be_contiguous_and_k_uses_them():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.randn(30, 2), rng.randn(40, 2) + 5])
    y = np.array(["site_a"] * 30 + ["site_b"] * 40)
    est = GaussianBarycenter().fit(X, y)
    np.testing.assert_array_equal(est.input_labels_, ["site_a", "site_b"])
    np.testing.assert_allclose(est.transform(X[30:], "site_b"), est.transform(X[30:], y[30:]))
    with pytest.raises(ValueError, match="out of range"):
        est.transform(X, "site_c")


def test_transform_without_k_raises_unless_guessing_is_asked_for():
    rng = np.random.RandomState(0)
    Xs = [rng.randn(300, 2), rng.randn(300, 2) * 0.5 + 10]
    X, y = stack(Xs)
    est = GaussianBarycenter().fit(Xs)
    with pytest.raises(ValueError, match="needs k.*BarycenterMapper.*unlabelled_rows='guess'"):
        est.transform(X)
    guessing = GaussianBarycenter(unlabelled_rows="guess").fit(Xs)
    np.testing.assert_allclose(guessing.transform(X), est.transform(X, y))
    np.testing.assert_allclose(est.fit_transform(X, y), est.transform(X, y))
    single = GaussianBarycenter().fit(Xs[:1])  # one input: k is not needed
    np.testing.assert_allclose(single.transform(Xs[0]), single.transform(Xs[0], 0))


def test_dataframe_inputs_record_feature_names():
    df = pd.DataFrame(np.random.RandomState(0).randn(40, 2), columns=["u", "v"])
    est = GaussianBarycenter().fit(df, np.repeat([0, 1], 20))
    np.testing.assert_array_equal(est.feature_names_in_, ["u", "v"])
