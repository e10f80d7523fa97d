"""Semantic tool preselection for ``create_agent``: the embedding twin of
``LLMToolSelectorMiddleware``, no LLM call, with optional enforcement of the selection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from langchain.agents.middleware.types import (
    AgentMiddleware,
    ModelRequest,
    ModelResponse,
)
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from semrouter import ConfigurationError, Encoder, ToolIndex, ToolOptions

from .tools import EXAMPLES_KEY, SemRouterToolSelector, tool_route, tool_spec

__all__ = [
    "EXAMPLES_KEY",
    "OFFERED_KEY",
    "SemRouterToolSelector",
    "SemRouterToolSelectorMiddleware",
    "not_offered_message",
    "offered_tools",
    "tool_route",
    "tool_spec",
]

#: ``AIMessage.response_metadata`` key holding the tool names a model call was offered.
OFFERED_KEY = "semrouter_offered_tools"

#: ModelResponse | AIMessage | ExtendedModelResponse, by langchain version.
ModelResult = TypeVar("ModelResult")


# Unparameterised: AgentMiddleware takes two type arguments in langchain 1.0 and three later.
class SemRouterToolSelectorMiddleware(AgentMiddleware):
    """``create_agent`` middleware that preselects tools for each model call by meaning.

    The semantic counterpart of ``LLMToolSelectorMiddleware``: same ``max_tools`` and
    ``always_include``, but the request is matched against each tool's name, description,
    arguments and examples in a :class:`semrouter.ToolIndex` instead of asking an LLM.

    Args:
        index: a ready :class:`~semrouter.ToolIndex` (see :class:`SemRouterToolSelector`).
        encoder: see :class:`SemRouterToolSelector`.
        max_tools: keep at most this many selected tools (best first).
        always_include: tool names always kept, not counted against ``max_tools``.
        examples: extra example requests per tool name.
        min_score: drop tools whose similarity is below it.
        conversation: see :class:`SemRouterToolSelector`.
        selector: a ready :class:`SemRouterToolSelector` instead of the options above.
        enforce: a tool the model calls that it was not offered in that model call is not
            run: the model gets a tool message saying so (some models call tools they know
            from earlier turns). Default ``False``: such a call runs, as without middleware.
        learn_from_calls: learn from the agent's own tool calls: each tool the model called
            and that ran without error becomes, at the next model call, an example of that
            tool with the user's request and its vector (nothing is encoded again), stored
            with the tools (every worker on the same ``path=``/``url=``/``client=`` learns
            it). See :meth:`SemRouterToolSelector.record_calls`.
        index_fields: for the new index: where its tool set is stored (``location=``, or
            ``path=``/``url=``/``api_key=``/``client=`` ...), ``collection=``,
            ``refresh_interval=`` (see :class:`~semrouter.ToolIndex`).

    Example:
        >>> from langchain.agents import create_agent  # doctest: +SKIP
        >>> agent = create_agent(  # doctest: +SKIP
        ...     model, tools=many_tools,
        ...     middleware=[
        ...         SemRouterToolSelectorMiddleware(max_tools=5, always_include=["search"])
        ...     ],
        ... )
    """

    def __init__(
        self,
        index: ToolIndex | None = None,
        *,
        encoder: Encoder | None = None,
        max_tools: int | None = None,
        always_include: Sequence[str] | None = None,
        examples: Mapping[str, Sequence[str]] | None = None,
        min_score: float | None = None,
        selector: SemRouterToolSelector | None = None,
        conversation: bool = True,
        enforce: bool = False,
        options: ToolOptions | None = None,
        learn_from_calls: bool = False,
        **index_fields: Any,
    ) -> None:
        super().__init__()
        if selector is None:
            selector = SemRouterToolSelector(
                index,
                encoder=encoder,
                max_tools=max_tools,
                always_include=always_include,
                examples=examples,
                min_score=min_score,
                conversation=conversation,
                options=options,
                learn_from_calls=learn_from_calls,
                **index_fields,
            )
        elif index is not None or encoder is not None or options is not None or index_fields:
            raise ConfigurationError("give either selector= or the selector's options")
        elif learn_from_calls:
            selector.learn_from_calls = True
        self.selector = selector
        self.enforce = enforce

    @property
    def max_tools(self) -> int | None:
        """The selector's ``max_tools``; setting it changes the next selections."""
        return self.selector.max_tools

    @max_tools.setter
    def max_tools(self, value: int | None) -> None:
        if value is not None and value < 0:
            raise ConfigurationError("max_tools must be >= 0")
        self.selector.max_tools = value

    @property
    def always_include(self) -> list[str]:
        """The selector's ``always_include``; setting it changes the next selections."""
        return self.selector.always_include

    @always_include.setter
    def always_include(self, value: Sequence[str] | None) -> None:
        self.selector.always_include = list(value or [])

    @property
    def learn_from_calls(self) -> bool:
        """The selector's ``learn_from_calls``; setting it changes the next selections."""
        return self.selector.learn_from_calls

    @learn_from_calls.setter
    def learn_from_calls(self, value: bool) -> None:
        self.selector.learn_from_calls = bool(value)

    @classmethod
    def from_tools(
        cls, tools: Sequence[Any], *, enforce: bool = False, **options: Any
    ) -> SemRouterToolSelectorMiddleware:
        """A middleware whose tools are indexed up front; see
        :meth:`SemRouterToolSelector.from_tools` for the options (``learn_from_calls=``,
        ``path=`` ... included)."""
        return cls(selector=SemRouterToolSelector.from_tools(tools, **options), enforce=enforce)

    def close(self) -> None:
        """Close the selector's index if the selector built it."""
        self.selector.close()

    # -- model calls --------------------------------------------------------------------------
    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        """Narrow ``request.tools`` to the selected tools, then call the model."""
        if not request.tools or not _has_human(request):
            return handler(request)
        tools = self.selector.select(request.messages, request.tools)
        return mark_offered(handler(request.override(tools=tools)), tools, self.enforce)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        """Asynchronous :meth:`wrap_model_call`."""
        if not request.tools or not _has_human(request):
            return await handler(request)
        tools = await self.selector.aselect(request.messages, request.tools)
        return mark_offered(await handler(request.override(tools=tools)), tools, self.enforce)

    # -- tool calls ---------------------------------------------------------------------------
    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """With ``enforce=True``, answer a call of a tool that was not offered instead of
        running it."""
        refusal = self._refusal(request) if self.enforce else None
        return refusal if refusal is not None else handler(request)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """Asynchronous :meth:`wrap_tool_call`."""
        refusal = self._refusal(request) if self.enforce else None
        return refusal if refusal is not None else await handler(request)

    def _refusal(self, request: Any) -> ToolMessage | None:
        call = request.tool_call
        offered = offered_tools(_state_messages(request.state), call.get("id"))
        if offered is None or call["name"] in offered:
            return None
        return not_offered_message(call, offered)


