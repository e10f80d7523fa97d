"""SemRouterBranch: a drop-in for ``RunnableBranch`` whose conditions are semantic routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.base import RunnableLike, coerce_to_runnable
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    get_config_list,
    get_executor_for_config,
    patch_config,
)
from langchain_core.runnables.graph import Graph
from langchain_core.runnables.utils import (
    ConfigurableFieldSpec,
    gather_with_concurrency,
    get_unique_config_specs,
)
from langchain_core.utils.pydantic import TypeBaseModel
from pydantic import ConfigDict, PrivateAttr
from typing_extensions import TypeVar

from semrouter import (
    ConfigurationError,
    ConversationMatch,
    ConversationRouter,
    Encoder,
    InvalidQueryError,
    NoRouteMatchedError,
    QueryTypeError,
    Route,
    RouteMatch,
    SemanticRouter,
)

from ._branching import (
    Plan,
    Total,
    check_given_router,
    default_encoder,
    own_routes,
    parse_branches,
)
from ._conversation import conversation_turns
from ._text import RouteOn, routed_text

__all__ = ["SemRouterBranch"]

# Defaults (PEP 696) let `branch = SemRouterBranch({...})` type-check without an annotation when
# the branches do not pin the types (lambdas, mappings), as RunnableBranch's do.
Input = TypeVar("Input", default=Any)
Output = TypeVar("Output", default=Any)

_DEFAULT_TAG = "branch:default"


class SemRouterBranch(RunnableSerializable[Input, Output]):
    """Runs the branch whose route best matches the input's meaning; ``RunnableBranch``'s twin.

    Conditions become routes: give ``(route_or_name, runnable)`` pairs and a default, as for
    ``RunnableBranch``, or a mapping ``{route_name: runnable}`` and ``default=``. The chosen
    branch receives the original input unchanged. Names refer to routes of ``router``; with
    :class:`~semrouter.Route` objects and no ``router`` a router is built for them (with the
    process-wide :meth:`~semrouter.LocalEncoder.shared` encoder unless ``encoder=`` is given).
    A router that is given is never changed: a ``Route`` object it does not hold is refused.

    Inputs with no text to route (empty, blank, ``None``, a dict with several str values and
    no ``route_on``...) run the default branch, as ``RunnableBranch`` runs its default when no
    condition holds; the reason is in the child run's metadata (``semrouter_reason``). Without
    a default they raise :class:`~semrouter.InvalidQueryError` / :class:`~semrouter.QueryTypeError`.

    ``copy.deepcopy`` and ``model_copy(deep=True)`` share the router (it holds live clients, like
    an LLM client). Pickling works for a branch that built its router from ``Route`` objects:
    the routes and the encoder are pickled and the router rebuilt; a branch given ``router=``
    refuses to pickle with a :class:`~semrouter.ConfigurationError`.

    Args:
        *branches: ``(route_or_name, runnable)`` pairs, then optionally the default runnable;
            or one mapping of route names to runnables.
        router: the router holding the routes.
        default: the runnable for inputs that match no route (if not given positionally).
        encoder: the encoder of the router built when ``router`` is not given.
        route_on: which text is routed: ``None`` (a str input itself, the last human message
            of a message list or of a dict's ``"messages"``, a dict's only str value), a key of
            a dict input, or a callable ``input -> str``.
        conversation: with ``route_on=None``, route a message list or a ``{"messages": ...}``
            state as a conversation (:meth:`semrouter.ConversationRouter.shared`): a
            follow-up keeps the route its conversation is on; the run metadata's
            ``semrouter_turns`` lists the turns that counted. ``False``: the last human
            message alone.

    Raises:
        NoRouteMatchedError: at run time, when no route matches and there is no default.

    Example:
        >>> from semrouter import FakeEncoder, Route
        >>> branch = SemRouterBranch(
        ...     (Route("greet", ["hello there"]), lambda x: "hi!"),
        ...     (Route("bye", ["goodbye now"]), lambda x: "bye!"),
        ...     lambda x: "sorry?",
        ...     encoder=FakeEncoder(),
        ... )
        >>> branch.invoke("hello there, friend")
        'hi!'
    """

    branches: dict[str, Runnable[Input, Output]]
    """Route name to runnable, in declaration order."""
    default: Runnable[Input, Output] | None
    """The runnable for inputs that match no branch, if any."""
    router: Any
    """The :class:`~semrouter.SemanticRouter` that picks the branch."""
    route_on: Any = None
    """Which text of the input is routed (see the class docs)."""
    conversation: bool = True
    """Route message lists and ``{"messages": ...}`` states as conversations."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # (routes, encoder) the branch built its router from, to rebuild it when unpickled.
    _spec: tuple[list[Route], Encoder] | None = PrivateAttr(default=None)
    _owns_router: bool = PrivateAttr(default=False)

    def __init__(
        self,
        *branches: tuple[Route | str, RunnableLike[Input, Output]]
        | Mapping[str, RunnableLike[Input, Output]]
        | RunnableLike[Input, Output],
        router: SemanticRouter | None = None,
        default: RunnableLike[Input, Output] | None = None,
        encoder: Encoder | None = None,
        route_on: RouteOn = None,
        conversation: bool = True,
    ) -> None:
        pairs, default = parse_branches(branches, default)
        keys = [key for key, _ in pairs]
        spec: tuple[list[Route], Encoder] | None = None
        if router is None:
            routes = own_routes(keys)
            spec = (routes, encoder if encoder is not None else default_encoder())
            router = SemanticRouter(spec[0], encoder=spec[1])
        elif encoder is not None:
            raise ConfigurationError("give encoder= only when SemRouterBranch builds the router")
        else:
            check_given_router(router, keys)
        names = [key.name if isinstance(key, Route) else key for key, _ in pairs]
        unknown = [name for name in names if name not in router.route_names]
        if unknown:
            raise ConfigurationError(
                f"branches name routes the router does not hold: {unknown}; "
                f"routes: {router.route_names}"
            )
        if len(set(names)) != len(names):
            raise ConfigurationError(f"a route has two branches: {names}")
        fields: dict[str, Any] = {
            "branches": {n: coerce_to_runnable(r) for n, (_, r) in zip(names, pairs, strict=True)},
            "default": coerce_to_runnable(default) if default is not None else None,
            "router": router,
            "route_on": route_on,
            "conversation": conversation,
        }
        try:
            super().__init__(**fields)
        except BaseException:
            if spec is not None:
                router.close()
            raise
        self._spec = spec
        self._owns_router = spec is not None

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """``False``: the router holds live clients."""
        return False

    def close(self) -> None:
        """Close the router if this branch built it (a given router stays open)."""
        if self._owns_router:
            self.router.close()

    # -- copies share the router; pickles rebuild an own router ---------------------------------
    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> SemRouterBranch[Input, Output]:
        memo = {} if memo is None else memo
        memo.setdefault(id(self.router), self.router)
        clone = super().__deepcopy__(memo)
        clone._owns_router = False  # the original closes the shared router
        return clone

    def __getstate__(self) -> dict[Any, Any]:
        if self._spec is None:
            raise ConfigurationError(
                "a SemRouterBranch given router= cannot be pickled: a router holds live Qdrant "
                "clients and is shared, not copied. Share the branch (or the router) within the "
                "process, or build the branch from Route objects without router= so that its "
                "routes and encoder are pickled and the router rebuilt"
            )
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "router": None}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        if self._spec is not None:
            routes, encoder = self._spec
            self.__dict__["router"] = SemanticRouter(routes, encoder=encoder)
            self._owns_router = True

    # -- schema and graph, delegated as RunnableBranch does ------------------------------------
    def _runnables(self) -> list[Runnable[Input, Output]]:
        return ([self.default] if self.default is not None else []) + list(self.branches.values())

    def get_input_schema(self, config: RunnableConfig | None = None) -> TypeBaseModel:
        """The first branch input schema that declares a type, as ``RunnableBranch`` does."""
        for runnable in self._runnables():
            if runnable.get_input_jsonschema(config).get("type") is not None:
                return runnable.get_input_schema(config)
        return super().get_input_schema(config)

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        """The configurable fields of every branch."""
        return get_unique_config_specs(
            spec for step in self._runnables() for spec in step.config_specs
        )

    def get_graph(self, config: RunnableConfig | None = None) -> Graph:
        """Input, this router, one conditional edge per branch (labelled by route), output."""
        graph = Graph()
        input_node = graph.add_node(self.get_input_schema(config))
        router_node = graph.add_node(self)
        output_node = graph.add_node(self.get_output_schema(config))
        graph.add_edge(input_node, router_node)
        labelled = [*self.branches.items()]
        if self.default is not None:
            labelled.append(("default", self.default))
        for label, runnable in labelled:
            sub = runnable.get_graph(config)
            sub.trim_first_node()
            sub.trim_last_node()
            if not sub:
                graph.add_edge(router_node, output_node, label, conditional=True)
                continue
            first, last = graph.extend(sub, prefix=label)
            if first is None or last is None:  # pragma: no cover - a non-empty graph has both
                raise ValueError(f"the branch {label!r} has an empty graph")
            graph.add_edge(router_node, first, label, conditional=True)
            graph.add_edge(last, output_node)
        return graph

    # -- choosing the branch -------------------------------------------------------------------
    def _text(self, value: Any) -> str:
        if value is None:
            raise InvalidQueryError("the input is None")
        text = routed_text(value, self.route_on)
        if not text.strip():
            raise InvalidQueryError("the routed text is empty")
        return text

    def _turns(self, value: Any) -> list[tuple[str, str]] | None:
        """The conversation ``value`` holds, when it is routed as one (see ``conversation``)."""
        if not self.conversation or self.route_on is not None:
            return None
        return conversation_turns(value)

    def _conversation(self) -> ConversationRouter:
        return ConversationRouter.shared(self.router)

    def _unroutable(
        self, exc: InvalidQueryError | QueryTypeError
    ) -> tuple[Runnable[Input, Output], str, dict[str, Any]]:
        """The default branch for an input with no text to route, or ``exc`` without one."""
        if self.default is None:
            raise exc
        metadata = {"semrouter_route": None, "semrouter_reason": f"{type(exc).__name__}: {exc}"}
        return self.default, _DEFAULT_TAG, metadata

    def _pick(self, input: Any) -> tuple[Runnable[Input, Output], str, dict[str, Any]]:
        try:
            text = self._text(input)
            turns = self._turns(input)
        except (InvalidQueryError, QueryTypeError) as exc:
            return self._unroutable(exc)
        if turns is not None:
            return self._choose(self._conversation().route(turns), text)
        return self._choose(self.router.route(text), text)

    async def _apick(self, input: Any) -> tuple[Runnable[Input, Output], str, dict[str, Any]]:
        try:
            text = self._text(input)
            turns = self._turns(input)
        except (InvalidQueryError, QueryTypeError) as exc:
            return self._unroutable(exc)
        if turns is not None:
            return self._choose(await self._conversation().aroute(turns), text)
        return self._choose(await self.router.aroute(text), text)

    def _choose(
        self, match: RouteMatch, text: str
    ) -> tuple[Runnable[Input, Output], str, dict[str, Any]]:
        metadata: dict[str, Any] = {
            "semrouter_route": match.name,
            "semrouter_score": round(match.score, 6),
            "semrouter_utterance": match.utterance,
        }
        if isinstance(match, ConversationMatch):
            metadata["semrouter_turns"] = [turn.index for turn in match.turns]
        if match.name is not None and match.name in self.branches:
            return self.branches[match.name], f"route:{match.name}", metadata
        if self.default is not None:
            return self.default, _DEFAULT_TAG, metadata
        best = ", ".join(f"{n}={s:.3f}" for n, s in list(match.scores.items())[:3])
        raise NoRouteMatchedError(
            f"no route matched {text[:80]!r} (best: {best or 'none'}) and SemRouterBranch "
            "has no default; add a default runnable or lower the threshold"
        )

    @staticmethod
    def _child(
        config: RunnableConfig,
        run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
        tag: str,
        metadata: dict[str, Any],
    ) -> RunnableConfig:
        child = patch_config(config, callbacks=run_manager.get_child(tag=tag))
        child["metadata"] = {**(config.get("metadata") or {}), **metadata}
        return child

    def _run_name(self, config: RunnableConfig) -> str:
        return config.get("run_name") or self.get_name()

    # -- invoke --------------------------------------------------------------------------------
    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        """Route the input, then invoke the chosen branch on it."""
        config = ensure_config(config)
        run_manager = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=self._run_name(config), run_id=config.pop("run_id", None)
        )
        try:
            runnable, tag, meta = self._pick(input)
            output = runnable.invoke(input, self._child(config, run_manager, tag, meta), **kwargs)
        except BaseException as exc:
            run_manager.on_chain_error(exc)
            raise
        run_manager.on_chain_end(output)
        return output

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        """Asynchronous :meth:`invoke`: async encoder and async index, nothing blocking."""
        config = ensure_config(config)
        run_manager = await get_async_callback_manager_for_config(config).on_chain_start(
            None, input, name=self._run_name(config), run_id=config.pop("run_id", None)
        )
        try:
            runnable, tag, meta = await self._apick(input)
            child = self._child(config, run_manager, tag, meta)
            output = await runnable.ainvoke(input, child, **kwargs)
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(output)
        return output

    # -- stream --------------------------------------------------------------------------------
    def stream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Output]:
        """Route the input, then pass the chosen branch's chunks through as they come."""
        config = ensure_config(config)
        run_manager = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=self._run_name(config), run_id=config.pop("run_id", None)
        )
        total = Total()
        try:
            runnable, tag, meta = self._pick(input)
            child = self._child(config, run_manager, tag, meta)
            for chunk in runnable.stream(input, child, **kwargs):
                yield chunk
                total.add(chunk)
        except BaseException as exc:
            run_manager.on_chain_error(exc)
            raise
        run_manager.on_chain_end(total.value)

    async def astream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Output]:
        """Asynchronous :meth:`stream`."""
        config = ensure_config(config)
        run_manager = await get_async_callback_manager_for_config(config).on_chain_start(
            None, input, name=self._run_name(config), run_id=config.pop("run_id", None)
        )
        total = Total()
        try:
            runnable, tag, meta = await self._apick(input)
            child = self._child(config, run_manager, tag, meta)
            async for chunk in runnable.astream(input, child, **kwargs):
                yield chunk
                total.add(chunk)
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(total.value)

    # -- batch ---------------------------------------------------------------------------------
    def batch(
        self,
        inputs: list[Input],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Output]:
        """Route every input in one batched call, then batch each branch over its inputs."""
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        runs = [
            get_callback_manager_for_config(c).on_chain_start(
                None, x, name=self._run_name(c), run_id=c.pop("run_id", None)
            )
            for x, c in zip(inputs, configs, strict=True)
        ]
        plan = Plan(self, inputs)
        plan.route(self.router)

        def run_group(group: tuple[Runnable[Input, Output], list[int]]) -> None:
            runnable, indices = group
            child = [self._child(configs[i], runs[i], *plan.choice[i]) for i in indices]
            outs = runnable.batch(
                [inputs[i] for i in indices], child, return_exceptions=True, **kwargs
            )
            plan.collect(indices, outs)

        def run_one(i: int) -> None:
            # With max_concurrency, at most that many branch runs at once (as Runnable.batch).
            child = self._child(configs[i], runs[i], *plan.choice[i])
            try:
                plan.collect([i], [plan.runnable[i].invoke(inputs[i], child, **kwargs)])
            except Exception as exc:
                plan.collect([i], [exc])

        with get_executor_for_config(configs[0]) as executor:
            if configs[0].get("max_concurrency") is None:
                list(executor.map(run_group, plan.groups()))
            else:
                list(executor.map(run_one, sorted(plan.runnable)))
        for i, run in enumerate(runs):
            if i in plan.errors:
                run.on_chain_error(plan.errors[i])
            else:
                run.on_chain_end(plan.outputs[i])
        return plan.result(return_exceptions)

    async def abatch(
        self,
        inputs: list[Input],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Output]:
        """Asynchronous :meth:`batch`: one async routing call, then the branches concurrently."""
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        runs = await asyncio.gather(
            *(
                get_async_callback_manager_for_config(c).on_chain_start(
                    None, x, name=self._run_name(c), run_id=c.pop("run_id", None)
                )
                for x, c in zip(inputs, configs, strict=True)
            )
        )
        plan = Plan(self, inputs)
        await plan.aroute(self.router)

        async def run_group(group: tuple[Runnable[Input, Output], list[int]]) -> None:
            runnable, indices = group
            child = [self._child(configs[i], runs[i], *plan.choice[i]) for i in indices]
            outs = await runnable.abatch(
                [inputs[i] for i in indices], child, return_exceptions=True, **kwargs
            )
            plan.collect(indices, outs)

        async def run_one(i: int) -> None:
            child = self._child(configs[i], runs[i], *plan.choice[i])
            try:
                plan.collect([i], [await plan.runnable[i].ainvoke(inputs[i], child, **kwargs)])
            except Exception as exc:
                plan.collect([i], [exc])

        limit = configs[0].get("max_concurrency")
        if limit is None:
            await asyncio.gather(*(run_group(group) for group in plan.groups()))
        else:
            await gather_with_concurrency(limit, *(run_one(i) for i in sorted(plan.runnable)))
        await asyncio.gather(
            *(
                run.on_chain_error(plan.errors[i])
                if i in plan.errors
                else run.on_chain_end(plan.outputs[i])
                for i, run in enumerate(runs)
            )
        )
        return plan.result(return_exceptions)
