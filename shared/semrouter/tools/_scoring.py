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
    """One part's columns of the table's matrix, slot by slot: the tools that have texts of
    the part, most texts first (``tools``; ``None``: every tool, in order), then slot ``j``
    holds the ``j``-th text of each tool that has more than ``j``, a prefix of them
    (``slots[j]``: its first column and its width). A tool's best text is an element-wise
    maximum of contiguous slices (a ``reduceat`` over the columns cost 0.6 ms at 10,000
    tools, as much as the rest of the scoring together)."""

    slots: tuple[tuple[int, int], ...]
    tools: IntArray | None


@dataclass(frozen=True, eq=False)
class ToolTable:
    """Tools, the vectors of their texts and their lexical index: one consistent version.

    ``matrix`` holds the text vectors as columns, part by part and slot by slot (``_Plan``),
    in one contiguous ``(dimension, texts)`` array: a request's similarities are one product
    and each part's are slices of it (no gather of columns per request; the product with a
    row-major matrix of the texts took twice as long)."""

    names: tuple[str, ...]
    matrix: Vectors
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
        ordered: list[IntArray] = []
        start = 0
        for part, members in _PARTS.items():
            texts_of: dict[int, list[int]] = {}
            for column in np.flatnonzero(np.isin(kind, members)).tolist():
                texts_of.setdefault(int(owner[column]), []).append(column)
            if not texts_of:
                continue
            tools = sorted(texts_of, key=lambda tool: (-len(texts_of[tool]), tool))
            slots = []
            for slot in range(len(texts_of[tools[0]])):
                columns = [texts_of[t][slot] for t in tools if len(texts_of[t]) > slot]
                slots.append((start, len(columns)))
                ordered.append(np.asarray(columns, dtype=np.int64))
                start += len(columns)
            every = tools == list(range(len(names)))
            plans[part] = _Plan(tuple(slots), None if every else np.asarray(tools, np.int64))
        rows = np.concatenate(ordered) if ordered else np.zeros(0, dtype=np.int64)
        matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)[rows].T)
        return cls(tuple(names), matrix, lexical, plans)

    def __len__(self) -> int:
        return len(self.names)

    def part_scores(self, queries: Vectors) -> dict[str, FloatArray]:
        """Each part's best cosine per tool, ``(len(queries), tools)``; NaN where a tool has
        no text of that part."""
        similarities = queries.astype(np.float32) @ self.matrix
        out: dict[str, FloatArray] = {}
        for part, plan in self.plans.items():
            first, width = plan.slots[0]
            best = similarities[:, first : first + width].astype(np.float64)
            for first, width in plan.slots[1:]:
                head = best[:, :width]
                np.maximum(head, similarities[:, first : first + width], out=head)
            if plan.tools is None:
                out[part] = best
            else:
                scores = np.full((len(queries), len(self.names)), np.nan)
                scores[:, plan.tools] = best
                out[part] = scores
        return out

    def complete(self, part: str) -> bool:
        """Whether every tool has a text of ``part`` (its scores hold no NaN)."""
        plan = self.plans.get(part)
        return plan is not None and plan.tools is None

    def fused(
        self, queries: Vectors, texts: Sequence[str], options: ToolOptions
    ) -> tuple[FloatArray, FloatArray, dict[str, FloatArray]]:
        """The fused score of every tool for each query, its dense similarity (the weighted
        mean of its parts' cosines) and the parts' scores behind them."""
        parts = self.part_scores(queries)
        name = parts["name"]
        description = parts.get("description", name)
        if self.complete("description") or "description" not in parts:
            dense = description.copy()
        else:
            dense = np.where(np.isnan(description), name, description)
        total = dense
        weight: FloatArray | float = 1.0
        for part, w in (
            ("name", options.name_weight),
            ("argument", options.argument_weight),
            ("example", options.example_weight),
        ):
            if not w or part not in parts:
                continue
            if self.complete(part):  # the same sums, without masking
                total += w * parts[part]
                weight = weight + w
            else:
                present = ~np.isnan(parts[part])
                total += np.where(present, w * np.nan_to_num(parts[part]), 0.0)
                weight = weight + np.where(present, w, 0.0)
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
    out: list[ToolMatch] = []
    for tool in _best_first(score, limit, allowed, table.names):
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


#: A limited ranking sorts only the tools scoring at least its ``limit * _HEADROOM``-th best.
_HEADROOM = 4


def _best_first(
    score: FloatArray,
    limit: int | None,
    allowed: AbstractSet[str] | None,
    names: Sequence[str],
) -> list[int]:
    """Tool positions by score, best first, ties in the order the tools were given in. With
    a ``limit``, the tools scoring at least the ``limit * _HEADROOM``-th best score (ties
    included, so the order is the full order's beginning) are sorted, and all of them only
    when too few of those are ``allowed``: sorting 10,000 scores cost 0.6 ms."""
    columns = np.arange(len(score))
    wanted = len(score) if limit is None else limit * _HEADROOM
    if wanted < len(score):
        floor = np.partition(score, len(score) - wanted)[len(score) - wanted]
        head = np.flatnonzero(score >= floor)
        order: list[int] = head[np.lexsort((head, -score[head]))].tolist()
        kept = order if allowed is None else [t for t in order if names[t] in allowed]
        if limit is not None and len(kept) >= limit:
            return order
    ranked: list[int] = np.lexsort((columns, -score)).tolist()
    return ranked
