"""A LlamaIndex selector that routes by semantic routes held in Qdrant."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from llama_index.core.base.base_selector import BaseSelector, SelectorResult, SingleSelection
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle
from llama_index.core.tools.types import ToolMetadata

from semrouter import (
    ConfigurationError,
    Encoder,
    NoRouteMatchedError,
    QdrantLocation,
    Route,
    RouteMatch,
    SemanticRouter,
)

from ._utils import (
    build_router,
    check_thresholds,
    check_utterances,
    qdrant_location,
    route_for,
    shorten,
)

__all__ = ["MAX_CHOICE_SETS", "SemRouterSelector", "choice_key", "choice_of"]

_ChoiceKey = tuple[tuple[str | None, str], ...]

#: ``Route.metadata["kind"]`` of the routes a selector makes; it never touches other routes.
ROUTE_KIND = "choice"
#: How many distinct choice sets a selector keeps indexed at once (older ones are dropped).
MAX_CHOICE_SETS = 8


class _ChoiceSet(NamedTuple):
    names: list[str]  # route name of each choice, in the order of the choices
    routes: list[Route]


class SemRouterSelector(BaseSelector):
    """Selects query engines or retrievers by semantic routes instead of an LLM call.

    A drop-in for ``EmbeddingSingleSelector`` (and the LLM selectors): each choice
    (``ToolMetadata`` or ``str``) becomes a route whose utterances are its description plus the
    example queries given in ``utterances``; the route vectors are encoded once and kept in
    Qdrant, so a query costs one embedding call however many choices there are.

    Like the built-in selectors it always selects the best choice, unless abstention was asked
    for: with ``fallback=``, per-choice ``thresholds=``, or an explicit router threshold
    (``from_defaults(threshold=...)``, ``SemanticRouter(threshold=...)`` or a fitted router), a
    query close to no choice selects the ``fallback`` or raises
    :class:`semrouter.NoRouteMatchedError` saying which choice came closest.

    Several choice sets (up to :data:`MAX_CHOICE_SETS`) stay indexed side by side, keyed by
    content: alternating between them encodes nothing, and concurrent calls with different
    sets never see each other's routes. Indices are 0-based and index the ``choices`` of the call.

    The selector owns the routes of its router: a router given to it may hold only routes
    that a selector made (an empty router is fine); anything else is refused, never changed.

    ``copy.deepcopy`` shares the router. A selector made by :meth:`from_defaults` pickles as
    its arguments (its encoder must pickle) and is rebuilt on load; one given a router or a
    ready client refuses with a :class:`semrouter.ConfigurationError`.

    Args:
        router: the semantic router that holds the routes (give the selector its own).
        utterances: example queries per choice, keyed by choice name (or by description for a
            choice without a name).
        max_outputs: how many choices to select at most (``> 1`` for multi-selection).
        fallback: the name (or description) of the choice to select when none passes.
        thresholds: per-choice score thresholds, keyed like ``utterances``.
        include_descriptions: use each choice's description as one of its utterances.

    Example:
        >>> from semrouter import FakeEncoder
        >>> selector = SemRouterSelector.from_defaults(
        ...     encoder=FakeEncoder(),
        ...     utterances={"weather": ["will it rain tomorrow"]},
        ... )
        >>> from llama_index.core.tools import ToolMetadata
        >>> choices = [ToolMetadata(name="flights", description="book a flight"),
        ...            ToolMetadata(name="weather", description="the weather forecast")]
        >>> selector.select(choices, "will it rain in Paris tomorrow?").ind
        1
    """

    def __init__(
        self,
        router: SemanticRouter,
        *,
        utterances: Mapping[str, Sequence[str]] | None = None,
        max_outputs: int = 1,
        fallback: str | None = None,
        thresholds: Mapping[str, float] | None = None,
        include_descriptions: bool = True,
    ) -> None:
        if not isinstance(router, SemanticRouter):
            raise ConfigurationError("router must be a semrouter.SemanticRouter")
        if not isinstance(max_outputs, int) or max_outputs < 1:
            raise ConfigurationError("max_outputs must be an integer of at least 1")
        if fallback is not None and not isinstance(fallback, str):
            raise ConfigurationError("fallback must be the name (or description) of a choice")
        _check_own(router)
        self._router = router
        self._utterances = check_utterances(utterances)
        self._thresholds = check_thresholds(thresholds)
        self.max_outputs = max_outputs
        self.fallback = fallback
        self.include_descriptions = include_descriptions
        self._owns_router = False
        self._rebuild: dict[str, Any] | None = None
        self._lock = threading.RLock()
        self._sets: OrderedDict[_ChoiceKey, _ChoiceSet] = OrderedDict()
        self._warned = False

    @classmethod
    def from_defaults(
        cls,
        choices: Sequence[ToolMetadata | str] | None = None,
        *,
        utterances: Mapping[str, Sequence[str]] | None = None,
        max_outputs: int = 1,
        fallback: str | None = None,
        thresholds: Mapping[str, float] | None = None,
        include_descriptions: bool = True,
        encoder: Encoder | BaseEmbedding | None = None,
        threshold: float | None = None,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        aclient: Any = None,
        location: QdrantLocation | None = None,
        collection: str = "llama-index-selector",
        **router_options: Any,
    ) -> SemRouterSelector:
        """A selector with a router of its own.

        Args:
            choices: the choices the selector will see, if known: their routes are encoded
                now, and with ``path=`` or ``url=`` the vectors of an earlier run are reused.
                A key of ``utterances`` or ``thresholds`` that names none of them is an error.
            utterances: see the class.
            max_outputs: see the class.
            fallback: see the class.
            thresholds: see the class.
            include_descriptions: see the class.
            encoder: a semrouter ``Encoder`` or any LlamaIndex ``BaseEmbedding`` (default:
                the process-wide ``LocalEncoder.shared()``).
            threshold: the score a choice needs when ``thresholds`` sets none for it; giving it
                turns abstention on (see the class).
            path: a folder that keeps the route vectors between runs.
            url: a Qdrant server instead of the embedded store.
            api_key: the server's API key.
            client: a ready ``QdrantClient``.
            aclient: a ready ``AsyncQdrantClient`` beside ``client``.
            location: a :class:`semrouter.QdrantLocation` instead of ``path``, ``url``,
                ``api_key``, ``client`` and ``aclient`` (and ``prefer_grpc``, ``timeout``).
            collection: the Qdrant collection.
            **router_options: further :class:`semrouter.SemanticRouter` options.
        """
        checked_utterances = check_utterances(utterances)
        checked_thresholds = check_thresholds(thresholds)
        wrapped = [_wrap(c) for c in choices] if choices else []
        if wrapped:
            _check_keys(wrapped, checked_utterances, checked_thresholds, strict=True)
        planned = (
            _choice_set(wrapped, checked_utterances, checked_thresholds, include_descriptions)
            if wrapped
            else None
        )
        where = qdrant_location(
            location,
            router_options,
            path=path,
            url=url,
            api_key=api_key,
            client=client,
            aclient=aclient,
        )
        router = build_router(
            planned.routes if planned else (),
            encoder=encoder,
            threshold=threshold,
            location=where,
            collection=collection,
            options=router_options,
        )
        try:
            selector = cls(
                router,
                utterances=utterances,
                max_outputs=max_outputs,
                fallback=fallback,
                thresholds=thresholds,
                include_descriptions=include_descriptions,
            )
        except BaseException:
            router.close()
            raise
        if planned is not None:
            selector._sets[_signature(wrapped)] = planned
        selector._owns_router = True
        if where.client is None and where.aclient is None:
            selector._rebuild = {
                "choices": list(choices) if choices else None,
                "utterances": utterances,
                "max_outputs": max_outputs,
                "fallback": fallback,
                "thresholds": thresholds,
                "include_descriptions": include_descriptions,
                "encoder": router.encoder,
                "threshold": threshold,
                "location": where,
                "collection": collection,
                **router_options,
            }
        return selector

    @classmethod
    def class_name(cls) -> str:
        return "SemRouterSelector"

    @property
    def router(self) -> SemanticRouter:
        """The semantic router that holds the choices' routes."""
        return self._router

    def close(self) -> None:
        """Close the router if the selector made it (``from_defaults``)."""
        if self._owns_router:
            self._router.close()

    # -- copies share the router; pickles rebuild from the from_defaults arguments -------------
    def __deepcopy__(self, memo: dict[int, Any]) -> SemRouterSelector:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._lock = threading.RLock()
        clone._sets = OrderedDict(self._sets)
        clone._owns_router = False  # the original closes the shared router
        memo[id(self)] = clone
        return clone

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        if self._rebuild is None:
            raise ConfigurationError(
                "this SemRouterSelector cannot be pickled: it was given a router or a ready "
                "Qdrant client, which hold live connections and are shared, not copied. Share "
                "the selector within the process, or build it with SemRouterSelector."
                "from_defaults(path=... or url=...) so that it pickles as its arguments"
            )
        return (_from_defaults, (self._rebuild,))

    # -- PromptMixin: a semantic selector has no prompts --------------------------------------
    def _get_prompts(self) -> PromptDictType:
        """Get prompts (none: selection needs no LLM)."""
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        """Update prompts (nothing to update)."""

    # -- selection ---------------------------------------------------------------------------
    def _select(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        entry = self._entry(choices)
        for attempt in range(2):
            if attempt or not self._indexed(entry):
                self._index(entry)
            matches = self._router.top_routes(
                query.query_str, limit=max(len(self._router), 1), apply_threshold=False
            )
            if self._complete(entry, matches):
                break
        return self._decide(choices, entry, matches, query.query_str)

    async def _aselect(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        entry = self._entry(choices)
        for attempt in range(2):
            if attempt or not self._indexed(entry):
                # encoding new utterances is blocking work: keep it off the event loop
                await asyncio.to_thread(self._index, entry)
            matches = await self._router.atop_routes(
                query.query_str, limit=max(len(self._router), 1), apply_threshold=False
            )
            if self._complete(entry, matches):
                break
        return self._decide(choices, entry, matches, query.query_str)

    def _entry(self, choices: Sequence[ToolMetadata]) -> _ChoiceSet:
        """The routes of ``choices`` (cached by content; nothing is encoded here)."""
        if not choices:
            raise ConfigurationError("a selector needs at least one choice")
        signature = _signature(choices)
        with self._lock:
            entry = self._sets.get(signature)
            if entry is not None:
                self._sets.move_to_end(signature)
                return entry
        if not self._warned:
            self._warned = True
            _check_keys(choices, self._utterances, self._thresholds, strict=False)
        entry = _choice_set(choices, self._utterances, self._thresholds, self.include_descriptions)
        with self._lock:
            self._sets[signature] = entry
            self._sets.move_to_end(signature)
            while len(self._sets) > MAX_CHOICE_SETS:
                self._sets.popitem(last=False)
        return entry

    def _indexed(self, entry: _ChoiceSet) -> bool:
        held = set(self._router.route_names)
        return all(name in held for name in entry.names)

    def _index(self, entry: _ChoiceSet) -> None:
        """Index the routes of every kept choice set (only new utterances are encoded)."""
        with self._lock:
            _check_own(self._router)
            wanted: dict[str, Route] = {}
            for kept in [*self._sets.values(), entry]:
                for route in kept.routes:
                    wanted[route.name] = route
            if set(wanted) != set(self._router.route_names):
                self._router.set_routes(list(wanted.values()))

    def _complete(self, entry: _ChoiceSet, matches: list[RouteMatch]) -> bool:
        """Whether the ranking holds enough of this call's routes to decide (another thread
        may have dropped an old choice set between indexing and searching)."""
        present = sum(1 for m in matches if m.name in set(entry.names))
        return present >= min(len(entry.names), self.max_outputs + 1)

    def _abstains(self) -> bool:
        """Whether the user asked for "no choice" answers (see the class)."""
        return (
            self.fallback is not None
            or bool(self._thresholds)
            or self._router.options.threshold is not None
            or self._router.calibration is not None
        )

    def _decide(
        self,
        choices: Sequence[ToolMetadata],
        entry: _ChoiceSet,
        matches: list[RouteMatch],
        query: str,
    ) -> SelectorResult:
        index_of = {name: i for i, name in enumerate(entry.names)}
        # Only routes of *this* call's choices count, so every index is in range.
        ranked = [m for m in matches if m.name in index_of]
        if not self._abstains():
            return SelectorResult(
                selections=[
                    SingleSelection(index=index_of[m.name], reason=_best_reason(m))
                    for m in ranked[: self.max_outputs]
                    if m.name is not None
                ]
            )
        passing = [m for m in ranked if m.threshold is not None and m.score >= m.threshold]
        if passing:
            return SelectorResult(
                selections=[
                    SingleSelection(index=index_of[m.name], reason=_reason(m))
                    for m in passing[: self.max_outputs]
                    if m.name is not None
                ]
            )
        missed = _missed(ranked[0]) if ranked else "no choice was scored"
        if self.fallback is None:
            raise NoRouteMatchedError(
                f"no choice passed its threshold for query {shorten(query)!r}: {missed}; "
                "lower the threshold, add example utterances, or pass fallback="
            )
        index = _find(choices, self.fallback)
        if index is None:
            names = [c.name or shorten(c.description, 40) for c in choices]
            raise ConfigurationError(
                f"fallback {self.fallback!r} is not one of the choices {names}"
            )
        reason = f"fallback {self.fallback!r}: no choice passed its threshold; {missed}"
        return SelectorResult(selections=[SingleSelection(index=index, reason=reason)])


def _from_defaults(arguments: dict[str, Any]) -> SemRouterSelector:
    return SemRouterSelector.from_defaults(**arguments)


def _signature(choices: Sequence[ToolMetadata]) -> _ChoiceKey:
    return tuple((c.name, c.description) for c in choices)


def _check_own(router: SemanticRouter) -> None:
    foreign = [r.name for r in router.routes if r.metadata.get("kind") != ROUTE_KIND]
    if foreign:
        raise ConfigurationError(
            f"the router holds routes that no selector made ({foreign[:5]}); a selector "
            "indexes its choices as routes of its router and never changes routes it did not "
            "make: give it a router of its own (SemRouterSelector.from_defaults(...) or an "
            "empty SemanticRouter)"
        )


def _check_keys(
    choices: Sequence[ToolMetadata],
    utterances: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    *,
    strict: bool,
) -> None:
    """A key of ``utterances`` / ``thresholds`` that names no choice is most likely a typo."""
    known = {c.name if c.name is not None else c.description for c in choices}
    for what, mapping in (("utterances", utterances), ("thresholds", thresholds)):
        unknown = sorted(key for key in mapping if key not in known)
        if not unknown:
            continue
        message = (
            f"{what} keys {unknown} name none of the choices {sorted(known)}; a choice is "
            "keyed by its name (or by its description when it has no name)"
        )
        if strict:
            raise ConfigurationError(message)
        warnings.warn(message, UserWarning, stacklevel=4)


def _choice_set(
    choices: Sequence[ToolMetadata],
    utterances: Mapping[str, Sequence[str]],
    thresholds: Mapping[str, float],
    include_descriptions: bool,
) -> _ChoiceSet:
    _, keys, routes = plan_routes(choices, utterances, thresholds, include_descriptions)
    named = [_content_named(key, route) for key, route in zip(keys, routes, strict=True)]
    return _ChoiceSet([route.name for route in named], named)


def _content_named(key: str, route: Route) -> Route:
    """``route`` renamed ``<choice key>~<content hash>``: one name per content, so that choice
    sets that reuse a key with other texts live side by side in one router."""
    content = json.dumps(
        [key, list(route.utterances), route.threshold, route.description], ensure_ascii=True
    )
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:12]
    return route.model_copy(update={"name": f"{key}~{digest}", "metadata": {"kind": ROUTE_KIND}})


def plan_routes(
    choices: Sequence[ToolMetadata],
    utterances: Mapping[str, Sequence[str]],
    thresholds: Mapping[str, float],
    include_descriptions: bool,
) -> tuple[_ChoiceKey, list[str], list[Route]]:
    """The signature, route names and routes of ``choices``."""
    signature: _ChoiceKey = tuple((c.name, c.description) for c in choices)
    keys = [choice_key(c) for c in choices]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ConfigurationError(f"choices must have distinct names; repeated: {duplicates}")
    routes = []
    for choice, key in zip(choices, keys, strict=True):
        lookup = choice.name if choice.name is not None else choice.description
        routes.append(
            route_for(
                key,
                choice.description or "",
                utterances.get(lookup, ()),
                threshold=thresholds.get(lookup),
                include_description=include_descriptions,
            )
        )
    return signature, keys, routes


def _wrap(choice: ToolMetadata | str) -> ToolMetadata:
    if isinstance(choice, ToolMetadata):
        return choice
    if isinstance(choice, str):
        return ToolMetadata(description=choice)
    raise ConfigurationError(
        f"a choice must be a ToolMetadata or a str, got {type(choice).__name__}"
    )


def choice_key(choice: ToolMetadata) -> str:
    """The route name of a choice: its name, or a content hash of its description."""
    if choice.name is not None:
        return choice.name
    digest = hashlib.sha256(choice.description.encode("utf-8")).hexdigest()[:16]
    return f"choice-{digest}"


def _find(choices: Sequence[ToolMetadata], wanted: str) -> int | None:
    for i, choice in enumerate(choices):
        if choice.name == wanted:
            return i
    for i, choice in enumerate(choices):
        if choice.name is None and choice.description == wanted:
            return i
    return None


def choice_of(route_name: str | None) -> str | None:
    """The choice key of a selector route name (``<key>~<content hash>``)."""
    return route_name.rsplit("~", 1)[0] if route_name is not None else None


def _best_reason(match: RouteMatch) -> str:
    return (
        f"semantic route {choice_of(match.name)!r}: best score {match.score:.3f} among the "
        f"choices; closest example {shorten(match.utterance)!r}"
    )


def _reason(match: RouteMatch) -> str:
    return (
        f"semantic route {choice_of(match.name)!r}: score {match.score:.3f} >= threshold "
        f"{match.threshold:.3f}; closest example {shorten(match.utterance)!r}"
    )


def _missed(best: RouteMatch) -> str:
    return (
        f"best was {choice_of(best.name)!r} with score {best.score:.3f} below its threshold "
        f"{best.threshold if best.threshold is not None else float('nan'):.3f} "
        f"(closest example {shorten(best.utterance)!r})"
    )
