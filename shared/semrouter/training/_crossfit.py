"""Cross-fitting the head for :func:`~semrouter.training._fitting.fit_calibration`: fold heads that
score the held-out rows as if never seen, and the head kept, trained on every row.

Pure NumPy on :class:`~semrouter._head.LogisticHead`; how far each head is trained (and where
it starts) is what makes ``fit()`` take seconds (benchmarks/results/fit_speed.txt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._head import LogisticHead
from .._routeset import RouteSet
from ._evaluation import stratified_folds
from ._head import fit_head

__all__ = ["FIT_MEMORY", "FIT_TOL", "FOLD_TOL", "MIN_ROWS_PER_FOLD", "learnt_head", "train_head"]

#: Cross-fitting needs this many held-out rows per fold; with fewer the held-out rows only
#: choose the thresholds.
MIN_ROWS_PER_FOLD = 10
#: Where the heads' L-BFGS stops (largest gradient entry) and how many pairs it keeps. The
#: first head only starts the others and the fold heads only score their fold: 1e-4 is
#: enough for them; the head kept stops at 1e-5. With 30 pairs that is about 200 loss
#: evaluations at CLINC150 scale (15k utterances + 3.1k labelled, 5 folds) where 1e-6 / 1e-5
#: and 10 pairs took 447, for the same accuracy on texts fit() never saw
#: (benchmarks/results/fit_speed.txt). The first head starts from the head learnt from the
#: utterances when the router has one.
FOLD_TOL = 1e-4
FIT_TOL = 1e-5
FIT_MEMORY = 30


def train_head(
    names: Sequence[str],
    fingerprint: str,
    X: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    held_X: npt.NDArray[np.float32],
    held_y: npt.NDArray[np.int64],
    *,
    l2: float,
    none_weight: float,
    folds: int,
    seed: int,
    start: LogisticHead | None = None,
) -> tuple[LogisticHead, npt.NDArray[np.float32]]:
    """The head, and its probabilities of the held-out rows, scored as if never seen.

    Without cross-fitting the head learns from ``X`` only and scores the held-out rows.
    With ``folds`` (k) and enough held-out rows, the held-out rows are dealt into k
    stratified folds; each fold is scored by a head trained on ``X`` and the other folds, and
    the head kept learns from ``X`` and every held-out row. Thresholds chosen on the
    out-of-fold scores thus describe heads that never saw the rows they are measured on,
    while the labelled held-out texts still teach the final head (benchmarks/results/
    crossfit.txt: on CLINC150 validation, +0.7 points with 100 utterances per route, +7.9
    with 5, +1.2 with out-of-scope queries). The fold heads start from the first head
    (trained on ``X``, itself from ``start`` when given: the head learnt from the
    utterances) and the final one from the fold heads' mean, which needs fewer iterations
    than starting from zero: the cost is about ``k / 2 + 2`` cold heads.
    """
    options: dict[str, Any] = {
        "route_names": list(names),
        "l2": l2,
        "none_weight": none_weight,
        "fingerprint": fingerprint,
        "memory": FIT_MEMORY,
    }
    k = folds
    if k < 2 or len(held_y) < MIN_ROWS_PER_FOLD * k:
        base = fit_head(X, y, start=start, tol=FIT_TOL, **options)
        return base, base.predict_proba(held_X)
    base = fit_head(X, y, start=start, tol=FOLD_TOL, **options)
    keys = ["\x00none" if label < 0 else str(label) for label in held_y.tolist()]
    fold = stratified_folds(keys, folds=k, seed=seed)
    probabilities = np.empty((len(held_y), len(names)), dtype=np.float32)
    heads = []
    for part in range(k):
        inside = fold != part
        head = fit_head(
            np.concatenate([X, held_X[inside]]),
            np.concatenate([y, held_y[inside]]),
            start=base,
            tol=FOLD_TOL,
            **options,
        )
        probabilities[~inside] = head.predict_proba(held_X[~inside])
        heads.append(head)
    final = fit_head(
        np.concatenate([X, held_X]),
        np.concatenate([y, held_y]),
        start=mean_head(heads) or base,
        tol=FIT_TOL,
        **options,
    )
    return final, probabilities


def mean_head(heads: list[LogisticHead]) -> LogisticHead | None:
    """The fold heads' mean weights: each saw all but a k-th of the final head's rows, so
    their mean starts the final head near its optimum. ``None`` if their classes differ."""
    if len({(head.route_names, head.has_none) for head in heads}) != 1:
        return None
    return LogisticHead(
        np.mean([head.weights for head in heads], axis=0),
        np.mean([head.bias for head in heads], axis=0),
        route_names=heads[0].route_names,
        has_none=heads[0].has_none,
    )


def learnt_head(state: RouteSet, dimension: int) -> LogisticHead | None:
    """The head learnt from these very utterances (``_selftrain.py``), if the router has
    one (of ``dimension``): a start near the fitted head's optimum."""
    learned = state.learned
    if learned is None or learned.digest != state.digest:
        return None
    head = learned.training.head
    return head if head.dimension == dimension else None
