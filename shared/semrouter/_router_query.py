"""Routing: ``route``, ``top_routes`` and their batch, vector and async forms.

Each call goes through :meth:`Querying._call` (or ``_acall``): check and encode the texts,
search the index of the route set served now, let the scorer decide (``_scorer.py``), offer
the decisions to the decision log and record a telemetry span.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._exceptions import (
    ConfigurationError,
    InvalidQueryError,
    QueryTypeError,
)
from ._language import flag_unread
from ._router_base import RouterBase
from ._routes import RouteMatch, check_text
from ._scorer import candidates_wanted, score_and_decide, with_blanks
from ._telemetry import routing_span
from .encoders import Encoder, Vectors

__all__ = ["Querying"]


class Querying(RouterBase):
    """The routing methods of :class:`~semrouter.SemanticRouter`."""

    # -- routing -------------------------------------------------------------------------------
    def route(self, text: str) -> RouteMatch:
        """The best route for ``text``, or a match with ``name=None`` when none passes (its
        ``reason`` and the ``threshold`` missed say why). A blank ``text`` raises
        :class:`InvalidQueryError`."""
        return self._call("route", [text], None, 1, True, True)[0][0]

    async def aroute(self, text: str) -> RouteMatch:
        """Asynchronous :meth:`route`; never blocks the event loop on encoding or I/O."""
        return (await self._acall("aroute", [text], None, 1, True, True))[0][0]

    def route_many(self, texts: Sequence[str]) -> list[RouteMatch]:
        """Route many texts with one encoder batch and one batched index query. An empty or
        white-space text gets its own abstaining match (``reason="blank"``) instead of
        failing the batch."""
        blank, asked = self._blanks(texts)
        return with_blanks(blank, [m[0] for m in self._call("route", asked, None, 1, True, True)])

    async def aroute_many(self, texts: Sequence[str]) -> list[RouteMatch]:
        """Asynchronous :meth:`route_many`."""
        blank, asked = self._blanks(texts)
        found = await self._acall("aroute", asked, None, 1, True, True)
        return with_blanks(blank, [m[0] for m in found])

    def top_routes(
        self, text: str, limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Up to ``limit`` routes for ``text``, best first (empty when none passes).

        With ``apply_threshold=False`` the best ``limit`` routes are returned whatever their
        score, as tool preselection wants. ``limit=0`` returns an empty list.
        """
        return self.top_routes_many([text], limit, apply_threshold=apply_threshold)[0]

    def top_routes_many(
        self, texts: Sequence[str], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[list[RouteMatch]]:
        """:meth:`top_routes` for many texts in one batch."""
        _check_limit(limit)
        return self._call("top_routes", texts, None, limit, apply_threshold, False)

    async def atop_routes(
        self, text: str, limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Asynchronous :meth:`top_routes`."""
        return (await self.atop_routes_many([text], limit, apply_threshold=apply_threshold))[0]

    async def atop_routes_many(
        self, texts: Sequence[str], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`top_routes_many`."""
        _check_limit(limit)
        return await self._acall("atop_routes", texts, None, limit, apply_threshold, False)

    def route_vectors(
        self, vectors: Vectors, *, texts: Sequence[str] | None = None
    ) -> list[RouteMatch]:
        """Route already-encoded queries (rows of ``encoder.encode(...)``); nothing is encoded.

        The seam for callers that keep query vectors (conversations, benchmarks, fitting).
        ``texts`` (the queries themselves) are needed by hybrid routing only; without them a
        hybrid router ranks by the dense side alone.
        """
        return [m[0] for m in self._call("route_vectors", texts, vectors, 1, True, True)]

    async def aroute_vectors(
        self, vectors: Vectors, *, texts: Sequence[str] | None = None
    ) -> list[RouteMatch]:
        """Asynchronous :meth:`route_vectors` (awaits Qdrant when the search runs there)."""
        return [m[0] for m in await self._acall("aroute_vectors", texts, vectors, 1, True, True)]

    def top_routes_vectors(
        self,
        vectors: Vectors,
        limit: int = 3,
        *,
        apply_threshold: bool = True,
        texts: Sequence[str] | None = None,
    ) -> list[list[RouteMatch]]:
        """:meth:`top_routes_many` for already-encoded queries (``texts``: see
        :meth:`route_vectors`)."""
        _check_limit(limit)
        return self._call("top_routes_vectors", texts, vectors, limit, apply_threshold, False)

    async def atop_routes_vectors(
        self,
        vectors: Vectors,
        limit: int = 3,
        *,
        apply_threshold: bool = True,
        texts: Sequence[str] | None = None,
    ) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`top_routes_vectors`."""
        _check_limit(limit)
        return await self._acall(
            "atop_routes_vectors", texts, vectors, limit, apply_threshold, False
        )

    def _call(
        self,
        kind: str,
        texts: Sequence[str] | None,
        vectors: Vectors | None,
        limit: int,
        apply_threshold: bool,
        one: bool,
    ) -> list[list[RouteMatch]]:
        """One routing call: encode (unless ``vectors`` are given), search, decide, and record
        it in a telemetry span (``_telemetry.py``: nothing when OpenTelemetry is unused)."""
        with routing_span(kind, tenant=self.tenant) as span:
            started = time.perf_counter()
            if vectors is None:
                items: list[str] | None = self._check(texts or ())
                matrix = self.encoder.encode(items) if items else _no_vectors(self.encoder)
            else:
                matrix, items = self._vector_query(vectors, texts)
            encoded = time.perf_counter()
            found = self._run(matrix, limit, apply_threshold, one, items)
            found = flag_unread(found, items, self.encoder.languages)  # _language.py
            encode_s = encoded - started if vectors is None else 0.0  # given: not encoded
            self._observe(span, found, one, items, encode_s, encoded, matrix)
            return found

    async def _acall(
        self,
        kind: str,
        texts: Sequence[str] | None,
        vectors: Vectors | None,
        limit: int,
        apply_threshold: bool,
        one: bool,
    ) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`_call` (the encoder's async path; Qdrant awaited)."""
        with routing_span(kind, tenant=self.tenant) as span:
            started = time.perf_counter()
            if vectors is None:
                items: list[str] | None = self._check(texts or ())
                matrix = await self.encoder.aencode(items) if items else _no_vectors(self.encoder)
            else:
                matrix, items = self._vector_query(vectors, texts)
            encoded = time.perf_counter()
            found = await self._arun(matrix, limit, apply_threshold, one, items)
            found = flag_unread(found, items, self.encoder.languages)  # _language.py
            encode_s = encoded - started if vectors is None else 0.0  # given: not encoded
            self._observe(span, found, one, items, encode_s, encoded, matrix)
            return found

    def _observe(
        self,
        span: Any,
        found: list[list[RouteMatch]],
        one: bool,
        texts: list[str] | None,
        encode_s: float,
        encoded: float,
        vectors: Vectors,
    ) -> None:
        log = self._log
        if log is not None and one:  # route()-style decisions (top_routes is a ranking)
            log.offer(texts, vectors, [m[0] for m in found], self.revision)
        span.observe(
            [m[0] for m in found] if one else found,
            candidates=self._state.options.candidates,
            encode_s=encode_s,
            search_s=time.perf_counter() - encoded,
            texts=texts,
        )

    def _vector_query(
        self, vectors: Vectors, texts: Sequence[str] | None
    ) -> tuple[Vectors, list[str] | None]:
        matrix = _query_matrix(vectors, self.encoder)
        if texts is None:
            return matrix, None
        items = self._check(texts)
        if len(items) != len(matrix):
            raise QueryTypeError(f"got {len(matrix)} query vectors but {len(items)} texts")
        return matrix, items

    def _run(
        self,
        vectors: Vectors,
        limit: int,
        apply_threshold: bool,
        keep_empty: bool,
        texts: list[str] | None = None,
    ) -> list[list[RouteMatch]]:
        if self._refresh_due():
            self.refresh()
        state = self._state  # one version for the whole batch
        index = self._open_index()
        found = index.search(state.snapshot, vectors, candidates_wanted(state, limit))
        lexical = None
        if texts and state.fusion is not None:
            lexical = index.lexical(state.snapshot, texts, len(state.names))
        return score_and_decide(
            state,
            vectors,
            found,
            lexical,
            limit=limit,
            apply_threshold=apply_threshold,
            keep_empty=keep_empty,
        )

    async def _arun(
        self,
        vectors: Vectors,
        limit: int,
        apply_threshold: bool,
        keep_empty: bool,
        texts: list[str] | None = None,
    ) -> list[list[RouteMatch]]:
        if self._refresh_due():
            await self.arefresh()
        state = self._state
        index = self._open_index()
        found = await index.asearch(state.snapshot, vectors, candidates_wanted(state, limit))
        lexical = None
        if texts and state.fusion is not None:
            lexical = await index.alexical(state.snapshot, texts, len(state.names))
        return score_and_decide(
            state,
            vectors,
            found,
            lexical,
            limit=limit,
            apply_threshold=apply_threshold,
            keep_empty=keep_empty,
        )

    def _blanks(self, texts: Sequence[str]) -> tuple[list[bool], list[str]]:
        """Which of ``texts`` are blank, and the others (route_many answers blanks itself)."""
        items = self._check(texts, blanks=True)
        blank = [not text or text.isspace() for text in items]
        return blank, [text for text, empty in zip(items, blank, strict=True) if not empty]

    def _check(self, texts: Sequence[str], *, blanks: bool = False) -> list[str]:
        if isinstance(texts, str):
            raise QueryTypeError("route_many() takes a list of strings; use route() for one")
        items = list(texts)
        for text in items:
            if not isinstance(text, str):
                raise QueryTypeError(f"a query must be a str, got {type(text).__name__}")
            if not text or text.isspace():
                if blanks:
                    continue
                raise InvalidQueryError("a query must not be empty or only white space")
            if not text.isascii():
                problem = check_text(text, "the query")
                if problem:
                    raise InvalidQueryError(problem)
        return items


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")


def _no_vectors(encoder: Encoder) -> Vectors:
    return np.zeros((0, encoder.dimension), dtype=np.float32)


def _query_matrix(vectors: Any, encoder: Encoder) -> Vectors:
    """Query vectors as a C-contiguous float32 ``(n, dimension)`` matrix of unit rows."""
    try:
        matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise QueryTypeError("query vectors must be a numeric (n, dimension) array") from None
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    dimension = encoder.dimension
    if matrix.ndim != 2 or matrix.shape[1] != dimension:
        raise QueryTypeError(f"query vectors must have shape (n, {dimension}), got {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise InvalidQueryError("query vectors must be finite")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)
