"""Tool preselection by meaning: LangChain tools ranked by :class:`semrouter.ToolIndex`.

Needs ``langchain_core`` only (the ``create_agent`` middleware lives in ``middleware.py``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool

from semrouter import (
    ConfigurationError,
    Encoder,
    Route,
    SemanticRouter,
    ToolIndex,
    ToolMatch,
    ToolOptions,
    ToolSpec,
)

from ._calls import CallLearner
from ._conversation import conversation_turns
from ._text import routed_text

__all__ = ["EXAMPLES_KEY", "SemRouterToolSelector", "tool_route", "tool_spec"]

#: ``tool.metadata`` key whose list of strings adds example requests to a tool.
EXAMPLES_KEY = "examples"


def tool_spec(tool: BaseTool, examples: Sequence[str] = ()) -> ToolSpec:
    """How a LangChain tool is indexed: name, description, arguments (from its schema) and
    examples (``examples`` and ``tool.metadata["examples"]``).

    Example:
        >>> from langchain_core.tools import tool
        >>> @tool
        ... def get_weather(city: str) -> str:
        ...     '''Current weather for a city.'''
        ...     return "sunny"
        >>> tool_spec(get_weather).texts()
        [('name', 'get weather'), ('description', 'get weather: Current weather for a city.')]
    """
    extra = (tool.metadata or {}).get(EXAMPLES_KEY, ())
    given = [str(e) for e in extra] if isinstance(extra, (list, tuple)) else []
    try:
        arguments = tool.args
    except Exception:  # a tool whose schema cannot be read is still ranked by its text
        arguments = {}
    return ToolSpec.from_schema(tool.name, tool.description or "", arguments, [*given, *examples])


def tool_route(tool: BaseTool, examples: Sequence[str] = ()) -> Route:
    """The tool as a :class:`semrouter.Route` of its index texts (for a router of tools)."""
    texts = [text for _, text in tool_spec(tool, examples).texts()]
    return Route(name=tool.name, utterances=texts, metadata={"kind": "tool"})


class SemRouterToolSelector:
    """Picks the tools whose name, description, arguments and examples best match a request.

    Tools are indexed the first time they are seen (or when they change) in a
    :class:`semrouter.ToolIndex`; each distinct text is encoded once per process, so selectors
    over the same tools share their vectors. :meth:`rank` gives every tool with its scores;
    :meth:`select` keeps the order contract of ``LLMToolSelectorMiddleware``: the selected
    tools in their original order, then the ``always_include`` tools, then provider dicts.

    Args:
        index: a ready :class:`~semrouter.ToolIndex` (it may be shared); default: a new one.
        encoder: the new index's encoder (default: the shared ``LocalEncoder``).
        max_tools: keep at most this many selected tools (best first); ``None`` for no cap:
            then every tool whose similarity reaches ``min_score`` (default: the encoder's
            ``default_threshold``) is kept, and when none does every tool is offered.
        always_include: tool names always kept; they do not count against ``max_tools``.
        examples: extra example requests per tool name.
        min_score: drop tools whose similarity (:attr:`ToolMatch.similarity`) is below it.
        conversation: for a message list or agent state, a short follow-up that matches no
            tool well ("and tomorrow?") is ranked together with the user's previous turn;
            ``False``: the last human message alone.
        options: the new index's :class:`~semrouter.ToolOptions`.
        learn_from_calls: learn from the agent's own tool calls: given a message list or
            agent state, each tool called (and run without error) since the last human
            message becomes an example of that tool, with the request's vector (nothing is
            encoded again). Examples are stored with the tools, so every selector on the
            same ``path=``/``url=``/``client=`` learns them; see :meth:`record_calls`.
        index_fields: for the new index: where its tool set is stored (``location=``, or
            ``path=``/``url=``/``api_key=``/``client=`` ...), ``collection=``,
            ``refresh_interval=`` (see :class:`~semrouter.ToolIndex`).

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
        >>> selector.rank("what is the weather in Paris?", [get_weather, send_email])[0].name
        'get_weather'
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
        conversation: bool = True,
        options: ToolOptions | None = None,
        learn_from_calls: bool = False,
        **index_fields: Any,
    ) -> None:
        if isinstance(index, SemanticRouter):
            raise ConfigurationError(
                "SemRouterToolSelector ranks tools with a semrouter.ToolIndex, not a "
                "SemanticRouter: leave it out (or pass index=ToolIndex(...)) and give encoder="
            )
        if index is not None and (encoder is not None or options is not None or index_fields):
            raise ConfigurationError(
                "give encoder=, options= and the index's keywords only when the selector "
                "builds the index, not with index="
            )
        if max_tools is not None and max_tools < 0:
            raise ConfigurationError("max_tools must be >= 0")
        self._owns_index = index is None
        self.tool_index = (
            index
            if index is not None
            else ToolIndex(encoder=encoder, options=options, **index_fields)
        )
        self.learn_from_calls = learn_from_calls
        self._calls = CallLearner(self.tool_index)
        self.max_tools = max_tools
        self.always_include = list(always_include or [])
        self.examples = {name: list(items) for name, items in (examples or {}).items()}
        self.min_score = min_score
        self.conversation = conversation
        self._specs: dict[int, tuple[BaseTool, str, str, ToolSpec]] = {}
        self._prepared: _Prepared | None = None
        self._lock = threading.Lock()

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
        options: ToolOptions | None = None,
        learn_from_calls: bool = False,
        **index_fields: Any,
    ) -> SemRouterToolSelector:
        """A selector whose tools are indexed up front (``index_fields``: the fields of
        :class:`~semrouter.ToolOptions`, e.g. ``lexical_weight=0``, and where the tool set is
        stored, e.g. ``path="./tools_db"``: see :class:`~semrouter.ToolIndex`)."""
        selector = cls(
            max_tools=max_tools,
            always_include=always_include,
            examples=examples,
            min_score=min_score,
            conversation=conversation,
            encoder=encoder,
            options=options,
            learn_from_calls=learn_from_calls,
            **index_fields,
        )
        try:
            selector.index(tools)
        except BaseException:
            selector.close()
            raise
        return selector

    def close(self) -> None:
        """Close the index if this selector built it (an index passed in is its owner's)."""
        if self._owns_index:
            self.tool_index.close()

    def __deepcopy__(self, memo: dict[int, Any]) -> SemRouterToolSelector:
        # A copy shares the index (its vectors are the process's), with options of its own.
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.always_include = list(self.always_include)
        clone.examples = {name: list(items) for name, items in self.examples.items()}
        clone._specs = dict(self._specs)
        clone._calls = self._calls.copy()
        clone._owns_index = False  # the original closes the shared index
        clone._lock = threading.Lock()
        memo[id(self)] = clone
        return clone

    def __reduce__(self) -> Any:
        raise ConfigurationError(
            "a SemRouterToolSelector cannot be pickled: its index is shared within the "
            "process; build one in the other process with SemRouterToolSelector.from_tools"
        )

    # -- the tool index ------------------------------------------------------------------------
    def specs(self, tools: Sequence[Any]) -> list[ToolSpec]:
        """The :class:`~semrouter.ToolSpec` of each ``BaseTool`` (cached per tool object)."""
        out = []
        for tool in _base_tools(tools):
            known = self._specs.get(id(tool))
            if (
                known is None
                or known[0] is not tool
                or known[1] != tool.name
                or known[2] != tool.description
            ):
                spec = tool_spec(tool, self.examples.get(tool.name, ()))
                known = (tool, tool.name, tool.description, spec)
                with self._lock:
                    self._specs[id(tool)] = known
            out.append(known[3])
        return out

    def index(self, tools: Sequence[Any]) -> None:
        """Index the tools now (selection does it lazily); encodes only texts never seen.
        Selection takes a list of the same tool objects as unchanged: after changing a tool
        in place, call this."""
        self._prepared = None
        self.tool_index.update(self.specs(tools))

    async def aindex(self, tools: Sequence[Any]) -> None:
        """Asynchronous :meth:`index` (the encoder's async path)."""
        self._prepared = None
        await self.tool_index.aupdate(self.specs(tools))

    def _cached(self, tools: Sequence[Any]) -> _Prepared | None:
        key = (tuple(map(id, tools)), tuple(self.always_include))
        prepared = self._prepared
        if prepared is not None and prepared.key == key:
            return prepared if prepared.version == self.tool_index.version else None
        return None

    def _prepare(self, tools: Sequence[Any]) -> _Prepared:
        """The tools split for selection, indexed; reused while the same list of the same
        tool objects comes back and the index did not change (an agent's every model call)."""
        prepared = self._cached(tools)
        if prepared is None:
            self.tool_index.update(self.specs(tools))
            prepared = self._prepared = _Prepared.build(self, tools)
        return prepared

    async def _aprepare(self, tools: Sequence[Any]) -> _Prepared:
        prepared = self._cached(tools)
        if prepared is None:
            await self.tool_index.aupdate(self.specs(tools))
            prepared = self._prepared = _Prepared.build(self, tools)
        return prepared

    # -- ranking --------------------------------------------------------------------------------
    def rank(
        self, query: Any, tools: Sequence[Any] | None = None, limit: int | None = None
    ) -> list[ToolMatch]:
        """``tools`` (default: every indexed tool) ranked for ``query``, best first, each with
        its fused score, its similarity and the score of each of its parts. A tool's rank does
        not depend on ``limit``."""
        names = None if tools is None else self._prepare(tools).names
        return self._rank(query, names, limit)

    async def arank(
        self, query: Any, tools: Sequence[Any] | None = None, limit: int | None = None
    ) -> list[ToolMatch]:
        """Asynchronous :meth:`rank` (the request is encoded on the encoder's async path)."""
        names = None if tools is None else (await self._aprepare(tools)).names
        return await self._arank(query, names, limit)

    def _rank(self, query: Any, names: Iterable[str] | None, limit: int | None) -> list[ToolMatch]:
        text = self._text(query)
        if text is None:
            return []
        ranked = self.tool_index.rank(text, limit, tools=names)
        context = self._context(query, text, ranked)
        return ranked if context is None else self.tool_index.rank(context, limit, tools=names)

    async def _arank(
        self, query: Any, names: Iterable[str] | None, limit: int | None
    ) -> list[ToolMatch]:
        text = self._text(query)
        if text is None:
            return []
        ranked = await self.tool_index.arank(text, limit, tools=names)
        context = self._context(query, text, ranked)
        if context is None:
            return ranked
        return await self.tool_index.arank(context, limit, tools=names)

    def _text(self, query: Any) -> str | None:
        text = routed_text(query)
        return text.strip() or None

    def _context(self, query: Any, text: str, ranked: list[ToolMatch]) -> str | None:
        """The text to rank instead when ``text`` is a follow-up that matches nothing well:
        the user's previous turn and this one."""
        if not self.conversation or not ranked or isinstance(query, str):
            return None
        if max(m.similarity for m in ranked) >= self._threshold():
            return None
        turns = conversation_turns(query)
        if turns is None:
            return None
        users = [t for role, t in turns if role == "user" and t.strip()]
        if len(users) < 2:
            return None
        return f"{users[-2].strip()}\n{text}"

    def _threshold(self) -> float:
        if self.min_score is not None:
            return self.min_score
        return self.tool_index.encoder.default_threshold

    def record_call(self, query: Any, tool_name: str) -> bool:
        """Keep ``query``'s text as an example of ``tool_name`` (stored with the tools): the
        request's vector comes from the index's request cache, so a request that was ranked
        is not encoded again. Returns whether the example was new; see
        :meth:`semrouter.ToolIndex.observe`."""
        text = self._text(query)
        if text is None:
            return False
        if tool_name not in self.tool_index:
            raise ConfigurationError(f"no tool named {tool_name!r} is indexed")
        return self._calls.record(text, [tool_name]) > 0

    def record_calls(self, messages: Any) -> int:
        """Learn from the tool calls in a message list or agent state: each tool called since
        the last human message, whose call a tool message answered without an error, gets
        that message as an example. What ``learn_from_calls=True`` does on every selection.
        Returns how many examples were new."""
        return self._calls.record_turn(messages)

    # -- selection ------------------------------------------------------------------------------
    def _keep(self, prepared: _Prepared, ranked: list[ToolMatch]) -> list[Any]:
        threshold = self.min_score
        if threshold is None and self.max_tools is None:
            threshold = self.tool_index.encoder.default_threshold
        chosen = [m.name for m in ranked if threshold is None or m.similarity >= threshold]
        if not chosen and self.max_tools is None and self.min_score is None:
            selected = prepared.candidates  # nothing passed the threshold: narrow nothing
        else:
            # LLMToolSelectorMiddleware's order: selected (original order), always, dicts.
            position = prepared.position
            selected = [prepared.candidates[i] for i in sorted(position[n] for n in chosen)]
        return [*selected, *prepared.always, *prepared.dicts]

    def select(self, query: Any, tools: Sequence[Any]) -> list[Any]:
        """The tools to offer for ``query`` (ordered as the class says).

        Args:
            query: a str, a message list or an agent state.
            tools: ``BaseTool`` objects; provider tool dicts are passed through untouched.
        """
        prepared = self._prepare(tools)
        if not prepared.candidates or self._text(query) is None:
            return list(tools)
        if self.learn_from_calls and self._calls.pending(query):
            self._calls.learn(query)
        return self._keep(prepared, self._rank(query, prepared.names, self.max_tools))

    async def aselect(self, query: Any, tools: Sequence[Any]) -> list[Any]:
        """Asynchronous :meth:`select`; the request is encoded on the encoder's async path."""
        prepared = await self._aprepare(tools)
        if not prepared.candidates or self._text(query) is None:
            return list(tools)
        if self.learn_from_calls and self._calls.pending(query):
            await asyncio.to_thread(self._calls.learn, query)  # a stored change: off the loop
        return self._keep(prepared, await self._arank(query, prepared.names, self.max_tools))

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


