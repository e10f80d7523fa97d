"""Threshold fitting in plain NumPy: the routing rule and the cut points that maximise it.

:func:`fit_thresholds` finds per-route score thresholds that maximise accuracy (in-scope and
"no route" together) or macro F1, starting from the best single global threshold;
:func:`blend_scores` combines the learned head (``semrouter._head``) with nearest-neighbour scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from .._exceptions import ConfigurationError

__all__ = ["ThresholdFit", "apply_thresholds", "blend_scores", "fit_thresholds"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ThresholdFit(BaseModel):
    """Thresholds found by :func:`fit_thresholds` and the metric they reach on the fit data."""

    model_config = ConfigDict(frozen=True)

    thresholds: dict[str, float]
    global_threshold: float
    metric: Literal["accuracy", "f1"]
    score: float
    global_score: float


def apply_thresholds(
    scores: npt.ArrayLike, thresholds: npt.ArrayLike | float
) -> tuple[IntArray, FloatArray]:
    """The routing rule: best route if its score reaches its threshold, else -1.

    Args:
        scores: (n, R) per-route scores.
        thresholds: one threshold per route (R,), or one for all.

    Returns:
        The predicted route index per row (-1 for none) and the best score per row.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    best = matrix.argmax(axis=1)
    top = matrix[np.arange(matrix.shape[0]), best]
    cut = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (matrix.shape[1],))
    return np.where(top >= cut[best], best, -1).astype(np.int64), top


