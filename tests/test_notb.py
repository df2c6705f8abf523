"""NOTBarycenter: small fits with thresholds that fail when the method is broken.

The paper-level runs (D up to 64, minutes per fit) are in benchmarks/bench_notb.py.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skbary import NOTBarycenter, TrainingDivergedError
from skbary.costs import PerInputCost, quadratic_cost, resolve_cost
from skbary.datasets import make_location_scatter, make_twister
from skbary.methods.notb import Potentials
from skbary.metrics import bw_uvp, weighted_l2_uvp
from skbary.nn import BatchedMLP, StackedModules
from skbary.nn.maps import BatchedGaussianMap, BatchedMap, kl_to_gaussian
from tests.user_modules import UserConv, UserMLP, image_inputs, params_changed, steep_edge_error

FAST = dict(batch_size=256, n_map_steps=2, max_iter=150, random_state=0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scatter():
    return make_location_scatter(3, 2, 4000, weights=[0.25, 0.25, 0.5], random_state=0)


@pytest.fixture(scope="module")
def fitted_scatter(scatter):
    torch.set_num_threads(1)
    # 400 iterations sat at the edge of convergence (weighted L2-UVP 0.6-2.1 over seeds and
    # optimiser round-off); 800 give 0.14-0.26 on seeds 0, 3, 4
    est = NOTBarycenter(batch_size=256, max_iter=800, random_state=0)
    return est.fit(scatter.marginals, scatter.weights)


# ---------------------------------------------------------------------------- accuracy
def test_location_scatter_maps_and_samples(scatter, fitted_scatter):
    est = fitted_scatter
    fresh = scatter.sample_marginals(4000, random_state=1)
    res = weighted_l2_uvp(est, scatter, fresh)
    # the identity map (what an untrained NOT starts from) is far off
    ident = weighted_l2_uvp(_Identity(), scatter, fresh)["l2_uvp_weighted"]
    assert ident > 10.0
    assert res["l2_uvp_weighted"] < 1.0, res
    Y = est.sample(20000, random_state=0)
    assert bw_uvp(Y, scatter.barycenter_mean, scatter.barycenter_cov) < 1.0
    # every input is pushed onto the same law (what congruence enforces)
    for k, X in enumerate(fresh):
        assert bw_uvp(est.transform(X, k), scatter.barycenter_mean, scatter.barycenter_cov) < 2.0


class _Identity:
    def transform(self, X, k):
        return np.asarray(X, dtype=np.float64)


def test_potentials_are_congruent(fitted_scatter):
    est = fitted_scatter
    y = torch.randn(500, 2)
    with torch.no_grad():
        f = est.potentials_.all_at(y)
    a = torch.as_tensor(est.weights_, dtype=torch.float32)
    assert torch.allclose((a[:, None] * f).sum(0), torch.zeros(500), atol=1e-5)
    assert f.abs().max() > 1e-2  # ... and not trivially zero


def test_history_and_sample_mixture(fitted_scatter):
    est = fitted_scatter
    h = est.history_
    assert len(h) == est.n_iter_ == 800
    assert {"potential", "map", "transport_cost"} <= set(h[-1])
    assert est.stop_reason_ == {"train": "max_iter"}
    # the map objective estimates the barycenter cost sum_k a_k W2^2/2 > 0
    assert 0 < np.mean(h[-100:, "transport_cost"]) < 2.0
    Y1 = est.sample(100, random_state=3)
    np.testing.assert_array_equal(Y1, est.sample(100, random_state=3))
    assert not np.allclose(Y1, est.sample(100, random_state=4))


def test_twister_callable_cost():
    # a short fit: the maps have left their start (|m_k| = 4 away from the barycenter's
    # mean through u) and the sample is centred; the full Twister run (BW2-UVP through u
    # below 3%) is in benchmarks/bench_notb.py
    tw = make_twister(3000, random_state=0)
    est = NOTBarycenter(cost=tw.cost, max_iter=300, random_state=0)
    est.fit(tw.marginals)
    fresh = tw.sample_marginals(2000, random_state=1)
    means = [np.linalg.norm(tw.u(est.transform(X, k)).mean(0)) for k, X in enumerate(fresh)]
    assert max(means) < 3.2


def test_feature_space_cost_with_other_barycenter_dimension():
    # inputs in 3-D, barycenter in 2-D, cost compares the first two coordinates
    rng = np.random.RandomState(0)
    Xs = [rng.randn(3000, 3) * [1.0, 1.0, 5.0] + [2.0 * k, 0.0, 10.0] for k in range(2)]

    def cost(x, y):
        return 0.5 * ((x[..., :2] - y) ** 2).sum(-1)

    est = NOTBarycenter(cost=cost, n_features_out=2, **FAST).fit(Xs, [0.5, 0.5])
    assert est.n_features_out_ == 2
    Y = est.transform(Xs[0][:500], 0)
    assert Y.shape == (500, 2)
    # barycenter of N((0,0), I) and N((2,0), I) in the first two coordinates: N((1, 0), I)
    np.testing.assert_allclose(est.sample(4000, random_state=0).mean(0), [1.0, 0.0], atol=0.2)
    with pytest.raises(ValueError, match="quadratic cost"):
        NOTBarycenter(n_features_out=2).fit(Xs)


# ---------------------------------------------------------------------------- a cost per input
def _quadratic_times(scale):
    def cost(x, y):
        return scale * quadratic_cost(x, y)

    return cost


def test_a_list_of_equal_costs_is_the_single_cost(scatter):
    Xs, a = scatter.marginals, scatter.weights
    # distinct function objects computing the same cost: the per-input path, stacked
    costs = [_quadratic_times(1.0) for _ in Xs]
    assert isinstance(resolve_cost(costs, n_inputs=3), PerInputCost)
    common = dict(FAST, max_iter=30)
    one = NOTBarycenter(cost=costs[0], **common).fit(Xs, a)
    per = NOTBarycenter(cost=costs, **common).fit(Xs, a)
    np.testing.assert_array_equal(one.history_[:, "map"], per.history_[:, "map"])
    X = Xs[2][:100]
    np.testing.assert_array_equal(one.transform(X, 2), per.transform(X, 2))
    # the same function K times is that function: ["quadratic"] * K is "quadratic"
    assert resolve_cost(["quadratic"] * 3, n_inputs=3) is quadratic_cost
    est = NOTBarycenter(cost=("quadratic",) * 3, **common).fit(Xs, a)
    assert est.standardized_ and est.potentials_.quadratic  # as for cost="quadratic"
    # the stacked cost on a batch equals the single one
    x, y = torch.randn(3, 8, 1, 2), torch.randn(3, 8, 4, 2)
    torch.testing.assert_close(PerInputCost(costs)(x, y), costs[0](x, y))


def test_a_list_of_costs_must_have_one_per_input(scatter):
    Xs = scatter.marginals  # three inputs
    est = NOTBarycenter(cost=["quadratic", _quadratic_times(2.0)], max_iter=1)
    with pytest.raises(ValueError, match="2 entries but fit got 3 inputs"):
        est.fit(Xs)
    assert not hasattr(est, "maps_")  # left unfitted
    with pytest.raises(ValueError, match="empty"):
        NOTBarycenter(cost=[], max_iter=1).fit(Xs)
    with pytest.raises(TypeError, match="callable"):
        NOTBarycenter(cost=[quadratic_cost, 3, "quadratic"], max_iter=1).fit(Xs)
    with pytest.raises(ValueError, match="one of"):
        NOTBarycenter(cost=[quadratic_cost, "euclid", "quadratic"], max_iter=1).fit(Xs)
    with pytest.raises(ValueError, match="first axis"):
        PerInputCost([quadratic_cost] * 3)(torch.zeros(2, 4, 2), torch.zeros(2, 4, 2))


def test_per_input_costs_weigh_the_inputs():
    # c_k = s_k/2 |x - y|^2 on N(m_k, I): the barycenter is N(m, I) with
    # m = sum_k a_k s_k m_k / sum_k a_k s_k; with s = (1, 9) and equal weights,
    # m = 0.1 m_1 + 0.9 m_2 = (1.6, 0), against (0, 0) for one cost and (-1.6, 0) swapped
    rng = np.random.RandomState(0)
    Xs = [rng.randn(3000, 2) + [-2.0, 0.0], rng.randn(3000, 2) + [2.0, 0.0]]
    costs = [_quadratic_times(1.0), _quadratic_times(9.0)]
    est = NOTBarycenter(cost=costs, **{**FAST, "max_iter": 300}).fit(Xs, [0.5, 0.5])
    np.testing.assert_allclose(est.sample(4000, random_state=0).mean(0), [1.6, 0.0], atol=0.25)
    shift = est.transform(Xs[0][:1000], 0) - Xs[0][:1000]
    np.testing.assert_allclose(shift.mean(0), [3.6, 0.0], atol=0.3)
    # add_input has no cost for a new input under per-input costs
    with pytest.raises(ValueError, match="one cost per input"):
        est.add_input(Xs[1][:100], label="new", max_iter=1)


# ---------------------------------------------------------------------------- plans
def test_stochastic_plan_and_barycentric_projection(scatter):
    est = NOTBarycenter(plan="stochastic", n_noise_samples=2, **FAST)
    est.fit(scatter.marginals, scatter.weights)
    X = scatter.marginals[0][:200]
    assert est.maps_.noise_dim == est.noise_dim_ == 2
    Y1 = est.transform(X, 0)
    np.testing.assert_array_equal(Y1, est.transform(X, 0))  # seeded by random_state
    P = est.barycentric_projection(X, 0, n_draws=20)
    assert P.shape == (200, 2)
    np.testing.assert_allclose(P, est.barycentric_projection(X, 0, n_draws=20))
    # the projection averages the noise out: closer to the true map on average
    true = scatter.map_to_barycenter(X, 0)
    assert np.mean((P - true) ** 2) <= np.mean((Y1 - true) ** 2) + 1e-9


def test_kl_regularisation_moves_toward_prior():
    tw = make_twister(2000, random_state=0)
    prior = np.random.RandomState(0).randn(5000, 2) + [5.0, 5.0]
    common = dict(cost=tw.cost, batch_size=128, max_iter=150, random_state=0)
    plain = NOTBarycenter(**common).fit(tw.marginals)
    kl = NOTBarycenter(
        plan="gaussian", regularization="kl", prior=prior, n_noise_samples=2, **common
    )
    kl.fit(tw.marginals)
    m_plain = plain.sample(5000, random_state=0).mean(0)
    m_kl = kl.sample(5000, random_state=0).mean(0)
    # toward (5, 5): the mean moves along (1, 1) by a clear margin
    assert np.dot(m_kl - m_plain, [1.0, 1.0]) / np.sqrt(2) > 1.5
    assert isinstance(kl.maps_, BatchedGaussianMap)
    X = tw.marginals[0][:100]
    # Gaussian plans: the projection is the exact mean mu_k(x), transform a draw around it
    P = kl.barycentric_projection(X, 0)
    assert not np.allclose(P, kl.transform(X, 0))


def test_energy_regularisation_moves_toward_prior():
    tw = make_twister(2000, random_state=0)
    prior = np.random.RandomState(0).randn(5000, 2) + [5.0, 5.0]
    common = dict(cost=tw.cost, batch_size=128, max_iter=150, random_state=0)
    plain = NOTBarycenter(**common).fit(tw.marginals)
    en = NOTBarycenter(
        plan="stochastic",
        regularization="energy",
        reg_strength=1.0,
        prior=prior,
        n_noise_samples=4,
        **common,
    )
    en.fit(tw.marginals)
    shift = en.sample(5000, random_state=0).mean(0) - plain.sample(5000, random_state=0).mean(0)
    assert np.dot(shift, [1.0, 1.0]) / np.sqrt(2) > 1.5


# ---------------------------------------------------------------------------- contract details
def test_bad_parameters_raise_before_training(scatter):
    Xs = scatter.marginals
    cases = [
        (dict(plan="random"), "plan"),
        (dict(regularization="l2"), "regularization"),
        (dict(regularization="kl"), "plan='gaussian'"),
        (dict(regularization="energy"), "stochastic"),
        (dict(plan="stochastic", regularization="energy", n_noise_samples=1), "n_noise_samples"),
        (dict(reg_strength=0.0), "reg_strength"),
        (dict(n_map_steps=0), "n_map_steps"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(lr_map=-1.0), "lr_map"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(lr_decay=0.0), "lr_decay"),
        (dict(lr_schedule="cosine"), "lr_schedule"),
        (dict(plan="gaussian", map__noise_dim=2), "map__noise_dim"),
        (dict(plan="stochastic", map__noise_dim=0), "map__noise_dim"),
        (dict(plan="gaussian", map__init_std=0.0), "map__init_std"),
        (dict(potential__quadratic="yes"), "potential__quadratic"),
        (dict(standardize="always"), "standardize"),
        (dict(prior=np.zeros((10, 3))), "features"),
        (dict(cost="euclid"), "cost"),
        (dict(n_features_out=0), "n_features_out"),
        (dict(n_threads=0), "n_threads"),
    ]
    for params, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            NOTBarycenter(max_iter=1, **params).fit(Xs)
    with pytest.raises(TypeError, match="cost"):
        NOTBarycenter(cost=3).fit(Xs)


def test_divergence_names_the_network(scatter):
    def bad_cost(x, y):
        return ((x - y) ** 2).sum(-1) * torch.tensor(float("nan"))

    with pytest.raises(TrainingDivergedError, match="maps"):
        NOTBarycenter(cost=bad_cost, **FAST).fit(scatter.marginals)


def test_repeatable_and_picklable(scatter):
    est = NOTBarycenter(**{**FAST, "max_iter": 20}).fit(scatter.marginals, scatter.weights)
    again = clone(est).fit(scatter.marginals, scatter.weights)
    X = scatter.marginals[1][:50]
    np.testing.assert_array_equal(est.transform(X, 1), again.transform(X, 1))
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est.transform(X, 1), loaded.transform(X, 1))
    np.testing.assert_array_equal(est.sample(30, random_state=0), loaded.sample(30, random_state=0))


def test_nested_network_parameters(scatter):
    est = NOTBarycenter(map__hidden_layer_sizes=(16,), potential__hidden_layer_sizes=(8, 8), **FAST)
    est.set_params(max_iter=5).fit(scatter.marginals)
    # rows [x, z_axes(x), z_ica(x)]: map__quantile_features='auto' on 2 quadratic-cost columns
    assert est.maps_.mlp.layers[0].weight.shape == (3, 2 + 2 + 2, 16)
    assert est.potentials_.g.layers[0].weight.shape == (3, 2, 8)
    assert clone(est).get_params()["map__hidden_layer_sizes"] == (16,)


def test_max_time_bounds_the_fit(scatter):
    est = NOTBarycenter(batch_size=256, max_iter=10**6, max_time=1.5, random_state=0)
    est.fit(scatter.marginals)
    assert est.stop_reason_["train"] == "max_time"
    assert est.fit_time_ < 3.0


def test_map_blocks():
    torch.manual_seed(0)
    m = BatchedMap(3, 4, 4, (8,))
    x = torch.randn(3, 5, 4)
    # a fresh map is close to the identity (affine skip + small MLP output)
    assert (m(x) - x).abs().max() < 1.0
    s = BatchedMap(3, 4, 2, (8,), noise_dim=3)
    assert s(x, torch.randn(3, 5, 3)).shape == (3, 5, 2)
    with pytest.raises(ValueError, match="noise"):
        s(x)
    g = BatchedGaussianMap(3, 4, 4, (8,), init_std=0.5)
    mu, log_std = g.mean_log_std(x)
    np.testing.assert_allclose(log_std.exp().mean().item(), 0.5, rtol=0.5)
    # closed-form KL against N(0, I) equals the textbook formula
    kl = kl_to_gaussian(mu, log_std, torch.zeros(4), torch.eye(4), torch.tensor(0.0))
    var = torch.exp(2 * log_std)
    ref = 0.5 * (var + mu**2 - 1 - torch.log(var)).sum(-1)
    torch.testing.assert_close(kl, ref)
    # the default map takes rows [x, s] as well as x and the noise apart
    s_rows = torch.cat([x, torch.randn(3, 5, 3)], dim=-1)
    torch.testing.assert_close(s(s_rows), s(x, s_rows[..., 4:]))
    torch.testing.assert_close(s.forward_one(s_rows[1], 1), s(s_rows)[1])
    # the Gaussian map outputs [mu, log-std offset]; mean_log_std applies offset and clamp
    h = g(x)
    assert h.shape == (3, 5, 8)
    torch.testing.assert_close(h[..., :4], mu)
    torch.testing.assert_close(g.forward_one(x[2], 2), h[2])
    # a diagonal prior precision gives the same KL as the full diagonal matrix
    prec = torch.rand(4) + 0.5
    torch.testing.assert_close(
        kl_to_gaussian(mu, log_std, torch.ones(4), prec, torch.tensor(0.3)),
        kl_to_gaussian(mu, log_std, torch.ones(4), torch.diag(prec), torch.tensor(0.3)),
    )


def test_quadratic_part_is_diagonal_above_512_features():
    a = [0.25, 0.75]
    full = Potentials(a, BatchedMLP(2, 4, 1, (8,)), 4, quadratic=True)
    assert full.A.shape == (2, 4, 4) and not full.diagonal
    wide = Potentials(a, BatchedMLP(2, 600, 1, (8,)), 600, quadratic=True)
    assert wide.A.shape == (2, 600) and wide.diagonal
    with torch.no_grad():
        wide.A.normal_()
        wide.b.normal_()
    y = torch.randn(2, 7, 600)
    f = wide(y)
    f_all = wide.all_at(y.reshape(14, 600)).view(2, 2, 7)
    torch.testing.assert_close(f, f_all[[0, 1], [0, 1]], rtol=1e-4, atol=1e-3)
    # congruent with the quadratic part; same values as a full matrix with that diagonal
    torch.testing.assert_close(
        (torch.tensor(a)[:, None] * f_all[:, 0]).sum(0), torch.zeros(7), atol=1e-3, rtol=0
    )
    small = Potentials(a, BatchedMLP(2, 3, 1, (8,)), 3, quadratic=True)
    diag = Potentials(a, copy.deepcopy(small.g), 3, quadratic=True)
    diag.diagonal = True
    with torch.no_grad():
        diag.A = torch.nn.Parameter(torch.randn(2, 3))
        small.A.copy_(torch.diag_embed(diag.A))
    y3 = torch.randn(2, 5, 3)
    torch.testing.assert_close(small(y3), diag(y3))


# ---------------------------------------------------------------------------- standardisation
def test_standardisation_is_auto_for_the_quadratic_cost_only(scatter):
    Xs = [X[:500] for X in scatter.marginals]
    tiny = dict(max_iter=2, batch_size=32, random_state=0)
    assert NOTBarycenter(**tiny).fit(Xs).standardized_
    assert not NOTBarycenter(cost=lambda x, y: ((x - y) ** 2).sum(-1), **tiny).fit(Xs).standardized_
    assert (
        not NOTBarycenter(plan="gaussian", regularization="kl", n_noise_samples=2, **tiny)
        .fit(Xs)
        .standardized_
    )


def test_standardize_true_solves_the_same_weak_problem():
    # a user cost (here the quadratic one, in data units) with the energy weak cost and a
    # sample prior: with standardize=True the fit on 10 X + 3 (prior moved alike, gamma x 10,
    # so that the weak problem is the same up to the factor 100) is the image of the fit on X
    rng = np.random.RandomState(0)
    Xs = [rng.randn(400, 2) + [2.0 * k, 0.0] for k in range(2)]
    prior = rng.randn(300, 2) + [1.0, 2.0]

    def cost(x, y):
        return 0.5 * ((x - y) ** 2).sum(-1)

    common = dict(
        cost=cost, plan="stochastic", regularization="energy", n_noise_samples=2,
        standardize=True, max_iter=15, batch_size=64, random_state=0,
    )  # fmt: skip
    est = NOTBarycenter(prior=prior, reg_strength=1.0, **common).fit(Xs)
    big = NOTBarycenter(prior=10 * prior + 3, reg_strength=10.0, **common)
    big.fit([10 * X + 3 for X in Xs])
    assert big.scale_ == pytest.approx(10 * est.scale_)
    X = Xs[1][:100]
    np.testing.assert_allclose(
        big.transform(10 * X + 3, 1), 10 * est.transform(X, 1) + 3, atol=1e-2
    )
    np.testing.assert_allclose(
        big.history_[:, "transport_cost"], est.history_[:, "transport_cost"], rtol=1e-3
    )
    with pytest.raises(ValueError, match="standardize=True"):
        NOTBarycenter(cost=lambda x, y: ((x[..., :1] - y) ** 2).sum(-1), n_features_out=1,
                      standardize=True, max_iter=1).fit(Xs)  # fmt: skip


# ---------------------------------------------------------------------------- user networks
def _spy_initial_state(monkeypatch, est):
    """Record the role networks' parameters right after _build_networks."""
    initial = {}
    build = est._build_networks

    def spy(n_marginals, n_features):
        build(n_marginals, n_features)
        initial["map"] = _copy_state(est.maps_)
        initial["potential"] = _copy_state(est.potentials_.g)

    monkeypatch.setattr(est, "_build_networks", spy)
    return initial


