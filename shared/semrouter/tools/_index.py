"""The tool index every adapter ranks with: tools in, ranked :class:`ToolMatch` out.

Each distinct tool text is encoded once per process (:class:`EncodeCache`); the ranking is an
exact score of every tool (``_scoring.py``), so a tool's rank never depends on how many tools
are asked for. The state a ranking reads (tools, vectors, lexical index, options) is one
immutable :class:`ToolTable` swapped in one assignment.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from .._exceptions import ConfigurationError, InvalidQueryError, QueryTypeError
from .._lexical import LexicalIndex
from ..encoders import Encoder, Vectors
from ._cache import EncodeCache
from ._options import ToolMatch, ToolOptions
from ._scoring import ToolTable, rank_rows, request_parts
from ._spec import TextKind, ToolSpec

__all__ = ["ToolIndex"]

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

    Example:
        >>> from semrouter import FakeEncoder, ToolIndex, ToolSpec
        >>> index = ToolIndex([
        ...     ToolSpec(name="get_weather", description="Weather forecast for a city."),
        ...     ToolSpec(name="send_email", description="Send an email message."),
        ... ], encoder=FakeEncoder())
        >>> [m.name for m in index.rank("weather forecast for Paris", 1)]
        ['get_weather']
    """

    def __init__(
        self,
        tools: Sequence[ToolSpec] = (),
        *,
        encoder: Encoder | None = None,
        options: ToolOptions | None = None,
        cache: EncodeCache | None = None,
        **option_fields: Any,
    ) -> None:
        if encoder is None:
            from ..encoders._local import LocalEncoder

            encoder = LocalEncoder.shared()
        if not isinstance(encoder, Encoder):
            raise ConfigurationError("encoder must be a semrouter.Encoder")
        self.encoder = encoder
        self.cache = cache if cache is not None else EncodeCache.shared()
        self._options = ToolOptions.build(options, **option_fields)
        self._lock = threading.RLock()
        self._specs: dict[str, ToolSpec] = {}
        self._learnt: dict[str, OrderedDict[str, Vectors]] = {}
        self._fitted: dict[str, OrderedDict[str, Vectors]] = {}
        self._requests: OrderedDict[str, Vectors] = OrderedDict()
        self._lexical: LexicalIndex | None = None
        self._version = 0
        self._table = ToolTable.build(
            [], np.zeros((0, encoder.dimension), np.float32), [], [], None
        )
        if tools:
            self.update(tools)

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

    def changed(self, tools: Iterable[ToolSpec]) -> bool:
        """Whether :meth:`update` with ``tools`` would change the index."""
        specs = self._specs
        return any((known := specs.get(spec.name)) is not spec and known != spec for spec in tools)

    def update(self, tools: Iterable[ToolSpec]) -> bool:
        """Add new tools and replace changed ones (same name); encodes only texts never seen.

        Returns whether anything changed.
        """
        specs = _checked(tools)
        with self._lock:
            if not self.changed(specs):
                return False
            merged = {**self._specs, **{s.name: s for s in specs}}
            self.cache.encode(self.encoder, _all_texts(merged.values()))
            self._publish(merged, lexical=True)
            return True

    async def aupdate(self, tools: Iterable[ToolSpec]) -> bool:
        """Asynchronous :meth:`update` (the encoder's async path)."""
        specs = _checked(tools)
        if not self.changed(specs):
            return False
        merged = {**self._specs, **{s.name: s for s in specs}}
        await self.cache.aencode(self.encoder, _all_texts(merged.values()))
        return self.update(specs)  # every text is cached now: nothing is encoded here

    def set_tools(self, tools: Iterable[ToolSpec]) -> bool:
        """Index exactly ``tools`` (others are dropped, with their learnt examples)."""
        specs = _checked(tools)
        with self._lock:
            wanted = {s.name: s for s in specs}
            if wanted == self._specs:
                return False
            self.cache.encode(self.encoder, _all_texts(wanted.values()))
            for name in set(self._learnt) - set(wanted):
                del self._learnt[name]
            for name in set(self._fitted) - set(wanted):
                del self._fitted[name]
            self._publish(wanted, lexical=True)
            return True

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

    # -- examples: the seam for learning from calls ---------------------------------------------
    def observe(self, name: str, request: str, vector: Vectors | None = None) -> bool:
        """Keep ``request`` as an example of tool ``name`` (e.g. a request the model answered
        by calling it). ``vector``: the request's vector if the caller has it (nothing is then
        encoded); otherwise it is taken from the request cache or encoded. Deduplicated by
        text and capped at ``options.max_examples`` per tool (the oldest go first).

        Returns whether the example was new.
        """
        if name not in self._specs:
            raise ConfigurationError(f"no tool named {name!r} is indexed")
        text = request.strip()
        if not text:
            raise InvalidQueryError("an example must not be empty")
        row = self._example_vector(text, vector)
        with self._lock:
            kept = self._learnt.setdefault(name, OrderedDict())
            if text in kept or text in self._specs[name].examples:
                return False
            kept[text] = row
            while len(kept) > self._options.max_examples:
                kept.popitem(last=False)
            self._publish(self._specs, lexical=False)
            return True

    def examples(self, name: str) -> list[str]:
        """The examples :meth:`observe` kept for tool ``name`` (not those of its spec)."""
        return list(self._learnt.get(name, ()))

    def clear_examples(self, name: str | None = None) -> None:
        """Forget the observed (and fitted) examples of ``name``, or of every tool."""
        with self._lock:
            for store in (self._learnt, self._fitted):
                if name is None:
                    store.clear()
                else:
                    store.pop(name, None)
            self._publish(self._specs, lexical=False)

    def fit(self, requests: Sequence[tuple[str, Sequence[str]]]) -> dict[str, Any]:
        """Learn from labelled requests ``(text, [tool names])``.

        Chooses the lexical weight that ranks these requests best (recall@5, before they are
        used as examples), then keeps them as examples: a one-tool request whole, a
        multi-tool one sentence by sentence, each sentence for the labelled tool it is
        closest to. Fitted examples are not capped; a new fit replaces them.

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
            self._publish(self._specs, lexical=False)
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
    def _publish(self, specs: dict[str, ToolSpec], *, lexical: bool) -> None:
        """Build the table for ``specs`` (texts are cached) and swap it in with them."""
        names = list(specs)
        texts: list[str] = []
        kinds: list[TextKind] = []
        owners: list[int] = []
        extra: list[Vectors] = []
        for position, spec in enumerate(specs.values()):
            for kind, text in spec.texts():
                texts.append(text)
                kinds.append(kind)
                owners.append(position)
        for store in (self._learnt, self._fitted):
            for name, items in store.items():
                if name in specs:
                    extra += list(items.values())
                    kinds += ["example"] * len(items)
                    owners += [names.index(name)] * len(items)
        vectors = self.cache.encode(self.encoder, texts)
        if extra:
            vectors = np.concatenate([vectors, np.stack(extra)])
        if lexical or self._lexical is None:
            documents = [spec.document() for spec in specs.values()]
            self._lexical = LexicalIndex(documents) if documents else None
        self._table = ToolTable.build(names, vectors, kinds, owners, self._lexical)
        self._specs = dict(specs)
        self._version += 1


def _checked(tools: Iterable[ToolSpec]) -> list[ToolSpec]:
    specs = list(tools)
    names = [s.name for s in specs if isinstance(s, ToolSpec)]
    if len(names) != len(specs):
        raise ConfigurationError("tools must be semrouter.ToolSpec values")
    if len(set(names)) != len(names):
        raise ConfigurationError("tool names must be distinct")
    return specs


def _all_texts(specs: Iterable[ToolSpec]) -> list[str]:
    return [text for spec in specs for _, text in spec.texts()]


def _request_texts(request: str, options: ToolOptions) -> list[str]:
    if not isinstance(request, str):
        raise QueryTypeError(f"a request must be a str, got {type(request).__name__}")
    text = request.strip()
    if not text:
        raise InvalidQueryError("a request must not be empty or only white space")
    parts = request_parts(text) if options.split_requests else []
    return parts or [text]
