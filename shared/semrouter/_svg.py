"""Tiny inline-SVG charts and HTML tables for the report: no dependency, no script, every text
escaped.

Each chart function returns one ``<svg>`` element as a string; bars are ``<rect class="bar">``,
so a test (or a person with a browser's inspector) can find them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["PALETTE", "columns", "hbars", "histogram", "line", "row", "table"]

#: Colour-blind-safe colours (Okabe-Ito), then greys.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#999999", "#BBBBBB",
)  # fmt: skip
THRESHOLD_COLOUR = "#D00000"
#: The report's colours: a route's own scores, another route's, abstentions.
OWN, OTHER, ABSTAINED = PALETTE[0], PALETTE[1], PALETTE[8]
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" {_FONT}>'
        f"<title>{_e(title)}</title>" + "".join(body) + "</svg>"
    )


def hbars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    notes: Sequence[str] | None = None,
    width: int = 640,
) -> str:
    """Horizontal bars, one per label, the value (or ``notes``) written after each bar."""
    row, left, right = 16, 200, 150
    top = 6
    height = top + row * len(labels) + 6
    most = max([float(v) for v in values] + [1e-12])
    body = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * row
        length = (width - left - right) * float(value) / most
        note = notes[i] if notes is not None else f"{value:g}"
        body.append(
            f'<text x="{left - 6}" y="{y + 11}" text-anchor="end">{_e(_clip(label, 32))}</text>'
            f'<rect class="bar" x="{left}" y="{y + 2}" width="{length:.1f}" height="{row - 4}" '
            f'fill="{PALETTE[0]}"><title>{_e(label)}: {_e(note)}</title></rect>'
            f'<text x="{left + length + 4:.1f}" y="{y + 11}">{_e(note)}</text>'
        )
    return _svg(width, height, body, title)


def histogram(
    series: Sequence[tuple[str, npt.ArrayLike, str]],
    *,
    title: str,
    lo: float = -0.2,
    hi: float = 1.0,
    bins: int = 24,
    marker: float | None = None,
    marker_label: str = "threshold",
    width: int = 300,
    height: int = 130,
) -> str:
    """Overlaid histograms of ``(name, values, colour)`` series on [lo, hi] (values outside are
    counted in the end bins), with a vertical line at ``marker``."""
    pad_l, pad_r, pad_t, pad_b = 28, 8, 18, 26
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    edges = np.linspace(lo, hi, bins + 1)
    counts = []
    for _, values, _ in series:
        data = np.clip(np.asarray(values, dtype=np.float64).reshape(-1), lo, hi)
        counts.append(np.histogram(data[~np.isnan(data)], bins=edges)[0])
    most = max([int(c.max()) for c in counts if c.size] + [1])
    bar_w = plot_w / bins
    body = [f'<text x="{pad_l}" y="12" font-weight="600">{_e(_clip(title, 44))}</text>']
    for s, ((name, _, colour), count) in enumerate(zip(series, counts)):
        for b, n in enumerate(count):
            if not n:
                continue
            h = plot_h * int(n) / most
            x = pad_l + b * bar_w
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{pad_t + plot_h - h:.1f}" '
                f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" fill="{colour}" '
                f'fill-opacity="{0.85 if s == 0 else 0.6}"><title>{_e(name)}: {int(n)} in '
                f"[{edges[b]:.2f}, {edges[b + 1]:.2f})</title></rect>"
            )
    axis_y = pad_t + plot_h
    body.append(
        f'<line x1="{pad_l}" y1="{axis_y}" x2="{pad_l + plot_w}" y2="{axis_y}" stroke="#555"/>'
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{most}</text>'
    )
    for tick in np.linspace(lo, hi, 4):
        x = pad_l + plot_w * (tick - lo) / (hi - lo)
        body.append(f'<text x="{x:.1f}" y="{axis_y + 12}" text-anchor="middle">{tick:.1f}</text>')
    if marker is not None and lo <= marker <= hi:
        x = pad_l + plot_w * (marker - lo) / (hi - lo)
        body.append(
            f'<line class="threshold" x1="{x:.1f}" y1="{pad_t - 4}" x2="{x:.1f}" y2="{axis_y}" '
            f'stroke="{THRESHOLD_COLOUR}" stroke-width="2"><title>{_e(marker_label)} '
            f"{marker:.3f}</title></line>"
        )
    legend_x = pad_l
    for name, _, colour in series:
        body.append(
            f'<rect x="{legend_x}" y="{height - 9}" width="8" height="8" fill="{colour}"/>'
            f'<text x="{legend_x + 11}" y="{height - 1}">{_e(name)}</text>'
        )
        legend_x += 14 + 6 * len(name)
    return _svg(width, height, body, title)


def columns(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    title: str,
    width: int = 860,
    height: int = 240,
) -> str:
    """Stacked columns: one per x label, one segment per ``(name, values, colour)`` series."""
    pad_l, pad_r, pad_t, pad_b = 52, 160, 10, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    totals = np.sum([np.asarray(v, dtype=np.float64) for _, v, _ in series], axis=0)
    most = max(float(totals.max()) if totals.size else 0.0, 1.0)
    col_w = plot_w / max(len(x_labels), 1)
    body = []
    for i, label in enumerate(x_labels):
        base = float(pad_t + plot_h)
        for name, values, colour in series:
            h = plot_h * float(values[i]) / most
            if h <= 0:
                continue
            body.append(
                f'<rect class="bar" x="{pad_l + i * col_w:.1f}" y="{base - h:.1f}" '
                f'width="{max(col_w - 1, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{_e(label)}, {_e(name)}: {float(values[i]):g}</title></rect>"
            )
            base -= h
    body += _x_axis(x_labels, pad_l, pad_t + plot_h, col_w)
    body.append(f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{most:g}</text>')
    for j, (name, _, colour) in enumerate(series):
        y = pad_t + 4 + 14 * j
        body.append(
            f'<rect x="{width - pad_r + 10}" y="{y}" width="9" height="9" fill="{colour}"/>'
            f'<text x="{width - pad_r + 23}" y="{y + 8}">{_e(_clip(name, 22))}</text>'
        )
    return _svg(width, height, body, title)


def line(
    x_labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    y_max: float = 1.0,
    percent: bool = True,
    width: int = 860,
    height: int = 180,
) -> str:
    """A line with dots through the defined ``values`` (``None``: no data in that column)."""
    pad_l, pad_r, pad_t, pad_b = 52, 160, 10, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    col_w = plot_w / max(len(x_labels), 1)
    points = [
        (pad_l + (i + 0.5) * col_w, pad_t + plot_h * (1 - min(float(v), y_max) / y_max), v)
        for i, v in enumerate(values)
        if v is not None
    ]

    def shown(v: float) -> str:
        return f"{100 * v:.1f} %" if percent else f"{v:g}"

    body = [
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{shown(y_max)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l + plot_w}" y2="{pad_t}" stroke="#ddd"/>',
    ]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[5]}"/>')
        body += [
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{PALETTE[5]}">'
            f"<title>{shown(float(v))}</title></circle>"
            for x, y, v in points
            if v is not None
        ]
    body += _x_axis(x_labels, pad_l, pad_t + plot_h, col_w)
    return _svg(width, height, body, title)


def _x_axis(labels: Sequence[str], left: float, y: float, col_w: float) -> list[str]:
    out = [f'<line x1="{left}" y1="{y}" x2="{left + col_w * len(labels)}" y2="{y}" stroke="#555"/>']
    step = max(1, len(labels) // 8)
    for i in range(0, len(labels), step):
        x = left + (i + 0.5) * col_w
        out.append(f'<text x="{x:.1f}" y="{y + 14}" text-anchor="middle">{_e(labels[i])}</text>')
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def row(*cells: object) -> str:
    """One HTML table row of escaped cells."""
    return "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>"


def table(header: Sequence[str], rows: Sequence[str]) -> str:
    """An HTML table of rows made by :func:`row`."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
