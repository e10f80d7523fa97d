"""Helpers shared by the selector and the tool retriever (not public)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from semrouter import ConfigurationError, Encoder, QdrantLocation, Route, SemanticRouter

from .embeddings import as_encoder

#: The keywords of :class:`semrouter.QdrantLocation` (path, url, api_key, client...).
LOCATION_KEYWORDS = frozenset(QdrantLocation.model_fields)

__all__ = [
    "build_router",
    "check_thresholds",
    "check_utterances",
    "default_encoder",
    "qdrant_location",
    "route_for",
    "shorten",
]


def build_router(
    routes: Sequence[Route],
    *,
    encoder: Encoder | BaseEmbedding | None,
    threshold: float | None,
    location: QdrantLocation,
    collection: str,
    options: Mapping[str, Any],
) -> SemanticRouter:
    """A router that opens its collection with ``routes`` declared.

    The routes are declared up front and replace what an earlier run stored
    (``sync="replace"``): the collection belongs to this component.
    Routes are scored by their best utterance (``aggregation="max"``) unless told otherwise: a
    choice has a long description and a few short examples, and a mean over such different
    texts would hide an exact example match.
    """
    # The collection holds this component's routes: ones dropped since an earlier run go.
    settings = {"aggregation": "max", "sync": "replace", **options}
    return SemanticRouter(
        routes,
        encoder=as_encoder(encoder) if encoder is not None else default_encoder(),
        threshold=threshold,
        location=location,
        collection=collection,
        **settings,
    )


def qdrant_location(
    location: QdrantLocation | None, options: dict[str, Any], **keywords: Any
) -> QdrantLocation:
    """``location``, or the one that ``QdrantLocation``'s keywords name (``path``, ``url``,
    ``client``...), given as ``keywords`` or among a router's ``options`` (removed from them)."""
    keywords |= {key: options.pop(key) for key in list(options) if key in LOCATION_KEYWORDS}
    given = {key: value for key, value in keywords.items() if value is not None}
    if location is None:
        return QdrantLocation(**given)
    if given:
        raise ConfigurationError(f"give location= or {'/'.join(given)}=, not both")
    return location


def default_encoder() -> Encoder:
    """The process-wide :class:`~semrouter.LocalEncoder` (one model load per process)."""
    from semrouter import LocalEncoder

    return LocalEncoder.shared()


def check_utterances(
    utterances: Mapping[str, Sequence[str]] | None,
) -> dict[str, tuple[str, ...]]:
    """Validate the ``utterances=`` mapping: a name (or description) to example queries."""
    if utterances is None:
        return {}
    if not isinstance(utterances, Mapping):
        raise ConfigurationError("utterances must map a choice name to a list of examples")
    checked: dict[str, tuple[str, ...]] = {}
    for key, examples in utterances.items():
        if isinstance(examples, str) or not all(isinstance(e, str) for e in examples):
            raise ConfigurationError(f"utterances[{key!r}] must be a list of strings")
        checked[key] = tuple(examples)
    return checked


def check_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    """Validate the ``thresholds=`` mapping: a name (or description) to a score threshold."""
    checked = dict(thresholds or {})
    for key, value in checked.items():
        if not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
            raise ConfigurationError(f"thresholds[{key!r}] must be a number between -1 and 1")
    return checked


def route_for(
    name: str,
    description: str,
    examples: Sequence[str],
    *,
    threshold: float | None,
    include_description: bool,
    label: str = "choice",
) -> Route:
    """The route of one choice or tool: its description (optionally) and its examples."""
    texts = [description] if include_description and description.strip() else []
    texts += list(examples)
    if not texts:
        raise ConfigurationError(f"{label} {name!r} has no description and no example utterances")
    return Route(
        name, texts, description=description or None, threshold=threshold, metadata={"kind": label}
    )


def shorten(text: str | None, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
