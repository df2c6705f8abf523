"""Persistence: joblib.dump/load of fitted estimators and mappers; GPU-fitted models on a CPU.

No GPU is needed: a model "fitted on a GPU" is simulated by marking its fitted device as
``cuda:0`` (what ``device="auto"`` records on a GPU machine) and, for the load side, by
pretending CUDA is available and recording where the base puts the tensors.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from torch import nn

from skbary import BarycenterMapper, GaussianBarycenter
from tests.fast_params import estimator_instances
from tests.toy import ToyMeanBarycenter

ESTIMATORS = [*estimator_instances(), ToyMeanBarycenter(max_iter=50)]
IDS = [type(e).__name__ for e in ESTIMATORS]


def _inputs(seed=0, n=80, d=2, K=3):
    rng = np.random.RandomState(seed)
    return [rng.randn(n + 5 * k, d) @ rng.randn(d, d) * 0.5 + 2 * k for k in range(K)]


def _fitted(est):
    Xs = _inputs()
    return clone(est).set_params(random_state=0).fit(Xs, [0.2, 0.3, 0.5]), Xs


def _outputs(est, Xs):
    out = {"sample": est.sample(50, random_state=3)}
    for k, Xk in enumerate(Xs):
        out[f"transform{k}"] = est.transform(Xk[:20], k)
    if getattr(est, "_learns_inverse", False):
        out["inverse"] = est.inverse_transform(out["transform0"], 0)
    return out


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_round_trip_gives_the_same_outputs(est, compress, tmp_path):
    fitted, Xs = _fitted(est)
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path, compress=compress)
    loaded = joblib.load(path)
    before, after = _outputs(fitted, Xs), _outputs(loaded, Xs)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert loaded.get_params() == fitted.get_params()
    for attr in ("n_features_in_", "n_marginals_"):
        assert getattr(loaded, attr) == getattr(fitted, attr)
    np.testing.assert_array_equal(loaded.weights_, fitted.weights_)


@pytest.mark.parametrize("inner", [GaussianBarycenter(), ToyMeanBarycenter(max_iter=50)])
def test_fitted_pipeline_with_mapper_round_trip(inner, tmp_path):
    rng = np.random.RandomState(0)
    g = rng.randint(0, 3, 300)
    F = rng.randn(300, 2) * (1 + g[:, None]) + g[:, None]
    X = np.column_stack([F, g])
    y = (F[:, 0] > np.median(F[:, 0])).astype(int)
    pipe = make_pipeline(
        BarycenterMapper(inner.set_params(random_state=0), group_column=-1), LogisticRegression()
    ).fit(X, y)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    loaded = joblib.load(tmp_path / "pipe.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    np.testing.assert_array_equal(loaded[0].transform(X), pipe[0].transform(X))
    np.testing.assert_array_equal(loaded[0].groups_, pipe[0].groups_)


def _as_if_fitted_on_gpu(est):
    """Mark a CPU-fitted neural estimator as fitted on cuda:0 (what a GPU fit records)."""
    est.device_ = torch.device("cuda", 0)
    return est


def test_gpu_fitted_model_loads_on_cpu(tmp_path, monkeypatch):
    est, Xs = _fitted(ToyMeanBarycenter(max_iter=50, device="auto"))
    expected = _outputs(est, Xs)
    _as_if_fitted_on_gpu(est)

    # what goes into the pickle: CPU tensors only, the fitted device remembered by name
    state = est.__getstate__()
    assert state["_fitted_device"] == "cuda:0" and state["device_"] == torch.device("cpu")
    for value in state.values():
        if isinstance(value, nn.Module):
            assert all(t.device.type == "cpu" for t in value.state_dict().values())
        elif isinstance(value, torch.Tensor):
            assert value.device.type == "cpu"

    path = tmp_path / "gpu_model.joblib"
    joblib.dump(est, path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = joblib.load(path)
    assert loaded.device_ == torch.device("cpu")
    assert loaded.shift_.weight.device.type == "cpu"
    after = _outputs(loaded, Xs)
    for key in expected:
        np.testing.assert_array_equal(after[key], expected[key], err_msg=key)


def test_gpu_fitted_model_goes_back_to_cuda_where_there_is_one(tmp_path, monkeypatch):
    est, _ = _fitted(ToyMeanBarycenter(max_iter=20))
    path = tmp_path / "gpu_model.joblib"
    joblib.dump(_as_if_fitted_on_gpu(est), path)
    targets = []

    def record_to(self, *args, **kwargs):  # stands in for the move onto the GPU
        targets.append(torch.device(args[0]) if args else kwargs.get("device"))
        return self

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(nn.Module, "to", record_to)
    loaded = joblib.load(path)
    assert loaded.device_ == torch.device("cuda", 0)
    assert targets and all(t == torch.device("cuda", 0) for t in targets)


def test_loads_in_a_fresh_process_without_cuda(tmp_path):
    """A file written by one process loads in another that sees no CUDA device at all."""
    est, Xs = _fitted(ToyMeanBarycenter(max_iter=30))
    rng = np.random.RandomState(1)
    g = rng.randint(0, 2, 200)
    F = rng.randn(200, 2) + g[:, None]
    mapper = BarycenterMapper(GaussianBarycenter(), group_column=-1).fit(np.column_stack([F, g]))
    joblib.dump({"toy": _as_if_fitted_on_gpu(est), "mapper": mapper}, tmp_path / "m.joblib")
    np.save(tmp_path / "X0.npy", Xs[0][:10])
    np.save(tmp_path / "expected.npy", est.transform(Xs[0][:10], 0))
    np.save(tmp_path / "Xm.npy", np.column_stack([F, g])[:10])
    np.save(tmp_path / "expected_m.npy", mapper.transform(np.column_stack([F, g])[:10]))
    code = textwrap.dedent(
        f"""
        import joblib, numpy as np, torch
        assert not torch.cuda.is_available()
        d = joblib.load({str(tmp_path / "m.joblib")!r})
        toy = d["toy"]
        assert str(toy.device_) == "cpu", toy.device_
        X0 = np.load({str(tmp_path / "X0.npy")!r})
        np.testing.assert_array_equal(toy.transform(X0, 0),
                                      np.load({str(tmp_path / "expected.npy")!r}))
        Xm = np.load({str(tmp_path / "Xm.npy")!r})
        np.testing.assert_array_equal(d["mapper"].transform(Xm),
                                      np.load({str(tmp_path / "expected_m.npy")!r}))
        print("ok")
        """
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],  # so tests.toy unpickles
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
