"""Tool search for agents with more tools than fit a prompt, with any chat model.

The semantic, provider-neutral counterpart of ``ProviderToolSearchMiddleware`` (which hides
tools behind Anthropic's or OpenAI's server-side search): each model call is offered the best
``max_tools`` tools for the request, the tools it found earlier, and one ``search_tools`` tool
that ranks every tool by a description of what the model needs, in the same
:class:`semrouter.ToolIndex`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from langchain.agents.middleware.types import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

from semrouter import ConfigurationError, Encoder, ToolIndex, ToolMatch, ToolOptions

from .middleware import _has_human, _state_messages, mark_offered, not_offered_message
from .middleware import offered_tools as _offered_tools
from .tools import SemRouterToolSelector

__all__ = ["SEARCH_TOOL_NAME", "SemRouterToolSearchMiddleware"]

#: The name of the tool the model calls to search for more tools.
SEARCH_TOOL_NAME = "search_tools"

_SEARCH_DESCRIPTION = (
    "Search for more tools. Describe the capability you need in a few words (for example "
    "'convert currencies' or 'book a hotel room'); the best matching tools are listed and "
    "offered to you from the next step on."
)


class SemRouterToolSearchMiddleware(AgentMiddleware):
    """``create_agent`` middleware: the top tools plus a ``search_tools`` tool for the rest.

    Args:
        index: a ready :class:`~semrouter.ToolIndex` (may be shared with other selectors).
        encoder: the new index's encoder (default: the shared ``LocalEncoder``).
        max_tools: tools offered up front for the request (best first).
        always_include: tool names always offered.
        examples: extra example requests per tool name.
        search_limit: tools one search returns.
        selector: a ready :class:`SemRouterToolSelector` instead of the options above.
        enforce: answer a call of a tool that was neither offered nor found with a tool
            message instead of running it.
        options: the new index's :class:`~semrouter.ToolOptions`.

    Example:
        >>> from langchain.agents import create_agent  # doctest: +SKIP
        >>> agent = create_agent(  # doctest: +SKIP
        ...     model, tools=five_hundred_tools,
        ...     middleware=[SemRouterToolSearchMiddleware(max_tools=5)],
        ... )
    """

    def __init__(
        self,
        index: ToolIndex | None = None,
        *,
        encoder: Encoder | None = None,
        max_tools: int = 5,
        always_include: Sequence[str] | None = None,
        examples: Mapping[str, Sequence[str]] | None = None,
        search_limit: int = 5,
        selector: SemRouterToolSelector | None = None,
        enforce: bool = False,
        options: ToolOptions | None = None,
    ) -> None:
        super().__init__()
        if search_limit < 1:
            raise ConfigurationError("search_limit must be at least 1")
        if selector is None:
            selector = SemRouterToolSelector(
                index,
                encoder=encoder,
                max_tools=max_tools,
                always_include=always_include,
                examples=examples,
                options=options,
            )
        elif index is not None or encoder is not None or options is not None:
            raise ConfigurationError("give either selector= or the selector's options")
        self.selector = selector
        self.search_limit = search_limit
        self.enforce = enforce
        self._searchable: dict[str, BaseTool] = {}
        self.tools = [self._search_tool()]

    # -- the search tool ----------------------------------------------------------------------
    def search(self, query: str) -> list[ToolMatch]:
        """The tools a ``search_tools`` call with ``query`` finds (best first)."""
        if not query.strip() or not self._searchable:
            return []
        return self.selector.tool_index.rank(query, self.search_limit, tools=self._searchable)

    async def asearch(self, query: str) -> list[ToolMatch]:
        """Asynchronous :meth:`search`."""
        if not query.strip() or not self._searchable:
            return []
        return await self.selector.tool_index.arank(
            query, self.search_limit, tools=self._searchable
        )

    def _search_tool(self) -> BaseTool:
        def search_tools(query: str) -> tuple[str, list[str]]:
            return self._answer(self.search(query))

        async def asearch_tools(query: str) -> tuple[str, list[str]]:
            return self._answer(await self.asearch(query))

        return StructuredTool.from_function(
            search_tools,
            coroutine=asearch_tools,
            name=SEARCH_TOOL_NAME,
            description=_SEARCH_DESCRIPTION,
            response_format="content_and_artifact",
        )

    def _answer(self, found: list[ToolMatch]) -> tuple[str, list[str]]:
        if not found:
            return "No tool matches that description.", []
        lines = [
            f"- {m.name}: {self._searchable[m.name].description.strip()}"
            if m.name in self._searchable
            else f"- {m.name}"
            for m in found
        ]
        text = "Tools found (you can call them from now on):\n" + "\n".join(lines)
        return text, [m.name for m in found]

    # -- model calls --------------------------------------------------------------------------
    def _offer(self, request: ModelRequest[Any], picked: list[Any]) -> list[Any]:
        own = [t for t in request.tools if _is_search(t)]
        found = set(found_tools(request.messages))
        chosen = {t.name for t in picked if not isinstance(t, dict)}
        extra = [
            t
            for t in request.tools
            if not isinstance(t, dict) and t.name in found and t.name not in chosen
        ]
        return [*picked, *extra, *own]

    def _tools(self, request: ModelRequest[Any]) -> list[Any]:
        tools = [t for t in request.tools if not _is_search(t)]
        for tool in tools:
            if not isinstance(tool, dict):
                self._searchable[tool.name] = tool
        return tools

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        """Offer the top tools, the tools found by earlier searches and ``search_tools``."""
        tools = self._tools(request)
        if not tools or not _has_human(request):
            return handler(request)
        self.selector.index(tools)
        offered = self._offer(request, self.selector.select(request.messages, tools))
        return mark_offered(handler(request.override(tools=offered)), offered, self.enforce)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        """Asynchronous :meth:`wrap_model_call`."""
        tools = self._tools(request)
        if not tools or not _has_human(request):
            return await handler(request)
        await self.selector.aindex(tools)
        offered = self._offer(request, await self.selector.aselect(request.messages, tools))
        return mark_offered(await handler(request.override(tools=offered)), offered, self.enforce)

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """With ``enforce=True``, a tool neither offered nor found is not run."""
        refusal = self._refusal(request) if self.enforce else None
        return refusal if refusal is not None else handler(request)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """Asynchronous :meth:`wrap_tool_call`."""
        refusal = self._refusal(request) if self.enforce else None
        return refusal if refusal is not None else await handler(request)

    def _refusal(self, request: Any) -> ToolMessage | None:
        call = request.tool_call
        offered = _offered_tools(_state_messages(request.state), call.get("id"))
        if offered is None or call["name"] in offered:
            return None
        return not_offered_message(call, offered)


def found_tools(messages: Sequence[BaseMessage]) -> list[str]:
    """The tool names that ``search_tools`` calls in ``messages`` found, oldest first."""
    names: list[str] = []
    for message in messages:
        if isinstance(message, ToolMessage) and message.name == SEARCH_TOOL_NAME:
            artifact = message.artifact
            if isinstance(artifact, list):
                names += [n for n in artifact if isinstance(n, str) and n not in names]
    return names


def _is_search(tool: Any) -> bool:
    return not isinstance(tool, dict) and getattr(tool, "name", None) == SEARCH_TOOL_NAME
