"""LangChain integration of semrouter: semantic branches, tool preselection, decisions, embeddings.

Example:
    >>> from semrouter import FakeEncoder, Route
    >>> from langchain_semrouter import SemanticBranch
    >>> branch = SemanticBranch(
    ...     (Route("greet", ["hello there"]), lambda x: "hi!"),
    ...     lambda x: "sorry?",
    ...     encoder=FakeEncoder(),
    ... )
    >>> branch.invoke("well hello there")
    'hi!'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from semrouter import MissingDependencyError

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        "langchain-core is not installed; run: pip install 'semrouter[langchain]'"
    ) from exc

from .embeddings import LangChainEncoder, SemRouterEmbeddings
from .runnables import SemanticBranch

if TYPE_CHECKING:
    from .decision import SemanticDecisionModel
    from .middleware import SemanticToolSelector, SemanticToolSelectorMiddleware, tool_route

__all__ = [
    "LangChainEncoder",
    "SemRouterEmbeddings",
    "SemanticBranch",
    "SemanticDecisionModel",
    "SemanticToolSelector",
    "SemanticToolSelectorMiddleware",
    "tool_route",
]

_MIDDLEWARE = ("SemanticToolSelector", "SemanticToolSelectorMiddleware", "tool_route")


def __getattr__(name: str) -> Any:
    # The decision model needs langchain_core.decisions (langchain-core 1.8+) and pulls in the
    # LangSmith client (~0.5 s): imported on first use only, like the middleware below.
    if name == "SemanticDecisionModel":
        try:
            import langchain_core.decisions  # noqa: F401
        except ImportError as exc:
            from importlib.metadata import version

            raise MissingDependencyError(
                "SemanticDecisionModel needs langchain-core 1.8 or later (langchain_core."
                f"decisions); installed: {version('langchain-core')}; run: pip install -U "
                "'langchain-core>=1.8'"
            ) from exc
        from .decision import SemanticDecisionModel

        return SemanticDecisionModel
    # The middleware needs `langchain` (agents, langgraph): imported on first use only.
    if name in _MIDDLEWARE:
        try:
            from . import middleware
        except ImportError as exc:
            if isinstance(exc, MissingDependencyError):
                raise
            raise MissingDependencyError(
                f"langchain is not installed ({exc}); run: pip install 'semrouter[langchain]'"
            ) from exc
        return getattr(middleware, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
