"""``semrouter report``: one self-contained HTML page about a route set and its traffic.

What it shows, all computed through the router's public methods (``routes``,
``threshold_for``, ``encoder.encode``, ``similarities``):

- utterances and threshold per route;
- each route's leave-one-out scores (every utterance scored against its own route with itself
  left out, as a query would be) beside the best score of its nearest *other* route, against
  the route's threshold;
- the routes most confused with each other, and the utterances that sit closer to another
  route than to their own;
- with a decision log (JSON Lines of ``time``, ``route`` (null: abstained), ``score``,
  ``threshold``, ``tenant``): traffic per route and abstention rate over time, and score
  histograms per route.

Scores are the router's unfitted similarities (its aggregation of cosine similarities), the
scale every threshold is on. Charts are inline SVG (``_svg.py``): no script, nothing fetched.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _svg
from ._exceptions import ConfigurationError
from ._safe_files import read_text_file
from .training._abstention import own_route_scores

if TYPE_CHECKING:
    from ._router import SemanticRouter

__all__ = ["Decision", "RouteSetFacts", "build_report", "read_decision_log", "route_set_facts"]

#: The cap on a decision log file.
MAX_LOG_BYTES = 256 * 1024 * 1024
#: Rows of the long tables, at most.
MAX_ROWS = 200


@dataclass(frozen=True)
class Decision:
    """One line of a decision log."""

    time: float  # seconds since the epoch
    route: str | None
    score: float | None
    threshold: float | None
    tenant: str


@dataclass(frozen=True)
class RouteSetFacts:
    """Leave-one-out facts of a route set, one entry per utterance (``route`` its position)."""

    names: list[str]
    thresholds: npt.NDArray[np.float64]  # (R,)
    utterances: list[str]
    route: npt.NDArray[np.int64]  # (N,)
    own: npt.NDArray[np.float64]  # (N,) leave-one-out score to its own route; NaN: alone
    other: npt.NDArray[np.float64]  # (N,) best score of another route; NaN: none scored
    other_route: npt.NDArray[np.int64]  # (N,) that route, -1: none

    @property
    def strays(self) -> npt.NDArray[np.bool_]:
        """Utterances closer to another route than to their own."""
        return np.nan_to_num(self.other, nan=-np.inf) > np.nan_to_num(self.own, nan=np.inf)


def route_set_facts(router: SemanticRouter) -> RouteSetFacts:
    """Leave-one-out scores of every utterance (see the module docstring)."""
    routes = router.routes
    names = [route.name for route in routes]
    utterances = [u for route in routes for u in route.utterances]
    route = np.repeat(np.arange(len(routes)), [len(r.utterances) for r in routes])
    thresholds = np.array([router.threshold_for(name) for name in names], dtype=np.float64)
    if not utterances:
        empty = np.zeros(0)
        return RouteSetFacts(names, thresholds, [], route, empty, empty, route.copy())
    vectors = router.encoder.encode(utterances)
    options = router.options
    own = own_route_scores(
        vectors, route, len(names), top_k=options.top_k, aggregation=options.aggregation
    )
    others = np.asarray(router.similarities(vectors), dtype=np.float64).copy()
    others[np.arange(len(utterances)), route] = np.nan  # its own route, itself included
    has = ~np.all(np.isnan(others), axis=1)
    other_route = np.where(has, np.nanargmax(np.where(has[:, None], others, 0.0), axis=1), -1)
    other = np.where(has, others[np.arange(len(utterances)), np.maximum(other_route, 0)], np.nan)
    return RouteSetFacts(names, thresholds, utterances, route, own, other, other_route)


def read_decision_log(path: Path) -> list[Decision]:
    """Decisions from a JSON Lines log (``time``: seconds since the epoch or ISO 8601)."""
    raw = read_text_file(path, limit=MAX_LOG_BYTES)
    out = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
            route = row.get("route")
            out.append(
                Decision(
                    time=_seconds(row["time"]),
                    route=str(route) if route is not None else None,
                    score=_number(row.get("score")),
                    threshold=_number(row.get("threshold")),
                    tenant=str(row.get("tenant") or ""),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path}: line {number} is not a decision: {exc}") from exc
    return out


def _seconds(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise ValueError(f"time must be seconds or an ISO 8601 text, got {value!r}")


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def build_report(
    router: SemanticRouter, *, title: str = "router", log: Sequence[Decision] | None = None
) -> str:
    """The whole HTML page."""
    facts = route_set_facts(router)
    parts = [_route_section(facts), _confusion_section(facts)]
    if log is not None:
        from ._report_traffic import traffic_section

        parts.append(traffic_section(log, dict(zip(facts.names, facts.thresholds.tolist()))))
    strays = int(facts.strays.sum())
    summary = (
        f"{len(facts.names)} routes, {len(facts.utterances)} utterances, "
        f"encoder {router.encoder.model_id}; {strays} utterances closer to another route "
        "than to their own" + (f"; {len(log)} logged decisions" if log is not None else "")
    )
    return _PAGE.format(
        title=html.escape(title), summary=html.escape(summary), body="\n".join(parts)
    )


def _route_section(facts: RouteSetFacts) -> str:
    sizes = np.bincount(facts.route, minlength=len(facts.names))
    notes = [f"{int(n)} utt., threshold {t:.3f}" for n, t in zip(sizes, facts.thresholds)]
    rows = []
    charts = []
    strays = facts.strays
    for r, name in enumerate(facts.names):
        mine = facts.route == r
        own, other = facts.own[mine], facts.other[mine]
        below = int(np.sum(own < facts.thresholds[r]))
        rows.append(
            _svg.row(
                name,
                int(sizes[r]),
                f"{facts.thresholds[r]:.3f}",
                _mean(own),
                _mean(other),
                f"{below} of {int(np.sum(~np.isnan(own)))}",
                int(strays[mine].sum()),
            )
        )
        charts.append(
            _svg.histogram(
                [
                    ("own, itself left out", own, _svg.OWN),
                    ("nearest other", other, _svg.OTHER),
                ],
                title=name,
                marker=float(facts.thresholds[r]),
            )
        )
    return (
        "<section id='routes'><h2>Routes</h2>"
        + _svg.hbars(facts.names, sizes.tolist(), notes=notes, title="utterances per route")
        + _svg.table(
            [
                "route",
                "utterances",
                "threshold",
                "mean own score",
                "mean nearest other",
                "own below threshold",
                "closer to another route",
            ],
            rows,
        )
        + "</section><section id='scores'><h2>Scores against each route's threshold</h2>"
        "<p>Blue: each utterance scored against its own route with itself left out, as a "
        "query like it would be; orange: its best score on another route; red: the threshold. "
        "Blue left of the red line would be turned away; orange right of it could be taken "
        "by the wrong route.</p><div class='grid'>" + "".join(charts) + "</div></section>"
    )


def _confusion_section(facts: RouteSetFacts) -> str:
    pairs: Counter[tuple[int, int]] = Counter()
    nearest: Counter[tuple[int, int]] = Counter()
    strays = facts.strays
    for i, (a, b) in enumerate(zip(facts.route.tolist(), facts.other_route.tolist())):
        if b >= 0:
            key = (min(a, b), max(a, b))
            nearest[key] += 1
            pairs[key] += int(strays[i])
    ranked = sorted(nearest, key=lambda k: (-pairs[k], -nearest[k]))[:20]
    rows = [
        _svg.row(facts.names[a], facts.names[b], pairs[(a, b)], nearest[(a, b)]) for a, b in ranked
    ]
    order = np.argsort(-(facts.other - facts.own))
    strays_rows = [
        _svg.row(
            facts.utterances[i],
            facts.names[facts.route[i]],
            f"{facts.own[i]:.3f}",
            facts.names[facts.other_route[i]],
            f"{facts.other[i]:.3f}",
        )
        for i in order
        if strays[i]
    ][:MAX_ROWS]
    return (
        "<section id='confusion'><h2>Routes most confused with each other</h2>"
        "<p>From the utterances' leave-one-out scores: how many utterances of either route "
        "are closer to the other than to their own, and how many have the other as their "
        "nearest other route.</p>"
        + _svg.table(["route", "route", "closer to the other", "nearest other route"], rows)
        + "</section><section id='strays'><h2>Utterances closer to another route than to "
        "their own</h2>"
        + (
            _svg.table(["utterance", "its route", "score", "closer route", "score"], strays_rows)
            if strays_rows
            else "<p>None: every utterance is closest to its own route.</p>"
        )
        + "</section>"
    )


def _mean(values: npt.NDArray[np.float64]) -> str:
    values = values[~np.isnan(values)]
    return f"{values.mean():.3f}" if values.size else "-"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>semrouter report: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.2em; margin-top: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
th {{ background: #f4f4f4; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
svg {{ background: #fff; }}
</style></head>
<body><h1>semrouter report: {title}</h1>
<p>{summary}</p>
{body}
</body></html>
"""
