"""Changing what a router serves: its routes (each change one stored revision) and options.

A part of :class:`~semrouter.SemanticRouter` (``_router_base.py``): ``set_routes``, ``add``,
``update``, ``remove`` and ``delete_route_set`` commit through the router's
:class:`~semrouter._collection.RouteCollection` (a writer that lost to another one applies its
change again to the newer set); ``configure`` validates and publishes new options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NoReturn

from ._collection import RouteCollection
from ._exceptions import ConfigurationError, ReadOnlyRouterError, RouteNotFoundError
from ._index import SyncReport
from ._options import RouterOptions
from ._router_base import UNSET, RouterBase
from ._routes import Route, validate_routes
from ._routeset import Calibration
from ._routestore import StoredRouteSet

__all__ = ["Editing", "build_options"]


def _option(name: str, doc: str) -> Any:
    """A read-only router attribute mirroring one option; setting it says to use configure()."""

    def get(router: Any) -> Any:
        return getattr(router._state.options, name)

    def refuse(router: Any, value: object) -> NoReturn:
        _read_only(name)

    return property(get, refuse, doc=doc)


class Editing(RouterBase):
    """The route and option changes of :class:`~semrouter.SemanticRouter`."""

    def _change(
        self,
        change: Callable[[list[Route]], list[Route]],
        on_conflict: Literal["retry", "raise"] = "retry",
    ) -> SyncReport:
        """Apply ``change`` to the latest stored route set and store the result as one
        revision (a writer that lost to another one applies it again to the newer set)."""
        with self._lock:
            collection = self._writable()

            def apply(
                stored: StoredRouteSet | None,
            ) -> tuple[list[Route], Calibration | None] | None:
                current = list(stored.routes) if stored is not None else []
                routes = change(current)
                if stored is not None and stored.revision and routes == current:
                    return None
                return routes, stored.calibration if stored is not None else None

            version = collection.commit(
                apply, self._options, learn=self._learner(), on_conflict=on_conflict
            )
            if version is None:  # nothing to change; serve the latest stored set
                self.refresh()
                return SyncReport(kept=self._state.snapshot.size)
            self._publish_version(version)
            self.last_sync = version.report
            self._learn()
            return version.report

    def _writable(self) -> RouteCollection:
        collection = self._open_collection()
        store = collection.store
        if store.read_only:
            pid = getattr(store, "writer_pid", lambda: None)()
            writer = f" (process {pid})" if pid is not None else ""
            raise ReadOnlyRouterError(
                f"this router only reads {store.target}: change routes through the process "
                f"that writes it{writer}, or promote() this one once that process is gone"
            )
        return collection

    def set_routes(self, routes: Sequence[Route]) -> SyncReport:
        """Replace the whole route set, encoding only utterances that are new.

        A no-op (nothing encoded, nothing written) when the routes are unchanged.
        """
        declared = validate_routes(routes)
        return self._change(lambda current: declared, on_conflict="raise")

    def add(self, route: Route) -> SyncReport:
        """Add a route; its name must be new."""
        route = _one_route(route)

        def add(current: list[Route]) -> list[Route]:
            if any(r.name == route.name for r in current):
                raise ConfigurationError(f"duplicate route name: {route.name!r}; use update()")
            return [*current, route]

        return self._change(add)

    def update(self, route: Route) -> SyncReport:
        """Replace the route of the same name (only changed utterances are re-encoded)."""
        route = _one_route(route)

        def update(current: list[Route]) -> list[Route]:
            if not any(r.name == route.name for r in current):
                raise RouteNotFoundError(f"no route named {route.name!r}")
            return [route if r.name == route.name else r for r in current]

        return self._change(update)

    def remove(self, name: str) -> SyncReport:
        """Remove a route; once this returns, routing never answers ``name``."""

        def remove(current: list[Route]) -> list[Route]:
            if not any(r.name == name for r in current):
                raise RouteNotFoundError(f"no route named {name!r}")
            return [r for r in current if r.name != name]

        return self._change(remove)

    def delete_route_set(self) -> SyncReport:
        """Delete this router's route set (its tenant's points and stored document) from the
        collection; other tenants are left alone. This router and every follower then serve
        no routes; a later change creates a new route set (a new generation)."""
        with self._lock:
            version = self._writable().delete(self._options, self._state.identity)
            self._publish_version(version)
            return version.report

    # -- options --------------------------------------------------------------------------------
    @property
    def options(self) -> RouterOptions:
        """The router's options (frozen); change them with :meth:`configure`."""
        return self._state.options

    def configure(self, **changes: Any) -> RouterOptions:
        """Validate and apply option changes, e.g. ``router.configure(threshold=0.4)``.

        Published with the route set in one step; a search-mode change rebuilds the snapshot
        from what is stored (nothing is encoded).
        """
        with self._lock:
            index = self._open_index()
            options = self._options.replace(**changes)
            state = self._state
            snapshot = state.snapshot
            if (options.search, options.exact_limit) != (
                state.options.search,
                state.options.exact_limit,
            ):
                snapshot = index.follow(list(state.routes), options)
            self._publish(self._build(list(state.routes), snapshot, options=options))
            self._learn()
            return options

    threshold = _option("threshold", "The router-wide threshold (``None``: learnt or default).")
    aggregation = _option("aggregation", "How a route's nearest utterances become its score.")
    top_k = _option("top_k", "Utterances per route averaged by ``aggregation='mean'``.")
    candidates = _option("candidates", "Nearest utterances retrieved per query.")


def build_options(options: RouterOptions | None, **fields: Any) -> RouterOptions:
    """The constructor's options: ``options`` (or the defaults) with the option keywords
    given one by one (``UNSET``: not given) applied and validated."""
    given = {name: value for name, value in fields.items() if value is not UNSET}
    if options is None:
        return RouterOptions.build(**given)
    if not isinstance(options, RouterOptions):
        raise ConfigurationError("options must be a semrouter.RouterOptions")
    return options.replace(**given) if given else options


def _read_only(name: str) -> NoReturn:
    raise AttributeError(
        f"router.{name} is read-only: use router.configure({name}=...) (validated)"
    )


def _one_route(route: Any) -> Route:
    if isinstance(route, dict):
        return Route.from_dict(route)
    if not isinstance(route, Route):
        raise ConfigurationError(f"expected a Route, got {type(route).__name__}")
    return route
