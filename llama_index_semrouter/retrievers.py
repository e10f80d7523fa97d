"""Tool retrieval for LlamaIndex agents by semantic routes held in Qdrant."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
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
    ConversationRouter,
    Encoder,
    Route,
    RouteMatch,
    SemanticRouter,
    SyncReport,
)

from ._conversation import chat_turns
from ._utils import build_router, check_thresholds, check_utterances, route_for

if TYPE_CHECKING:
    from llama_index.core.memory import BaseMemory

__all__ = ["SemRouterToolRetriever", "tool_node_id", "tool_routes"]

#: Namespace of the node ids: ``uuid5(_NAMESPACE, tool name)`` is the same in every process.
_NAMESPACE = uuid.UUID("6f1c3f0e-7b0a-5d5e-9a43-2f3d1c0b9e51")


def tool_node_id(name: str) -> str:
    """The node id of the tool called ``name``: a uuid5, stable across processes."""
    return str(uuid.uuid5(_NAMESPACE, name))


class SemRouterToolRetriever(ObjectRetriever[BaseTool]):
    """Retrieves the tools whose semantic routes a message is closest to.

    Each tool becomes a route named after the tool, whose utterances are its description plus
    the example requests given in ``utterances``. The route vectors are encoded once and kept
    in Qdrant (persistent with ``path=`` or ``url=``); a message costs one embedding call.
    ``retrieve`` and ``aretrieve`` apply the same thresholds: with ``apply_threshold=True``
    (default) a message close to no tool gets no tools; with ``False`` it gets the best
    ``top_k`` whatever their score.

    A query that is exactly a tool's name returns that tool with no embedding call: workflow
    agents look a tool up that way before calling it.

    Args:
        tools: the tools to choose from; names must be distinct.
        router: the semantic router that holds the routes: its own (an empty router, or one
            holding only tool routes); a router with other routes is refused, never changed.
        utterances: example requests per tool name.
        top_k: at most this many tools per message.
        apply_threshold: drop tools below their threshold.
        thresholds: per-tool score thresholds.
        include_descriptions: use each tool's description as one of its utterances.
        memory: the agent's chat memory (give the agent the same one, e.g.
            ``agent.run(msg, memory=memory)``): the message is then routed with the chat as a
            conversation (:meth:`semrouter.ConversationRouter.shared`), so a follow-up keeps
            the tools of the request it follows. Agents pass the retriever the current
            message alone; without ``memory`` that is all that is routed.
        node_postprocessors: LlamaIndex postprocessors applied to the retrieved nodes.

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
        ...     encoder=FakeEncoder(),
        ... )
        >>> [tool.metadata.name for tool in retriever.retrieve("weather forecast for Paris")]
        ['get_weather']
    """

    def __init__(
        self,
        tools: Sequence[BaseTool],
        router: SemanticRouter,
        *,
        utterances: Mapping[str, Sequence[str]] | None = None,
        top_k: int = 3,
        apply_threshold: bool = True,
        thresholds: Mapping[str, float] | None = None,
        include_descriptions: bool = True,
        node_postprocessors: list[BaseNodePostprocessor] | None = None,
        memory: BaseMemory | None = None,
    ) -> None:
        if not isinstance(router, SemanticRouter):
            raise ConfigurationError("router must be a semrouter.SemanticRouter")
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigurationError("top_k must be an integer of at least 1")
        _check_tool_router(router)
        self._router = router
        self._utterances = check_utterances(utterances)
        self._thresholds = check_thresholds(thresholds)
        self.include_descriptions = include_descriptions
        self._owns_router = False
        mapping = _ToolNodeMapping()
        retriever = _RouteNodeRetriever(
            router, mapping, top_k=top_k, apply_threshold=apply_threshold, memory=memory
        )
        super().__init__(retriever, mapping, node_postprocessors=node_postprocessors)
        self._routes = retriever
        self.set_tools(tools)

    @classmethod
    def from_defaults(
        cls,
        tools: Sequence[BaseTool],
        *,
        utterances: Mapping[str, Sequence[str]] | None = None,
        top_k: int = 3,
        apply_threshold: bool = True,
        thresholds: Mapping[str, float] | None = None,
        include_descriptions: bool = True,
        node_postprocessors: list[BaseNodePostprocessor] | None = None,
        memory: BaseMemory | None = None,
        encoder: Encoder | BaseEmbedding | None = None,
        threshold: float | None = None,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        aclient: Any = None,
        collection: str = "llama-index-tools",
        **router_options: Any,
    ) -> SemRouterToolRetriever:
        """A tool retriever with a router of its own.

        Args:
            tools: see the class.
            utterances: see the class.
            top_k: see the class.
            apply_threshold: see the class.
            thresholds: see the class.
            include_descriptions: see the class.
            node_postprocessors: see the class.
            memory: see the class.
            encoder: a semrouter ``Encoder`` or any LlamaIndex ``BaseEmbedding`` (default:
                the offline ``LocalEncoder``).
            threshold: the score a tool needs when ``thresholds`` sets none for it.
            path: a folder that keeps the route vectors between runs.
            url: a Qdrant server instead of the embedded store.
            api_key: the server's API key.
            client: a ready ``QdrantClient``.
            aclient: a ready ``AsyncQdrantClient`` beside ``client``.
            collection: the Qdrant collection.
            **router_options: further :class:`semrouter.SemanticRouter` options.
        """
        routes = tool_routes(
            tools, check_utterances(utterances), check_thresholds(thresholds), include_descriptions
        )
        router = build_router(
            routes,
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
            retriever = cls(
                tools,
                router,
                utterances=utterances,
                top_k=top_k,
                apply_threshold=apply_threshold,
                thresholds=thresholds,
                include_descriptions=include_descriptions,
                node_postprocessors=node_postprocessors,
                memory=memory,
            )
        except BaseException:
            router.close()
            raise
        retriever._owns_router = True
        return retriever

    @classmethod
    def class_name(cls) -> str:
        return "SemRouterToolRetriever"

    @property
    def router(self) -> SemanticRouter:
        """The semantic router that holds the tools' routes."""
        return self._router

    @property
    def tools(self) -> list[BaseTool]:
        """The tools to choose from."""
        return self._routes.mapping.tools

    @property
    def top_k(self) -> int:
        """At most this many tools per message."""
        return self._routes.top_k

    def set_tools(self, tools: Sequence[BaseTool]) -> SyncReport:
        """Replace the tools; only new utterances are encoded."""
        tools = list(tools)
        routes = tool_routes(tools, self._utterances, self._thresholds, self.include_descriptions)
        _check_tool_router(self._router)
        report = self._router.set_routes(routes)
        self._routes.mapping.replace(tools)
        return report

    def close(self) -> None:
        """Close the router if the retriever made it (``from_defaults``)."""
        if self._owns_router:
            self._router.close()


