"""Calibration on frozen embeddings, in plain NumPy: a logistic head and per-route thresholds.

Both pieces are pure functions of arrays, so the router (or anyone) can fit them offline and
store the result in a config file:

* :class:`LogisticHead`: multinomial logistic regression on L2-normalised embeddings, fitted
  with a deterministic full-batch L-BFGS; optionally with an extra "none" class learnt from
  examples that should match no route.
* :func:`fit_thresholds`: per-route score thresholds that maximise accuracy (in-scope and
  "no route" together) or macro F1, starting from the best single global threshold.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from ._exceptions import ConfigurationError

__all__ = ["LogisticHead", "ThresholdFit", "apply_thresholds", "blend_scores", "fit_thresholds"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_FORMAT = "semrouter.logistic_head/1"


class LogisticHead:
    """A softmax classifier over routes, on top of a frozen encoder.

    Build one with :meth:`fit`; scoring is one matrix product and a softmax. Label ``-1`` in
    the training labels means "matches no route": such rows train an extra *none* class whose
    probability mass is taken away from the routes, so :meth:`predict_proba` rows sum to
    ``1 - p(none)`` and a threshold on the best route's probability abstains naturally.

    Example:
        >>> import numpy as np
        >>> X = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
        >>> head = LogisticHead.fit(X, np.array([0, 0, 1, 1, -1, -1]), route_names=["a", "b"])
        >>> head.predict_proba(X[:1]).argmax(axis=1).tolist()
        [0]
    """

    def __init__(
        self,
        weights: npt.ArrayLike,
        bias: npt.ArrayLike,
        *,
        route_names: Sequence[str],
        has_none: bool = False,
        temperature: float = 1.0,
        fingerprint: str | None = None,
    ) -> None:
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
        self.route_names = tuple(route_names)
        self.has_none = bool(has_none)
        self.temperature = float(temperature)
        #: The encoder fingerprint the head was trained on, when the caller recorded it.
        self.fingerprint = fingerprint
        classes = len(self.route_names) + int(self.has_none)
        if self.weights.ndim != 2 or self.weights.shape[1] != classes:
            raise ConfigurationError(
                f"weights of shape {self.weights.shape} do not fit {classes} classes"
            )
        if self.bias.shape != (classes,):
            raise ConfigurationError(f"bias of shape {self.bias.shape}, expected ({classes},)")
        if not self.temperature > 0.0:
            raise ConfigurationError("temperature must be positive")

    @property
    def dimension(self) -> int:
        """Length of the embeddings the head takes."""
        return int(self.weights.shape[0])

    @classmethod
    def fit(
        cls,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        n_classes: int | None = None,
        route_names: Sequence[str] | None = None,
        l2: float = 1e-5,
        class_weight: Literal["balanced"] | Mapping[int, float] | None = None,
        none_weight: float = 1.0,
        max_iter: int = 300,
        tol: float = 1e-6,
        fingerprint: str | None = None,
    ) -> LogisticHead:
        """Fit the head on embeddings ``X`` (n, d) and labels ``y`` (n,) in ``[0, C)`` or -1.

        The optimiser starts from zero weights and uses no randomness, so the same inputs on
        the same machine give bitwise identical weights.

        Args:
            X: embeddings, one row per example (L2-normalised, as encoders return them).
            y: route index of each row; -1 for rows that should match no route.
            n_classes: number of routes ``C``; defaults to ``len(route_names)``.
            route_names: names of the routes, in index order; defaults to ``"0".."C-1"``.
            l2: weight of the ``0.5 * ||W||²`` penalty added to the mean cross-entropy; 1e-5
                was best on CLINC150 validation, with 100 and with 5 examples per route.
            class_weight: ``"balanced"`` weighs each class inversely to its size; a mapping
                gives a weight per route index (-1 for the none class).
            none_weight: extra factor on the loss of the none-class rows (5 did better than 1
                on CLINC150, where 100 such rows face 100 per route).
            max_iter: L-BFGS iterations at most.
            tol: stop when the largest gradient entry falls below this.
            fingerprint: the encoder fingerprint, stored with the head.
        """
        data = np.ascontiguousarray(X, dtype=np.float64)
        labels = np.asarray(y, dtype=np.int64).reshape(-1)
        if route_names is None and n_classes is None:
            raise ConfigurationError("pass n_classes or route_names")
        names = [str(i) for i in range(n_classes or 0)] if route_names is None else route_names
        n_routes = len(names)
        if n_classes is not None and n_classes != n_routes:
            raise ConfigurationError(f"n_classes={n_classes} but {n_routes} route names")
        if data.ndim != 2 or data.shape[0] != labels.shape[0] or data.shape[0] == 0:
            raise ConfigurationError("X must be a non-empty (n, d) array with one label per row")
        if labels.min() < -1 or labels.max() >= n_routes:
            raise ConfigurationError(f"labels must lie in [-1, {n_routes})")
        if not np.all(np.isfinite(data)):
            raise ConfigurationError("X contains non-finite values")
        has_none = bool(np.any(labels == -1))
        targets = np.where(labels == -1, n_routes, labels)
        sample_weight = _sample_weights(targets, n_routes + 1, class_weight, none_weight)
        weights, bias = _fit_softmax(
            data, targets, sample_weight, n_routes + int(has_none), l2, max_iter, tol
        )
        return cls(weights, bias, route_names=names, has_none=has_none, fingerprint=fingerprint)

    def logits(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Raw class scores ``X @ W + b``, divided by the temperature; (n, C[+1])."""
        data = np.asarray(X, dtype=np.float32)
        if data.ndim != 2 or data.shape[1] != self.dimension:
            raise ConfigurationError(f"expected (n, {self.dimension}) embeddings, got {data.shape}")
        z = data @ self.weights + self.bias
        return z / np.float32(self.temperature) if self.temperature != 1.0 else z

    def predict_proba(
        self, X: npt.ArrayLike, *, with_none: bool = False
    ) -> npt.NDArray[np.float32]:
        """Route probabilities (n, C); with ``with_none`` the none class is the last column."""
        z = self.logits(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        if self.has_none and not with_none:
            return np.ascontiguousarray(z[:, : len(self.route_names)])
        return z

    def with_temperature(self, temperature: float) -> LogisticHead:
        """The same head with its logits divided by ``temperature``."""
        return LogisticHead(
            self.weights,
            self.bias,
            route_names=self.route_names,
            has_none=self.has_none,
            temperature=temperature,
            fingerprint=self.fingerprint,
        )

    def to_dict(self, *, encoding: Literal["base64", "list"] = "base64") -> dict[str, Any]:
        """A JSON/YAML-safe mapping; ``"base64"`` packs float32 bytes, ``"list"`` plain floats."""

        def pack(array: npt.NDArray[np.float32]) -> Any:
            if encoding == "list":
                return array.tolist()
            return base64.b64encode(array.astype("<f4").tobytes()).decode("ascii")

        return {
            "format": _FORMAT,
            "route_names": list(self.route_names),
            "has_none": self.has_none,
            "dimension": self.dimension,
            "temperature": self.temperature,
            "fingerprint": self.fingerprint,
            "weights": pack(self.weights),
            "bias": pack(self.bias),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticHead:
        """Rebuild a head from :meth:`to_dict`'s output."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ConfigurationError(f"not a logistic head (expected format {_FORMAT!r})")
        try:
            names = [str(name) for name in data["route_names"]]
            has_none = bool(data["has_none"])
            classes = len(names) + int(has_none)
            dimension = int(data["dimension"])
            weights = _unpack(data["weights"]).reshape(dimension, classes)
            bias = _unpack(data["bias"]).reshape(classes)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid logistic head: {exc}") from exc
        return cls(
            weights,
            bias,
            route_names=names,
            has_none=has_none,
            temperature=float(data.get("temperature", 1.0)),
            fingerprint=data.get("fingerprint"),
        )

    def __repr__(self) -> str:
        none = ", has_none=True" if self.has_none else ""
        return f"LogisticHead(routes={len(self.route_names)}, dimension={self.dimension}{none})"


def _unpack(value: Any) -> npt.NDArray[np.float32]:
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4").astype(np.float32)
    return np.asarray(value, dtype=np.float32)


def _sample_weights(
    targets: IntArray,
    n_classes: int,
    class_weight: Literal["balanced"] | Mapping[int, float] | None,
    none_weight: float,
) -> FloatArray:
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    if class_weight is None:
        per_class = np.ones(n_classes)
    elif class_weight == "balanced":
        present = counts > 0
        per_class = np.ones(n_classes)
        per_class[present] = counts[present].sum() / (present.sum() * counts[present])
    elif isinstance(class_weight, Mapping):
        per_class = np.ones(n_classes)
        for index, value in class_weight.items():
            per_class[n_classes - 1 if index == -1 else index] = float(value)
    else:
        raise ConfigurationError("class_weight must be None, 'balanced' or a mapping")
    per_class[n_classes - 1] *= none_weight
    if np.any(per_class < 0) or not np.all(np.isfinite(per_class)):
        raise ConfigurationError("class weights must be finite and non-negative")
    weights = per_class[targets]
    if not weights.sum() > 0:
        raise ConfigurationError("class weights give every row zero weight")
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _fit_softmax(
    X: FloatArray,
    targets: IntArray,
    sample_weight: FloatArray,
    n_classes: int,
    l2: float,
    max_iter: int,
    tol: float,
) -> tuple[FloatArray, FloatArray]:
    n, d = X.shape
    rows = np.arange(n)

    def loss_and_grad(theta: FloatArray) -> tuple[float, FloatArray]:
        W = theta[: d * n_classes].reshape(d, n_classes)
        z = X @ W + theta[d * n_classes :]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        total = p.sum(axis=1)
        loss = float(sample_weight @ (np.log(total) - z[rows, targets]))
        p /= total[:, None]
        p[rows, targets] -= 1.0
        p *= sample_weight[:, None]
        grad_w = X.T @ p + l2 * W
        loss += 0.5 * l2 * float(np.vdot(W, W))
        return loss, np.concatenate([grad_w.ravel(), p.sum(axis=0)])

    theta = _lbfgs(loss_and_grad, np.zeros(d * n_classes + n_classes), max_iter, tol)
    return theta[: d * n_classes].reshape(d, n_classes), theta[d * n_classes :]


def _lbfgs(
    fun: Callable[[FloatArray], tuple[float, FloatArray]],
    x: FloatArray,
    max_iter: int,
    tol: float,
    memory: int = 10,
) -> FloatArray:
    """Minimise a smooth convex ``fun(x) -> (f, g)`` with L-BFGS and a backtracking search."""
    f, g = fun(x)
    history: list[tuple[FloatArray, FloatArray, float]] = []
    for _ in range(max_iter):
        if float(np.max(np.abs(g))) <= tol:
            break
        # Two-loop recursion: direction = -H g.
        q = g.copy()
        alphas = []
        for s, yv, rho in reversed(history):
            alpha = rho * float(s @ q)
            q -= alpha * yv
            alphas.append(alpha)
        if history:
            s, yv, _ = history[-1]
            q *= float(s @ yv) / float(yv @ yv)
        else:
            q /= max(float(np.linalg.norm(g)), 1e-12)
        for (s, yv, rho), alpha in zip(history, reversed(alphas), strict=True):
            q += s * (alpha - rho * float(yv @ q))
        direction = -q
        slope = float(g @ direction)
        if slope >= 0.0:  # not a descent direction: restart from steepest descent
            history.clear()
            direction, slope = -g, -float(g @ g)
        step = 1.0
        for _ in range(30):  # Armijo backtracking
            x_new = x + step * direction
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s, yv = x_new - x, g_new - g
        sy = float(s @ yv)
        if sy > 1e-12 * float(yv @ yv):
            history.append((s, yv, 1.0 / sy))
            if len(history) > memory:
                history.pop(0)
        done = f - f_new <= 1e-12 * max(abs(f), 1.0)
        x, f, g = x_new, f_new, g_new
        if done:
            break
    return x


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
    # Among equally good global cuts, take the middle one: the widest margin either side.
    pick = _nearest_best(values, cuts, float(np.median(cuts[values >= values.max() - 1e-12])))
    global_cut, global_score = float(cuts[pick]), float(values[pick])
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
