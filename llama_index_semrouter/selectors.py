"""A LlamaIndex selector that routes by semantic routes held in Qdrant."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.base_selector import BaseSelector, SelectorResult, SingleSelection
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle
from llama_index.core.tools.types import ToolMetadata

from semrouter import (
    ConfigurationError,
    Encoder,
    NoRouteMatchedError,
    Route,
    RouteMatch,
    SemanticRouter,
)

from ._utils import build_router, check_thresholds, check_utterances, route_for, shorten

__all__ = ["SemRouterSelector", "choice_key"]

_ChoiceKey = tuple[tuple[str | None, str], ...]


class SemRouterSelector(BaseSelector):
    """Selects query engines or retrievers by semantic routes instead of an LLM call.

    Each choice (``ToolMetadata`` or ``str``) becomes a route named after the choice (or after
    a content hash of its description when it has no name), whose utterances are its description
    plus the example queries given in ``utterances``. The route vectors are encoded once and kept
    in Qdrant; a query costs one embedding call however many choices there are. When the choices
    change between calls, only new utterances are encoded.

    Indices are 0-based and always index the ``choices`` of the call. When no choice passes its
    threshold the ``fallback`` choice is selected, or :class:`semrouter.NoRouteMatchedError` says
    which choice came closest and by how much it missed.

    Args:
        router: the semantic router that holds the routes (its routes are replaced by the
            choices of each call; give the selector a router of its own).
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
        self._router = router
        self._utterances = check_utterances(utterances)
        self._thresholds = check_thresholds(thresholds)
        self.max_outputs = max_outputs
        self.fallback = fallback
        self.include_descriptions = include_descriptions
        self._owns_router = False
        self._lock = threading.RLock()
        self._synced: tuple[_ChoiceKey, list[str], list[Route]] | None = None

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
        collection: str = "llama-index-selector",
        **router_options: Any,
    ) -> SemRouterSelector:
        """A selector with a router of its own.

        Args:
            choices: the choices the selector will see, if known: their routes are encoded
                now, and with ``path=`` or ``url=`` the vectors of an earlier run are reused
                (a router opened with no routes would drop them and re-encode at the first
                call).
            utterances: see the class.
            max_outputs: see the class.
            fallback: see the class.
            thresholds: see the class.
            include_descriptions: see the class.
            encoder: a semrouter ``Encoder`` or any LlamaIndex ``BaseEmbedding`` (default:
                the offline ``LocalEncoder``).
            threshold: the score a choice needs when ``thresholds`` sets none for it
                (default: the encoder's).
            path: a folder that keeps the route vectors between runs.
            url: a Qdrant server instead of the embedded store.
            api_key: the server's API key.
            client: a ready ``QdrantClient``.
            aclient: a ready ``AsyncQdrantClient`` beside ``client``.
            collection: the Qdrant collection.
            **router_options: further :class:`semrouter.SemanticRouter` options.
        """
        planned = (
            plan_routes(
                [_wrap(c) for c in choices],
                check_utterances(utterances),
                check_thresholds(thresholds),
                include_descriptions,
            )
            if choices
            else None
        )
        router = build_router(
            planned[2] if planned else (),
            encoder=encoder,
            threshold=threshold,
            path=path,
            url=url,
            api_key=api_key,
            client=client,
            aclient=aclient,
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
        selector._synced = planned
        selector._owns_router = True
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

    # -- PromptMixin: a semantic selector has no prompts --------------------------------------
    def _get_prompts(self) -> PromptDictType:
        """Get prompts (none: selection needs no LLM)."""
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        """Update prompts (nothing to update)."""

    # -- selection ---------------------------------------------------------------------------
    def _select(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        with self._lock:
            signature, keys, routes, changed = self._plan(choices)
            if changed:
                self._sync(signature, keys, routes)
            matches = self._router.top_routes(
                query.query_str, limit=len(routes), apply_threshold=False
            )
        return self._decide(choices, keys, matches, query.query_str)

    async def _aselect(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        signature, keys, routes, changed = self._plan(choices)
        if changed:  # encoding new utterances is blocking work: keep it off the event loop
            await asyncio.to_thread(self._sync_locked, signature, keys, routes)
        matches = await self._router.atop_routes(
            query.query_str, limit=len(routes), apply_threshold=False
        )
        return self._decide(choices, keys, matches, query.query_str)

    def _plan(
        self, choices: Sequence[ToolMetadata]
    ) -> tuple[_ChoiceKey, list[str], list[Route], bool]:
        """Route names and routes for ``choices``, and whether the router must be re-synced."""
        if not choices:
            raise ConfigurationError("a selector needs at least one choice")
        synced = self._synced
        if (
            synced is not None
            and len(synced[0]) == len(choices)
            and all(k == (c.name, c.description) for k, c in zip(synced[0], choices, strict=True))
            and self._router.route_names == synced[1]
        ):
            return synced[0], synced[1], synced[2], False
        signature, keys, routes = plan_routes(
            choices, self._utterances, self._thresholds, self.include_descriptions
        )
        return signature, keys, routes, True

    def _sync_locked(self, signature: _ChoiceKey, keys: list[str], routes: list[Route]) -> None:
        with self._lock:
            self._sync(signature, keys, routes)

    def _sync(self, signature: _ChoiceKey, keys: list[str], routes: list[Route]) -> None:
        self._router.set_routes(routes)
        self._synced = (signature, keys, routes)

    def _decide(
        self,
        choices: Sequence[ToolMetadata],
        keys: list[str],
        matches: list[RouteMatch],
        query: str,
    ) -> SelectorResult:
        index_of = {key: i for i, key in enumerate(keys)}
        # Only routes of *this* call's choices count, so every index is in range.
        ranked = [m for m in matches if m.name in index_of]
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


def _reason(match: RouteMatch) -> str:
    return (
        f"semantic route {match.name!r}: score {match.score:.3f} >= threshold "
        f"{match.threshold:.3f}; closest example {shorten(match.utterance)!r}"
    )


def _missed(best: RouteMatch) -> str:
    return (
        f"best was {best.name!r} with score {best.score:.3f} below its threshold "
        f"{best.threshold if best.threshold is not None else float('nan'):.3f} "
        f"(closest example {shorten(best.utterance)!r})"
    )