def _copy_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _role_module(est, role):
    return est.maps_ if role == "map" else est.potentials_.g


ROLE_CASES = [
    pytest.param("map", UserMLP, {"map__hidden": 16}, id="map-UserMLP"),
    pytest.param("map", UserConv, {}, id="map-UserConv"),
    pytest.param("potential", UserMLP, {"potential__hidden": 16}, id="potential-UserMLP"),
    pytest.param("potential", UserConv, {}, id="potential-UserConv"),
]


@pytest.mark.parametrize("role, cls, settings", ROLE_CASES)
def test_user_networks_train_in_every_role(monkeypatch, role, cls, settings):
    images = cls is UserConv
    Xs = image_inputs() if images else [X[:300] for X in _small_scatter().marginals]
    est = NOTBarycenter(
        max_iter=4, batch_size=32, n_map_steps=1, random_state=0, **{role: cls}, **settings
    )
    initial = _spy_initial_state(monkeypatch, est)
    est.fit(Xs)
    net = _role_module(est, role)
    assert isinstance(net, StackedModules) and net.module_type is cls
    assert params_changed(net, initial[role])
    if settings:  # role__hidden reached the user's class
        assert net.unstack(0).net[0].out_features == 16
    d = Xs[0].shape[1]
    if role == "map":
        # transform is the fitted user map in standardised coordinates
        X = Xs[2][:20]
        with torch.no_grad():
            Z = net.unstack(2)(torch.as_tensor((X - est.center_) / est.scale_, dtype=torch.float32))
        np.testing.assert_allclose(
            est.transform(X, 2), Z.numpy() * est.scale_ + est.center_, atol=1e-4
        )
    else:
        # the congruent potentials are built on the user's g_k (no quadratic part: auto is
        # on only with the default network)
        assert not est.potentials_.quadratic
        y = torch.randn(10, d)
        with torch.no_grad():
            g = torch.stack([net.unstack(k)(y)[:, 0] for k in range(3)])
            a = torch.as_tensor(est.weights_, dtype=torch.float32)
            torch.testing.assert_close(
                est.potentials_.all_at(y), g - (a[:, None] * g).sum(0), atol=1e-5, rtol=1e-4
            )


