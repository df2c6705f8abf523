"""Inputs with a known barycenter.

Every maker returns a small benchmark object holding

* ``marginals`` -- a list of K arrays ``(n_k, d)``, one sample per input,
* ``weights`` -- the barycenter weights (K,), positive, summing to 1,
* ``X``, ``y`` -- the same rows in the flat form (``skbary.stack(marginals)``), ready for
  ``fit(X, y)``, ``GridSearchCV`` and ``StratifiedKFold``,
* what is known of the truth: the barycenter's law (a sampler, or its mean and covariance)
  and the true maps between the inputs and the barycenter where they are known,
* ``sample_marginals(n, random_state)`` -- fresh rows of every input, for held-out scoring.

The definitions follow ``BENCHMARKS.md`` and the papers cited in each maker.

Modules (everything public is re-exported here):

* :mod:`.gaussian` -- :class:`GaussianBenchmark`, :func:`make_location_scatter`,
  :func:`make_gaussians` (affine images of one base law; Bures-Wasserstein truth).
* :mod:`.twister` -- the 2-D Twister: :func:`twister_u`, :func:`twister_u_inverse`,
  :func:`twister_cost`, :class:`TwisterBenchmark`, :func:`make_twister`.
* :mod:`.congruent` -- :class:`CongruentBenchmark`, :func:`make_congruent` (congruent
  potentials, WIN paper section 5: the barycenter is a given sample's law).
* :mod:`.ave_digits` -- :func:`load_ave_digits`, the congruent construction on the 8x8
  digits, built once and cached.
* :mod:`.mnist` -- :func:`load_mnist`, :func:`load_colored_mnist`: MNIST as flat rows with an
  ``image_shape``, from the optional extra ``skbary[images]`` (nothing is downloaded).
* :mod:`.ave_mnist` -- :func:`load_ave_mnist`, the congruent construction on MNIST
  (``skbary[images]``), built once and cached.
* :mod:`.mnist_barycenter` -- :func:`make_mnist_barycenter`: two digits and a reference
  barycenter sample from exact discrete OT (:class:`ImageBarycenterBenchmark`).
* :mod:`.mnist_classifier` -- :func:`load_mnist_classifier`, a small CNN trained here and
  cached, whose features feed :func:`skbary.metrics.frechet_distance` (this project's FID).
* :mod:`.nongaussian` -- non-Gaussian inputs with an exact truth:
  :func:`make_product_measures` (product measures of any 1-D laws, optionally under one
  shared rotation; :class:`ProductBenchmark`) and :func:`make_nonlinear_congruent`
  (congruent potentials with nonlinear maps on a synthetic base, any dimension).
* :mod:`.cache` -- :func:`get_data_home` and the ``.npz`` form of a congruent benchmark.
* :mod:`.potentials` -- the random FICNN potentials and the chain of congruent pairs
  (Lemma 3) that :func:`make_congruent` combines.
* :mod:`.solvers` -- conjugate gradients and the Newton solver of problem (11) behind the
  congruent maps.
* :mod:`._common` -- the ``_Benchmark`` base and the argument checks all families share.
"""

from .ave_digits import load_ave_digits
from .ave_mnist import load_ave_mnist
from .cache import get_data_home
from .congruent import CongruentBenchmark, make_congruent
from .gaussian import GaussianBenchmark, make_gaussians, make_location_scatter
from .mnist import load_colored_mnist, load_mnist
from .mnist_barycenter import ImageBarycenterBenchmark, make_mnist_barycenter
from .mnist_classifier import load_mnist_classifier
from .nongaussian import (
    BimodalLaw,
    ProductBenchmark,
    default_laws,
    make_nonlinear_congruent,
    make_product_measures,
)
from .twister import (
    TwisterBenchmark,
    make_twister,
    twister_cost,
    twister_u,
    twister_u_inverse,
)

__all__ = [
    "GaussianBenchmark",
    "make_location_scatter",
    "make_gaussians",
    "TwisterBenchmark",
    "make_twister",
    "twister_cost",
    "twister_u",
    "twister_u_inverse",
    "CongruentBenchmark",
    "make_congruent",
    "load_ave_digits",
    "load_ave_mnist",
    "get_data_home",
    "load_mnist",
    "load_colored_mnist",
    "ImageBarycenterBenchmark",
    "make_mnist_barycenter",
    "load_mnist_classifier",
    "ProductBenchmark",
    "make_product_measures",
    "make_nonlinear_congruent",
    "BimodalLaw",
    "default_laws",
]
