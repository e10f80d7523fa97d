"""LangChain integration of semrouter: semantic branches, tool preselection, decisions, embeddings.

Every public class carries the ``SemRouter`` prefix, as LangChain partner packages carry their
vendor's (``QdrantVectorStore``, ``OpenAIEmbeddings``) and as ``llama_index_semrouter`` does.
The 0.1 names (``SemanticBranch``, ``SemanticToolSelector``, ``SemanticToolSelectorMiddleware``,
``SemanticDecisionModel``) still work, with a ``DeprecationWarning``.

Example:
    >>> from semrouter import FakeEncoder, Route
    >>> from langchain_semrouter import SemRouterBranch
    >>> branch = SemRouterBranch(
    ...     (Route("greet", ["hello there"]), lambda x: "hi!"),
    ...     lambda x: "sorry?",
    ...     encoder=FakeEncoder(),
    ... )
    >>> branch.invoke("well hello there")
    'hi!'
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from semrouter import MissingDependencyError

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        "langchain-core is not installed; run: pip install 'semrouter[langchain]'"
    ) from exc

from .embeddings import LangChainEncoder, SemRouterEmbeddings
from .runnables import SemRouterBranch

if TYPE_CHECKING:
    from .decision import SemRouterDecisionModel
    from .middleware import SemRouterToolSelectorMiddleware
    from .tool_search import SemRouterToolSearchMiddleware
    from .tools import SemRouterToolSelector, tool_route, tool_spec

__all__ = [
    "LangChainEncoder",
    "SemRouterBranch",
    "SemRouterDecisionModel",
    "SemRouterEmbeddings",
    "SemRouterToolSearchMiddleware",
    "SemRouterToolSelector",
    "SemRouterToolSelectorMiddleware",
    "tool_route",
    "tool_spec",
]

_MIDDLEWARE = {
    "SemRouterToolSelectorMiddleware": "middleware",
    "SemRouterToolSearchMiddleware": "tool_search",
}
_TOOLS = ("SemRouterToolSelector", "tool_route", "tool_spec")

#: The 0.1 names, kept as deprecated aliases of the same classes.
_DEPRECATED = {
    "SemanticBranch": "SemRouterBranch",
    "SemanticToolSelector": "SemRouterToolSelector",
    "SemanticToolSelectorMiddleware": "SemRouterToolSelectorMiddleware",
    "SemanticDecisionModel": "SemRouterDecisionModel",
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"langchain_semrouter.{name} is deprecated; use {new} (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return SemRouterBranch if new == "SemRouterBranch" else __getattr__(new)
    # The decision model needs langchain_core.decisions (langchain-core 1.8+; the module says
    # so with a MissingDependencyError) and pulls in the LangSmith client (~0.5 s): imported
    # on first use only, like the middleware below.
    if name == "SemRouterDecisionModel":
        from .decision import SemRouterDecisionModel

        return SemRouterDecisionModel
    if name in _TOOLS:
        from . import tools

        return getattr(tools, name)
    # The middleware needs `langchain` (agents, langgraph): imported on first use only.
    if name in _MIDDLEWARE:
        import importlib

        try:
            module = importlib.import_module(f"{__name__}.{_MIDDLEWARE[name]}")
        except ImportError as exc:
            if isinstance(exc, MissingDependencyError):
                raise
            raise MissingDependencyError(
                f"langchain is not installed ({exc}); run: pip install 'semrouter[langchain]'"
            ) from exc
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