def mark_offered(result: ModelResult, tools: Sequence[Any], enforce: bool) -> ModelResult:
    """Record on each AI message of ``result`` which tools its model call was offered (only
    when enforcing: the names then travel with the message in the agent state)."""
    if not enforce:
        return result
    names = [
        t["name"] if isinstance(t, dict) and "name" in t else getattr(t, "name", None)
        for t in tools
    ]
    offered = [n for n in names if isinstance(n, str)]
    inner = getattr(result, "model_response", result)  # ExtendedModelResponse wraps one
    messages = inner.result if isinstance(inner, ModelResponse) else [inner]
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            message.response_metadata[OFFERED_KEY] = offered
    return result


def offered_tools(messages: Sequence[BaseMessage], call_id: str | None) -> list[str] | None:
    """The tools offered to the model call that made tool call ``call_id``; ``None`` when that
    call was not marked (another middleware's turn, or no selection)."""
    for message in reversed(list(messages)):
        if isinstance(message, AIMessage) and any(
            c.get("id") == call_id for c in message.tool_calls
        ):
            offered = message.response_metadata.get(OFFERED_KEY)
            return list(offered) if isinstance(offered, list) else None
    return None


def not_offered_message(call: Mapping[str, Any], offered: Sequence[str]) -> ToolMessage:
    """The tool message that answers a call of a tool the model was not offered."""
    return ToolMessage(
        content=(
            f"Tool {call['name']!r} was not offered for this request and was not run. "
            f"Use one of the tools offered: {', '.join(offered) or 'none'}."
        ),
        tool_call_id=call.get("id") or "",
        name=call["name"],
        status="error",
    )


def _state_messages(state: Any) -> list[BaseMessage]:
    if isinstance(state, Mapping):
        return list(state.get("messages", []))
    return list(getattr(state, "messages", []) or [])


def _has_human(request: ModelRequest[Any]) -> bool:
    return any(getattr(m, "type", None) == "human" for m in request.messages)