@dataclass(frozen=True, eq=False)
class _Prepared:
    """One tool list split for selection (the list's tool objects are held, so their ids
    stay theirs while this is cached)."""

    key: tuple[tuple[int, ...], tuple[str, ...]]
    version: int
    tools: tuple[Any, ...]
    candidates: list[BaseTool]
    names: frozenset[str]
    position: dict[str, int]
    always: list[BaseTool]
    dicts: list[dict[str, Any]]

    @classmethod
    def build(cls, selector: SemRouterToolSelector, tools: Sequence[Any]) -> _Prepared:
        base = _base_tools(tools)
        names = {t.name for t in base}
        keep = selector.always_include
        missing = [name for name in keep if name not in names]
        if missing:
            raise ConfigurationError(
                f"Tools in always_include not found in request: {missing}. "
                f"Available tools: {sorted(names)}"
            )
        candidates = [t for t in base if t.name not in keep]
        return cls(
            key=(tuple(map(id, tools)), tuple(keep)),
            version=selector.tool_index.version,
            tools=tuple(tools),
            candidates=candidates,
            names=frozenset(t.name for t in candidates),
            position={t.name: i for i, t in enumerate(candidates)},
            always=[t for t in base if t.name in keep],
            dicts=[t for t in tools if isinstance(t, dict)],
        )


def _base_tools(tools: Sequence[Any]) -> list[BaseTool]:
    return [t for t in tools if not isinstance(t, dict)]
