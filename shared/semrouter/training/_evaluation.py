"""Measuring a router on labelled queries: an :class:`EvaluationReport`, and held-out splits.

Everything here works on plain predictions (route names, ``None`` for "no route") and scores,
so it measures any router, with or without a logistic head.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from .._exceptions import ConfigurationError, missing_dependency

__all__ = [
    "Confusion",
    "CurvePoint",
    "EvaluationReport",
    "RouteStats",
    "mcnemar_z",
    "significantly_better",
    "stratified_folds",
    "stratified_split",
]


class RouteStats(BaseModel):
    """Precision, recall and F1 of one route; ``support`` counts its gold queries."""

    model_config = ConfigDict(frozen=True)

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


class Confusion(BaseModel):
    """How often queries of route ``gold`` went to ``predicted`` (``None``: no route)."""

    model_config = ConfigDict(frozen=True)

    gold: str | None
    predicted: str | None
    count: int


class CurvePoint(BaseModel):
    """The metrics if one global threshold replaced the thresholds used."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    accuracy: float
    in_scope_accuracy: float | None
    oos_recall: float | None


class EvaluationReport(BaseModel):
    """Routing quality on labelled queries, where ``None`` means "should match no route".

    ``in_scope_accuracy`` counts queries with a gold route (an abstention is an error);
    ``oos_*`` are about the queries whose gold label is ``None`` (the out-of-scope ones);
    ``oos_auroc`` is how well the best score alone separates in-scope from out-of-scope.

    Example:
        >>> report = EvaluationReport.from_predictions(
        ...     ["a", "b", None], ["a", None, None], [0.9, 0.3, 0.2]
        ... )
        >>> round(report.accuracy, 3), report.oos_recall
        (0.667, 1.0)
    """

    model_config = ConfigDict(frozen=True)

    n: int
    accuracy: float
    in_scope_accuracy: float | None
    oos_precision: float | None
    oos_recall: float | None
    oos_auroc: float | None
    macro_f1: float
    per_route: dict[str, RouteStats]
    confusions: list[Confusion]
    curve: list[CurvePoint]
    best_threshold: float | None

    @classmethod
    def from_predictions(
        cls,
        gold: Sequence[str | None],
        predicted: Sequence[str | None],
        scores: Sequence[float] | npt.ArrayLike | None = None,
        *,
        top_routes: Sequence[str | None] | None = None,
        curve_points: int = 101,
        max_confusions: int = 10,
    ) -> EvaluationReport:
        """Build the report.

        Args:
            gold: the right route of each query, ``None`` where no route should match.
            predicted: the route each query got, ``None`` where it got none.
            scores: the best route's score per query; enables the AUROC and the curve.
            top_routes: the best-scoring route per query before any threshold (the first of
                ``RouteMatch.scores``); defaults to ``predicted``, which leaves rejected
                queries rejected at every point of the curve.
            curve_points: thresholds in the sweep, evenly spaced over the scores' range.
            max_confusions: how many (gold, predicted) pairs to keep, most frequent first.
        """
        gold_l, pred_l = list(gold), list(predicted)
        if len(gold_l) != len(pred_l) or not gold_l:
            raise ConfigurationError("gold and predicted must be non-empty and of equal length")
        names = sorted({x for x in gold_l + pred_l if x is not None})
        index = {name: i for i, name in enumerate(names)}
        g = np.array([-1 if x is None else index[x] for x in gold_l], dtype=np.int64)
        p = np.array([-1 if x is None else index[x] for x in pred_l], dtype=np.int64)
        oos, inside = g == -1, g >= 0
        per_route = _per_route(g, p, names)
        present = [s.f1 for s in per_route.values() if s.support > 0]
        oos_precision = oos_recall = None
        if oos.any():
            oos_recall = float(np.mean(p[oos] == -1))
            rejected = p == -1
            oos_precision = float(np.mean(oos[rejected])) if rejected.any() else 0.0
            present.append(_f1(float(np.sum(rejected & oos)), float(rejected.sum()), oos.sum()))
        pairs = Counter((a, b) for a, b in zip(gold_l, pred_l, strict=True) if a != b)
        ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0][0] or "", kv[0][1] or ""))
        curve: list[CurvePoint] = []
        auroc = best = None
        if scores is not None:
            s = np.asarray(scores, dtype=np.float64).reshape(-1)
            if s.shape != g.shape or not np.all(np.isfinite(s)):
                raise ConfigurationError("scores must hold one finite score per query")
            tops = pred_l if top_routes is None else list(top_routes)
            if len(tops) != len(gold_l):
                raise ConfigurationError("top_routes must have one entry per query")
            t = np.array([-1 if x is None else index.get(x, len(names)) for x in tops])
            auroc = _auroc(s[inside], s[oos]) if inside.any() and oos.any() else None
            curve = _curve(g, t, s, curve_points)
            best = max(curve, key=lambda point: point.accuracy).threshold
        return cls(
            n=len(gold_l),
            accuracy=float(np.mean(g == p)),
            in_scope_accuracy=float(np.mean(p[inside] == g[inside])) if inside.any() else None,
            oos_precision=oos_precision,
            oos_recall=oos_recall,
            oos_auroc=auroc,
            macro_f1=float(np.mean(present)) if present else 0.0,
            per_route=per_route,
            confusions=[Confusion(gold=a, predicted=b, count=c) for (a, b), c in ranked][
                :max_confusions
            ],
            curve=curve,
            best_threshold=best,
        )

    def to_json(self, *, indent: int | None = 2) -> str:
        """The whole report as JSON."""
        return self.model_dump_json(indent=indent)

    def to_table(self, *, max_routes: int | None = 20) -> str:
        """A fixed-width text table: summary, the worst routes by F1, the top confusions."""

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100.0 * value:6.2f} %"

        lines = [
            f"{'queries':<22}{self.n:>9}",
            f"{'accuracy':<22}{pct(self.accuracy):>9}",
            f"{'in-scope accuracy':<22}{pct(self.in_scope_accuracy):>9}",
            f"{'out-of-scope precision':<22}{pct(self.oos_precision):>9}",
            f"{'out-of-scope recall':<22}{pct(self.oos_recall):>9}",
            f"{'out-of-scope AUROC':<22}"
            + (f"{self.oos_auroc:>9.4f}" if self.oos_auroc is not None else f"{'-':>9}"),
            f"{'macro F1':<22}{pct(self.macro_f1):>9}",
        ]
        if self.best_threshold is not None:
            lines.append(f"{'best global threshold':<22}{self.best_threshold:>9.4f}")
        routes = sorted(self.per_route.items(), key=lambda kv: (kv[1].f1, kv[0]))
        if max_routes is not None:
            routes = routes[:max_routes]
        if routes:
            width = max(24, *(len(name) + 2 for name, _ in routes))
            header = f"{'route':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"
            lines += ["", header]
            lines += [
                f"{name:<{width}}{s.precision:>10.4f}{s.recall:>10.4f}{s.f1:>10.4f}{s.support:>9}"
                for name, s in routes
            ]
        if self.confusions:
            pairs = [(str(c.gold), str(c.predicted), c.count) for c in self.confusions]
            width = max(24, *(len(a) + 2 for a, _, _ in pairs))
            lines += ["", f"{'gold':<{width}}{'predicted':<{width}}{'count':>7}"]
            lines += [f"{a:<{width}}{b:<{width}}{c:>7}" for a, b, c in pairs]
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Write a PNG of accuracy (and in-scope accuracy, oos recall) against the threshold.

        Needs matplotlib (``pip install 'semrouter[plot]'``) and scores in the report.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise missing_dependency("matplotlib", "plot") from exc
        if not self.curve:
            raise ConfigurationError("the report has no threshold curve: build it with scores")
        x = [point.threshold for point in self.curve]
        figure = Figure(figsize=(7, 4.5))  # no pyplot: no global state, no GUI backend
        axes = figure.add_subplot()
        axes.plot(x, [point.accuracy for point in self.curve], label="accuracy")
        extra = (("in_scope_accuracy", "in-scope accuracy"), ("oos_recall", "oos recall"))
        for field, label in extra:
            values = [getattr(point, field) for point in self.curve]
            if values[0] is not None:
                axes.plot(x, values, label=label, linestyle="--")
        if self.best_threshold is not None:
            axes.axvline(self.best_threshold, color="grey", linewidth=0.8)
        axes.set(xlabel="global threshold", ylabel="rate", ylim=(0.0, 1.02))
        axes.grid(alpha=0.3)
        axes.legend(loc="lower left")
        target = Path(path)
        figure.savefig(target, format="png", dpi=120, bbox_inches="tight")
        return target


