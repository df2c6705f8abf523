"""Inputs given as streams: samplers, memmaps, dask arrays, torch Datasets and DataLoaders."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from skbary import GaussianBarycenter, NOTBarycenter
from skbary.datasets import make_location_scatter
from skbary.metrics import weighted_l2_uvp
from skbary.streams import InputStream, StreamCache, is_stream
from skbary.training import MarginalBatches
from tests.fast_params import FAST_PARAMS, estimator_classes

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scatter():
    return make_location_scatter(3, 2, 4000, weights=[0.25, 0.25, 0.5], random_state=0)


def _draws(bench):
    # lambdas, as users write them (and not picklable: the fitted model must not hold them)
    return [lambda n, rng, k=k: bench.sample_marginal(k, n, rng) for k in range(bench.n_marginals)]


class _Counting:
    """A sampler that counts the rows asked of it."""

    def __init__(self, d=2, shift=0.0):
        self.d, self.shift, self.rows, self.calls = d, shift, 0, 0

    def __call__(self, n, random_state):
        self.rows += n
        self.calls += 1
        return random_state.normal(size=(n, self.d)) + self.shift


# ---------------------------------------------------------------------------- accuracy
def test_not_from_samplers_matches_the_fit_from_arrays(scatter):
    """NOT from three samplers reaches the accuracy its fit from arrays has (test_notb.py:
    0.14-0.26 % weighted L2-UVP with these settings); the identity map is above 10 %."""
    est = NOTBarycenter(batch_size=256, max_iter=800, random_state=0)
    est.fit(_draws(scatter), scatter.weights)
    fresh = scatter.sample_marginals(4000, random_state=1)
    res = weighted_l2_uvp(est, scatter, fresh)
    assert res["l2_uvp_weighted"] < 1.0, res
    # the subsample gives the standardisation: the barycenter's mean
    np.testing.assert_allclose(est.center_, scatter.barycenter_mean, atol=0.05)


def test_gaussian_from_samplers_fits_the_subsample(scatter):
    est = GaussianBarycenter().fit(_draws(scatter), scatter.weights)
    np.testing.assert_allclose(est.barycenter_covariance_, scatter.barycenter_cov, atol=0.1)


@pytest.mark.parametrize("cls", estimator_classes(), ids=lambda c: c.__name__)
def test_every_estimator_fits_from_samplers(cls, scatter):
    est = cls(random_state=0, **FAST_PARAMS[cls.__name__])
    est.fit(_draws(scatter), scatter.weights)
    assert est.n_features_in_ == 2 and est.n_marginals_ == 3
    assert not hasattr(est, "feature_names_in_")
    assert est.sample(7, random_state=0).shape == (7, 2)
    assert "_streams" not in est.__dict__  # the fit does not keep its sources
    pickle.loads(pickle.dumps(est))  # nor a reference to them (samplers may be lambdas)


def test_seeded_fits_from_samplers_repeat(scatter):
    fits = [
        NOTBarycenter(random_state=3, **FAST_PARAMS["NOTBarycenter"]).fit(_draws(scatter))
        for _ in range(2)
    ]
    X = scatter.marginals[0][:50]
    np.testing.assert_array_equal(fits[0].transform(X, 0), fits[1].transform(X, 0))


# ---------------------------------------------------------------------------- the cache
def test_cache_is_refilled_with_fresh_rows_once_used():
    sampler = _Counting()
    stream = InputStream(sampler, cache_rows=100).bind("X[0]")
    cache = StreamCache(stream, stream.cache_size(10), lambda x: x, np.random.RandomState(0))
    data = MarginalBatches(
        [np.zeros((5, 2))], torch.device("cpu"), torch.Generator().manual_seed(0), streams=[cache]
    )
    assert sampler.rows == 100 and data.data.shape == (1, 100, 2)
    first = data.data.clone()
    for _ in range(10):  # 10 batches of 10 use the 100 cached rows once on average
        data.draw(10)
    assert sampler.rows == 100
    data.draw(10)
    assert sampler.rows == 200  # refilled before the 11th batch
    assert not torch.equal(first, data.data)
    # the cache holds at least 16 minibatches when cache_rows is left to the default
    assert InputStream(sampler).cache_size(8192) == 16 * 8192
    # and at most CACHE_BYTES of float32 rows when that leaves 16 batches: wide rows
    wide = InputStream(lambda n, rng: np.zeros((n, 1024))).bind("X[0]")
    wide.draw(2, np.random.RandomState(0))
    assert wide.cache_size(256) == 32 * 2**20 // (4 * 1024)


def test_training_draws_only_the_rows_its_minibatches_use(monkeypatch):
    """Rows asked of a sampler: the subsample, the minibatches' rows rounded up to whole
    caches, and the rows NOT keeps to push through its maps; never the input's size."""
    used = []
    draw = MarginalBatches.draw

    def counted(self, batch_size):
        used.append(batch_size)
        return draw(self, batch_size)

    monkeypatch.setattr(MarginalBatches, "draw", counted)
    samplers = [_Counting(shift=k) for k in range(2)]
    NOTBarycenter(max_iter=20, batch_size=64, random_state=0).fit(
        [InputStream(s, n_subsample=300, cache_rows=640) for s in samplers]
    )
    fills = -(-sum(used) // 640)  # whole caches: each cached row is used about once
    assert fills >= 3
    for s in samplers:
        assert s.rows == 300 + 640 * fills + 100_000, (s.rows, fills)


# ---------------------------------------------------------------------------- other sources
def test_memmap_input_is_streamed(tmp_path, scatter):
    paths = []
    for k, X in enumerate(scatter.marginals):
        mm = np.lib.format.open_memmap(tmp_path / f"x{k}.npy", "w+", np.float32, X.shape)
        mm[:] = X
        mm.flush()
        paths.append(tmp_path / f"x{k}.npy")
    inputs = [np.load(p, mmap_mode="r") for p in paths]
    assert all(is_stream(m) for m in inputs)
    est = GaussianBarycenter().fit(inputs, scatter.weights)
    np.testing.assert_allclose(est.barycenter_covariance_, scatter.barycenter_cov, atol=0.1)
    est = GaussianBarycenter(weights="proportional").fit(inputs)
    np.testing.assert_allclose(est.weights_, [1 / 3] * 3)  # a memmap has a row count
    # the subsample of a 4,000-row file holds its rows, each once
    est = GaussianBarycenter().fit([InputStream(m, n_subsample=10**6) for m in inputs])
    np.testing.assert_allclose(est.means_, [m.mean(0) for m in scatter.marginals], atol=1e-6)
    NOTBarycenter(random_state=0, **FAST_PARAMS["NOTBarycenter"]).fit(inputs)


def test_dataset_and_loader_inputs(scatter):
    X0, X1 = (torch.as_tensor(m, dtype=torch.float32) for m in scatter.marginals[:2])
    ds = TensorDataset(X0, torch.zeros(len(X0)))  # (row, target) items: the row is taken
    loader = DataLoader(TensorDataset(X1), batch_size=100, shuffle=True)
    est = GaussianBarycenter().fit([ds, loader], [0.5, 0.5])
    assert est.n_features_in_ == 2
    NOTBarycenter(random_state=0, **FAST_PARAMS["NOTBarycenter"]).fit([ds, loader])
    # images are flattened to rows
    imgs = TensorDataset(torch.rand(50, 1, 3, 3))
    assert GaussianBarycenter().fit([imgs, imgs]).n_features_in_ == 9


def test_rows_as_lists_and_rows_with_targets():
    """A sampler's list of rows stays rows; its (rows, targets) tuple gives the rows; a
    dataset whose items are plain lists of numbers gives those rows."""
    rows = [lambda n, rng: rng.normal(size=(n, 3)).tolist()] * 2
    assert GaussianBarycenter().fit(rows).n_features_in_ == 3
    pairs = [lambda n, rng: (rng.normal(size=(n, 3)), np.zeros(n))] * 2
    assert GaussianBarycenter().fit(pairs).n_features_in_ == 3

    class Listed(torch.utils.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            return [float(i), 2.0 * i]

    assert GaussianBarycenter().fit([Listed(), Listed()]).n_features_in_ == 2


def test_loader_in_order_warns(scatter):
    loader = DataLoader(TensorDataset(torch.as_tensor(scatter.marginals[0])), batch_size=64)
    with pytest.warns(UserWarning, match="shuffle=True"):
        GaussianBarycenter().fit([loader, scatter.marginals[1]])


def test_dask_array_input(scatter):
    da = pytest.importorskip("dask.array")
    inputs = [da.from_array(m, chunks=(1000, 2)) for m in scatter.marginals]
    est = GaussianBarycenter().fit(inputs, scatter.weights)
    np.testing.assert_allclose(est.barycenter_covariance_, scatter.barycenter_cov, atol=0.15)


# ---------------------------------------------------------------------------- errors
def test_sampler_with_wrong_shape_is_refused(scatter):
    bad = [scatter.marginals[0], lambda n, rng: rng.normal(size=(n // 2, 2))]
    with pytest.raises(ValueError, match=r"X\[1\] \(a callable\) returned an array of shape"):
        GaussianBarycenter().fit(bad)
    with pytest.raises(ValueError, match="same number of columns"):
        GaussianBarycenter().fit([scatter.marginals[0], lambda n, rng: rng.normal(size=(n, 3))])
    with pytest.raises(TypeError, match="not numbers"):
        GaussianBarycenter().fit([lambda n, rng: np.array([["a", "b"]] * n)] * 2)


def test_sampler_returning_nan_during_training_leaves_the_estimator_as_it_was(scatter):
    est = NOTBarycenter(random_state=0, **FAST_PARAMS["NOTBarycenter"])
    est.fit(scatter.marginals, scatter.weights)
    before = est.transform(scatter.marginals[0][:20], 0)

    def turns_bad(n, random_state, calls=[0]):  # noqa: B006 - counts calls on purpose
        calls[0] += 1
        x = random_state.normal(size=(n, 2))
        if calls[0] > 1:  # the subsample is fine, the training cache is not
            x[3, 1] = np.nan
        return x

    with pytest.raises(ValueError, match=r"X\[2\] \(a callable\) returned NaN or inf in 1 of"):
        est.fit([scatter.marginals[0], scatter.marginals[1], turns_bad], scatter.weights)
    np.testing.assert_array_equal(est.transform(scatter.marginals[0][:20], 0), before)
    assert est.n_marginals_ == 3 and "_streams" not in est.__dict__


def test_what_streams_cannot_take(scatter):
    draws = _draws(scatter)
    with pytest.raises(ValueError, match="sample_weight needs in-memory rows"):
        GaussianBarycenter().fit(draws, sample_weight=[np.ones(5)] * 3)
    with pytest.raises(ValueError, match="'proportional' needs every input's number of rows"):
        GaussianBarycenter(weights="proportional").fit(draws)
    with pytest.raises(ValueError, match="fit_transform maps the training rows"):
        GaussianBarycenter().fit_transform(draws)
    with pytest.raises(TypeError, match="which is one input: pass the inputs as a list"):
        GaussianBarycenter().fit(draws[0])
    with pytest.raises(ValueError, match="n_subsample must be an integer >= 2"):
        GaussianBarycenter().fit([InputStream(d, n_subsample=1) for d in draws])