@pytest.mark.parametrize("plan", ["stochastic", "gaussian"])
def test_plans_work_with_a_user_map(plan):
    Xs = [X[:300] for X in _small_scatter().marginals]
    extra = {"map__noise_dim": 3} if plan == "stochastic" else {}
    est = NOTBarycenter(
        map=UserMLP, map__hidden=16, plan=plan, n_noise_samples=2, max_iter=4, batch_size=32,
        random_state=0, **extra,
    )  # fmt: skip
    est.fit(Xs)
    first = est.maps_.unstack(0).net[0]
    last = est.maps_.unstack(0).net[-1]
    if plan == "stochastic":
        assert first.in_features == 2 + 3 and last.out_features == 2 and est.noise_dim_ == 3
    else:  # mean then log-std offset
        assert first.in_features == 2 and last.out_features == 4 and est.noise_dim_ == 2
        X = Xs[0][:10]
        with torch.no_grad():
            h = est.maps_.unstack(0)(torch.as_tensor(est._to_model(X), dtype=torch.float32))
        np.testing.assert_allclose(
            est.barycentric_projection(X, 0), est._from_model(h[:, :2].numpy()), atol=1e-4
        )
    Y = est.transform(Xs[0][:10], 0)
    assert Y.shape == (10, 2) and np.isfinite(Y).all()


