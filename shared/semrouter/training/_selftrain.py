"""Routing well with no labelled data: a head trained on the route utterances, and abstention.

Pure NumPy building blocks for the default (unfitted) router; the router runs
:func:`self_train` when its routes change and stores the :class:`~semrouter._learned.SelfTraining`
it returns with the route set (serving reads it there, ``_learned.py``). Nothing here touches
Qdrant or the router.

The rule (:func:`decide`):

* **Which route**: the one with the highest probability under a softmax head trained on the
  stored utterances alone (:func:`train_route_head`; each utterance is a labelled example of
  its route). On CLINC150 validation this beats nearest-neighbour routing by 5.7 points with
  100 utterances per route and 5.1 with 5 (benchmarks/results/zero_label.txt).
* **Whether to answer**: the route's nearest-neighbour *similarity* (the router's own
  aggregation of cosine similarities, e.g. the mean of its best 2 hits) must reach a
  threshold. So the score scale is unchanged: a cosine similarity in ``[-1, 1]``, a
  user-set threshold means what it always meant, and ``-1`` never abstains.
* **The threshold adapts to the route set** (``_abstention.py``): a low quantile of the
  utterances' *leave-one-out* similarity to their own route, i.e. the cut that would reject
  about ``reject_share`` of queries that look like the utterances, estimated conservatively
  when they are few; moved towards each route's own scores; never under a floor tied to the
  encoder's default threshold (applied when the route set is built). Tight routes with many
  utterances get a high threshold (about 0.49 on CLINC150 with 100 per route), sparse ones a
  low one.

Assumptions, documented because the threshold rests on them:

* In-scope queries resemble the stored utterances as much as the utterances resemble each
  other (exchangeability). Where users phrase queries unlike every example, more in-scope
  queries fall under the threshold than ``reject_share`` says.
* Routes with one utterance have no leave-one-out score; they take the threshold of the rest.
  With fewer than 3 leave-one-out scores (no route of two or more utterances, or one route
  of two) there is nothing to learn from and :func:`abstention_threshold` returns ``None``
  (the caller keeps its default threshold).

Training is a deterministic full-batch L-BFGS in float32 (no randomness, no seed), started
from the nearest-centroid classifier: the same utterance vectors in the same order give the
same head. ``previous=`` warm-starts from the
head of the previous route set (routes matched by name), which needs fewer iterations when a
few routes change; the result then depends on that history, so a caller that wants
"same routes, same head" across processes trains cold or persists the head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from .._aggregation import Aggregation
from .._exceptions import ConfigurationError
from .._head import LogisticHead
from .._learned import SelfTraining
from ._abstention import (
    DEFAULT_CONFIDENCE,
    DEFAULT_REJECT_SHARE,
    DEFAULT_ROUTE_SHIFT,
    ROUTE_SHIFT_PRIOR,
    abstention_threshold,
    check_rows,
    own_route_scores,
    route_thresholds,
)
from ._head import lbfgs, softmax_loss

__all__ = ["DEFAULT_L2", "DEFAULT_MAX_ITER", "decide", "self_train", "train_route_head"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: L2 weight and iteration cap of the head: 1e-5 as for fit(). Started from the scaled
#: nearest-centroid classifier (``CENTROID_SCALE``), 30 L-BFGS iterations match the validation
#: accuracy of 50 from zero weights (CLINC150 all / 5 per route / 100 routes, BANKING77) at
#: 40 % less time; see benchmarks/results/zero_label.txt for the costs.
DEFAULT_L2 = 1e-5
DEFAULT_MAX_ITER = 30
CENTROID_SCALE = 20.0


def train_route_head(
    vectors: npt.ArrayLike,
    route_of_row: npt.ArrayLike,
    route_names: Sequence[str],
    *,
    previous: LogisticHead | None = None,
    l2: float = DEFAULT_L2,
    max_iter: int = DEFAULT_MAX_ITER,
    fingerprint: str | None = None,
    pause: Callable[[], None] | None = None,
) -> LogisticHead:
    """A softmax head over the routes, trained on the route utterances alone.

    Args:
        vectors: (n, d) utterance embeddings (unit rows, as encoders return them).
        route_of_row: (n,) index into ``route_names`` of each utterance's route.
        route_names: the R route names, in column order.
        previous: a head of an earlier route set with the same dimension; the routes it knows
            start from its weights, new ones from zero (fewer iterations when little changed).
        l2: weight of the ``0.5 * ||W||²`` penalty beside the mean cross-entropy.
        max_iter: L-BFGS iterations at most.
        fingerprint: the encoder fingerprint, stored with the head.
        pause: called after each loss evaluation (~0.25 s at 100k utterances on one BLAS
            thread): a background run yields the cores there (``_router_teach.py``). The head
            does not depend on it.

    Returns:
        A :class:`LogisticHead` without a none class.

    Example:
        >>> X = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
        >>> head = train_route_head(X, [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
        >>> head.predict_proba(X).argmax(axis=1).tolist()
        [0, 0, 1, 1, 2, 2]
    """
    data, labels = check_rows(vectors, route_of_row, len(route_names))
    n_routes = len(route_names)
    d = data.shape[1]
    if previous is not None:
        start = _warm_start(previous, route_names, d)
    else:
        start = _centroid_start(data, labels, n_routes)
    theta = lbfgs(_softmax_loss(data, labels, n_routes, l2), start, max_iter, 1e-6, pause=pause)
    return LogisticHead(
        theta[: d * n_routes].reshape(d, n_routes),
        theta[d * n_routes :],
        route_names=route_names,
        fingerprint=fingerprint,
    )


def decide(
    probabilities: npt.ArrayLike,
    similarities: npt.ArrayLike,
    thresholds: npt.ArrayLike | float,
) -> tuple[IntArray, FloatArray]:
    """The zero-label routing rule: the head picks, the similarity vetoes.

    Args:
        probabilities: (n, R) from :meth:`LogisticHead.predict_proba`.
        similarities: (n, R) route similarities on the router's aggregation; NaN for routes
            the index did not return (scored -1, so only a threshold of -1 accepts them).
        thresholds: one per route (R,), or one for all, on the similarity scale.

    Returns:
        The route index per row (-1: abstain) and the chosen route's similarity (the score a
        match reports; -1 where it was not retrieved).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    sim = np.asarray(similarities, dtype=np.float64)
    if p.ndim != 2 or p.shape != sim.shape:
        raise ConfigurationError(f"shapes differ: {p.shape} and {sim.shape}")
    best = p.argmax(axis=1)
    score = np.nan_to_num(sim[np.arange(p.shape[0]), best], nan=-1.0)
    cut = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (p.shape[1],))
    return np.where(score >= cut[best], best, -1).astype(np.int64), score


