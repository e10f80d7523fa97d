"""Thresholds chosen from labelled replayed traffic, never worse than the current ones on it.

:func:`calibrate_from_traffic` routes the traffic once with every route ranked and no threshold
applied (``top_routes_vectors(..., apply_threshold=False)``), fits thresholds to it
(``training/_thresholds.py``), and replays the router's decision with the new
thresholds. The router decides in one of two ways (``_scorer.decide``): the first ranked route
that passes its threshold, or, when a head ranks the routes, the first ranked route if it
passes. New thresholds are kept only if they route more texts right than the router does now
under *both* rules, so the promise holds whichever the router follows. With one threshold for
all routes (the default) the two rules agree and the replay is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from ._exceptions import ConfigurationError
from .training._evaluation import mcnemar_z
from .training._thresholds import fit_thresholds

if TYPE_CHECKING:
    from ._router import SemanticRouter
    from ._routes import RouteMatch

__all__ = ["ThresholdChange", "TrafficCalibration", "calibrate_from_traffic"]

#: Decimals of the thresholds written (when rounding costs nothing on the traffic).
DECIMALS = 4
#: The score a route that was not scored gets in the replay: below the [-1, 1] scale.
_UNSCORED = -2.0


class ThresholdChange(BaseModel):
    """One route's threshold before and after."""

    model_config = ConfigDict(frozen=True)

    route: str
    before: float
    after: float


class TrafficCalibration(BaseModel):
    """What :func:`calibrate_from_traffic` found. ``changed`` is false when no thresholds beat
    the current ones on the traffic: ``thresholds`` are then the current ones."""

    model_config = ConfigDict(frozen=True)

    rows: int
    before_right: int
    after_right: int  # the worse of the two decision rules' replays
    wins: int
    losses: int
    z: float
    per_route: bool
    changed: bool
    thresholds: dict[str, float]
    changes: list[ThresholdChange]

    def summary(self) -> str:
        before, after = self.before_right / self.rows, self.after_right / self.rows
        head = (
            f"{self.rows} labelled texts: {self.before_right} routed right now ({before:.1%}), "
            f"{self.after_right} with the new thresholds ({after:.1%}); "
            f"{self.wins} gained, {self.losses} lost, McNemar z = {self.z:+.2f}"
        )
        if not self.changed:
            return head + "\nno thresholds route this traffic better: the current ones stay"
        lines = [head, f"{len(self.changes)} thresholds changed:"]
        lines += [f"  {c.route}: {c.before:.4f} -> {c.after:.4f}" for c in self.changes]
        return "\n".join(lines)


def calibrate_from_traffic(
    router: SemanticRouter,
    texts: Sequence[str],
    labels: Sequence[str | None],
    *,
    per_route: bool = False,
) -> TrafficCalibration:
    """Thresholds that route the labelled ``texts`` better than the router's current ones.

    Args:
        router: the router in service (nothing of it is changed).
        texts: replayed requests.
        labels: the route each should reach, ``None`` for "no route".
        per_route: allow one threshold per route (needs a few labelled texts per route);
            default one for all.
    """
    names = list(router.route_names)
    texts, labels = list(texts), list(labels)
    if not texts or len(texts) != len(labels):
        raise ConfigurationError(f"{len(texts)} texts but {len(labels)} labels")
    position = {name: i for i, name in enumerate(names)}
    unknown = sorted({x for x in labels if x is not None and x not in position})
    if unknown:
        raise ConfigurationError(f"labels name routes the router does not hold: {unknown[:5]}")
    gold = np.array([position[x] if x is not None else -1 for x in labels], dtype=np.int64)
    vectors = router.encoder.encode(texts)
    now = router.route_vectors(vectors, texts=texts)
    before = np.array([position[m.name] if m.name else -1 for m in now], dtype=np.int64)
    ranked = router.top_routes_vectors(vectors, len(names), apply_threshold=False, texts=texts)
    order, scores = _ranking(ranked, position)
    current = np.array([router.threshold_for(name) for name in names])
    top = np.full((len(texts), len(names)), _UNSCORED)
    has = order[:, 0] >= 0
    top[np.flatnonzero(has), order[has, 0]] = scores[has, 0]
    fit = fit_thresholds(top, gold, names, metric="accuracy", bounds=(-1.0, 1.0))
    fitted = [np.full(len(names), fit.global_threshold)]
    if per_route:
        fitted.append(np.array([fit.thresholds[name] for name in names]))
    # Rounded thresholds read better in a file; the exact ones win only if strictly better.
    candidates = [c for cut in fitted for c in (np.round(cut, DECIMALS), cut)]
    before_right = before == gold
    best, best_right = current, before_right
    for cut in candidates:
        right = np.logical_and.reduce(
            [_replay(order, scores, cut, rule) == gold for rule in (0, 1)]
        )
        if int(right.sum()) > int(best_right.sum()):
            best, best_right = cut, right
    changed = best is not current
    wins = int((best_right & ~before_right).sum())
    losses = int((before_right & ~best_right).sum())
    return TrafficCalibration(
        rows=len(texts),
        before_right=int(before_right.sum()),
        after_right=int(best_right.sum()),
        wins=wins,
        losses=losses,
        z=mcnemar_z(wins, losses),
        per_route=per_route,
        changed=changed,
        thresholds={name: float(best[i]) for i, name in enumerate(names)},
        changes=[
            ThresholdChange(route=name, before=float(current[i]), after=float(best[i]))
            for i, name in enumerate(names)
            if changed and not np.isclose(current[i], best[i], rtol=0.0, atol=1e-12)
        ],
    )


def _ranking(
    ranked: list[list[RouteMatch]], position: dict[str, int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each row's routes in the router's rank order (-1 padded) and their scores."""
    width = max((len(row) for row in ranked), default=0) or 1
    order = np.full((len(ranked), width), -1, dtype=np.int64)
    scores = np.full((len(ranked), width), _UNSCORED)
    for i, row in enumerate(ranked):
        for j, match in enumerate(row):
            order[i, j] = position[str(match.name)]
            scores[i, j] = match.score
    return order, scores


def _replay(
    order: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float64],
    thresholds: npt.NDArray[np.float64],
    rule: int,
) -> npt.NDArray[np.int64]:
    """The route chosen per row (-1: none): rule 0, the first ranked route that passes its
    threshold; rule 1 (a head ranks), the first ranked route if it passes."""
    passes = (order >= 0) & (scores >= thresholds[np.maximum(order, 0)])
    if rule == 1:
        return np.where(passes[:, 0], order[:, 0], -1)
    first = passes.argmax(axis=1)
    chosen = order[np.arange(len(order)), first]
    return np.where(passes.any(axis=1), chosen, -1)
