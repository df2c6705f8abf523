"""GridSearchCV of a neural barycenter on a dask cluster: one GPU per worker.

The recipe of docs/scaling.md. Every candidate x fold is one ordinary ``fit``, shipped by
joblib's ``"dask"`` backend to a worker process; nothing in skbary knows about the cluster.

* **One GPU per worker**: start one worker process per GPU with ``CUDA_VISIBLE_DEVICES`` set
  to that GPU, so every worker sees a single device ``cuda:0``. Keep ``device="auto"`` (the
  default) in the estimator: the device is resolved inside ``fit``
  (:func:`skbary.training.device.resolve_device`), on the worker, so the same pickled
  estimator runs on the GPU of whichever worker receives it, and on the CPU where none is.
  On one machine with 4 GPUs::

      dask scheduler --port 8786 &
      for i in 0 1 2 3; do
          CUDA_VISIBLE_DEVICES=$i dask worker tcp://localhost:8786 \\
              --nworkers 1 --nthreads 1 --name gpu$i &
      done

  and connect with ``Client("tcp://localhost:8786")`` (``--scheduler`` below). Give each
  worker one thread: one fit already fills its GPU, and ``n_threads`` sets the torch CPU
  threads of each fit.
* **Without a cluster** (this script's default) a ``LocalCluster`` of two CPU worker
  processes stands in for it.
* **Ray** instead of dask: ``from ray.util.joblib import register_ray; register_ray()`` and
  ``joblib.parallel_backend("ray")``; start the Ray workers with one GPU each
  (``ray start --num-gpus 1`` per GPU, CUDA_VISIBLE_DEVICES is then set by Ray).

Run: ``python examples/cluster_grid_search.py`` (about a minute on 2 CPU cores; needs
``pip install skbary[distributed]``).
"""

from __future__ import annotations

import argparse
import time

import joblib
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skbary import NOTBarycenter
from skbary.datasets import make_location_scatter
from skbary.scorers import make_l2_uvp_scorer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scheduler", help="address of a running dask scheduler (tcp://...)")
    p.add_argument("--max-iter", type=int, default=300)
    args = p.parse_args(argv)
    from distributed import Client, LocalCluster

    bench = make_location_scatter(3, 2, 2000, means="random", random_state=0)
    grid = {"lr_map": [3e-4, 1e-3], "lr_potential": [3e-4, 1e-3]}
    search = GridSearchCV(
        NOTBarycenter(max_iter=args.max_iter, device="auto", random_state=0),
        grid,
        scoring=make_l2_uvp_scorer(bench),
        cv=StratifiedKFold(n_splits=2, shuffle=True, random_state=0),
        n_jobs=-1,
    )
    t0 = time.perf_counter()
    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1)
        client = Client(cluster)
    try:
        print(f"dask dashboard: {client.dashboard_link}")
        with joblib.parallel_backend("dask"):
            search.fit(bench.X, bench.y)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"{params}  L2-UVP {-score:.2f} %")
    print(f"best: {search.best_params_}; done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
