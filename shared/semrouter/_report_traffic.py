"""The report's traffic section, from a decision log: per-route traffic and abstention rate over
time, score histograms per route against its threshold, and a table per tenant."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from . import _svg

if TYPE_CHECKING:
    from ._report import Decision

__all__ = ["traffic_section"]

#: Bin widths tried, in seconds, smallest first: the first giving at most MAX_BINS is used.
BIN_WIDTHS = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BINS = 48
#: Routes drawn on their own in the traffic chart and the histograms; the rest are summed.
TOP_ROUTES = 8
HISTOGRAMS = 12


def traffic_section(log: Sequence[Decision], thresholds: Mapping[str, float]) -> str:
    """The HTML of the traffic section (``thresholds``: the router's, by route)."""
    if not log:
        return "<section id='traffic'><h2>Traffic</h2><p>The log holds no decision.</p></section>"
    times = np.array([d.time for d in log])
    start, width, count = _bins(float(times.min()), float(times.max()))
    column = np.minimum(((times - start) // width).astype(np.int64), count - 1)
    labels = [_label(start + i * width, width) for i in range(count)]
    volume = Counter(d.route for d in log if d.route is not None)
    top = [name for name, _ in volume.most_common(TOP_ROUTES)]
    series = []
    for j, name in enumerate(top):
        values = np.bincount(column[[d.route == name for d in log]], minlength=count)
        series.append((name, values.tolist(), _svg.PALETTE[j % 8]))
    rest = np.array([d.route is not None and d.route not in top for d in log])
    if rest.any():
        series.append(
            ("other routes", np.bincount(column[rest], minlength=count).tolist(), _svg.OTHER)
        )
    abstained = np.array([d.route is None for d in log])
    missed = np.bincount(column[abstained], minlength=count)
    series.append(("abstained", missed.tolist(), _svg.ABSTAINED))
    totals = np.bincount(column, minlength=count)
    rate = [float(m / t) if t else None for m, t in zip(missed, totals)]
    peak = max([r for r in rate if r is not None] + [0.05])
    charts = _histograms(log, top[:HISTOGRAMS], thresholds)
    tenants = Counter(d.tenant for d in log)
    missed_by_tenant = Counter(d.tenant for d in log if d.route is None)
    tenant_rows = [
        _svg.row(tenant or "(default)", n, f"{missed_by_tenant[tenant] / n:.1%}")
        for tenant, n in tenants.most_common(50)
    ]
    return (
        "<section id='traffic'><h2>Traffic</h2>"
        f"<p>{len(log)} decisions from {_label(float(times.min()), 60)} to "
        f"{_label(float(times.max()), 60)} UTC, {int(abstained.sum())} abstained "
        f"({abstained.mean():.1%}); one column per {_span(width)}.</p>"
        + _svg.columns(labels, series, title="decisions per route over time")
        + "<h3>Abstention rate</h3>"
        + _svg.line(labels, rate, title="abstention rate over time", y_max=min(1.0, 1.2 * peak))
        + "<h3>Scores of the decisions</h3><p>Routed decisions' scores per route against the "
        "route's threshold; abstentions: the best score they had.</p><div class='grid'>"
        + "".join(charts)
        + "</div>"
        + (
            "<h3>Tenants</h3>" + _svg.table(["tenant", "decisions", "abstained"], tenant_rows)
            if len(tenants) > 1
            else ""
        )
        + "</section>"
    )


def _histograms(
    log: Sequence[Decision], routes: Sequence[str], thresholds: Mapping[str, float]
) -> list[str]:
    charts = []
    for name in routes:
        scores = [d.score for d in log if d.route == name and d.score is not None]
        marker = thresholds.get(name)
        if marker is None:
            logged = [d.threshold for d in log if d.route == name and d.threshold is not None]
            marker = float(np.median(logged)) if logged else None
        charts.append(
            _svg.histogram(
                [("routed", scores, _svg.OWN)], title=f"{name} ({len(scores)})", marker=marker
            )
        )
    missed = [d.score for d in log if d.route is None and d.score is not None]
    if missed:
        cut = [d.threshold for d in log if d.route is None and d.threshold is not None]
        charts.append(
            _svg.histogram(
                [("abstained: best score", missed, _svg.ABSTAINED)],
                title=f"abstained ({len(missed)})",
                marker=float(np.median(cut)) if cut else None,
                marker_label="median threshold",
            )
        )
    return charts


def _bins(first: float, last: float) -> tuple[float, float, int]:
    """(start, width, count) of the time columns."""
    span = max(last - first, 1.0)
    width = next((w for w in BIN_WIDTHS if span / w < MAX_BINS), BIN_WIDTHS[-1])
    start = first - first % width
    count = int((last - start) // width) + 1
    return start, float(width), max(count, 1)


def _label(seconds: float, width: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d" if width >= 86400 else "%m-%d %H:%M")


def _span(width: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if width >= size:
            n = int(width // size)
            return f"{n} {unit}{'s' if n > 1 else ''}" if n > 1 else unit
    return f"{width:g} s"
