"""The gate: refuse a new router (route set, thresholds, fit) that routes a gold set worse.

:func:`gate` routes the same labelled texts with a baseline and a candidate router and compares
them row by row with McNemar's test, the rule ``fit()`` uses to keep a change
(:func:`~semrouter.training._evaluation.significantly_better`): the candidate is refused when the
baseline is significantly better on the rows where they differ. The :class:`GateReport` says
what got worse: per-route counts and the texts the candidate now gets wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._router import SemanticRouter
    from ._routes import RouteMatch

__all__ = ["GateExample", "GateReport", "GateRoute", "check_gold", "compare", "gate"]


class GateRoute(BaseModel):
    """How one gold label fared: rows labelled with it that each router routed right."""

    model_config = ConfigDict(frozen=True)

    route: str | None  # None: the rows that should match no route
    support: int
    baseline_right: int
    candidate_right: int

    @property
    def change(self) -> int:
        return self.candidate_right - self.baseline_right


class GateExample(BaseModel):
    """A text the baseline routed right and the candidate does not."""

    model_config = ConfigDict(frozen=True)

    text: str
    label: str | None
    baseline: str | None
    candidate: str | None
    candidate_score: float


class GateReport(BaseModel):
    """The verdict of :func:`gate`, and what got worse.

    ``wins``: rows only the candidate routes right; ``losses``: rows only the baseline routes
    right; ``z``: McNemar's z, positive when the candidate is better. ``passed`` is false when
    the baseline is significantly better (``losses - wins > z_limit * sqrt(wins + losses)``).
    """

    model_config = ConfigDict(frozen=True)

    rows: int
    baseline_accuracy: float
    candidate_accuracy: float
    wins: int
    losses: int
    z: float
    z_limit: float
    passed: bool
    routes: list[GateRoute]  # every gold label, most worsened first
    regressions: list[GateExample]  # up to max_examples, in input order

    @property
    def worse_routes(self) -> list[GateRoute]:
        """The gold labels the candidate routes right less often."""
        return [r for r in self.routes if r.change < 0]

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_table(self, *, max_routes: int = 20) -> str:
        """A plain-text summary: the verdict, the worsened routes, examples."""
        verdict = "PASSED" if self.passed else "REFUSED: the candidate is significantly worse"
        lines = [
            f"gate: {verdict}",
            f"  {self.rows} gold texts; accuracy baseline {self.baseline_accuracy:.1%}, "
            f"candidate {self.candidate_accuracy:.1%}",
            f"  only the candidate right: {self.wins}; only the baseline right: {self.losses}; "
            f"McNemar z = {self.z:+.2f} (refused below -{self.z_limit:g})",
        ]
        worse = self.worse_routes
        if worse:
            lines.append(f"  worse on {len(worse)} routes (gold label: right before -> now):")
            for r in worse[:max_routes]:
                name = r.route if r.route is not None else "(no route)"
                lines.append(
                    f"    {name}: {r.baseline_right}/{r.support} -> {r.candidate_right}/{r.support}"
                )
        if self.regressions:
            lines.append("  texts the candidate now gets wrong (label: baseline -> candidate):")
            for ex in self.regressions:
                lines.append(
                    f"    {ex.text!r} ({_show(ex.label)}): {_show(ex.baseline)} -> "
                    f"{_show(ex.candidate)} ({ex.candidate_score:.3f})"
                )
        return "\n".join(lines)


def _show(name: str | None) -> str:
    return name if name is not None else "none"


def gate(
    baseline: SemanticRouter,
    candidate: SemanticRouter,
    texts: Sequence[str],
    labels: Sequence[str | None],
    *,
    z: float = 2.0,
    max_examples: int = 20,
) -> GateReport:
    """Compare two routers on labelled texts; refuse the candidate if it is significantly worse.

    Both route the same texts (encoded once when the two share an encoder model). A label is a
    route name, or ``None`` for a text that should match no route; a label neither router
    holds is refused as a typo, one only the baseline holds (a route removed) counts as a
    miss of the candidate.

    Args:
        baseline: the router in service.
        candidate: the proposed replacement (new routes, thresholds, fit or encoder).
        texts: the gold texts.
        labels: their routes, ``None`` for "no route".
        z: how significant a loss must be to refuse (McNemar's z; 2 as ``fit()``).
        max_examples: regressions listed in the report.

    Example:
        >>> report = gate(old_router, new_router, texts, labels)  # doctest: +SKIP
        >>> report.passed, report.worse_routes  # doctest: +SKIP
    """
    texts, labels = list(texts), list(labels)
    check_gold(texts, labels, set(baseline.route_names) | set(candidate.route_names))
    old, new = _route_both(baseline, candidate, texts)
    return compare(texts, labels, old, new, z=z, max_examples=max_examples)


def check_gold(texts: Sequence[str], labels: Sequence[str | None], known: set[str]) -> None:
    """Refuse a gold set the gate cannot read: unequal lengths, nothing, or labels naming
    routes that no router compared holds (a typo)."""
    if len(texts) != len(labels) or not texts:
        raise ConfigurationError(
            f"the gate needs as many labels as texts, and some: {len(texts)} texts, "
            f"{len(labels)} labels"
        )
    unknown = sorted({x for x in labels if x is not None and x not in known})
    if unknown:
        raise ConfigurationError(f"labels name routes neither router holds: {unknown[:5]}")


def compare(
    texts: Sequence[str],
    labels: Sequence[str | None],
    old: Sequence[RouteMatch],
    new: Sequence[RouteMatch],
    *,
    z: float = 2.0,
    max_examples: int = 20,
) -> GateReport:
    """The gate's verdict on two routings of the same gold texts (``old``: the baseline's
    matches, ``new``: the candidate's), by McNemar's test on the rows where they differ."""
    from .training._evaluation import mcnemar_z, significantly_better

    gold = np.array([x if x is not None else "" for x in labels], dtype=object)
    old_names = np.array([m.name or "" for m in old], dtype=object)
    new_names = np.array([m.name or "" for m in new], dtype=object)
    old_right, new_right = old_names == gold, new_names == gold
    wins = int((new_right & ~old_right).sum())
    losses = int((old_right & ~new_right).sum())
    routes = []
    for label in dict.fromkeys(labels):
        rows = gold == (label if label is not None else "")
        routes.append(
            GateRoute(
                route=label,
                support=int(rows.sum()),
                baseline_right=int(old_right[rows].sum()),
                candidate_right=int(new_right[rows].sum()),
            )
        )
    routes.sort(key=lambda r: (r.change, -r.support))
    regressions = [
        GateExample(
            text=texts[i],
            label=labels[i],
            baseline=old[i].name,
            candidate=new[i].name,
            candidate_score=new[i].score,
        )
        for i in np.flatnonzero(old_right & ~new_right)[: max(max_examples, 0)]
    ]
    return GateReport(
        rows=len(texts),
        baseline_accuracy=float(old_right.mean()),
        candidate_accuracy=float(new_right.mean()),
        wins=wins,
        losses=losses,
        z=mcnemar_z(wins, losses),
        z_limit=z,
        passed=not significantly_better(losses, wins, z),
        routes=routes,
        regressions=regressions,
    )


def _route_both(
    baseline: SemanticRouter, candidate: SemanticRouter, texts: list[str]
) -> tuple[list[RouteMatch], list[RouteMatch]]:
    """Both routers' matches; the texts are encoded once when the encoders are the same model."""
    if baseline.encoder.fingerprint != candidate.encoder.fingerprint:
        return baseline.route_many(texts), candidate.route_many(texts)
    vectors = baseline.encoder.encode(texts)
    return (
        baseline.route_vectors(vectors, texts=texts),
        candidate.route_vectors(vectors, texts=texts),
    )
