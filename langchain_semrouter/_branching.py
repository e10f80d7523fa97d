"""The plumbing of SemRouterBranch: parsing its branches, batch book-keeping, stream totals.

Also the rules of a router this package builds itself, for every component: its encoder
(:func:`default_encoder`), its routes (:func:`own_routes`) and never changing a router the user
gave (:func:`check_given_router`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable

from semrouter import (
    ConfigurationError,
    Encoder,
    InvalidQueryError,
    QueryTypeError,
    Route,
    RouteMatch,
    SemanticRouter,
)

if TYPE_CHECKING:
    from .runnables import SemRouterBranch

__all__ = [
    "Plan",
    "Total",
    "check_given_router",
    "default_encoder",
    "own_routes",
    "parse_branches",
]


class Plan:
    """Book-keeping of one batch: texts, routing, the branch of each input, outputs, errors."""

    def __init__(self, branch: SemRouterBranch[Any, Any], inputs: Sequence[Any]) -> None:
        self.branch = branch
        self.errors: dict[int, BaseException] = {}
        self.outputs: dict[int, Any] = {}
        self.choice: dict[int, tuple[str, dict[str, Any]]] = {}
        self.runnable: dict[int, Runnable[Any, Any]] = {}
        self.texts: dict[int, str] = {}
        self.turns: dict[int, list[tuple[str, str]]] = {}  # inputs routed as conversations
        self.size = len(inputs)
        for i, value in enumerate(inputs):
            try:
                self.texts[i] = branch._text(value)
                turns = branch._turns(value)
                if turns is not None:
                    self.turns[i] = turns
            except (InvalidQueryError, QueryTypeError) as exc:
                self.texts.pop(i, None)
                try:
                    runnable, tag, meta = branch._unroutable(exc)
                except Exception as error:
                    self.errors[i] = error
                    continue
                self.runnable[i] = runnable
                self.choice[i] = (tag, meta)
            except Exception as exc:
                self.errors[i] = exc

    def route(self, router: SemanticRouter) -> None:
        """Route every text in one batched call, each conversation on its own (an error fails
        every input)."""
        plain = [i for i in self.texts if i not in self.turns]
        try:
            texts = [self.texts[i] for i in plain]
            found = dict(zip(plain, router.route_many(texts) if texts else []))
            for i, turns in self.turns.items():
                found[i] = self.branch._conversation().route(turns)
        except Exception as exc:
            self._fail_all(exc)
            return
        self._assign([found[i] for i in self.texts])

    async def aroute(self, router: SemanticRouter) -> None:
        """Asynchronous :meth:`route`."""
        plain = [i for i in self.texts if i not in self.turns]
        try:
            texts = [self.texts[i] for i in plain]
            found = dict(zip(plain, await router.aroute_many(texts) if texts else []))
            for i, turns in self.turns.items():
                found[i] = await self.branch._conversation().aroute(turns)
        except Exception as exc:
            self._fail_all(exc)
            return
        self._assign([found[i] for i in self.texts])

    def _fail_all(self, exc: BaseException) -> None:
        for i in self.texts:
            self.errors[i] = exc

    def _assign(self, matches: list[RouteMatch]) -> None:
        for i, match in zip(self.texts, matches, strict=True):
            try:
                runnable, tag, meta = self.branch._choose(match, self.texts[i])
            except Exception as exc:
                self.errors[i] = exc
                continue
            self.runnable[i] = runnable
            self.choice[i] = (tag, meta)

    def groups(self) -> list[tuple[Runnable[Any, Any], list[int]]]:
        by_tag: dict[str, tuple[Runnable[Any, Any], list[int]]] = {}
        for i, runnable in self.runnable.items():
            by_tag.setdefault(self.choice[i][0], (runnable, []))[1].append(i)
        return list(by_tag.values())

    def collect(self, indices: list[int], outs: list[Any]) -> None:
        for i, out in zip(indices, outs, strict=True):
            if isinstance(out, Exception):
                self.errors[i] = out
            else:
                self.outputs[i] = out

    def result(self, return_exceptions: bool) -> list[Any]:
        if self.errors and not return_exceptions:
            raise self.errors[min(self.errors)]
        return [self.errors.get(i, self.outputs.get(i)) for i in range(self.size)]


class Total:
    """Adds streamed chunks up for the run's output, as ``RunnableBranch.stream`` does."""

    def __init__(self) -> None:
        self.value: Any = None
        self._supported = True

    def add(self, chunk: Any) -> None:
        if not self._supported:
            return
        if self.value is None:
            self.value = chunk
            return
        try:
            self.value = self.value + chunk
        except TypeError:
            self.value, self._supported = None, False


def parse_branches(items: Sequence[Any], default: Any) -> tuple[list[tuple[Route | str, Any]], Any]:
    if len(items) == 1 and isinstance(items[0], Mapping):
        pairs: list[tuple[Route | str, Any]] = list(items[0].items())
    else:
        positional = list(items)
        if positional and not isinstance(positional[-1], (tuple, list)):
            if default is not None:
                raise ConfigurationError("give the default positionally or as default=, not both")
            default = positional.pop()
        pairs = []
        for item in positional:
            if not isinstance(item, (tuple, list)):
                raise TypeError(
                    f"SemRouterBranch branches must be (route, runnable) pairs, not {type(item)}"
                )
            if len(item) != 2:
                raise ValueError(f"SemRouterBranch branches must be pairs, not length {len(item)}")
            pairs.append((item[0], item[1]))
    if not pairs:
        raise ConfigurationError("SemRouterBranch needs at least one (route, runnable) branch")
    for key, runnable in pairs:
        if not isinstance(key, (str, Route)):
            raise TypeError(f"a branch key must be a route name or a Route, not {type(key)}")
        if not isinstance(runnable, (Runnable, Mapping)) and not callable(runnable):
            raise TypeError("a branch must be a Runnable, a callable or a mapping")
    if default is not None and not (isinstance(default, (Runnable, Mapping)) or callable(default)):
        raise TypeError("SemRouterBranch default must be a Runnable, a callable or a mapping")
    return pairs, default


def default_encoder() -> Encoder:
    """The process-wide :class:`~semrouter.LocalEncoder` (one model load per process)."""
    from semrouter import LocalEncoder

    return LocalEncoder.shared()


def own_routes(keys: list[Route | str]) -> list[Route]:
    """The routes of a branch that builds its own router (every key must be a Route)."""
    routes = [key for key in keys if isinstance(key, Route)]
    if len(routes) != len(keys):
        raise ConfigurationError("pass router= or give every branch as a Route object")
    return routes


def check_given_router(router: SemanticRouter, keys: list[Route | str]) -> None:
    """Refuse Route objects that would change a router the user gave (it is never modified)."""
    for key in keys:
        if not isinstance(key, Route):
            continue
        if key.name not in router:
            raise ConfigurationError(
                f"route {key.name!r} is not in the given router, and SemRouterBranch never "
                f"changes a router it is given: call router.add(route) first, or leave out "
                "router= to let the branch build a router of its own"
            )
        if router.get(key.name) != key:
            raise ConfigurationError(
                f"route {key.name!r} differs from the router's route of that name"
            )