def tool_routes(
    tools: Sequence[BaseTool],
    utterances: Mapping[str, Sequence[str]],
    thresholds: Mapping[str, float],
    include_descriptions: bool,
) -> list[Route]:
    """One route per tool, named after the tool."""
    routes: list[Route] = []
    for tool in tools:
        if not isinstance(tool, BaseTool):
            raise ConfigurationError(f"tools must be LlamaIndex tools, got {type(tool).__name__}")
        name = tool.metadata.name
        if not name:
            raise ConfigurationError("every tool needs a name")
        if any(route.name == name for route in routes):
            raise ConfigurationError(f"tool names must be distinct; repeated: {name!r}")
        routes.append(
            route_for(
                name,
                _describe(name, tool.metadata.description or ""),
                utterances.get(name, ()),
                threshold=thresholds.get(name),
                include_description=include_descriptions,
                label="tool",
            )
        )
    return routes


def _check_tool_router(router: SemanticRouter) -> None:
    """A retriever replaces its router's routes with its tools: it never takes a router that
    holds routes it did not make (tool routes carry ``metadata["kind"] == "tool"``)."""
    foreign = [r.name for r in router.routes if r.metadata.get("kind") != "tool"]
    if foreign:
        raise ConfigurationError(
            f"the router holds routes that are not tool routes ({foreign[:5]}); the tool "
            "retriever replaces its router's routes with its tools and never changes routes it "
            "did not make: give it a router of its own (SemRouterToolRetriever.from_defaults(...) "
            "or an empty SemanticRouter)"
        )


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
    def obj_node_mapping(self) -> dict[str, BaseTool]:
        return dict(self._by_id)

    def replace(self, tools: Sequence[BaseTool]) -> None:
        self._by_id = {tool_node_id(tool.metadata.get_name()): tool for tool in tools}

    def _add_object(self, obj: BaseTool) -> None:
        self._by_id[tool_node_id(obj.metadata.get_name())] = obj

    def to_node(self, obj: BaseTool) -> TextNode:
        name = obj.metadata.get_name()
        return TextNode(
            id_=tool_node_id(name),
            text=obj.metadata.description,
            metadata={"tool_name": name},
        )

    def _from_node(self, node: BaseNode) -> BaseTool:
        return self._by_id[node.node_id]

    def persist(
        self,
        persist_dir: str = DEFAULT_PERSIST_DIR,
        obj_node_mapping_fname: str = DEFAULT_PERSIST_FNAME,
    ) -> None:
        raise NotImplementedError(
            "tool routes are persisted in Qdrant; pass path= or url= to keep them between runs"
        )


