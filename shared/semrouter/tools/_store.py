"""A tool set's store of record: the tools as the routes of a route set in a Qdrant collection.

Each tool is one :class:`~semrouter.Route` whose utterances are its texts (``ToolSpec.texts``)
and whose description and metadata hold the rest of its spec, so any process that opens the
collection reads the tools and their vectors without encoding anything. The requests learnt
from the agent's tool calls are the route set's **feedback examples** (``_feedback.py``), the
same mechanism as :meth:`SemanticRouter.feedback`: stored with the routes (one revision per
change, every worker and replica shares them), indexed with the request's own vector, listed
and removed. :class:`ToolStore` is the one owner of that collection for a
:class:`~semrouter.ToolIndex`; every change goes through ``RouteCollection.commit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._collection import Change, RouteCollection, Version
from .._exceptions import ConfigurationError, ReadOnlyRouterError, RouterClosedError
from .._feedback import MAX_EXAMPLES, Feedback
from .._options import RouterOptions
from .._routes import Route
from .._routestore import RouteSetId
from .._stores._location import QdrantLocation
from ..encoders import Encoder, Vectors
from ._spec import TextKind, ToolSpec

__all__ = [
    "DEFAULT_COLLECTION",
    "MAX_EXAMPLES",
    "StoredTools",
    "ToolStore",
    "learn_edit",
    "location_from",
    "merged_routes",
    "spec_of",
    "tool_route",
]

#: The collection a tool set is stored in unless told otherwise (apart from routers' own).
DEFAULT_COLLECTION = "semrouter-tools"
#: ``Route.metadata["kind"]`` of a stored tool.
TOOL_KIND = "tool"
#: The route set is read into memory (the tool index scores every tool exactly) and is never
#: learnt from by the router's self-training: the tool index scores it.
_OPTIONS = RouterOptions(learn=False, search="exact")


def location_from(
    fields: dict[str, Any], location: QdrantLocation | None = None
) -> QdrantLocation | None:
    """Take the :class:`~semrouter.QdrantLocation` keywords (``path``, ``url``, ``api_key``,
    ``client`` ...) out of ``fields`` and build the location from them; ``location`` when none
    is given (both: a :class:`~semrouter.ConfigurationError`).

    Example:
        >>> fields = {"path": "./tools_db", "max_examples": 5}
        >>> location_from(fields).kind, fields
        ('path', {'max_examples': 5})
    """
    given = {key: fields.pop(key) for key in list(fields) if key in QdrantLocation.model_fields}
    if not given:
        return location
    if location is not None:
        raise ConfigurationError(f"give location= or {', '.join(sorted(given))}=, not both")
    return QdrantLocation(**given)


def tool_route(spec: ToolSpec) -> Route:
    """The route a tool is stored as: its texts as utterances, its spec in description and
    metadata."""
    return Route(
        spec.name,
        [text for _, text in spec.texts()],
        description=spec.description or None,
        metadata={
            "kind": TOOL_KIND,
            "arguments": dict(spec.arguments),
            "examples": list(spec.examples),
        },
    )


def spec_of(route: Route) -> ToolSpec:
    """The tool a stored route holds (:func:`tool_route` read back)."""
    meta = route.metadata
    if meta.get("kind") != TOOL_KIND:
        raise ConfigurationError(
            f"route {route.name!r} of this collection is not a tool: a tool index needs a "
            "collection of its own (collection=)"
        )
    arguments = meta.get("arguments")
    examples = meta.get("examples")
    return ToolSpec(
        name=route.name,
        description=route.description or "",
        arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
        examples=tuple(examples) if isinstance(examples, list) else (),
    )


def learn_edit(pairs: Sequence[tuple[str, str]], cap: int) -> Callable[[Feedback], Feedback]:
    """A feedback edit that keeps each ``(tool, request)`` as an example of the tool, keeping
    each tool's latest ``cap`` examples."""

    def edit(feedback: Feedback) -> Feedback:
        for name, text in pairs:
            feedback = feedback.with_example(name, text)
            kept = feedback.examples.get(name, ())
            if len(kept) > cap:
                feedback = feedback.without(name, kept[: len(kept) - cap])
        return feedback

    return edit