def stratified_split(
    labels: Sequence[Hashable], *, test_size: float = 0.2, seed: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split row indices into (train, held-out), keeping each label's share in both.

    Each label with two rows or more puts at least one in each part; a label seen once stays
    in train. The same labels and seed give the same split.

    Example:
        >>> train, test = stratified_split(["a", "a", "b", "b"], test_size=0.5, seed=1)
        >>> sorted(train.tolist() + test.tolist())
        [0, 1, 2, 3]
    """
    if not 0.0 < test_size < 1.0:
        raise ConfigurationError("test_size must lie strictly between 0 and 1")
    groups: dict[Hashable, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(label, []).append(row)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for rows in groups.values():  # first-appearance order: deterministic, no sorting of labels
        shuffled = rng.permutation(np.asarray(rows, dtype=np.int64)).tolist()
        take = 0 if len(rows) < 2 else min(max(round(len(rows) * test_size), 1), len(rows) - 1)
        test += shuffled[:take]
        train += shuffled[take:]
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def stratified_folds(
    labels: Sequence[Hashable], *, folds: int, seed: int = 0
) -> npt.NDArray[np.int64]:
    """The fold (0 to ``folds - 1``) of each row, each label spread evenly over the folds.

    Rows of a label are shuffled and dealt to the folds in turn, the deal continuing where
    the previous label stopped, so folds differ in size by one row at most. The same labels
    and seed give the same folds.

    Example:
        >>> stratified_folds(["a", "a", "b", "b"], folds=2, seed=1).tolist().count(0)
        2
    """
    if folds < 2:
        raise ConfigurationError("folds must be at least 2")
    groups: dict[Hashable, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(label, []).append(row)
    rng = np.random.default_rng(seed)
    out = np.zeros(len(labels), dtype=np.int64)
    dealt = 0
    for rows in groups.values():  # first-appearance order, as stratified_split
        shuffled = rng.permutation(np.asarray(rows, dtype=np.int64))
        out[shuffled] = (dealt + np.arange(len(rows))) % folds
        dealt += len(rows)
    return out


def mcnemar_z(wins: int, losses: int) -> float:
    """McNemar's z of paired outcomes: ``wins`` rows only the new side gets right, ``losses``
    rows only the old side does; ``(wins - losses) / sqrt(wins + losses)``, 0 when none differ."""
    return (wins - losses) / math.sqrt(wins + losses) if wins + losses else 0.0


def significantly_better(wins: int, losses: int, z: float = 2.0) -> bool:
    """Whether ``wins`` against ``losses`` is a significant gain (McNemar's test, z > ``z``):
    the one rule by which ``fit()`` keeps a change and the gate refuses one. On a few hundred
    rows most differences are noise."""
    return wins - losses > z * math.sqrt(wins + losses)


def _f1(tp: float, predicted: float, support: float) -> float:
    return 2.0 * tp / (predicted + support) if predicted + support > 0 else 0.0


def _per_route(
    g: npt.NDArray[np.int64], p: npt.NDArray[np.int64], names: list[str]
) -> dict[str, RouteStats]:
    size = len(names)
    support = np.bincount(g[g >= 0], minlength=size)
    predicted = np.bincount(p[p >= 0], minlength=size)
    tp = np.bincount(g[(g == p) & (g >= 0)], minlength=size)
    return {
        name: RouteStats(
            precision=float(tp[i] / predicted[i]) if predicted[i] else 0.0,
            recall=float(tp[i] / support[i]) if support[i] else 0.0,
            f1=_f1(float(tp[i]), float(predicted[i]), float(support[i])),
            support=int(support[i]),
            predicted=int(predicted[i]),
        )
        for i, name in enumerate(names)
    }


def _auroc(positive: npt.NDArray[np.float64], negative: npt.NDArray[np.float64]) -> float:
    """P(a positive scores above a negative), ties counting one half (Mann-Whitney U)."""
    values = np.concatenate([positive, negative])
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.shape[0])
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.shape[0]]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # average 1-based ranks
    n_pos, n_neg = positive.shape[0], negative.shape[0]
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _curve(
    g: npt.NDArray[np.int64], top: npt.NDArray[np.int64], s: npt.NDArray[np.float64], points: int
) -> list[CurvePoint]:
    oos, inside = g == -1, g >= 0
    thresholds = np.linspace(float(s.min()), float(s.max()), max(points, 2))
    accepted = (s[None, :] >= thresholds[:, None]) & (top >= 0)[None, :]
    right = np.where(accepted, (top == g)[None, :], oos[None, :])
    result = []
    for k, threshold in enumerate(thresholds):
        result.append(
            CurvePoint(
                threshold=float(threshold),
                accuracy=float(right[k].mean()),
                in_scope_accuracy=float(right[k][inside].mean()) if inside.any() else None,
                oos_recall=float(right[k][oos].mean()) if oos.any() else None,
            )
        )
    return result