@pytest.mark.parametrize("role", ["map", "potential"])
def test_role_settings_are_checked(role):
    Xs = [X[:100] for X in _small_scatter().marginals]
    with pytest.raises(TypeError, match=f"{role}__typo"):
        NOTBarycenter(max_iter=1, **{f"{role}__typo": 1}).fit(Xs)
    with pytest.raises(TypeError, match=f"{role}__hidden"):
        NOTBarycenter(max_iter=1, **{role: UserMLP(2, 2 if role == "map" else 1)},
                      **{f"{role}__hidden": 16}).fit(Xs)  # fmt: skip


def _small_scatter():
    return make_location_scatter(3, 2, 300, random_state=0)


def test_marginal_quantiles_are_the_normal_scores_of_the_rows():
    from scipy import stats

    from skbary.nn.maps import MarginalQuantiles

    rng = np.random.RandomState(0)
    law = stats.beta(0.5, 0.5)  # arcsine: its mass piles up against both edges
    rows = [law.rvs(size=(4000, 2), random_state=rng) for _ in range(2)]
    q = MarginalQuantiles(2, 2)
    q.set_(rows)
    x = torch.tensor(law.ppf(np.linspace(0.02, 0.98, 49)), dtype=torch.float32)
    x = x[:, None].expand(-1, 2)
    want = stats.norm.ppf(np.linspace(0.02, 0.98, 49))
    got = q(torch.stack([x, x])).numpy()
    assert np.abs(got - want[None, :, None]).max() < 0.1
    # block k is input k's scores; outside the rows' range the scores are clamped
    assert torch.equal(q.forward_one(x, 1), q(torch.stack([x, x]))[1])
    far = q.forward_one(torch.tensor([[-5.0, 5.0]]), 0)
    assert far[0, 0] == q.scores[0] and far[0, 1] == q.scores[-1]
    # the knots are the rows' quantiles, also past the 64 columns sorted at a time
    wide = [rng.standard_normal((500, 70)) ** 3 for _ in range(2)]
    q = MarginalQuantiles(2, 70)
    q.set_(wide)
    u = stats.norm.cdf(q.scores.numpy().astype(np.float64))
    want = np.quantile(wide[1], u, axis=0).T
    np.testing.assert_allclose(q.knots[1].numpy(), want, rtol=1e-5, atol=1e-5)