@dataclass(frozen=True, eq=False)
class StoredTools:
    """One version of the stored tool set, as rows the index scores: a tool's texts, then the
    examples learnt from calls, in stored order."""

    specs: dict[str, ToolSpec]
    texts: dict[str, dict[str, TextKind]]  # each tool's own texts and their kinds
    learnt: dict[str, tuple[str, ...]]
    vectors: Vectors
    kinds: tuple[TextKind, ...]
    owners: tuple[int, ...]
    identity: RouteSetId | None

    @classmethod
    def empty(cls, dimension: int) -> StoredTools:
        return cls({}, {}, {}, np.zeros((0, dimension), np.float32), (), (), None)

    @classmethod
    def of(cls, version: Version, dimension: int, last: StoredTools | None = None) -> StoredTools:
        """The rows of ``version``; the ``last`` version's specs are reused for the routes
        whose spec did not change (a change of examples at 4,000 tools rebuilds no text)."""
        specs: dict[str, ToolSpec] = {}
        texts: dict[str, dict[str, TextKind]] = {}
        learnt: dict[str, tuple[str, ...]] = {}
        kinds: list[TextKind] = []
        owners: list[int] = []
        for position, route in enumerate(version.routes):
            spec = last.specs.get(route.name) if last is not None else None
            if spec is not None and last is not None and _holds(route, spec):
                kind_of = last.texts[route.name]
            else:
                spec = spec_of(route)
                kind_of = {text: kind for kind, text in spec.texts()}
            specs[route.name], texts[route.name] = spec, kind_of
            extra = [text for text in route.utterances if text not in kind_of]
            if extra:
                learnt[route.name] = tuple(extra)
            kinds += [kind_of.get(text, "example") for text in route.utterances]
            owners += [position] * len(route.utterances)
        vectors = version.snapshot.vectors
        if vectors is None:
            vectors = np.zeros((0, dimension), np.float32)
        if len(vectors) != len(kinds):  # the snapshot's rows are the routes' utterances
            raise ConfigurationError(f"{len(vectors)} stored vectors for {len(kinds)} tool texts")
        return cls(specs, texts, learnt, vectors, tuple(kinds), tuple(owners), version.identity)

    def pairs(self) -> set[tuple[str, str]]:
        """(tool, text) of every stored point: what needs no vector."""
        out = {(name, text) for name, own in self.texts.items() for text in own}
        out.update((name, text) for name, texts in self.learnt.items() for text in texts)
        return out


def _holds(route: Route, spec: ToolSpec) -> bool:
    """Whether ``route`` stores ``spec`` (cheap: no text of the spec is rebuilt)."""
    meta = route.metadata
    return (
        route.description == (spec.description or None)
        and meta.get("arguments") == spec.arguments
        and meta.get("examples") == list(spec.examples)
    )


class ToolStore:
    """The collection a tool index keeps its tools and learnt examples in.

    Args:
        location: where (default: a temporary embedded collection of this process).
        collection: the collection's name.
        encoder: the encoder whose vectors it holds (its fingerprint is checked).
    """

    def __init__(self, location: QdrantLocation, collection: str, encoder: Encoder) -> None:
        from .._router import _COLLECTION_NAME  # one rule for collection names

        if not isinstance(collection, str) or not _COLLECTION_NAME.match(collection):
            raise ConfigurationError(
                f"collection name {collection!r} must be letters, digits, '_', '-' or '.' (max 128)"
            )
        self.location = location
        self.encoder = encoder
        store = location.open_store(collection)
        try:
            self._collection: RouteCollection | None = RouteCollection(store, encoder)
        except BaseException:
            store.close()
            raise

    @property
    def target(self) -> str:
        """The collection's place, as errors name it."""
        return self._open().store.target

    @property
    def read_only(self) -> bool:
        return self._open().store.read_only

    def _open(self) -> RouteCollection:
        if self._collection is None:
            raise RouterClosedError("this tool index was closed; open a new one")
        return self._collection

    def _writable(self) -> RouteCollection:
        collection = self._open()
        if collection.store.read_only:
            raise ReadOnlyRouterError(
                f"this tool index only reads {collection.store.target}: change its tools and "
                "examples through the process that writes it (or use a Qdrant server)"
            )
        return collection

    def follow(self, served: StoredTools | None) -> StoredTools | None:
        """The stored tool set if it is not the ``served`` one, else ``None``."""
        version = self._open().follow(served.identity if served else None, _OPTIONS)
        return None if version is None else StoredTools.of(version, self.encoder.dimension, served)

    def commit(
        self,
        change: Change | None,
        *,
        served: StoredTools | None = None,
        edit: Callable[[Feedback], Feedback] | None = None,
        vectors: Mapping[str, Vectors] | None = None,
    ) -> StoredTools | None:
        """Apply a change of the tools and/or their examples as one revision; ``None`` when it
        changes nothing. ``vectors`` (text -> vector) are used instead of encoding those texts."""
        version = self._writable().commit(
            change or _unchanged, _OPTIONS, learn=None, edit=edit, vectors=vectors
        )
        return None if version is None else StoredTools.of(version, self.encoder.dimension, served)

    def close(self) -> None:
        collection, self._collection = self._collection, None
        if collection is not None:
            collection.close()


def _unchanged(stored: Any) -> None:
    return None


def merged_routes(specs: Iterable[ToolSpec], *, replace: bool) -> Change:
    """A change that adds ``specs`` to the stored tools (replacing those of the same name), or
    with ``replace`` makes them the only tools."""
    declared = {spec.name: tool_route(spec) for spec in specs}

    def change(stored: Any) -> tuple[list[Route], None]:
        routes: dict[str, Route] = {}
        if not replace and stored is not None:
            routes = {route.name: route for route in stored.routes}
        routes.update(declared)
        return list(routes.values()), None

    return change
