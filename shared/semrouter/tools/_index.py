"""The tool index every adapter ranks with: tools in, ranked :class:`ToolMatch` out.

The tools and the examples learnt from the agent's calls are stored as a route set in a Qdrant
collection (``_store.py``: temporary by default, shared across processes with ``path=``,
``url=`` or ``client=``); each distinct tool text is encoded once per process
(:class:`EncodeCache`) and never again by a process that finds it stored. The ranking is an
exact score of every tool (``_scoring.py``), so a tool's rank never depends on how many tools
are asked for. The state a ranking reads (tools, vectors, lexical index, options) is one
immutable :class:`ToolTable` swapped in one assignment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from .._exceptions import ConfigurationError, InvalidQueryError, QueryTypeError, SemRouterError
from .._feedback import Feedback
from .._lexical import LexicalIndex
from .._stores._location import QdrantLocation
from ..encoders import Encoder, Vectors
from ._cache import EncodeCache
from ._options import ToolMatch, ToolOptions
from ._scoring import ToolTable, rank_rows, request_parts
from ._spec import TextKind, ToolSpec
from ._store import (
    DEFAULT_COLLECTION,
    StoredTools,
    ToolStore,
    learn_edit,
    location_from,
    merged_routes,
)

__all__ = ["ToolIndex"]

logger = logging.getLogger("semrouter")
#: Requests whose vectors an index keeps (an agent's later model calls reuse them).
_REQUESTS_KEPT = 256
#: Lexical weights :meth:`ToolIndex.fit` chooses from.
_FIT_WEIGHTS = (0.0, 0.1, 0.2, 0.4)


class ToolIndex:
    """Ranks tools for a request by their name, description, arguments and examples.

    Args:
        tools: the tools (:class:`ToolSpec`); more can be added with :meth:`update`.
        encoder: default: the process-wide :meth:`~semrouter.LocalEncoder.shared` encoder.
        options: a :class:`ToolOptions`; or its fields as keywords.
        cache: where text vectors are kept; default: :meth:`EncodeCache.shared`, so indexes
            over the same tools in one process encode each text once.
        location: where the tool set is stored (a :class:`~semrouter.QdrantLocation`); or its
            keywords (``path=``, ``url=``, ``api_key=``, ``client=`` ...). Default: a
            temporary collection of this index. Indexes opened on one location share the
            tools, their vectors and the examples learnt from calls.
        collection: the collection's name (one tool set per collection).
        refresh_interval: follow changes that other indexes or processes store (their
            learnt examples) at most this often, in seconds, before a ranking; ``None``:
            only on :meth:`refresh`.

    Example:
        >>> from semrouter import FakeEncoder, ToolIndex, ToolSpec
        >>> index = ToolIndex([
        ...     ToolSpec(name="get_weather", description="Weather forecast for a city."),
        ...     ToolSpec(name="send_email", description="Send an email message."),
        ... ], encoder=FakeEncoder())
        >>> [m.name for m in index.rank("weather forecast for Paris", 1)]
        ['get_weather']
        >>> index.observe("get_weather", "will I need an umbrella?")
        True
        >>> index.examples("get_weather")
        ['will I need an umbrella?']
    """

    def __init__(
        self,
        tools: Sequence[ToolSpec] = (),
        *,
        encoder: Encoder | None = None,
        options: ToolOptions | None = None,
        cache: EncodeCache | None = None,
        location: QdrantLocation | None = None,
        collection: str = DEFAULT_COLLECTION,
        refresh_interval: float | None = None,
        **fields: Any,
    ) -> None:
        if encoder is None:
            from ..encoders._local import LocalEncoder

            encoder = LocalEncoder.shared()
        if not isinstance(encoder, Encoder):
            raise ConfigurationError("encoder must be a semrouter.Encoder")
        if refresh_interval is not None and (
            isinstance(refresh_interval, bool)
            or not isinstance(refresh_interval, (int, float))
            or not refresh_interval >= 0
        ):
            raise ConfigurationError("refresh_interval must be a number of seconds >= 0")
        self.encoder = encoder
        self.cache = cache if cache is not None else EncodeCache.shared()
        self.location = location_from(fields, location) or QdrantLocation()
        self._options = ToolOptions.build(options, **fields)
        self._refresh_interval = refresh_interval
        self._next_refresh = 0.0
        self._lock = threading.RLock()
        self._specs: dict[str, ToolSpec] = {}
        self._fitted: dict[str, OrderedDict[str, Vectors]] = {}
        self._requests: OrderedDict[str, Vectors] = OrderedDict()
        self._lexical: LexicalIndex | None = None
        self._version = 0
        self._stored = StoredTools.empty(encoder.dimension)
        self._table = ToolTable.build([], self._stored.vectors, [], [], None)
        self._store = ToolStore(self.location, collection, encoder)
        try:
            found = self._store.follow(None)
            if found is not None:
                self._publish(found)
            if tools:
                self.update(tools)
        except BaseException:
            self._store.close()
            raise

    # -- the tools ------------------------------------------------------------------------------
    @property
    def options(self) -> ToolOptions:
        """The scoring options (change them with :meth:`configure`)."""
        return self._options

    def configure(self, **changes: Any) -> ToolOptions:
        """Validate and apply option changes; returns the new options."""
        self._options = ToolOptions.build(self._options, **changes)
        return self._options

    @property
    def tools(self) -> list[ToolSpec]:
        """The indexed tools, in the order they were first given."""
        return list(self._specs.values())

    @property
    def names(self) -> list[str]:
        """The indexed tools' names."""
        return list(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    @property
    def version(self) -> int:
        """Counts the changes of the tools and examples (a cheap "did anything change?")."""
        return self._version

    @property
    def read_only(self) -> bool:
        """Whether this index only reads its collection (another process writes the folder)."""
        return self._store.read_only

    def changed(self, tools: Iterable[ToolSpec]) -> bool:
        """Whether :meth:`update` with ``tools`` would change the index."""
        specs = self._specs
        return any((known := specs.get(spec.name)) is not spec and known != spec for spec in tools)

    def update(self, tools: Iterable[ToolSpec]) -> bool:
        """Add new tools and replace changed ones (same name); encodes only texts neither
        cached nor stored. Returns whether anything changed."""
        specs = _checked(tools)
        with self._lock:
            if not self.changed(specs):
                return False
            self._commit(merged_routes(specs, replace=False), vectors=self._new_vectors(specs))
            return True

    async def aupdate(self, tools: Iterable[ToolSpec]) -> bool:
        """Asynchronous :meth:`update` (the encoder's async path; the store is written in a
        worker thread)."""
        specs = _checked(tools)
        if not self.changed(specs):
            return False
        await self.cache.aencode(self.encoder, self._unstored_texts(specs))
        return await asyncio.to_thread(self.update, specs)  # every text is cached now

    def set_tools(self, tools: Iterable[ToolSpec]) -> bool:
        """Index exactly ``tools`` (others are dropped, with their learnt examples)."""
        specs = _checked(tools)
        with self._lock:
            wanted = {s.name: s for s in specs}
            if wanted == self._specs:
                return False
            for name in set(self._fitted) - set(wanted):
                del self._fitted[name]
            self._commit(merged_routes(specs, replace=True), vectors=self._new_vectors(specs))
            return True

    def _unstored_texts(self, specs: Sequence[ToolSpec]) -> list[str]:
        stored = self._stored.pairs()
        return [text for s in specs for _, text in s.texts() if (s.name, text) not in stored]

    def _new_vectors(self, specs: Sequence[ToolSpec]) -> dict[str, Vectors]:
        """Vectors of the texts the store lacks (through the process's cache)."""
        texts = list(dict.fromkeys(self._unstored_texts(specs)))
        return dict(zip(texts, self.cache.encode(self.encoder, texts))) if texts else {}

    # -- the store --------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Serve the stored tool set if another index or process changed it (tools, learnt
        examples). Costs one small read when nothing changed; encodes nothing. Returns
        whether anything changed."""
        with self._lock:
            self._schedule_refresh()
            found = self._store.follow(self._stored)
            if found is None:
                return False
            self._publish(found)
            return True

    def _schedule_refresh(self) -> None:
        if self._refresh_interval is not None:
            self._next_refresh = time.monotonic() + self._refresh_interval

    def _follow_if_due(self) -> None:
        if self._refresh_interval is None or time.monotonic() < self._next_refresh:
            return
        try:
            self.refresh()
        except SemRouterError as exc:  # keep ranking with what is served
            logger.warning("could not follow the tool set in %s: %s", self.location.target, exc)

    def _commit(self, change: Any, **kwargs: Any) -> None:
        with self._lock:
            found = self._store.commit(change, served=self._stored, **kwargs)
            if found is None:
                self.refresh()  # nothing to write: serve the latest stored set
            else:
                self._publish(found)

    def close(self) -> None:
        """Close the collection (the clients this index made); rankings keep working on what
        was served, changes raise :class:`~semrouter.RouterClosedError`. Idempotent."""
        self._store.close()

    def __enter__(self) -> ToolIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ranking ---------------------------------------------------------------------------------
    def rank(
        self, request: str, limit: int | None = None, *, tools: Iterable[str] | None = None
    ) -> list[ToolMatch]:
        """Every tool (or the best ``limit``) for ``request``, best first, with its scores.

        Args:
            request: the user's request.
            limit: return at most this many; ``None`` for all.
            tools: rank only these names (the tools offered this turn); unknown names are
                ignored. Scores and order are the same as in a ranking of all tools.
        """
        texts = _request_texts(request, self._options)
        return self.rank_vectors(self._request_vectors(texts), texts, limit, tools=tools)

    async def arank(
        self, request: str, limit: int | None = None, *, tools: Iterable[str] | None = None
    ) -> list[ToolMatch]:
        """Asynchronous :meth:`rank`: the request is encoded on the encoder's async path."""
        texts = _request_texts(request, self._options)
        missing = [t for t in texts if t not in self._requests]
        if missing:
            self._keep_requests(missing, await self.encoder.aencode(missing))
        if self._refresh_interval is not None and time.monotonic() >= self._next_refresh:
            await asyncio.to_thread(self._follow_if_due)
        return self.rank_vectors(self._request_vectors(texts), texts, limit, tools=tools)

    def rank_vectors(
        self,
        vectors: Vectors,
        texts: Sequence[str],
        limit: int | None = None,
        *,
        tools: Iterable[str] | None = None,
    ) -> list[ToolMatch]:
        """:meth:`rank` for an already-encoded request: ``vectors`` are the rows of the texts
        it is ranked by (:meth:`request_texts`: the request, or its sentences)."""
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ConfigurationError("limit must be None or an integer >= 0")
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or len(matrix) != len(texts) or not len(texts):
            raise QueryTypeError(f"got {matrix.shape} vectors for {len(texts)} request texts")
        self._follow_if_due()
        table = self._table
        if not len(table) or limit == 0:
            return []
        allowed: AbstractSet[str] | None = None
        if tools is not None:
            allowed = tools if isinstance(tools, (set, frozenset)) else set(tools)
        return rank_rows(table, matrix, texts, self._options, limit=limit, allowed=allowed)

    def request_texts(self, request: str) -> list[str]:
        """The texts a request is ranked by: itself, or its sentences when it is split (the
        whole of a long request adds nothing its sentences do not find, and costs as much
        encoding as all of them)."""
        return _request_texts(request, self._options)

    def encode_request(self, request: str) -> tuple[list[str], Vectors]:
        """The request's texts and their vectors (cached: a repeated request costs nothing)."""
        texts = _request_texts(request, self._options)
        return texts, self._request_vectors(texts)

    def _request_vectors(self, texts: list[str]) -> Vectors:
        with self._lock:
            found = {t: self._requests[t] for t in texts if t in self._requests}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = self.encoder.encode(missing)
            self._keep_requests(missing, fresh)
            found.update(zip(missing, fresh))
        return np.stack([found[t] for t in texts])

    def _keep_requests(self, texts: list[str], vectors: Vectors) -> None:
        with self._lock:
            for text, row in zip(texts, vectors):
                self._requests[text] = row
                self._requests.move_to_end(text)
            while len(self._requests) > max(_REQUESTS_KEPT, len(texts)):
                self._requests.popitem(last=False)

    # -- examples learnt from calls: stored with the tools ----------------------------------------
    def observe(self, name: str, request: str, vector: Vectors | None = None) -> bool:
        """Keep ``request`` as an example of tool ``name`` (a request the model answered by
        calling it), stored with the tools: every index on the same collection learns it.

        ``vector``: the request's vector if the caller has it (nothing is then encoded);
        otherwise it is taken from the request cache or encoded. A request that is ranked
        sentence by sentence (``split_requests``) keeps the sentence that ranks the tool
        best, with its vector from the request cache: in "book a flight. Then mail Anna",
        only the first sentence is an example of the flight tool. Deduplicated by text (and
        against the tool's own texts) and capped at ``options.max_examples`` per tool (the
        oldest go first). Returns whether the example was new.
        """
        rows = None if vector is None else [vector]
        return self.observe_many([request], [name], vectors=rows) > 0

    def observe_many(
        self,
        requests: Sequence[str],
        names: Sequence[str],
        *,
        vectors: Vectors | Sequence[Vectors] | None = None,
    ) -> int:
        """:meth:`observe` for many calls in one stored change (``names[i]`` for
        ``requests[i]``); returns how many examples were new."""
        if len(names) != len(requests):
            raise ConfigurationError(f"got {len(requests)} requests but {len(names)} tool names")
        if vectors is not None and len(vectors) != len(requests):
            raise ConfigurationError(f"got {len(vectors)} vectors for {len(requests)} requests")
        with self._lock:
            self._follow_if_due()
            unknown = sorted({n for n in names if n not in self._specs})
            if unknown:
                raise ConfigurationError(f"no tool named {unknown[0]!r} is indexed")
            cap = self._options.max_examples
            pairs: list[tuple[str, str]] = []
            given: dict[str, Vectors] = {}
            for position, (request, name) in enumerate(zip(requests, names)):
                text = request.strip() if isinstance(request, str) else None
                if not text:
                    raise InvalidQueryError("an example must be a non-empty str")
                row = vectors[position] if vectors is not None else given.get(text)
                parts = _request_texts(text, self._options)
                if len(parts) > 1:  # several requests in one: keep the one that found the tool
                    rows = self._request_vectors(parts)
                    found = self.rank_vectors(rows, parts, 1, tools={name})[0].text
                    text, row = found, rows[parts.index(found)]
                own = self._stored.texts[name]
                if not cap or text in own or text in self._stored.learnt.get(name, ()):
                    continue
                if (name, text) in pairs:
                    continue
                given[text] = self._example_vector(text, row)
                pairs.append((name, text))
            if pairs:
                self._commit(None, edit=learn_edit(pairs, cap), vectors=given)
            return len(pairs)

    def examples(self, name: str) -> list[str]:
        """The examples learnt for tool ``name`` (by :meth:`observe`, in any index on this
        collection), oldest first; not those of its spec or of :meth:`fit`."""
        self.refresh()
        return list(self._stored.learnt.get(name, ()))

    def clear_examples(self, name: str | None = None) -> None:
        """Forget the learnt (and fitted) examples of ``name``, or of every tool."""
        with self._lock:
            if name is None:
                self._fitted.clear()
            else:
                self._fitted.pop(name, None)
            targets = [t for t in ([name] if name is not None else self._stored.learnt)]
            if not any(t in self._stored.learnt for t in targets):
                self._publish(self._stored)
                return

            def edit(feedback: Feedback) -> Feedback:
                for target in targets:
                    feedback = feedback.without(target, None)
                return feedback

            self._commit(None, edit=edit)

    def fit(self, requests: Sequence[tuple[str, Sequence[str]]]) -> dict[str, Any]:
        """Learn from labelled requests ``(text, [tool names])``.

        Chooses the lexical weight that ranks these requests best (recall@5, before they are
        used as examples), then keeps them as examples: a one-tool request whole, a
        multi-tool one sentence by sentence, each sentence for the labelled tool it is
        closest to. Fitted examples live in this index (the offline path: examples learnt
        from calls are the stored, shared one); they are not capped, and a new fit replaces
        them.

        Returns:
            ``{"examples": n, "lexical_weight": w, "recall_at_5": {w: recall}}``.
        """
        rows = [(t, [n for n in names if n in self._specs]) for t, names in requests]
        rows = [(t, names) for t, names in rows if t.strip() and names]
        if not rows:
            raise ConfigurationError("fit() needs requests labelled with indexed tool names")
        ranked_by = [_request_texts(text, self._options) for text, _ in rows]
        whole = [text.strip() for text, names in rows if len(names) == 1]
        needed = list(dict.fromkeys([*whole, *(t for texts in ranked_by for t in texts)]))
        vector = dict(zip(needed, self.encoder.encode(needed)))  # one batch, each text once
        encoded = [(texts, np.stack([vector[t] for t in texts])) for texts in ranked_by]
        recall = {w: self._recall(encoded, rows, w) for w in _FIT_WEIGHTS}
        best = max(recall, key=lambda w: (round(recall[w], 4), w == self._options.lexical_weight))
        fitted: dict[str, OrderedDict[str, Vectors]] = {}
        for text, names in rows:
            if len(names) == 1:
                fitted.setdefault(names[0], OrderedDict())[text.strip()] = vector[text.strip()]
                continue
            for part in request_parts(text.strip()):
                row = vector.get(part)
                if row is None:
                    row = vector[part] = self.encoder.encode([part])[0]
                ranked = self.rank_vectors(row[None, :], [part], 1, tools=names)
                fitted.setdefault(ranked[0].name, OrderedDict())[part] = row
        with self._lock:
            self._options = self._options.model_copy(update={"lexical_weight": best})
            self._fitted = fitted
            self._publish(self._stored)
        count = sum(len(items) for items in fitted.values())
        return {"examples": count, "lexical_weight": best, "recall_at_5": recall}

    def _recall(
        self,
        encoded: list[tuple[list[str], Vectors]],
        rows: list[tuple[str, list[str]]],
        weight: float,
    ) -> float:
        options = self._options.model_copy(update={"lexical_weight": weight})
        table, total = self._table, 0.0
        for (texts, vectors), (_, names) in zip(encoded, rows):
            top = rank_rows(table, vectors, texts, options, limit=5, allowed=None)
            total += len({m.name for m in top} & set(names)) / len(names)
        return total / len(rows)

    def _example_vector(self, text: str, vector: Vectors | None) -> Vectors:
        if vector is not None:
            row = np.asarray(vector, dtype=np.float32).reshape(-1)
            if row.shape != (self.encoder.dimension,):
                raise ConfigurationError(
                    f"an example vector must have {self.encoder.dimension} values"
                )
            norm = float(np.linalg.norm(row))
            unit: Vectors = row / norm if norm else row
            return unit
        first: Vectors = self._request_vectors([text])[0]
        return first

    # -- publishing -------------------------------------------------------------------------------
    def _publish(self, stored: StoredTools) -> None:
        """Serve ``stored`` (and this index's fitted examples): one table, swapped in whole."""
        specs = stored.specs
        names = list(specs)
        vectors = stored.vectors
        kinds: list[TextKind] = list(stored.kinds)
        owners: list[int] = list(stored.owners)
        extra: list[Vectors] = []
        for name, items in self._fitted.items():
            if name in specs:
                extra += list(items.values())
                kinds += ["example"] * len(items)
                owners += [names.index(name)] * len(items)
        if extra:
            vectors = np.concatenate([vectors, np.stack(extra)])
        if self._lexical is None or specs != self._specs:
            documents = [spec.document() for spec in specs.values()]
            self._lexical = LexicalIndex(documents) if documents else None
        self._table = ToolTable.build(names, vectors, kinds, owners, self._lexical)
        self._specs = dict(specs)
        self._stored = stored
        self._version += 1


def _checked(tools: Iterable[ToolSpec]) -> list[ToolSpec]:
    specs = list(tools)
    names = [s.name for s in specs if isinstance(s, ToolSpec)]
    if len(names) != len(specs):
        raise ConfigurationError("tools must be semrouter.ToolSpec values")
    if len(set(names)) != len(names):
        raise ConfigurationError("tool names must be distinct")
    return specs


def _request_texts(request: str, options: ToolOptions) -> list[str]:
    if not isinstance(request, str):
        raise QueryTypeError(f"a request must be a str, got {type(request).__name__}")
    text = request.strip()
    if not text:
        raise InvalidQueryError("a request must not be empty or only white space")
    parts = request_parts(text) if options.split_requests else []
    return parts or [text]
