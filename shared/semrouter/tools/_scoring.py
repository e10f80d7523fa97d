"""The one scoring of tools (pure numpy): texts' similarities reduced per tool and kind, the
weighted dense score, the BM25 fusion and the sentence split of long requests.

A :class:`ToolTable` is an immutable snapshot (tools, text vectors, lexical index) published
in one assignment by the index, so a concurrent ranking always sees one version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .._lexical import LexicalIndex
from ..encoders import Vectors
from ._options import ToolMatch, ToolOptions
from ._spec import TextKind

__all__ = ["ToolTable", "rank_rows", "request_parts"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The kinds scored as one part: a description is matched whole or by its best sentence.
_PARTS: dict[str, tuple[TextKind, ...]] = {
    "description": ("description", "sentence"),
    "name": ("name",),
    "argument": ("argument",),
    "example": ("example",),
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
#: A request sentence needs this many words to be ranked alone (shorter ones are details).
_MIN_WORDS = 3
#: Floor of the dense scores' spread, so a handful of near-equal tools is not blown up.
_DENSE_SPREAD = 0.02


def request_parts(text: str) -> list[str]:
    """The sentences of a request that are ranked alone: empty for a one-sentence request.

    Example:
        >>> request_parts("Book a flight to Rome. Then find me a hotel near the station.")
        ['Book a flight to Rome.', 'Then find me a hotel near the station.']
    """
    parts = [p for p in _SENTENCE_END.split(text.strip()) if len(p.split()) >= _MIN_WORDS]
    return parts if len(parts) > 1 else []


@dataclass(frozen=True)
class _Plan:
    """Columns of one part, sorted by tool, with the first column of each tool."""

    columns: IntArray
    starts: IntArray
    tools: IntArray


@dataclass(frozen=True, eq=False)
class ToolTable:
    """Tools, the vectors of their texts and their lexical index: one consistent version."""

    names: tuple[str, ...]
    vectors: Vectors
    kinds: tuple[TextKind, ...]
    owners: IntArray
    lexical: LexicalIndex | None
    plans: dict[str, _Plan]

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        vectors: Vectors,
        kinds: Sequence[TextKind],
        owners: Sequence[int],
        lexical: LexicalIndex | None,
    ) -> ToolTable:
        owner = np.asarray(owners, dtype=np.int64)
        kind = np.asarray(kinds, dtype=object)
        plans: dict[str, _Plan] = {}
        for part, members in _PARTS.items():
            columns = np.flatnonzero(np.isin(kind, members))
            columns = columns[np.argsort(owner[columns], kind="stable")]
            if not len(columns):
                continue
            tools = owner[columns]
            starts = np.r_[0, np.flatnonzero(np.diff(tools)) + 1].astype(np.int64)
            plans[part] = _Plan(columns, starts, tools[starts])
        return cls(tuple(names), vectors, tuple(kinds), owner, lexical, plans)

    def __len__(self) -> int:
        return len(self.names)

    def part_scores(self, queries: Vectors) -> dict[str, FloatArray]:
        """Each part's best cosine per tool, ``(len(queries), tools)``; NaN where a tool has
        no text of that part."""
        similarities = queries.astype(np.float32) @ self.vectors.T
        out: dict[str, FloatArray] = {}
        for part, plan in self.plans.items():
            scores = np.full((len(queries), len(self.names)), np.nan)
            best = np.maximum.reduceat(similarities[:, plan.columns], plan.starts, axis=1)
            scores[:, plan.tools] = best
            out[part] = scores
        return out

    def fused(
        self, queries: Vectors, texts: Sequence[str], options: ToolOptions
    ) -> tuple[FloatArray, FloatArray, dict[str, FloatArray]]:
        """The fused score of every tool for each query, its dense similarity (the weighted
        mean of its parts' cosines) and the parts' scores behind them."""
        parts = self.part_scores(queries)
        name = parts["name"]
        description = parts.get("description", name)
        dense = np.where(np.isnan(description), name, description)
        total = dense.copy()
        weight = np.ones_like(dense)
        for part, w in (
            ("name", options.name_weight),
            ("argument", options.argument_weight),
            ("example", options.example_weight),
        ):
            if w and part in parts:
                present = ~np.isnan(parts[part])
                total += np.where(present, w * np.nan_to_num(parts[part]), 0.0)
                weight += np.where(present, w, 0.0)
        dense = total / weight
        if self.lexical is None or not options.lexical_weight:
            return dense, dense, parts
        lexical = self.lexical.scores(list(texts))
        parts["lexical"] = lexical
        fused = _rescale(dense, _DENSE_SPREAD) + options.lexical_weight * _rescale(lexical, 1e-9)
        return fused, dense, parts


def _rescale(scores: FloatArray, floor: float) -> FloatArray:
    """Qdrant's DBSF normalisation per row: centred on the mean, in units of 3 std."""
    spread = np.maximum(scores.std(axis=1, keepdims=True), floor)
    result: FloatArray = (scores - scores.mean(axis=1, keepdims=True)) / (3.0 * spread)
    return result


def rank_rows(
    table: ToolTable,
    vectors: Vectors,
    texts: Sequence[str],
    options: ToolOptions,
    *,
    limit: int | None,
    allowed: AbstractSet[str] | None,
) -> list[ToolMatch]:
    """Rank every tool for one request, given the rows of the texts it is ranked by (the
    request, or its sentences); each tool keeps its best row. Ranks are computed over the
    whole table, so they never depend on ``limit`` or ``allowed``."""
    fused, dense, parts = table.fused(vectors, texts, options)
    best_row = fused.argmax(axis=0)
    columns = np.arange(len(table))
    score = fused[best_row, columns]
    order = np.lexsort((columns, -score))  # ties: the order the tools were given in
    out: list[ToolMatch] = []
    for tool in order.tolist():
        name = table.names[tool]
        if allowed is not None and name not in allowed:
            continue
        row = int(best_row[tool])
        found = {k: float(v[row, tool]) for k, v in parts.items() if not np.isnan(v[row, tool])}
        out.append(
            ToolMatch(
                name=name,
                score=float(score[tool]),
                similarity=float(dense[row, tool]),
                scores=found,
                text=texts[row],
                rank=len(out) + 1,
            )
        )
        if limit is not None and len(out) >= limit:
            break
    return out