def test_quantile_features_let_a_map_follow_a_steep_edge():
    # the optimal map from an arcsine input onto a barycenter with an exponential tail,
    # x -> (x + F_1^-1(F_0(x))) / 2, goes to infinity at the upper edge, where the
    # arcsine's mass piles up; fitted by least squares (200 Adam steps), the default map
    # network stays flat there and the one fed the normal scores follows it
    errors = {}
    for qf in (False, True):
        torch.manual_seed(0)
        net = BatchedMap(1, 1, 1, (64, 64), quantile_features=qf)
        errors[qf] = steep_edge_error(net, net)
    assert errors[True] < 0.2 * errors[False], errors  # measured 0.01-0.03 (seeds 0-2)


def test_quantile_features_are_set_once_from_the_training_rows(scatter):
    est = NOTBarycenter(max_iter=2, random_state=0, map__quantile_features=False)
    assert est.fit(scatter.marginals, scatter.weights).maps_.quantiles is None
    # "auto": both frames for the quadratic cost, none for a user's cost or a Gaussian plan
    est = NOTBarycenter(max_iter=2, random_state=0).fit(scatter.marginals, scatter.weights)
    assert [q.frame for q in est.maps_.quantiles] == ["axes", "ica"]
    user = NOTBarycenter(max_iter=2, cost=lambda x, y: 0.5 * ((x - y) ** 2).sum(-1))
    assert user.fit(scatter.marginals, scatter.weights).maps_.quantiles is None
    est = NOTBarycenter(max_iter=2, random_state=0, map__quantile_features=True)
    est.fit(scatter.marginals, scatter.weights)
    (q,) = est.maps_.quantiles
    assert q.frame == "axes" and bool(q.is_set)
    rows = (scatter.marginals[1] - est.center_) / est.scale_  # the networks' coordinates
    z = q.forward_one(est._tensor(rows), 1)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
    knots = q.knots.clone()
    est.set_params(warm_start=True).fit(scatter.marginals, scatter.weights)
    assert torch.equal(est.maps_.quantiles[0].knots, knots)  # a warm start keeps them
    with pytest.raises(ValueError, match="quantile_features"):
        NOTBarycenter(plan="gaussian", max_iter=2, map__quantile_features=True).fit(
            scatter.marginals, scatter.weights
        )
    with pytest.raises(ValueError, match="quantile_features"):
        NOTBarycenter(max_iter=2, map__quantile_features="pca").fit(
            scatter.marginals, scatter.weights
        )


