"""Abstention without labels: cuts on the similarity scale from the route utterances alone.

Pure NumPy; :mod:`._selftrain` runs these when the routes change and
``_routeset.build_route_set`` applies the result (with ``_learned.FLOOR_RATIO``). The rule:

1. each utterance's *leave-one-out* similarity to its own route (:func:`own_route_scores`):
   what it would score as a query;
2. one cut (:func:`abstention_threshold`): a low quantile (``reject_share``) of those scores,
   estimated conservatively when they are few (a normal tolerance bound: the fewer the
   utterances, the lower the cut, smoothly; no size below which nothing is learnt);
3. one cut per route (:func:`route_thresholds`): moved towards the route's own scores, the
   more the more scores it has;
4. never below ``FLOOR_RATIO`` times the encoder's default threshold (where it states one):
   a request from far outside every route scores low against any route set, whatever its
   utterances look like, while a small route set's own scores say little about where such
   requests fall.

Chosen on validation data (never the test splits): ``reject_share`` and the shift on CLINC150
and BANKING77 with all utterances (benchmarks/results/zero_label.txt); the tolerance
``confidence``, the shift's ``prior`` and the floor on small route sets of 2 to 10 routes with
5 utterances each (benchmarks/results/small_sets.txt), checked not to cost the large sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from .._aggregation import AGGREGATIONS, Aggregation, aggregate, hits_counted
from .._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_REJECT_SHARE",
    "DEFAULT_ROUTE_SHIFT",
    "ROUTE_SHIFT_FROM",
    "ROUTE_SHIFT_PRIOR",
    "abstention_threshold",
    "check_rows",
    "own_route_scores",
    "route_thresholds",
    "tolerance_factor",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Share of utterance-like queries the adaptive threshold may turn away, and how far each
#: route's cut follows its own utterances (:func:`route_thresholds`), chosen together on
#: CLINC150 validation (benchmarks/results/zero_label.txt).
DEFAULT_REJECT_SHARE = 0.025
DEFAULT_ROUTE_SHIFT = 0.75
#: A route's cut follows its own utterances from this many leave-one-out scores.
ROUTE_SHIFT_FROM = 3
#: How sure the cut is to turn away at most ``reject_share`` (:func:`tolerance_factor`) and
#: the scores at which a route's cut follows half of ``DEFAULT_ROUTE_SHIFT``: chosen on small
#: route sets (validation splits, benchmarks/results/small_sets.txt), as the floor was.
DEFAULT_CONFIDENCE = 0.95
ROUTE_SHIFT_PRIOR = 5.0


def own_route_scores(
    vectors: npt.ArrayLike,
    route_of_row: npt.ArrayLike,
    n_routes: int,
    *,
    top_k: int = 2,
    aggregation: Aggregation = "mean",
    pause: Callable[[], None] | None = None,
) -> FloatArray:
    """Each utterance's route score against its own route, itself left out.

    The score is the router's aggregation (the ``"mean"`` of the best ``top_k`` cosine
    similarities, or the ``"max"``) over the *other* utterances of the same route, so it is
    what the utterance would score as a query. Costs one (n_r, n_r) product per route.

    ``pause``, if given, is called after each route (a background learner yields to
    serving: ~1 s of products at 100k utterances).

    Returns:
        (n,) scores in row order; NaN for the utterance of a one-utterance route.
    """
    data, labels = check_rows(vectors, route_of_row, n_routes)
    if top_k < 1:
        raise ConfigurationError("top_k must be at least 1")
    if aggregation not in AGGREGATIONS:
        raise ConfigurationError(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    out = np.full(labels.shape[0], np.nan)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_routes + 1))
    for r in range(n_routes):
        rows = order[bounds[r] : bounds[r + 1]]
        if rows.size < 2:
            continue
        block = data[rows] @ data[rows].T
        np.fill_diagonal(block, -np.inf)
        k = min(hits_counted(aggregation, top_k), rows.size - 1)
        best = np.partition(block, rows.size - k, axis=1)[:, rows.size - k :]
        out[rows] = aggregate(best.T, aggregation)
        if pause is not None:
            pause()
    return out


def abstention_threshold(
    own_scores: npt.ArrayLike,
    *,
    reject_share: float = DEFAULT_REJECT_SHARE,
    confidence: float = DEFAULT_CONFIDENCE,
    route_of_row: npt.ArrayLike | None = None,
) -> float | None:
    """The cut on the similarity scale below which the router abstains.

    The lower of two estimates of the ``reject_share`` quantile of the leave-one-out scores
    from :func:`own_route_scores` (NaN ignored): the empirical one (lower interpolation: an
    actual score), and ``mean - k * std`` of a normal fit, where ``k`` is the one-sided normal
    tolerance factor (:func:`tolerance_factor`): the cut rejects at most ``reject_share`` of
    queries like the utterances with probability ``confidence``. With thousands of scores
    ``k`` is the normal quantile ``z``; with a handful it grows (at the default confidence,
    10 scores: 3.4 instead of 1.96; 50: 2.4; 15,000: 1.98), so a small route set, whose mean
    and spread are themselves uncertain, gets a lower cut instead of a noisy one
    (``confidence=0.5``: ``k = z``, the rule before). With hundreds of scores the empirical
    quantile is the lower one (the scores have a long low tail). ``None`` without scores, or
    with too few to bound (fewer than 3 at the default confidence): nothing is learnt. With
    ``route_of_row`` (each score's route), the two scores of a two-utterance route, which are
    one similarity seen twice, count once.
    """
    scores = np.asarray(own_scores, dtype=np.float64).reshape(-1)
    if not 0.0 <= reject_share < 1.0:
        raise ConfigurationError("reject_share must lie in [0, 1)")
    if not 0.0 < confidence < 1.0:
        raise ConfigurationError("confidence must lie in (0, 1)")
    known = ~np.isnan(scores)
    count = int(known.sum())
    if route_of_row is not None:
        labels = np.asarray(route_of_row, dtype=np.int64).reshape(-1)
        if labels.shape != scores.shape:
            raise ConfigurationError("one route per leave-one-out score is needed")
        count -= int(np.sum(np.bincount(labels[known]) == 2)) if count else 0
    scores = scores[known]
    if scores.size == 0:
        return None
    cut = float(np.quantile(scores, reject_share, method="lower"))
    if reject_share > 0.0:
        k = tolerance_factor(count, reject_share, confidence)
        if math.isinf(k):  # too few independent scores to bound the quantile
            return None
        cut = min(cut, float(scores.mean() - k * scores.std(ddof=1)))
    return float(np.clip(cut, -1.0, 1.0))


def tolerance_factor(n: int, share: float, confidence: float) -> float:
    """``k`` such that ``mean - k * std`` of ``n`` normal scores lies under their ``share``
    quantile with probability ``confidence`` (one-sided; Natrella's approximation, within
    1.5 % of the exact factor from 10 scores on, closer with more); ``inf`` when ``n`` is too
    small to say.

    Example:
        >>> round(tolerance_factor(10, 0.025, 0.9), 2), round(tolerance_factor(10, 0.025, 0.5), 2)
        (2.93, 1.96)
    """
    z_p = NormalDist().inv_cdf(1.0 - share)
    z_g = NormalDist().inv_cdf(confidence)
    a = 1.0 - z_g * z_g / (2.0 * (n - 1)) if n > 1 else 0.0
    if a <= 0.0:
        return math.inf
    b = z_p * z_p - z_g * z_g / n
    return (z_p + math.sqrt(max(z_p * z_p - a * b, 0.0))) / a


def route_thresholds(
    own_scores: npt.ArrayLike,
    route_of_row: npt.ArrayLike,
    n_routes: int,
    threshold: float,
    *,
    shift: float = DEFAULT_ROUTE_SHIFT,
    prior: float = ROUTE_SHIFT_PRIOR,
) -> FloatArray:
    """One cut per route: ``threshold`` moved by ``shift * c / (c + prior)`` times how far the
    route's mean leave-one-out score (over its ``c`` scores) lies from the mean over every
    utterance.

    A route whose utterances are close paraphrases (high leave-one-out scores) gets a higher
    cut, a loose one a lower cut: a query as unlike a tight route's utterances as a loose
    route's utterances are unlike each other is more likely out of scope. The mean of a few
    scores is noisy, so a route follows its own in proportion to how many it has (``prior``:
    the count at which it moves half of ``shift``; 100 utterances: 95 %, 5: 50 %). Routes
    with fewer than ``ROUTE_SHIFT_FROM`` scores keep ``threshold``. On CLINC150 validation
    per-route cuts turned away more out-of-scope queries than one cut for all at the same
    in-scope cost (74 % -> 83.5 % with about 1.2 points of in-scope accuracy lost;
    benchmarks/results/zero_label.txt).

    Returns:
        (R,) cuts in ``[-1, 1]``.
    """
    scores = np.asarray(own_scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(route_of_row, dtype=np.int64).reshape(-1)
    if scores.shape != labels.shape:
        raise ConfigurationError("one leave-one-out score per row is needed")
    if prior < 0.0:
        raise ConfigurationError("prior must not be negative")
    out = np.full(n_routes, float(threshold))
    known = ~np.isnan(scores)
    if not known.any() or shift == 0.0:
        return np.asarray(np.clip(out, -1.0, 1.0), dtype=np.float64)
    counts = np.bincount(labels[known], minlength=n_routes)
    sums = np.bincount(labels[known], weights=scores[known], minlength=n_routes)
    enough = counts >= ROUTE_SHIFT_FROM
    means = sums[enough] / counts[enough]
    follow = shift * counts[enough] / (counts[enough] + prior)
    out[enough] += follow * (means - float(scores[known].mean()))
    return np.asarray(np.clip(out, -1.0, 1.0), dtype=np.float64)


def check_rows(
    vectors: npt.ArrayLike, route_of_row: npt.ArrayLike, n_routes: int
) -> tuple[npt.NDArray[np.float32], IntArray]:
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    labels = np.asarray(route_of_row, dtype=np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[0] != labels.shape[0]:
        raise ConfigurationError("vectors must be a non-empty (n, d) array, one route per row")
    if n_routes < 1 or labels.min() < 0 or labels.max() >= n_routes:
        raise ConfigurationError(f"route indices must lie in [0, {n_routes})")
    if not np.all(np.isfinite(data)):
        raise ConfigurationError("vectors contain non-finite values")
    return data, labels
