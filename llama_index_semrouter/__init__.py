"""LlamaIndex integration for semrouter: route queries and pick tools by meaning, on Qdrant.

* :class:`SemRouterSelector` — a ``BaseSelector`` for ``RouterQueryEngine`` and
  ``RouterRetriever``: one embedding call per query, route vectors persisted in Qdrant.
* :class:`SemRouterToolRetriever` — an ``ObjectRetriever`` for the ``tool_retriever=`` of
  ``FunctionAgent`` and ``ReActAgent``.
* :class:`SemRouterEmbedding` — any semrouter encoder (default: the offline local model) as a
  LlamaIndex ``BaseEmbedding``; :class:`LlamaIndexEncoder` — any ``BaseEmbedding`` as a
  semrouter encoder.

Example:
    >>> from llama_index_semrouter import SemRouterSelector
    >>> from semrouter import FakeEncoder
    >>> selector = SemRouterSelector.from_defaults(encoder=FakeEncoder())
    >>> selector.select(["book a flight", "check the weather"], "weather today?").ind
    1
"""

from __future__ import annotations

try:
    import llama_index.core as _llama_index_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    from semrouter import MissingDependencyError

    raise MissingDependencyError(
        "llama-index-core is not installed; run: pip install 'semrouter[llama-index]'"
    ) from exc

from .embeddings import LlamaIndexEncoder, SemRouterEmbedding
from .retrievers import SemRouterToolRetriever
from .selectors import SemRouterSelector

__all__ = [
    "LlamaIndexEncoder",
    "SemRouterEmbedding",
    "SemRouterSelector",
    "SemRouterToolRetriever",
]