class _RouteNodeRetriever(BaseRetriever):
    """Tool nodes for a message, scored by the router (what ``ObjectRetriever`` wraps)."""

    def __init__(
        self,
        router: SemanticRouter,
        mapping: _ToolNodeMapping,
        *,
        top_k: int,
        apply_threshold: bool,
        memory: BaseMemory | None = None,
    ) -> None:
        super().__init__()
        self.router = router
        self.mapping = mapping
        self.top_k = top_k
        self.apply_threshold = apply_threshold
        self.memory = memory

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        text = query_bundle.query_str.strip()
        if not text:
            return []
        named = self._by_name(text)
        if named is not None:
            return named
        if self.memory is not None:
            turns = chat_turns(self.memory.get(), query_bundle.query_str)
            conversation = ConversationRouter.shared(self.router)
            matches = conversation.top_routes(
                turns, self.top_k, apply_threshold=self.apply_threshold
            )
        else:
            matches = self.router.top_routes(text, self.top_k, apply_threshold=self.apply_threshold)
        return self._nodes(matches)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        text = query_bundle.query_str.strip()
        if not text:
            return []
        named = self._by_name(text)
        if named is not None:
            return named
        if self.memory is not None:
            turns = chat_turns(await self.memory.aget(), query_bundle.query_str)
            conversation = ConversationRouter.shared(self.router)
            matches = await conversation.atop_routes(
                turns, self.top_k, apply_threshold=self.apply_threshold
            )
        else:
            matches = await self.router.atop_routes(
                text, self.top_k, apply_threshold=self.apply_threshold
            )
        return self._nodes(matches)

    def _by_name(self, text: str) -> list[NodeWithScore] | None:
        tool = self.mapping.obj_node_mapping.get(tool_node_id(text))
        if tool is None:
            return None
        return [NodeWithScore(node=self.mapping.to_node(tool), score=1.0)]

    def _nodes(self, matches: list[RouteMatch]) -> list[NodeWithScore]:
        by_id = self.mapping.obj_node_mapping
        nodes = []
        for match in matches:
            if match.name is None:
                continue
            tool = by_id.get(tool_node_id(match.name))
            if tool is not None:
                nodes.append(NodeWithScore(node=self.mapping.to_node(tool), score=match.score))
        return nodes
