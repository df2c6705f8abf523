"""GridSearchCV on a real dask.distributed cluster through joblib (issue 18, docs/scaling.md).

A LocalCluster with two worker processes is started on this machine; the search's fits are
shipped to the workers (pickled estimators and data), and the picked parameter must be the
one the same search picks in-process.
"""

import pytest

distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from skbary import GaussianBarycenter  # noqa: E402
from skbary.datasets import make_location_scatter  # noqa: E402
from skbary.scorers import make_bw_uvp_scorer  # noqa: E402


@pytest.mark.timeout(120)
def test_grid_search_on_local_dask_cluster():
    bench = make_location_scatter(3, 4, 300, means="random", random_state=0)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    grid = {"shrinkage": [0.0, 0.5, 0.95]}

    def search():
        return GridSearchCV(
            GaussianBarycenter(), grid, scoring=make_bw_uvp_scorer(bench), cv=cv, n_jobs=-1
        )

    local = search().fit(bench.X, bench.y)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as stream:
            remote = search().fit(bench.X, bench.y)
        workers = set(client.scheduler_info()["workers"])
    # the 9 fits (3 candidates x 3 folds) and the refit ran as tasks on the two workers
    assert len(stream.data) >= 9
    assert {task["worker"] for task in stream.data} <= workers
    assert remote.best_params_ == local.best_params_
    # on location-scatter the truth-scored search picks little shrinkage
    assert remote.best_params_["shrinkage"] < 0.95
    assert remote.cv_results_["mean_test_score"] == pytest.approx(
        local.cv_results_["mean_test_score"], rel=1e-6
    )
