"""Semantic tool preselection: the embedding twin of ``LLMToolSelectorMiddleware``, no LLM call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from langchain.agents.middleware.types import (
    AgentMiddleware,
    ModelRequest,
    ModelResponse,
)
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool

from semrouter import (
    ConfigurationError,
    ConversationRouter,
    Encoder,
    Route,
    RouteMatch,
    SemanticRouter,
)

from ._conversation import conversation_turns
from ._text import routed_text

__all__ = ["SemRouterToolSelector", "SemRouterToolSelectorMiddleware", "tool_route"]

#: ``tool.metadata`` key whose list of strings adds example utterances to a tool's route.
EXAMPLES_KEY = "examples"


def tool_route(tool: BaseTool, examples: Sequence[str] = ()) -> Route:
    """The route a tool is indexed as: its name in words, its description, and examples.

    Example:
        >>> from langchain_core.tools import tool
        >>> @tool
        ... def get_weather(city: str) -> str:
        ...     '''Current weather for a city.'''
        ...     return "sunny"
        >>> tool_route(get_weather).utterances
        ('get weather', 'get weather: Current weather for a city.', 'Current weather for a city.')
    """
    words = tool.name.replace("_", " ").replace("-", " ").strip() or tool.name
    description = (tool.description or "").strip()
    utterances = [words]
    if description:
        utterances += [f"{words}: {description}", description]
    extra = (tool.metadata or {}).get(EXAMPLES_KEY, ())
    if isinstance(extra, (list, tuple)):
        utterances += [str(item) for item in extra if str(item).strip()]
    utterances += [item for item in examples if item.strip()]
    return Route(name=tool.name, utterances=utterances, metadata={"kind": "tool"})


class SemRouterToolSelector:
    """Picks the tools whose name, description and examples best match a query.

    Every tool becomes a route of ``router`` the first time it is seen (or when its name,
    description or examples change); later selections only encode the query. A persistent
    router (``SemanticRouter(path=...)``) keeps the tool vectors across restarts.

    The result is ordered as ``LLMToolSelectorMiddleware`` orders it: the selected tools in
    their original order, then the ``always_include`` tools, then provider tool dicts.

    Args:
        router: a router for the tool routes. It may hold only tool routes (made by
            :func:`tool_route`; an empty router is fine): a router with other routes is refused,
            never changed. Default: a new embedded router.
        encoder: the encoder of that new router (default: the process-wide
            :meth:`~semrouter.LocalEncoder.shared` encoder).
        max_tools: keep at most this many selected tools (best first); ``None`` for no cap:
            then every tool passing the router's threshold is kept, and when none passes every
            tool is offered (a threshold never leaves the model without its tools).
        always_include: tool names always kept; they do not count against ``max_tools``.
        examples: extra example queries per tool name.
        min_score: drop tools scoring below it. By default, with ``max_tools`` the best
            ``max_tools`` are kept whatever their score; without it, the router's threshold.
        conversation: rank the tools for a message list or agent state as a conversation
            (:meth:`semrouter.ConversationRouter.shared`), so a follow-up keeps the tools of
            the request it follows; ``False``: the last human message alone.

    Example:
        >>> from semrouter import FakeEncoder
        >>> from langchain_core.tools import tool
        >>> @tool
        ... def get_weather(city: str) -> str:
        ...     '''Current weather for a city.'''
        ...     return "sunny"
        >>> @tool
        ... def send_email(to: str) -> str:
        ...     '''Send an email message.'''
        ...     return "sent"
        >>> selector = SemRouterToolSelector(encoder=FakeEncoder(), max_tools=1)
        >>> picked = selector.select("what is the weather in Paris?", [get_weather, send_email])
        >>> [t.name for t in picked]
        ['get_weather']
    """

    def __init__(
        self,
        router: SemanticRouter | None = None,
        *,
        encoder: Encoder | None = None,
        max_tools: int | None = None,
        always_include: Sequence[str] | None = None,
        examples: Mapping[str, Sequence[str]] | None = None,
        min_score: float | None = None,
        conversation: bool = True,
    ) -> None:
        if max_tools is not None and max_tools < 0:
            raise ConfigurationError("max_tools must be >= 0")
        if router is not None and encoder is not None:
            raise ConfigurationError("give encoder= only when the selector builds the router")
        if router is not None:
            _check_tool_router(router)
        self._owns_router = router is None
        self.router = (
            router
            if router is not None
            else SemanticRouter(encoder=encoder if encoder is not None else _default_encoder())
        )
        self.max_tools = max_tools
        self.always_include = list(always_include or [])
        self.examples = {name: list(items) for name, items in (examples or {}).items()}
        self.min_score = min_score
        self.conversation = conversation
        self._lock = threading.Lock()
        self._indexed: dict[str, Route] = {route.name: route for route in self.router.routes}

    @classmethod
    def from_tools(
        cls,
        tools: Sequence[Any],
        *,
        encoder: Encoder | None = None,
        examples: Mapping[str, Sequence[str]] | None = None,
        max_tools: int | None = None,
        always_include: Sequence[str] | None = None,
        min_score: float | None = None,
        conversation: bool = True,
        **router_options: Any,
    ) -> SemRouterToolSelector:
        """A selector whose router is built for ``tools`` up front.

        ``router_options`` go to :class:`~semrouter.SemanticRouter` (``path=``, ``client=``,
        ``collection=`` ...): with a persistent collection, a restart encodes nothing.
        """
        picked = {name: list(items) for name, items in (examples or {}).items()}
        routes = [tool_route(t, picked.get(t.name, ())) for t in _base_tools(tools)]
        # The collection holds this tool set: tools dropped since an earlier run go with it.
        options = {"sync": "replace", **router_options}
        router = SemanticRouter(
            routes, encoder=encoder if encoder is not None else _default_encoder(), **options
        )
        selector = cls(
            router,
            max_tools=max_tools,
            always_include=always_include,
            examples=picked,
            min_score=min_score,
            conversation=conversation,
        )
        selector._owns_router = True
        return selector

    def close(self) -> None:
        """Close the router if the selector built it (a given router stays open)."""
        if self._owns_router:
            self.router.close()

    def __deepcopy__(self, memo: dict[int, Any]) -> SemRouterToolSelector:
        # A copy shares the router (it holds live clients), with options of its own.
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.always_include = list(self.always_include)
        clone.examples = {name: list(items) for name, items in self.examples.items()}
        clone._indexed = dict(self._indexed)
        clone._lock = threading.Lock()
        clone._owns_router = False  # the original closes the shared router
        memo[id(self)] = clone
        return clone

    def __reduce__(self) -> Any:
        raise ConfigurationError(
            "a SemRouterToolSelector cannot be pickled: its router holds live Qdrant clients "
            "and is shared, not copied. Share the selector within the process, or build one "
            "in the other process with SemRouterToolSelector.from_tools(tools, path=...) (a "
            "persistent path reuses the tool vectors)"
        )

    # -- the tool index ------------------------------------------------------------------------
    def _pending(self, tools: Sequence[BaseTool]) -> list[Route] | None:
        """The new full route set if some tool is new or changed, else ``None``."""
        routes = {t.name: tool_route(t, self.examples.get(t.name, ())) for t in tools}
        if all(self._indexed.get(name) == route for name, route in routes.items()):
            return None
        return list({**self._indexed, **routes}.values())

    def index(self, tools: Sequence[Any]) -> None:
        """Index the tools now (selection does it lazily); encodes only new or changed ones."""
        with self._lock:
            routes = self._pending(_base_tools(tools))
            if routes is not None:
                _check_tool_router(self.router)
                self.router.set_routes(routes)
                self._indexed = {route.name: route for route in routes}

    async def aindex(self, tools: Sequence[Any]) -> None:
        """Asynchronous :meth:`index` (the encoding runs in a worker thread)."""
        if self._pending(_base_tools(tools)) is not None:
            await asyncio.to_thread(self.index, tools)

    # -- selection -----------------------------------------------------------------------------
    def _candidates(self, tools: Sequence[Any]) -> list[BaseTool]:
        base = _base_tools(tools)
        names = {t.name for t in base}
        missing = [name for name in self.always_include if name not in names]
        if missing:
            raise ConfigurationError(
                f"Tools in always_include not found in request: {missing}. "
                f"Available tools: {sorted(names)}"
            )
        return [t for t in base if t.name not in self.always_include]

    def _limit(self) -> tuple[int, bool]:
        apply_threshold = self.max_tools is None and self.min_score is None
        return max(len(self.router), 1), apply_threshold

    def _keep(
        self, tools: Sequence[Any], candidates: list[BaseTool], ranked: list[RouteMatch]
    ) -> list[Any]:
        wanted = {t.name for t in candidates}
        chosen: list[str] = []
        for match in ranked:
            if match.name not in wanted or match.name in chosen:
                continue
            if self.min_score is not None and match.score < self.min_score:
                continue
            if self.max_tools is not None and len(chosen) >= self.max_tools:
                break
            chosen.append(match.name)
        if not chosen and self.max_tools is None and self.min_score is None:
            chosen = sorted(wanted)  # no cap and nothing passed the threshold: narrow nothing
        # LLMToolSelectorMiddleware's order: selected (original order), always_include, dicts.
        selected = [t for t in candidates if t.name in set(chosen)]
        always = [t for t in _base_tools(tools) if t.name in self.always_include]
        return [*selected, *always, *(t for t in tools if isinstance(t, dict))]

    def select(self, query: Any, tools: Sequence[Any]) -> list[Any]:
        """The tools to offer for ``query`` (ordered as the class says).

        Args:
            query: a str, a message list or an agent state (a conversation, see the class).
            tools: ``BaseTool`` objects; provider tool dicts are passed through untouched.

        Returns:
            The selected tools, the ``always_include`` ones and every provider dict.
        """
        candidates = self._candidates(tools)
        if not candidates:
            return list(tools)
        text = routed_text(query)
        if not text.strip():
            return list(tools)
        self.index(candidates)
        limit, apply_threshold = self._limit()
        turns = conversation_turns(query) if self.conversation else None
        if turns is not None:
            conversation = ConversationRouter.shared(self.router)
            ranked = conversation.top_routes(turns, limit, apply_threshold=apply_threshold)
        else:
            ranked = self.router.top_routes(text, limit, apply_threshold=apply_threshold)
        return self._keep(tools, candidates, ranked)

    async def aselect(self, query: Any, tools: Sequence[Any]) -> list[Any]:
        """Asynchronous :meth:`select`; the query is encoded on the encoder's async path."""
        candidates = self._candidates(tools)
        if not candidates:
            return list(tools)
        text = routed_text(query)
        if not text.strip():
            return list(tools)
        await self.aindex(candidates)
        limit, apply_threshold = self._limit()
        turns = conversation_turns(query) if self.conversation else None
        if turns is not None:
            conversation = ConversationRouter.shared(self.router)
            ranked = await conversation.atop_routes(turns, limit, apply_threshold=apply_threshold)
        else:
            ranked = await self.router.atop_routes(text, limit, apply_threshold=apply_threshold)
        return self._keep(tools, candidates, ranked)

    def as_runnable(self, tools: Sequence[Any]) -> Runnable[Any, list[Any]]:
        """A runnable ``query -> selected tools`` for LangGraph users who ``bind_tools``.

        Example:
            >>> pick = selector.as_runnable(tools)  # doctest: +SKIP
            >>> model.bind_tools(pick.invoke(state["messages"]))  # doctest: +SKIP
        """
        fixed = list(tools)

        def select(query: Any) -> list[Any]:
            return self.select(query, fixed)

        async def aselect(query: Any) -> list[Any]:
            return await self.aselect(query, fixed)

        return RunnableLambda(select, afunc=aselect, name="SemRouterToolSelector")


