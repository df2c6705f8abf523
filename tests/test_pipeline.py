"""BarycenterMapper: a barycenter inside Pipelines, cross-validation and grid search."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skbary import BarycenterMapper, FreeSupportBarycenter, GaussianBarycenter
from skbary.metrics import energy_distance


def _grouped(n=900, d=3, seed=0, base="skewed"):
    """Rows of 3 groups that are affine images of one latent law, and a label of the latent.

    Group g sees ``z W_g + m_g`` with z drawn from a skewed (exponential) law, so the groups
    are not Gaussian but differ only by an affine map: the Gaussian barycenter's maps align
    them exactly in distribution. The label depends on z, as in a fairness or domain
    problem where the group distorts the measurement of the same quantity.
    """
    rng = np.random.RandomState(seed)
    g = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    z = rng.exponential(size=(n, d)) - 1.0 if base == "skewed" else rng.randn(n, d)
    W = [np.eye(d), np.diag([2.0, 0.5, 1.5][:d]), np.diag([0.7, 1.8, 1.0][:d])]
    shifts = [np.zeros(d), np.full(d, 2.0), np.linspace(-3.0, 3.0, d)]
    F = np.empty((n, d))
    for k in range(3):
        F[g == k] = z[g == k] @ W[k] + shifts[k]
    y = (z.sum(axis=1) > 0).astype(int)
    return F, g, y


def _pipe(**kw):
    return make_pipeline(
        BarycenterMapper(GaussianBarycenter(), group_column=-1, **kw), LogisticRegression()
    )


def _max_pairwise_energy(Z, g):
    labels = np.unique(g)
    return max(
        energy_distance(Z[g == a], Z[g == b]) for i, a in enumerate(labels) for b in labels[i + 1 :]
    )


# -------------------------------------------------------------------- the acceptance checks
def test_pipeline_fits_predicts_cross_validates_and_aligns_groups():
    F, g, y = _grouped()
    X = np.column_stack([F, g])
    pipe = _pipe().fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (len(X),) and set(pred) <= {0, 1}
    scores = cross_val_score(_pipe(), X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.9)

    # the groups are distinguishable before mapping and not after
    Z = pipe[0].transform(X)
    before, after = _max_pairwise_energy(F, g), _max_pairwise_energy(Z, g)
    assert before > 0.5
    assert after < 0.05 * before, (before, after)


def test_mapping_helps_the_classifier_that_cannot_see_the_group():
    F, g, y = _grouped(seed=1)
    X = np.column_stack([F, g])
    raw = cross_val_score(LogisticRegression(), F, y, cv=3).mean()
    mapped = cross_val_score(_pipe(), X, y, cv=3).mean()
    assert mapped > raw + 0.05, (raw, mapped)


def test_routed_groups_in_a_pipeline():
    F, g, y = _grouped()
    X = np.column_stack([F, g])
    reference = _pipe().fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        mapper = (
            BarycenterMapper(GaussianBarycenter())
            .set_fit_request(groups=True)
            .set_transform_request(groups=True)
        )
        pipe = make_pipeline(mapper, LogisticRegression()).fit(F, y, groups=g)
        np.testing.assert_allclose(
            pipe.predict_proba(F, groups=g), reference.predict_proba(X), rtol=1e-10
        )
        np.testing.assert_allclose(pipe[0].transform(F, groups=g), reference[0].transform(X))
        with pytest.raises(ValueError, match="needs each row's group"):
            pipe.predict(F)
        # An alias keeps the mapper's groups apart from a splitter's: the mapper reads
        # "sensitive" while GroupKFold splits by "groups". The default scoring (the
        # Pipeline's score) routes "sensitive" to transform; named scorers call predict
        # without metadata, so they need the group_column form.
        aliased = make_pipeline(
            BarycenterMapper(GaussianBarycenter())
            .set_fit_request(groups="sensitive")
            .set_transform_request(groups="sensitive"),
            LogisticRegression(),
        )
        folds = np.arange(len(y)) % 3
        cv = GroupKFold(n_splits=3)
        routed = {"sensitive": g, "groups": folds}
        res = cross_validate(aliased, F, y, cv=cv, params=routed, return_estimator=True)
        for est in res["estimator"]:
            np.testing.assert_array_equal(est[0].groups_, [0, 1, 2])
        # same folds, same maps: the column form scores exactly the same
        column = cross_val_score(_pipe(), X, y, cv=cv, params={"groups": folds})
        np.testing.assert_allclose(res["test_score"], column)
        assert np.all(column > 0.9)
        with pytest.raises(ValueError, match="named scorers"):
            cross_validate(
                aliased, F, y, cv=cv, params=routed, scoring="accuracy", error_score="raise"
            )


def test_routed_groups_without_routing_through_step_params():
    F, g, y = _grouped()
    pipe = make_pipeline(BarycenterMapper(GaussianBarycenter()), LogisticRegression())
    pipe.fit(F, y, barycentermapper__groups=g)
    assert pipe[0].n_groups_ == 3


def test_grid_search_reaches_inner_parameters():
    F, g, y = _grouped(n=600)
    X = np.column_stack([F, g])
    pipe = _pipe()
    assert "barycentermapper__estimator__shrinkage" in pipe.get_params()
    grid = {
        "barycentermapper__estimator__shrinkage": [0.0, 0.3],
        "barycentermapper__weights": ["proportional", "uniform"],
    }
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert set(search.best_params_) == set(grid)
    assert search.best_score_ > 0.9
    best = search.best_estimator_[0]
    assert (
        best.estimator_.shrinkage == search.best_params_["barycentermapper__estimator__shrinkage"]
    )


# -------------------------------------------------------------------- behaviour
def test_transform_is_the_inner_map_of_each_group_and_drops_the_column():
    F, g, _ = _grouped(n=300)
    X = np.column_stack([g, F])  # group first this time
    m = BarycenterMapper(GaussianBarycenter(), group_column=0).fit(X)
    Z = m.transform(X)
    assert Z.shape == F.shape and Z.dtype == np.float64
    for k, label in enumerate(m.groups_):
        rows = g == label
        np.testing.assert_allclose(Z[rows], m.estimator_.transform(F[rows], k))
    np.testing.assert_allclose(m.fit_transform(X), Z)
    np.testing.assert_array_equal(m.get_feature_names_out(), ["x1", "x2", "x3"])


def test_weight_rules():
    F, g, _ = _grouped(n=500)
    X = np.column_stack([F, g])
    counts = np.bincount(g)
    m = BarycenterMapper(GaussianBarycenter(), group_column=-1).fit(X)
    np.testing.assert_allclose(m.weights_, counts / counts.sum())
    np.testing.assert_allclose(m.estimator_.weights_, m.weights_)
    np.testing.assert_array_equal(m.group_counts_, counts)
    m.set_params(weights="uniform").fit(X)
    np.testing.assert_allclose(m.weights_, np.full(3, 1 / 3))
    m.set_params(weights=[0.2, 0.3, 0.5]).fit(X)
    np.testing.assert_allclose(m.weights_, [0.2, 0.3, 0.5])
    m.set_params(weights={2: 0.5, 0: 0.25, 1: 0.25}).fit(X)
    np.testing.assert_allclose(m.weights_, [0.25, 0.25, 0.5])
    # the barycenter mean follows the weights
    np.testing.assert_allclose(
        m.estimator_.barycenter_mean_, m.weights_ @ m.estimator_.means_, rtol=1e-12
    )


def test_dataframe_column_name_string_labels_and_pandas_output():
    F, g, y = _grouped(n=400)
    df = pd.DataFrame(F, columns=["age", "bmi", "bp"])
    df.insert(1, "sex", np.array(["f", "m", "x"])[g])
    m = BarycenterMapper(GaussianBarycenter(), group_column="sex").fit(df)
    assert list(m.groups_) == ["f", "m", "x"] and m.group_column_index_ == 1
    np.testing.assert_array_equal(m.feature_names_in_, ["age", "sex", "bmi", "bp"])
    np.testing.assert_array_equal(m.get_feature_names_out(), ["age", "bmi", "bp"])
    out = m.set_output(transform="pandas").transform(df)
    assert list(out.columns) == ["age", "bmi", "bp"]
    np.testing.assert_allclose(out.to_numpy(), m.estimator_.transform(F, k=g))
    # negative position on a DataFrame is the same column
    m2 = BarycenterMapper(GaussianBarycenter(), group_column=-3).fit(df)
    np.testing.assert_allclose(m2.transform(df), out.to_numpy())
    with pytest.raises(ValueError, match="not seen in fit"):
        m.set_params(unseen_groups="error").transform(df.assign(sex="q"))
    with pytest.raises(ValueError, match="not a column"):
        BarycenterMapper(GaussianBarycenter(), group_column="gender").fit(df)


def test_free_support_barycenter_drops_in():
    F, g, y = _grouped(n=600, base="gaussian")
    X = np.column_stack([F, g])
    inner = FreeSupportBarycenter(n_support=100, random_state=0)
    pipe = make_pipeline(
        BarycenterMapper(inner, group_column=-1), StandardScaler(), LogisticRegression()
    )
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.85
    Z = pipe.fit(X, y)[0].transform(X)
    assert _max_pairwise_energy(Z, g) < 0.2 * _max_pairwise_energy(F, g)


# -------------------------------------------------------------------- errors
def test_errors_name_the_problem():
    F, g, y = _grouped(n=200)
    X = np.column_stack([F, g])
    m = BarycenterMapper(GaussianBarycenter(), group_column=-1)
    with pytest.raises(NotFittedError):
        m.transform(X)
    with pytest.raises(ValueError, match="needs each row's group"):
        BarycenterMapper(GaussianBarycenter()).fit(F)
    with pytest.raises(ValueError, match="Ambiguous"):
        m.fit(X, groups=g)
    with pytest.raises(ValueError, match="out of range"):
        BarycenterMapper(GaussianBarycenter(), group_column=4).fit(X)
    with pytest.raises(ValueError, match="column name"):
        BarycenterMapper(GaussianBarycenter(), group_column="g").fit(X)
    with pytest.raises(TypeError, match="group_column"):
        BarycenterMapper(GaussianBarycenter(), group_column=1.5).fit(X)
    with pytest.raises(TypeError, match="estimator"):
        BarycenterMapper(GaussianBarycenter, group_column=-1).fit(X)
    with pytest.raises(ValueError, match="weights"):
        BarycenterMapper(GaussianBarycenter(), group_column=-1, weights="equal").fit(X)
    with pytest.raises(ValueError, match="length 2 but there are 3"):
        BarycenterMapper(GaussianBarycenter(), group_column=-1, weights=[0.5, 0.5]).fit(X)
    with pytest.raises(ValueError, match="no entry for inputs"):
        BarycenterMapper(GaussianBarycenter(), group_column=-1, weights={0: 1.0}).fit(X)
    with pytest.raises(ValueError, match="1 sample"):
        m.fit(np.vstack([X, np.r_[F[0], 7.0]]))
    with pytest.raises(ValueError, match="one group label per row"):
        BarycenterMapper(GaussianBarycenter()).fit(F, groups=g[:-1])
    with pytest.raises(ValueError, match="NaN"):
        BarycenterMapper(GaussianBarycenter()).fit(F, groups=np.where(g == 0, np.nan, g))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(bad)
    m.fit(X)
    with pytest.raises(ValueError, match=r"groups \[5(\.0)?\] were not seen"):
        m.set_params(unseen_groups="error").transform(np.column_stack([F[:4], np.full(4, 5)]))
    with pytest.raises(ValueError, match="features"):
        m.transform(X[:, 1:])


def test_params_clone_and_pickle():
    F, g, _ = _grouped(n=300)
    X = np.column_stack([F, g])
    m = BarycenterMapper(GaussianBarycenter(shrinkage=0.1), group_column=-1, weights="uniform")
    params = m.get_params()
    assert params["estimator__shrinkage"] == 0.1 and params["weights"] == "uniform"
    c = clone(m).set_params(estimator__shrinkage=0.2)
    assert c.estimator.shrinkage == 0.2 and m.estimator.shrinkage == 0.1
    m.fit(X)
    assert m.estimator.__dict__.get("means_") is None  # the inner estimator is cloned
    loaded = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(loaded.transform(X), m.transform(X))


# -------------------------------------------------------------------- scikit-learn's checks
class _LabelledByDigit(BarycenterMapper):
    """The mapper with the group read as the third decimal digit's parity of column 0.

    scikit-learn's generic checks feed random continuous data, which has no column of group
    labels; this test-only subclass turns column 0 into a two-group label, deterministically
    per row, so every other part of the mapper goes through the full check suite.
    """

    @staticmethod
    def _check_groups(groups, n_rows, name="groups"):
        g = BarycenterMapper._check_groups(groups, n_rows, name)
        return np.floor(np.abs(np.asarray(g, dtype=np.float64)) * 1000).astype(int) % 2


@parametrize_with_checks([_LabelledByDigit(GaussianBarycenter(), group_column=0)])
def test_sklearn_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)
