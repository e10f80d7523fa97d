"""Tool retrieval for LlamaIndex agents, ranked by :class:`semrouter.ToolIndex`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.objects.base import ObjectRetriever
from llama_index.core.objects.base_node_mapping import DEFAULT_PERSIST_FNAME, BaseObjectNodeMapping
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.storage.storage_context import DEFAULT_PERSIST_DIR
from llama_index.core.tools.types import BaseTool

from semrouter import (
    ConfigurationError,
    Encoder,
    SemRouterError,
    ToolIndex,
    ToolMatch,
    ToolOptions,
    ToolSpec,
)

from ._conversation import chat_turns
from ._utils import check_thresholds, check_utterances
from .embeddings import as_encoder

if TYPE_CHECKING:
    from llama_index.core.memory import BaseMemory

__all__ = ["SemRouterToolRetriever", "tool_node_id", "tool_spec"]

logger = logging.getLogger("semrouter")
#: Messages a learning retriever remembers the offered tools of (to tell which led to a call).
_OFFERS_KEPT = 256
#: Namespace of the node ids: ``uuid5(_NAMESPACE, tool name)`` is the same in every process.
_NAMESPACE = uuid.UUID("6f1c3f0e-7b0a-5d5e-9a43-2f3d1c0b9e51")


def tool_node_id(name: str) -> str:
    """The node id of the tool called ``name``: a uuid5, stable across processes."""
    return str(uuid.uuid5(_NAMESPACE, name))


def tool_spec(
    tool: BaseTool, examples: Sequence[str] = (), *, include_description: bool = True
) -> ToolSpec:
    """How a LlamaIndex tool is indexed: name, description (without the ``name(signature)``
    line ``FunctionTool`` puts first), arguments from its schema and examples."""
    if not isinstance(tool, BaseTool):
        raise ConfigurationError(f"tools must be LlamaIndex tools, got {type(tool).__name__}")
    name = tool.metadata.name
    if not name:
        raise ConfigurationError("every tool needs a name")
    description = _describe(name, tool.metadata.description or "") if include_description else ""
    try:
        parameters = tool.metadata.get_parameters_dict()
    except Exception:  # a tool whose schema cannot be read is still ranked by its text
        parameters = {}
    return ToolSpec.from_schema(name, description, parameters, examples)


class SemRouterToolRetriever(ObjectRetriever[BaseTool]):
    """Retrieves the best tools for a message, ranked by a :class:`semrouter.ToolIndex`.

    Like LlamaIndex's ``ObjectIndex`` retriever it returns the best ``top_k`` tools for every
    message: an agent is never left without tools. It abstains only when asked, through
    ``min_score`` or per-tool ``thresholds`` on the tools' similarity. Each tool is indexed by
    its name, description, arguments and examples, exactly as the LangChain selector indexes
    it; each distinct text is encoded once per process. A message costs one embedding call (a
    message of several sentences: one call for it and its sentences).

    A query that is exactly a tool's name returns that tool with no embedding call: workflow
    agents (``FunctionAgent``, ``ReActAgent``) look a tool up that way before calling it. With
    ``learn_from_calls=True`` that lookup is the call the retriever learns from: the latest
    message for which it offered the tool becomes an example of the tool, with the message's
    vector (nothing is encoded again), stored with the tools.

    Args:
        tools: the tools to choose from; names must be distinct.
        index: a ready :class:`~semrouter.ToolIndex` (may be shared); default: a new one.
        encoder: the new index's encoder: a semrouter ``Encoder`` or any LlamaIndex
            ``BaseEmbedding`` (default: the shared offline ``LocalEncoder``).
        utterances: example requests per tool name.
        top_k: at most this many tools per message.
        min_score: drop tools whose similarity is below it (``None``: never abstain).
        thresholds: per-tool minimum similarity (overrides ``min_score`` for that tool).
        include_descriptions: index each tool's description.
        memory: the agent's chat memory (give the agent the same one): a short follow-up
            that matches no tool well is ranked with the user's previous message.
        node_postprocessors: LlamaIndex postprocessors applied to the retrieved nodes.
        options: the new index's :class:`~semrouter.ToolOptions`.
        learn_from_calls: learn from the agent's tool calls (see above and
            :meth:`record_call`); every retriever on the same ``path=``/``url=``/``client=``
            shares what is learnt.
        index_fields: for the new index: where its tool set is stored (``location=``, or
            ``path=``/``url=``/``api_key=``/``client=`` ...), ``collection=``,
            ``refresh_interval=`` (see :class:`~semrouter.ToolIndex`).

    Example:
        >>> from llama_index.core.tools import FunctionTool
        >>> from semrouter import FakeEncoder
        >>> def get_weather(city: str) -> str:
        ...     '''The weather forecast for a city.'''
        ...     return "sunny"
        >>> def book_flight(city: str) -> str:
        ...     '''Book a flight to a city.'''
        ...     return "booked"
        >>> retriever = SemRouterToolRetriever.from_defaults(
        ...     [FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(book_flight)],
        ...     encoder=FakeEncoder(), top_k=1,
        ... )
        >>> [tool.metadata.name for tool in retriever.retrieve("weather forecast for Paris")]
        ['get_weather']
    """

    def __init__(
        self,
        tools: Sequence[BaseTool],
        index: ToolIndex | None = None,
        *,
        encoder: Encoder | BaseEmbedding | None = None,
        utterances: Mapping[str, Sequence[str]] | None = None,
        top_k: int = 3,
        min_score: float | None = None,
        thresholds: Mapping[str, float] | None = None,
        include_descriptions: bool = True,
        node_postprocessors: list[BaseNodePostprocessor] | None = None,
        memory: BaseMemory | None = None,
        options: ToolOptions | None = None,
        learn_from_calls: bool = False,
        **index_fields: Any,
    ) -> None:
        if index is not None and not isinstance(index, ToolIndex):
            raise ConfigurationError(
                "index must be a semrouter.ToolIndex (tools are no longer routes of a "
                "SemanticRouter); leave it out and pass encoder= instead"
            )
        if "router" in index_fields:
            raise ConfigurationError(
                "router= is gone: tools are ranked by a semrouter.ToolIndex (index=), stored "
                "where path=/url=/client= say"
            )
        if index is not None and (encoder is not None or options is not None or index_fields):
            raise ConfigurationError(
                "give encoder=, options= and the index's keywords only when the retriever "
                "builds the index, not with index="
            )
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ConfigurationError("top_k must be an integer of at least 1")
        self._owns_index = index is None
        if index is None:
            index = ToolIndex(
                encoder=as_encoder(encoder) if encoder is not None else None,
                options=options,
                **index_fields,
            )
        self._utterances = check_utterances(utterances)
        self.include_descriptions = include_descriptions
        mapping = _ToolNodeMapping()
        retriever = _ToolNodeRetriever(
            index,
            mapping,
            top_k=top_k,
            min_score=min_score,
            thresholds=check_thresholds(thresholds),
            memory=memory,
            learn_from_calls=learn_from_calls,
        )
        super().__init__(retriever, mapping, node_postprocessors=node_postprocessors)
        self._nodes = retriever
        try:
            self.set_tools(tools)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_defaults(cls, tools: Sequence[BaseTool], **kwargs: Any) -> SemRouterToolRetriever:
        """A tool retriever with an index of its own (the keywords of the class, and where
        the tool set is stored: ``path=``, ``url=``, ``client=`` ... or ``location=``).

        Example:
            >>> retriever = SemRouterToolRetriever.from_defaults(  # doctest: +SKIP
            ...     tools, path="./tools_db", learn_from_calls=True
            ... )
        """
        return cls(tools, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "SemRouterToolRetriever"

    @property
    def index(self) -> ToolIndex:
        """The tool index that ranks the tools."""
        return self._nodes.index

    @property
    def tools(self) -> list[BaseTool]:
        """The tools to choose from."""
        return self._nodes.mapping.tools

    @property
    def top_k(self) -> int:
        """At most this many tools per message."""
        return self._nodes.top_k

    @property
    def learn_from_calls(self) -> bool:
        """Whether a tool lookup by name (the agent calling it) is learnt from."""
        return self._nodes.learn_from_calls

    @learn_from_calls.setter
    def learn_from_calls(self, value: bool) -> None:
        self._nodes.learn_from_calls = bool(value)

    def record_call(self, message: str, tool_name: str) -> bool:
        """Keep ``message`` as an example of ``tool_name`` (stored with the tools), with its
        vector from the index's request cache when it was ranked. Returns whether the
        example was new; see :meth:`semrouter.ToolIndex.observe`."""
        return self._nodes.index.observe(tool_name, message)

    def set_tools(self, tools: Sequence[BaseTool]) -> bool:
        """Replace the tools; only texts never seen are encoded. Returns whether the index
        changed."""
        tools = list(tools)
        specs = [
            tool_spec(
                t,
                self._utterances.get(t.metadata.name or "", ()),
                include_description=self.include_descriptions,
            )
            if isinstance(t, BaseTool)
            else tool_spec(t)
            for t in tools
        ]
        if len({s.name for s in specs}) != len(specs):
            raise ConfigurationError("tool names must be distinct")
        changed = self._nodes.index.update(specs)
        self._nodes.mapping.replace(tools)
        return changed

    def rank(self, message: str, limit: int | None = None) -> list[ToolMatch]:
        """The retriever's tools ranked for ``message`` with every part's score (no
        threshold, no ``top_k``: ranks never depend on how many are asked for)."""
        return self._nodes.index.rank(message, limit, tools=self._nodes.mapping.names)

    def close(self) -> None:
        """Close the index if this retriever built it (an index passed in is its owner's)."""
        if self._owns_index:
            self._nodes.index.close()


def _describe(name: str, description: str) -> str:
    """The description without the ``name(signature)`` line ``FunctionTool`` puts first."""
    first, newline, rest = description.partition("\n")
    if newline and first.startswith(f"{name}(") and rest.strip():
        return rest.strip()
    return description


class _ToolNodeMapping(BaseObjectNodeMapping[BaseTool]):
    """Tools by stable node id (a uuid5 of the name, not Python's salted ``hash()``)."""

    def __init__(self) -> None:
        self._by_id: dict[str, BaseTool] = {}

    @classmethod
    def from_objects(cls, objs: Sequence[BaseTool], *args: Any, **kwargs: Any) -> _ToolNodeMapping:
        mapping = cls()
        mapping.replace(objs)
        return mapping

    @property
    def tools(self) -> list[BaseTool]:
        return list(self._by_id.values())

    @property
    def names(self) -> list[str]:
        return [tool.metadata.get_name() for tool in self._by_id.values()]

    @property
    def obj_node_mapping(self) -> dict[str, BaseTool]:
        return dict(self._by_id)

    def replace(self, tools: Sequence[BaseTool]) -> None:
        self._by_id = {tool_node_id(tool.metadata.get_name()): tool for tool in tools}

    def _add_object(self, obj: BaseTool) -> None:
        self._by_id[tool_node_id(obj.metadata.get_name())] = obj

    def to_node(self, obj: BaseTool) -> TextNode:
        name = obj.metadata.get_name()
        return TextNode(
            id_=tool_node_id(name), text=obj.metadata.description, metadata={"tool_name": name}
        )

    def _from_node(self, node: BaseNode) -> BaseTool:
        return self._by_id[node.node_id]

    def persist(
        self,
        persist_dir: str = DEFAULT_PERSIST_DIR,
        obj_node_mapping_fname: str = DEFAULT_PERSIST_FNAME,
    ) -> None:
        raise NotImplementedError(
            "the tools are stored in the tool index's Qdrant collection (path=, url=, "
            "client=); build the retriever from the tools on the same location"
        )


class _ToolNodeRetriever(BaseRetriever):
    """Tool nodes for a message, ranked by the tool index (what ``ObjectRetriever`` wraps)."""

    def __init__(
        self,
        index: ToolIndex,
        mapping: _ToolNodeMapping,
        *,
        top_k: int,
        min_score: float | None,
        thresholds: dict[str, float],
        memory: BaseMemory | None = None,
        learn_from_calls: bool = False,
    ) -> None:
        super().__init__()
        self.index = index
        self.mapping = mapping
        self.top_k = top_k
        self.min_score = min_score
        self.thresholds = thresholds
        self.memory = memory
        self.learn_from_calls = learn_from_calls
        self._offers: OrderedDict[str, frozenset[str]] = OrderedDict()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        text = query_bundle.query_str.strip()
        if not text:
            return []
        named = self._by_name(text)
        if named is not None:
            if self.learn_from_calls:
                self._learn(text)
            return named
        names = self.mapping.names
        matches = self.index.rank(text, self.top_k, tools=names)
        if self.memory is not None:
            context = self._context(chat_turns(self.memory.get(), query_bundle.query_str), matches)
            if context is not None:
                matches = self.index.rank(context, self.top_k, tools=names)
        return self._offer(text, self._nodes(matches))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        text = query_bundle.query_str.strip()
        if not text:
            return []
        named = self._by_name(text)
        if named is not None:
            if self.learn_from_calls:
                await asyncio.to_thread(self._learn, text)  # a stored change: off the loop
            return named
        names = self.mapping.names
        matches = await self.index.arank(text, self.top_k, tools=names)
        if self.memory is not None:
            turns = chat_turns(await self.memory.aget(), query_bundle.query_str)
            context = self._context(turns, matches)
            if context is not None:
                matches = await self.index.arank(context, self.top_k, tools=names)
        return self._offer(text, self._nodes(matches))

    # -- learning from calls -------------------------------------------------------------------
    def _offer(self, text: str, nodes: list[NodeWithScore]) -> list[NodeWithScore]:
        """Remember which tools ``text`` was offered (when learning), newest last."""
        if self.learn_from_calls and nodes:
            self._offers[text] = frozenset(str(n.node.metadata.get("tool_name")) for n in nodes)
            self._offers.move_to_end(text)
            while len(self._offers) > _OFFERS_KEPT:
                self._offers.popitem(last=False)
        return nodes

    def _learn(self, name: str) -> None:
        """The agent looked tool ``name`` up to call it: the latest message it was offered
        for becomes its example (once). Never fails the agent's call."""
        message = next(
            (m for m, offered in reversed(self._offers.items()) if name in offered), None
        )
        if message is None:
            return
        self._offers[message] = self._offers[message] - {name}
        try:
            self.index.observe(name, message)
        except SemRouterError as exc:
            logger.warning("could not learn from the agent's call of %r: %s", name, exc)

    def _context(self, turns: list[tuple[str, str]], matches: list[ToolMatch]) -> str | None:
        """The previous user message and this one, when this one is a follow-up that matches
        no tool well."""
        users = [text for role, text in turns if role == "user" and text.strip()]
        threshold = (
            self.min_score if self.min_score is not None else self.index.encoder.default_threshold
        )
        if len(users) < 2 or not matches or max(m.similarity for m in matches) >= threshold:
            return None
        return f"{users[-2].strip()}\n{users[-1].strip()}"

    def _by_name(self, text: str) -> list[NodeWithScore] | None:
        tool = self.mapping.obj_node_mapping.get(tool_node_id(text))
        if tool is None:
            return None
        return [NodeWithScore(node=self.mapping.to_node(tool), score=1.0)]

    def _nodes(self, matches: list[ToolMatch]) -> list[NodeWithScore]:
        by_id = self.mapping.obj_node_mapping
        nodes = []
        for match in matches:
            floor = self.thresholds.get(match.name, self.min_score)
            if floor is not None and match.similarity < floor:
                continue
            tool = by_id.get(tool_node_id(match.name))
            if tool is not None:
                nodes.append(NodeWithScore(node=self.mapping.to_node(tool), score=match.similarity))
        return nodes