def test_ica_frame_finds_the_axes_of_a_rotated_product_measure():
    # a product of an arcsine and a uniform seen under a rotation by 36 degrees: along the
    # data axes the marginals are smooth mixtures, along the independent components they
    # are the two laws again, so the ICA scores of rows at the laws' quantiles are those
    # quantiles' normal scores
    from scipy import stats

    from skbary.nn.maps import MarginalQuantiles

    rng = np.random.RandomState(0)
    laws = [stats.beta(0.5, 0.5, loc=-1, scale=2), stats.uniform(-1, 2)]
    u = np.column_stack([law.rvs(size=20000, random_state=rng) for law in laws])
    t = np.pi / 5
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    q = MarginalQuantiles(1, 2, frame="ica")
    q.set_([u @ R.T + 3.0])
    # the components' directions in the true frame: each within 2.6 degrees of an axis
    A = R.T @ q.unmixing[0].numpy().astype(np.float64)
    A /= np.linalg.norm(A, axis=0, keepdims=True)
    assert np.abs(A).max(axis=0).min() > 0.999, A  # measured 0.9998 (the data axes: 0.81)
    levels = np.linspace(0.2, 0.8, 13)
    grid = np.column_stack([laws[0].ppf(levels), laws[1].ppf(levels)])
    z = q.forward_one(torch.tensor(grid @ R.T + 3.0, dtype=torch.float32), 0).numpy()
    want = stats.norm.ppf(levels)
    # each independent component is one of the laws, up to order and sign
    errs = [
        max(np.abs(s0 * z[:, i] - want).max(), np.abs(s1 * z[:, 1 - i] - want).max())
        for i in (0, 1)
        for s0 in (1, -1)
        for s1 in (1, -1)
    ]
    assert min(errs) < 0.1, errs
    axes = MarginalQuantiles(1, 2)
    axes.set_([u @ R.T + 3.0])
    z_axes = axes.forward_one(torch.tensor(grid @ R.T + 3.0, dtype=torch.float32), 0).numpy()
    assert np.abs(np.abs(z_axes) - np.abs(want)[:, None]).max() > 0.3  # the axes do not