def self_train(
    vectors: npt.ArrayLike,
    route_of_row: npt.ArrayLike,
    route_names: Sequence[str],
    *,
    top_k: int = 2,
    aggregation: Aggregation = "mean",
    reject_share: float = DEFAULT_REJECT_SHARE,
    route_shift: float = DEFAULT_ROUTE_SHIFT,
    confidence: float = DEFAULT_CONFIDENCE,
    shift_prior: float = ROUTE_SHIFT_PRIOR,
    previous: SelfTraining | None = None,
    fingerprint: str | None = None,
    own: FloatArray | None = None,
    pause: Callable[[], None] | None = None,
) -> SelfTraining:
    """Head and threshold for one route set: what the scorer runs at sync time (``pause``: see
    :func:`train_route_head`).

    Example:
        >>> X = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
        >>> trained = self_train(X, [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
        >>> trained.threshold
        1.0
    """
    head = train_route_head(
        vectors,
        route_of_row,
        route_names,
        previous=None if previous is None else previous.head,
        fingerprint=fingerprint,
        pause=pause,
    )
    if own is None:  # a caller that needs them too passes them in (computed once)
        own = own_route_scores(
            vectors, route_of_row, len(route_names), top_k=top_k, aggregation=aggregation
        )
    threshold = abstention_threshold(
        own, reject_share=reject_share, confidence=confidence, route_of_row=route_of_row
    )
    cuts = None
    if threshold is not None:
        per_route = route_thresholds(
            own, route_of_row, len(route_names), threshold, shift=route_shift, prior=shift_prior
        )
        cuts = tuple(float(c) for c in per_route)
    return SelfTraining(
        head=head,
        threshold=threshold,
        reject_share=reject_share,
        top_k=top_k,
        aggregation=aggregation,
        route_thresholds=cuts,
    )


def _softmax_loss(
    X: npt.NDArray[np.float32], labels: IntArray, n_routes: int, l2: float
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """Mean cross-entropy + ``0.5 * l2 * ||W||²`` and its gradient (every row weighs 1/n)."""
    n = X.shape[0]
    return softmax_loss(X, labels, np.full(n, 1.0 / n), n_routes, l2)


def _centroid_start(X: npt.NDArray[np.float32], labels: IntArray, n_routes: int) -> FloatArray:
    """The nearest-centroid classifier, scaled: logits ``CENTROID_SCALE * (x.m - |m|²/2)``."""
    sums = np.zeros((n_routes, X.shape[1]))
    np.add.at(sums, labels, X.astype(np.float64))
    means = sums / np.maximum(np.bincount(labels, minlength=n_routes), 1)[:, None]
    bias = -0.5 * CENTROID_SCALE * (means * means).sum(axis=1)
    return np.concatenate([(CENTROID_SCALE * means.T).ravel(), bias])


def _warm_start(previous: LogisticHead, route_names: Sequence[str], d: int) -> FloatArray:
    if previous.dimension != d:
        raise ConfigurationError(
            f"previous head takes {previous.dimension}-d vectors, these are {d}-d"
        )
    known = {name: i for i, name in enumerate(previous.route_names)}
    weights = np.zeros((d, len(route_names)))
    # A new route starts at the lowest known bias: no pull until its utterances give one.
    bias = np.full(len(route_names), float(previous.bias.min()) if known else 0.0)
    for j, name in enumerate(route_names):
        if name in known:
            weights[:, j] = previous.weights[:, known[name]]
            bias[j] = previous.bias[known[name]]
    return np.concatenate([weights.ravel(), bias])
