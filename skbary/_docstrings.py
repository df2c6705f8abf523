"""Parameter descriptions that several estimators share, written once.

A class docstring of a :class:`~skbary.base.BaseBarycenter` subclass names a shared block
with a line holding only ``{{name}}`` (indented like the parameters);
:func:`fill_shared_docs`, called when the class is defined, puts the block there, so that
``help()``, numpydoc and the docstring tests see the whole text.
"""

from __future__ import annotations

import re

__all__ = ["SHARED_PARAMETER_DOCS", "fill_shared_docs"]

#: Name -> numpydoc parameter entries, indented as in a class docstring.
SHARED_PARAMETER_DOCS: dict[str, str] = {
    "weights": """\
    weights : {"uniform", "proportional"}, dict, array-like of shape (K,) or None, \
default=None
        Barycenter weights when ``fit`` gets none (the same forms as ``fit(...,
        weights=)`` and :class:`~skbary.BarycenterMapper`): None or "uniform" give 1/K each;
        "proportional" each input's share of the rows (of the total ``sample_weight`` when
        given); a dict maps every input label to its
        weight; a vector gives one weight per input in the order of ``input_labels_`` (the
        list form's order; in the flat form the sorted labels of ``y``). Explicit weights
        must be non-negative and sum to 1: they are not normalised silently.
""",
    "unlabelled_rows": """\
    unlabelled_rows : {"error", "guess"}, default="error"
        What ``transform`` does with rows given without ``k`` when there are several
        inputs: "error" raises (say ``k``, or use :class:`~skbary.BarycenterMapper` in a
        Pipeline); "guess" routes each row to its most likely input under a Gaussian model
        of every input fitted on the training rows (rows where inputs overlap get misrouted).
""",
    "dtype": """\
    dtype : {np.float64, np.float32} or None, default=np.float64
        Data type of what ``transform``, ``inverse_transform`` and ``sample`` return (as in
        :class:`~sklearn.preprocessing.KBinsDiscretizer`). None keeps the data's own:
        float32 rows in give float32 out (``sample`` follows the dtype of the training
        rows), so float32 data stay float32 end to end. The neural estimators compute in
        float32 either way; the output is written chunk by chunk into an array of this
        dtype, so float32 output takes half the memory.
""",
    "bounds": """\
    bounds : None, "auto", "data" or (low, high), default="auto"
        A box, in the data's units, that the generator's samples (``sample``) stay in: its
        output h becomes ``low + (high - low) * sigmoid(h + offset)`` per feature
        (:class:`~skbary.nn.bounded.BoxOutput`, in the standardised coordinates; the
        offset starts a fresh generator at the inputs' weighted mean), trained as part of
        the fit, as image generators end in a sigmoid or tanh matched to the pixels' range
        (the official DCGAN code for MNIST). ``"data"``: per feature, the smallest and
        largest value of the inputs' rows, a box that holds any quadratic barycenter (each
        of its points is a weighted mean of points of the inputs); for images, the pixels'
        range. ``"auto"``: that box when the rows show it is their law's own, i.e. when at
        least 1 % of the values repeat one of its faces
        (:func:`~skbary.nn.bounded.share_on_faces`: pixels at 0, clipped or count data), and
        no box for continuous data (each face reached by one row) nor for the user's own
        generator (which may end in its own squashing layer); the box used is
        ``bounds_``. ``(low, high)``: two numbers (for every feature) or two arrays of one
        value per feature, which must hold every input row. None: no box. It applies to the
        generator, not to the maps of ``transform``. Clipping samples afterwards is no
        substitute: it moves them away from the barycenter. On flat MNIST 0/1 (2,000
        ICNN iterations, three seeds) the box kept every pixel in [0, 1] and lowered the
        Frechet and energy distances to the reference (1.16-1.44 / 0.0018-0.0058 against
        2.37-2.91 / 0.0051-0.0060 without): ``benchmarks/results/mnist_bounds.md``.
""",
    # the common parameters of the neural estimators' training loop
    "training_loop_parameters": """\
    callbacks : list of skorch callbacks or None, default=None
        Told about every iteration (one ``history_`` row; they see the model of that row)
        and about the start and end of each phase. :mod:`skbary.callbacks` lists what works
        (``EarlyStopping``, ``Checkpoint``/``LoadInitState``, ``LRScheduler``, ``PrintLog``,
        :class:`~skbary.callbacks.HeldOutScoring`) and what is refused at fit.
    warm_start : bool, default=False
        When True, ``fit`` on a fitted estimator continues its networks, optimiser states,
        standardisation and history (``n_iter_`` counts on) for ``max_iter`` further
        iterations (None: the method's default count, or until ``max_time``) instead of
        starting afresh (the inputs must have the fitted numbers of inputs and features).
        :meth:`partial_fit` does the same for a given number.
    validation_fraction : float in (0, 1) or None, default=None
        Share of every input's rows held out (a seeded draw) to score the model during the
        main phase (None: 0.1 when early stopping is on, else nothing held out): every
        ``validation_interval`` iterations (and at the phase's end)
        ``history_`` records ``valid_loss``, the barycenter cost ``sum_k a_k W2^2`` (squared
        Euclidean cost, data units) between samples of the model and the held-out rows (at
        most 512 of each), and ``valid_loss_best``. skorch's ``EarlyStopping()`` and
        ``Checkpoint()`` watch them by default (a callback watching a key hears only of the
        rows that have it); ``load_best=True`` on either keeps the best iterate. None trains
        on every row and records no held-out score.
    validation_interval : int or None, default=None
        Iterations between two held-out scores; None: the method's own (50; WIN: 10 outer
        iterations).
    early_stopping : "auto" or bool, default="auto"
        Stop the main phase when ``n_iter_no_change`` held-out scores in a row are no lower
        than the best so far, and keep the networks of the best score (whatever ends the
        phase: time, count or this rule); later phases (WIN's and Generative's maps) then
        train on that model. "auto" stops early only in a method measured to overfit small
        inputs (WIN; not yet NOT, ICNN, Generative, Energy: benchmarks/results/ave_digits.md)
        and only on small inputs: the smallest input has from 200 to 1,999 rows (fewer leave
        too few held-out rows to score).
    n_iter_no_change : int, default=10
        Held-out scores without improvement before early stopping ends the main phase.
""",
}

_MARKER = re.compile(r"^    \{\{(\w+)\}\}\n", re.M)


def fill_shared_docs(doc: str) -> str:
    """``doc`` with every ``{{name}}`` line replaced by its shared block (KeyError if unknown)."""
    return _MARKER.sub(lambda m: SHARED_PARAMETER_DOCS[m.group(1)], doc)
