"""Routing calls that arrive together share one search, as they share one encoder batch.

With :attr:`Encoder.coalesce_ms <semrouter.encoders.Encoder.coalesce_ms>` set, concurrent
``route()`` callers (threads, or tasks awaiting ``aroute()``) are encoded as one batch; without
this module each caller would still search alone, one matrix product (or one Qdrant query)
each, beside the model's next batch (benchmarks/results/concurrent_callers_ab.txt has the
before and after at 32 callers). Here the callers'
query vectors are queued on the same :class:`~semrouter.encoders._coalesce.Coalescer` and
searched together: one product for the batch in process, one batch query in Qdrant.

A request is its query rows, each with the snapshot and candidate count it is searched with;
rows of different snapshots (a route set changed between two callers) or counts (``route()``
beside ``top_routes()``) are searched apart, in the same worker turn. Each caller still scores,
decides, logs and traces its own call.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import cast

import numpy as np
import numpy.typing as npt

from ._routeset import Snapshot
from ._search import Candidates
from .encoders import Vectors
from .encoders._coalesce import Coalescer

__all__ = ["Found", "SharedSearch", "joined"]

#: One query: the snapshot and candidate count it is searched with, and its vector.
_Query = tuple[Snapshot, int, Vectors]
#: One query's answer: its candidate rows, their scores, and whether every row was compared.
Found = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], bool]
Search = Callable[[Snapshot, Vectors, int], Candidates]


class SharedSearch:
    """Searches queries of concurrent callers together, one worker thread per router.

    Args:
        search: returns the index's search (``RouteIndex.search``), called by the worker only.
        wait_s, max_queries: the coalescing wait and batch size (the encoder's).
    """

    def __init__(self, search: Callable[[], Search], *, wait_s: float, max_queries: int) -> None:
        self._search = search
        self._coalescer: Coalescer[_Query, list[Found]] = Coalescer(
            self._run, wait_s=wait_s, max_texts=max_queries, take=_part
        )

    def submit(
        self,
        snapshot: Snapshot,
        vectors: Vectors,
        candidates: int,
        *,
        wait_s: float,
        max_queries: int,
    ) -> Future[list[Found]]:
        """Queue the rows of ``vectors``; the future gets their answers (:func:`joined` makes
        them :class:`Candidates`), or the exception the search raised. ``wait_s`` and
        ``max_queries`` follow the encoder's settings, which may change between calls."""
        coalescer = self._coalescer
        coalescer.wait_s, coalescer.max_texts = wait_s, max(1, max_queries)
        return coalescer.submit([(snapshot, candidates, row) for row in vectors])

    def _run(self, queries: list[_Query]) -> list[Found]:
        search = self._search()
        groups: dict[tuple[int, int], list[int]] = {}
        for position, (snapshot, candidates, _) in enumerate(queries):
            groups.setdefault((id(snapshot), candidates), []).append(position)
        found: list[Found | None] = [None] * len(queries)
        for positions in groups.values():
            snapshot, candidates, _ = queries[positions[0]]
            matrix = np.stack([queries[position][2] for position in positions])
            answer = search(snapshot, matrix, candidates)
            for row, position in enumerate(positions):
                found[position] = (answer.rows[row], answer.scores[row], answer.exhaustive)
        return cast(list[Found], found)  # every position belongs to one group


def joined(found: list[Found]) -> Candidates:
    """The answers to one caller's rows as one :class:`Candidates`."""
    return Candidates(
        np.stack([rows for rows, _, _ in found]),
        np.stack([scores for _, scores, _ in found]),
        exhaustive=all(exhaustive for _, _, exhaustive in found),
    )


def _part(found: list[Found], start: int, stop: int) -> list[Found]:
    return found[start:stop]