# Unparameterised: AgentMiddleware takes two type arguments in langchain 1.0 and three later.
class SemRouterToolSelectorMiddleware(AgentMiddleware):
    """``create_agent`` middleware that preselects tools for each model call by meaning.

    The semantic counterpart of ``LLMToolSelectorMiddleware``: same ``max_tools`` and
    ``always_include``, but the last human message is matched against each tool's name,
    description and examples in a Qdrant index instead of asking an LLM.

    Args:
        router: see :class:`SemRouterToolSelector`.
        encoder: see :class:`SemRouterToolSelector`.
        max_tools: keep at most this many selected tools (best first).
        always_include: tool names always kept, not counted against ``max_tools``.
        examples: extra example queries per tool name.
        min_score: drop tools scoring below it.
        conversation: select for the agent's messages as a conversation (see
            :class:`SemRouterToolSelector`); ``False``: the last human message alone.
        selector: a ready :class:`SemRouterToolSelector` instead of the options above.

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
        router: SemanticRouter | None = None,
        *,
        encoder: Encoder | None = None,
        max_tools: int | None = None,
        always_include: Sequence[str] | None = None,
        examples: Mapping[str, Sequence[str]] | None = None,
        min_score: float | None = None,
        selector: SemRouterToolSelector | None = None,
        conversation: bool = True,
    ) -> None:
        super().__init__()
        if selector is None:
            selector = SemRouterToolSelector(
                router,
                encoder=encoder,
                max_tools=max_tools,
                always_include=always_include,
                examples=examples,
                min_score=min_score,
                conversation=conversation,
            )
        elif router is not None or encoder is not None:
            raise ConfigurationError("give either selector= or the selector's options")
        self.selector = selector

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

    @classmethod
    def from_tools(cls, tools: Sequence[Any], **options: Any) -> SemRouterToolSelectorMiddleware:
        """A middleware whose tools are indexed up front; see
        :meth:`SemRouterToolSelector.from_tools` for the options (``path=`` persists them)."""
        return cls(selector=SemRouterToolSelector.from_tools(tools, **options))

    def close(self) -> None:
        """Close the selector's router if the selector built it."""
        self.selector.close()

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        """Narrow ``request.tools`` to the selected tools, then call the model."""
        if not request.tools or not _has_human(request):
            return handler(request)
        tools = self.selector.select(request.messages, request.tools)
        return handler(request.override(tools=tools))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        """Asynchronous :meth:`wrap_model_call`."""
        if not request.tools or not _has_human(request):
            return await handler(request)
        tools = await self.selector.aselect(request.messages, request.tools)
        return await handler(request.override(tools=tools))


def _default_encoder() -> Encoder:
    from semrouter import LocalEncoder

    return LocalEncoder.shared()


def _check_tool_router(router: SemanticRouter) -> None:
    foreign = [r.name for r in router.routes if r.metadata.get("kind") != "tool"]
    if foreign:
        raise ConfigurationError(
            f"the router holds routes that are not tool routes ({foreign[:5]}); the tool "
            "selector replaces its router's routes with the tools it sees, and never changes "
            "routes it did not make: give it a router of its own (leave out router=, or pass "
            "an empty SemanticRouter(path=...))"
        )


def _has_human(request: ModelRequest[Any]) -> bool:
    return any(getattr(m, "type", None) == "human" for m in request.messages)


def _base_tools(tools: Sequence[Any]) -> list[BaseTool]:
    return [t for t in tools if not isinstance(t, dict)]
