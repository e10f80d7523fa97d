"""Review: the logged decisions most worth a human look, and routes the traffic asks for.

:func:`review` reads decisions (``_decisions.py``) and lists

- **near misses**: abstentions whose best route scored within ``near`` of its threshold (a
  route that should perhaps have answered, or a threshold a little high);
- **close calls**: routed decisions that led the runner-up by less than ``margin``;
- **proposed routes**: groups of at least ``min_group`` abstained requests that resemble each
  other (cosine >= ``similarity`` to the group's first request, on their logged vectors:
  nothing is encoded), each with a name hint from its most frequent words and its most
  central requests: traffic that no route covers yet.

``semrouter review`` writes the items as a CSV with an empty ``label`` column for a person to
fill (a route name, or ``-`` for "no route"); ``semrouter feedback`` applies it with
:meth:`SemanticRouter.feedback_many` (one revision).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from ._decisions import Decision

__all__ = ["ProposedRoute", "Review", "ReviewItem", "review", "write_review_csv"]

_MAX_GROUPED = 2000  # abstained requests grouped at most (the latest)
_WORD = re.compile(r"[a-z][a-z']+")
_STOP_WORDS = (
    "the a an and or to of in on for is are was be my me i you your it this that what how "
    "can could would should do does did with from at by as not no please want need have has "
    "get will just any some about there"
)
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class ReviewItem:
    """One decision worth a look."""

    reason: str  # "near_miss" or "close_call"
    text: str | None
    route: str | None  # the route chosen (close call) or the best one missed (near miss)
    runner_up: str | None
    score: float
    threshold: float | None
    margin: float | None
    time: float


@dataclass(frozen=True)
class ProposedRoute:
    """Abstained requests that resemble each other: perhaps a route to add."""

    name_hint: str
    examples: tuple[str, ...]  # the most central first
    size: int


@dataclass(frozen=True)
class Review:
    items: list[ReviewItem]
    proposals: list[ProposedRoute]


def review(
    decisions: Sequence[Decision],
    *,
    limit: int = 50,
    near: float = 0.1,
    margin: float = 0.05,
    min_group: int = 3,
    similarity: float = 0.75,
) -> Review:
    """The ``limit`` decisions most worth a look (closest to the line first) and proposed
    routes (largest first); see the module docstring."""
    scored: list[tuple[float, ReviewItem]] = []
    for d in _latest(decisions):
        if d.route is None and d.threshold is not None and d.threshold - d.score <= near:
            item = ReviewItem("near_miss", d.text, d.best, d.runner_up, d.score, d.threshold,
                              d.margin, d.time)  # fmt: skip
            scored.append(((d.threshold - d.score) / near, item))
        elif d.route is not None and d.margin is not None and d.margin < margin:
            item = ReviewItem("close_call", d.text, d.route, d.runner_up, d.score, d.threshold,
                              d.margin, d.time)  # fmt: skip
            scored.append((d.margin / margin, item))
    scored.sort(key=lambda pair: pair[0])
    items = [item for _, item in scored[:limit]]
    return Review(items, _proposals(decisions, min_group, similarity))


def _latest(decisions: Sequence[Decision]) -> list[Decision]:
    """One decision per request text (its latest)."""
    latest: dict[str, Decision] = {}
    for d in decisions:
        latest[d.text_sha256] = d
    return list(latest.values())


def _proposals(
    decisions: Sequence[Decision], min_group: int, similarity: float
) -> list[ProposedRoute]:
    abstained = [d for d in _latest(decisions) if d.route is None and d.vector is not None]
    abstained = abstained[-_MAX_GROUPED:]  # the latest: a bounded similarity matrix
    if len(abstained) < min_group:
        return []
    matrix = np.stack([d.vector for d in abstained if d.vector is not None]).astype(np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    close = matrix @ matrix.T >= similarity
    free = np.ones(len(abstained), dtype=bool)
    out = []
    for seed in np.argsort(-close.sum(axis=1), kind="stable"):  # the densest requests first
        if not free[seed]:
            continue
        members = np.flatnonzero(free & close[seed])
        if len(members) < min_group:
            continue
        free[members] = False
        centre = matrix[members].mean(axis=0)
        order = members[np.argsort(-(matrix[members] @ centre), kind="stable")]
        texts = [abstained[i].text for i in order if abstained[i].text]
        out.append(ProposedRoute(_name_hint(texts), tuple(texts[:5]), len(members)))
    return sorted(out, key=lambda proposal: -proposal.size)


def _name_hint(texts: Sequence[str]) -> str:
    words = Counter(w for text in texts for w in set(_WORD.findall(text.lower())) if w not in _STOP)
    top = [w for w, _ in words.most_common(2)]
    return "_".join(top) or "new_route"


def write_review_csv(result: Review, stream: TextIO) -> int:
    """Write the items and the proposals' requests as a CSV to label; returns the rows."""
    rows = [
        [item.reason, item.text or "", item.route or "", item.runner_up or "",
         f"{item.score:.3f}", "" if item.threshold is None else f"{item.threshold:.3f}", ""]
        for item in result.items
    ]  # fmt: skip
    for proposal in result.proposals:
        rows += [[f"proposed:{proposal.name_hint}", text, "", "", "", "", ""]
                 for text in proposal.examples]  # fmt: skip
    writer = csv.writer(stream)
    writer.writerow(["reason", "text", "route", "runner_up", "score", "threshold", "label"])
    writer.writerows(rows)
    return len(rows)