def test_ica_frame_of_degenerate_rows_falls_back_to_the_axes_loudly():
    from skbary.nn.maps import MarginalQuantiles

    rows = np.column_stack([np.random.RandomState(0).standard_normal(500), np.ones(500)])
    q = MarginalQuantiles(1, 2, frame="ica")
    with pytest.warns(UserWarning, match="ICA frame"):
        q.set_([rows])
    assert torch.equal(q.unmixing[0], torch.eye(2))


@pytest.mark.parametrize("estimator", ["NOT", "Energy"])
def test_added_map_learns_with_the_cost_in_model_coordinates(monkeypatch, estimator):
    # a user's cost is in data units; with standardize=True the added input's rows reach the
    # map solver in model coordinates, so the solver must get the converted cost
    import skbary.solvers
    from skbary import EnergyBarycenter
    from skbary.datasets import twister_cost

    seen = {}

    def capture(*args, cost, **kwargs):
        seen["cost"] = cost
        raise RuntimeError("captured")

    monkeypatch.setattr(skbary.solvers, "fit_ot_maps", capture)
    bench = make_twister(800, random_state=0)
    cls = NOTBarycenter if estimator == "NOT" else EnergyBarycenter
    est = cls(cost=twister_cost, standardize=True, max_iter=2, random_state=0)
    est.fit(bench.marginals)
    with pytest.raises(RuntimeError, match="captured"):
        est.add_input(bench.marginals[0][:50], label="new", max_iter=1)
    x = torch.tensor(bench.marginals[0][:20], dtype=torch.float32)
    y = torch.tensor(bench.marginals[1][:20], dtype=torch.float32)
    c = torch.tensor(est.center_, dtype=torch.float32)
    s = float(est.scale_)
    assert abs(s - 1.0) > 0.05  # the conversion is visible
    got = seen["cost"]((x - c) / s, (y - c) / s)
    torch.testing.assert_close(got, twister_cost(x, y) / s**2, rtol=1e-4, atol=1e-5)
