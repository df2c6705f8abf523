"""Per-coordinate split of the error on a product-measure instance (issue 15 diagnostic).

python -m benchmarks.diag_nongaussian
"""

import os

import numpy as np
import torch

from skbary import GaussianBarycenter, NOTBarycenter
from skbary.datasets import make_product_measures
from skbary.metrics import marginal_w2


def main() -> None:
    torch.set_num_threads(1)
    b = make_product_measures(3, 8, 5000, weights=[0.2, 0.3, 0.5], random_state=0)
    print(b.law_names)
    for est in [GaussianBarycenter(), NOTBarycenter(max_time=60, random_state=0)]:
        est.fit(b.X, b.y)
        Y = est.sample(20000, random_state=0)
        per = np.array(marginal_w2(Y, b)["marginal_w2_per_coordinate"])
        fresh = b.sample_marginals(5000, random_state=1)
        tv = np.trace(b.barycenter_cov)
        l2 = sum(
            a * 100 * ((est.transform(X, k) - b.map_to_barycenter(X, k)) ** 2).mean(0) / tv
            for k, (a, X) in enumerate(zip(b.weights, fresh))
        )
        print(type(est).__name__, "load", os.getloadavg()[0])
        print("  margW2 per coord", np.round(per, 3))
        print("  L2-UVP per coord", np.round(l2, 3), "sum", l2.sum().round(3))


if __name__ == "__main__":
    main()
