"""Routing: ``route``, ``top_routes`` and their batch, vector and async forms.

Each call is one body, :meth:`Querying._steps`: check and encode the texts, search the index of
the route set served now, let the scorer decide (``_scorer.py``), offer the decisions to the
decision log and record a telemetry span. It yields what may wait on I/O (encode, refresh,
search) as steps, run by :meth:`Querying._call` or awaited by ``_acall``: sync and async share
everything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

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
from ._search import Candidates, serving_blas
from ._search_batch import Found, SharedSearch, joined
from ._telemetry import routing_span
from .encoders import Encoder, Vectors

if TYPE_CHECKING:
    from ._routeset import Snapshot

__all__ = ["Querying"]

#: A step of a routing call that may wait on I/O: ("encode" | "refresh" | "search" | "lexical",
#: its arguments...).
_Step = tuple[Any, ...]


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

    def _call(self, *call: Any) -> list[list[RouteMatch]]:
        """One routing call (:meth:`_steps`), its encoding and searching done here."""
        run = _Run(self._steps(*call))
        while (step := run.next_step()) is not None:
            try:
                run.answer, run.error = self._do(step), None
            except Exception as exc:  # raised inside the call, where its span records it
                run.answer, run.error = None, exc
        return run.result

    async def _acall(self, *call: Any) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`_call`: the encoder's async path, Qdrant awaited."""
        run = _Run(self._steps(*call))
        while (step := run.next_step()) is not None:
            try:
                run.answer, run.error = await self._ado(step), None
            except Exception as exc:
                run.answer, run.error = None, exc
        return run.result

    def _steps(
        self,
        kind: str,
        texts: Sequence[str] | None,
        vectors: Vectors | None,
        limit: int,
        apply_threshold: bool,
        one: bool,
    ) -> Generator[_Step, Any, list[list[RouteMatch]]]:
        """One routing call, for :meth:`_call` and :meth:`_acall` alike: check and encode
        (unless ``vectors`` are given), search, decide, and record it in a telemetry span
        (``_telemetry.py``: nothing when OpenTelemetry is unused). What may wait on I/O is
        yielded as a step for the caller to run (:meth:`_do` or :meth:`_ado`)."""
        with routing_span(kind, tenant=self.tenant) as span:
            started = time.perf_counter()
            if vectors is None:
                items: list[str] | None = self._check(texts or ())
                matrix = (yield ("encode", items)) if items else _no_vectors(self.encoder)
            else:
                matrix, items = self._vector_query(vectors, texts)
            encoded = time.perf_counter()
            if self._refresh_due():
                yield ("refresh",)
            state = self._state  # one version for the whole batch
            found = yield ("search", state.snapshot, matrix, candidates_wanted(state, limit))
            lexical = None
            if items and state.fusion is not None:
                lexical = yield ("lexical", state.snapshot, items, len(state.names))
            with serving_blas(len(matrix)):
                decided = score_and_decide(
                    state,
                    matrix,
                    found,
                    lexical,
                    limit=limit,
                    apply_threshold=apply_threshold,
                    keep_empty=one,
                )
            flag_unread(decided, items, self.encoder.languages)  # abstentions it cannot read
            encode_s = encoded - started if vectors is None else 0.0  # given: not encoded
            self._observe(span, decided, one, items, encode_s, encoded, matrix)
            return decided

    def _do(self, step: _Step) -> Any:
        """Run one step of :meth:`_steps`."""
        kind, *args = step
        if kind == "encode":
            return self.encoder.encode(*args)
        if kind == "refresh":
            return self.refresh()
        if kind == "search":
            shared = self._shared_search(*args)
            return joined(shared.result()) if shared else self._open_index().search(*args)
        return self._open_index().lexical(*args)

    async def _ado(self, step: _Step) -> Any:
        """Run one step of :meth:`_steps`, awaiting the encoder and Qdrant."""
        kind, *args = step
        if kind == "encode":
            return await self.encoder.aencode(*args)
        if kind == "refresh":
            return await self.arefresh()
        if kind == "search":
            shared = self._shared_search(*args)
            if shared is not None:
                return joined(await asyncio.wrap_future(shared))
            return await self._open_index().asearch(*args)
        return await self._open_index().alexical(*args)

    def _shared_search(
        self, snapshot: Snapshot, matrix: Vectors, candidates: int
    ) -> Future[list[Found]] | None:
        """With the encoder coalescing (:attr:`Encoder.coalesce_ms`), a small call's search
        queued with other callers' (``_search_batch.py``); ``None``: search alone."""
        wait = self.encoder.coalesce_ms
        size = self.encoder.batch_size
        if wait is None or not 0 < len(matrix) < size:
            return None
        wait_s = wait / 1000.0
        shared = self.__dict__.get("_shared")
        if not isinstance(shared, SharedSearch):
            with self._lock:
                shared = self.__dict__.get("_shared")
                if not isinstance(shared, SharedSearch):
                    shared = SharedSearch(self._index_search, wait_s=wait_s, max_queries=size)
                    self.__dict__["_shared"] = shared
        return shared.submit(snapshot, matrix, candidates, wait_s=wait_s, max_queries=size)

    def _index_search(self) -> Callable[[Snapshot, Vectors, int], Candidates]:
        return self._open_index().search

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


class _Run:
    """A routing call's steps (:meth:`Querying._steps`) and what to send them next: the
    answer to the last step, or the error it raised (thrown in where the step was asked)."""

    def __init__(self, steps: Generator[_Step, Any, list[list[RouteMatch]]]) -> None:
        self.steps = steps
        self.answer: Any = None
        self.error: Exception | None = None
        self.result: list[list[RouteMatch]] = []

    def next_step(self) -> _Step | None:
        """The next step to run, or ``None`` when the call is done (its value in ``result``)."""
        try:
            if self.error is not None:
                return self.steps.throw(self.error)
            return self.steps.send(self.answer)
        except StopIteration as done:
            self.result = done.value
            return None


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