def blend_scores(
    probabilities: npt.ArrayLike, similarities: npt.ArrayLike, *, weight: float = 1.0
) -> FloatArray:
    """Head probabilities plus ``weight`` times nearest-neighbour similarities, per route.

    The head alone is sure of itself far from every example; the similarity term lowers the
    score of queries unlike any stored utterance, so one threshold abstains better (on
    CLINC150, weight 1 with mean-of-top-5 similarities). Missing similarities (NaN, for routes
    that were not retrieved) count as 0.

    Args:
        probabilities: (n, R) from :meth:`LogisticHead.predict_proba`.
        similarities: (n, R) route scores from the nearest stored utterances.
        weight: how much the similarity counts.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    sim = np.nan_to_num(np.asarray(similarities, dtype=np.float64), nan=0.0)
    if p.shape != sim.shape:
        raise ConfigurationError(f"shapes differ: {p.shape} and {sim.shape}")
    return p + weight * sim


def fit_thresholds(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    route_names: Sequence[str],
    *,
    metric: Literal["accuracy", "f1"] = "accuracy",
    sample_weight: npt.ArrayLike | None = None,
    min_support: int = 3,
    max_rounds: int = 5,
    bounds: tuple[float, float] | None = None,
) -> ThresholdFit:
    """Per-route thresholds for the rule of :func:`apply_thresholds`.

    First the single global threshold that maximises ``metric``; then coordinate ascent over
    the routes, each over the cut points between the best scores of the rows it wins. A route
    moves only for a strict gain, to the best cut nearest its current one, and a route that
    wins fewer than ``min_support`` rows keeps the global threshold: both curb over-fitting.

    Ties between global cuts go to the middle of the tied run when some rows are labelled -1,
    and to the lowest cut when none is: without "no route" rows, abstaining never helps
    accuracy, and the router must not abstain more than the labels justify. When that lowest
    cut accepts every row, the threshold is ``bounds[0]`` (the floor of the scale), so a later
    query scoring below every held-out row is accepted too.

    Args:
        scores: (n, R) per-route scores (similarities or head probabilities).
        labels: (n,) gold route index, -1 for rows that should match no route.
        route_names: the R route names, in column order.
        metric: ``"accuracy"`` over all rows, or ``"f1"``: macro F1 over the routes (and the
            none class when -1 labels exist) that have gold rows.
        sample_weight: (n,) non-negative row weights, for instance to give the "no route" rows
            the share of traffic expected in production rather than their share of the data.
        min_support: rows a route must win to get its own threshold.
        max_rounds: passes of coordinate ascent at most (accuracy needs one: it is separable).
        bounds: clip the thresholds into this range, such as ``(-1.0, 1.0)`` for cosine
            similarities (a cut above the highest score may otherwise exceed 1).
    """
    matrix = np.asarray(scores, dtype=np.float64)
    gold = np.asarray(labels, dtype=np.int64).reshape(-1)
    n_routes = len(route_names)
    if matrix.ndim != 2 or matrix.shape != (gold.shape[0], n_routes) or gold.shape[0] == 0:
        raise ConfigurationError("scores must be a non-empty (n, R) array, one label per row")
    if gold.min() < -1 or gold.max() >= n_routes:
        raise ConfigurationError(f"labels must lie in [-1, {n_routes})")
    if metric not in ("accuracy", "f1"):
        raise ConfigurationError(f"unknown metric {metric!r}")
    weight = (
        np.ones(gold.shape[0])
        if sample_weight is None
        else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    )
    if weight.shape != gold.shape or np.any(weight < 0) or not weight.sum() > 0:
        raise ConfigurationError("sample_weight must be (n,), non-negative, not all zero")
    _, top = apply_thresholds(matrix, np.inf)
    best = matrix.argmax(axis=1)
    state = _Counts(gold, best, weight, n_routes)

    # The best global threshold: every route shares it.
    cuts = _cut_points(top)
    order = np.argsort(top, kind="stable")
    values = state.sweep(order, top[order], cuts, None, metric)
    if state.none_support > 0:
        # Among equally good global cuts, take the middle one: the widest margin either side.
        anchor = float(np.median(cuts[values >= values.max() - 1e-12]))
    else:
        # No "no route" rows: nothing says abstaining is ever right, so take the lowest of the
        # equally good cuts (the middle of a tie abstained on 1-3 % of in-scope queries).
        anchor = float(cuts[0])
    pick = _nearest_best(values, cuts, anchor)
    global_cut, global_score = float(cuts[pick]), float(values[pick])
    if pick == 0 and state.none_support == 0 and bounds is not None:
        global_cut = bounds[0]  # every row accepted: so is anything scoring lower
    current = np.full(n_routes, global_cut)
    state.assign(top >= global_cut)

    score = global_score
    for _ in range(max_rounds):
        improved = False
        for r in range(n_routes):
            rows = np.flatnonzero(best == r)
            if rows.size < min_support:
                continue
            rows = rows[np.argsort(top[rows], kind="stable")]
            # The current cut is a candidate too: ties keep it, so nothing moves for nothing.
            cuts_r = np.concatenate([[current[r]], _cut_points(top[rows])])
            values = state.sweep(rows, top[rows], cuts_r, r, metric)
            pick = _nearest_best(values, cuts_r, float(current[r]))
            if values[pick] > score + 1e-12:
                improved = True
                current[r] = cuts_r[pick]
                score = float(values[pick])
                state.assign(top >= current[best], rows=rows)
        if not improved:
            break
    if bounds is not None:
        current = np.clip(current, *bounds)
        global_cut = float(np.clip(global_cut, *bounds))
    thresholds = {name: float(current[i]) for i, name in enumerate(route_names)}
    return ThresholdFit(
        thresholds=thresholds,
        global_threshold=global_cut,
        metric=metric,
        score=score,
        global_score=global_score,
    )


def _cut_points(sorted_or_not: FloatArray) -> FloatArray:
    """Midpoints between distinct values, plus one cut below all and one above all."""
    values = np.unique(sorted_or_not)
    span = max(float(values[-1] - values[0]), 1e-6)
    inner = (values[:-1] + values[1:]) / 2.0
    return np.concatenate([[values[0] - 1e-3 * span], inner, [values[-1] + 1e-3 * span]])


def _nearest_best(values: FloatArray, cuts: FloatArray, anchor: float) -> int:
    top = values.max()
    candidates = np.flatnonzero(values >= top - 1e-12)
    return int(candidates[np.argmin(np.abs(cuts[candidates] - anchor))])


class _Counts:
    """Weighted confusion counts of the thresholded rule, updated as thresholds move."""

    def __init__(self, gold: IntArray, best: IntArray, weight: FloatArray, n_routes: int) -> None:
        self.gold, self.best, self.weight, self.n_routes = gold, best, weight, n_routes
        self.accepted = np.zeros(gold.shape[0], dtype=bool)
        inside = gold >= 0
        self.support = np.bincount(gold[inside], weight[inside], n_routes).astype(np.float64)
        self.none_support = float(weight[~inside].sum())

    def assign(self, accepted: npt.NDArray[np.bool_], rows: IntArray | None = None) -> None:
        if rows is None:
            self.accepted = accepted.copy()
        else:
            self.accepted[rows] = accepted[rows]

    def sweep(
        self,
        rows: IntArray,
        sorted_top: FloatArray,
        cuts: FloatArray,
        route: int | None,
        metric: str,
    ) -> FloatArray:
        """The metric for each cut, when the rows ``rows`` (sorted by score) use that cut."""
        gold, best, weight = self.gold[rows], self.best[rows], self.weight[rows]
        hit = np.where(gold == best, weight, 0.0)
        # below[k]: how many swept rows score under cuts[k]; they become "none".
        below = np.searchsorted(sorted_top, cuts, side="left")
        cum_hit = np.concatenate([[0.0], np.cumsum(hit)])
        cum_none = np.concatenate([[0.0], np.cumsum(np.where(gold == -1, weight, 0.0))])
        cum_all = np.concatenate([[0.0], np.cumsum(weight)])
        outside = np.ones(self.gold.shape[0], dtype=bool)
        outside[rows] = False
        acc, rej = self.accepted & outside, ~self.accepted & outside
        none_tp = float(self.weight[rej & (self.gold == -1)].sum()) + cum_none[below]
        if metric == "accuracy":
            fixed = float(self.weight[acc & (self.gold == self.best)].sum())
            kept = cum_hit[-1] - cum_hit[below]
            return np.asarray((fixed + none_tp + kept) / float(self.weight.sum()), np.float64)
        # Macro F1: true positives and predictions per route, outside rows first.
        hits = np.where(self.gold == self.best, self.weight, 0.0)[acc]
        tp_fixed = np.bincount(self.best[acc], hits, self.n_routes).astype(np.float64)
        pred_fixed = np.bincount(self.best[acc], self.weight[acc], self.n_routes).astype(np.float64)
        if route is not None:
            tp = np.repeat(tp_fixed[None, :], cuts.shape[0], axis=0)
            pred = np.repeat(pred_fixed[None, :], cuts.shape[0], axis=0)
            tp[:, route] += cum_hit[-1] - cum_hit[below]
            pred[:, route] += cum_all[-1] - cum_all[below]
        else:  # global sweep (no outside rows): each route keeps its rows above the cut
            per_route = np.zeros((rows.shape[0] + 1, self.n_routes))
            per_route[np.arange(1, rows.shape[0] + 1), best] = weight
            cum_pred = np.cumsum(per_route, axis=0)
            per_route[1:][gold != best] = 0.0
            cum_tp = np.cumsum(per_route, axis=0)
            tp = tp_fixed + cum_tp[-1] - cum_tp[below]
            pred = pred_fixed + cum_pred[-1] - cum_pred[below]
        present = self.support > 0
        total = _f1(tp, pred, self.support[None, :])[:, present].sum(axis=1)
        classes = float(present.sum())
        if self.none_support > 0:
            none_pred = float(self.weight[rej].sum()) + cum_all[below]
            total = total + _f1(none_tp, none_pred, np.asarray(self.none_support))
            classes += 1.0
        return np.asarray(total / max(classes, 1.0), dtype=np.float64)


def _f1(tp: FloatArray, predicted: FloatArray, support: FloatArray) -> FloatArray:
    denominator = predicted + support
    return np.where(denominator > 0, 2.0 * tp / np.maximum(denominator, 1e-300), 0.0)
