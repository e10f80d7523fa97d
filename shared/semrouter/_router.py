"""SemanticRouter: route texts to routes by meaning, on a Qdrant-backed route index.

The router holds one immutable :class:`~semrouter._routeset.RouteSet` (routes, index snapshot,
options, calibration, resolved thresholds) and replaces it in one assignment after every change.
A query reads it once, asks the index for the nearest utterances and hands both to the scorer
(``_scorer.py``), where every decision is made.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn

from ._aggregation import Aggregation
from ._collection import RouteCollection, Version
from ._decisions import DecisionLog
from ._exceptions import (
    ConfigurationError,
    IndexMismatchError,
    ReadOnlyRouterError,
    RouteNotFoundError,
    RouterClosedError,
    RouteSetNotFoundError,
    SemRouterError,
)
from ._index import RouteIndex, SyncReport
from ._learned import Learned
from ._options import Hybrid, RouterOptions, SearchMode
from ._router_fit import Fitting, _calibration
from ._router_query import Querying
from ._router_teach import Teaching
from ._routes import Route, check_text, validate_routes
from ._routeset import (
    Calibration,
    RouteSet,
    Snapshot,
    build_route_set,
    routes_digest,
)
from ._routestore import (
    POLICIES,
    RouteSetId,
    StoredRouteSet,
    SyncPolicy,
    apply_policy,
)
from ._stores._edge import StoreMode
from ._stores._location import QdrantLocation
from .encoders import Encoder

__all__ = ["SemanticRouter", "StaleCalibrationWarning"]


class StaleCalibrationWarning(UserWarning):
    """The routes changed after :meth:`SemanticRouter.fit`; the fit is ignored until redone."""


logger = logging.getLogger("semrouter")
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_UNSET: Any = object()


def _option(name: str, doc: str) -> Any:
    """A read-only router attribute mirroring one option; setting it says to use configure()."""

    def get(router: Any) -> Any:
        return getattr(router._state.options, name)

    def refuse(router: Any, value: object) -> NoReturn:
        _read_only(name)

    return property(get, refuse, doc=doc)


class SemanticRouter(Querying, Teaching, Fitting):
    """Routes a text to the route whose example utterances it is closest to.

    The route vectors live in a Qdrant collection: embedded in the process by default (in a
    temporary folder, or persistent with ``path=``), or on a Qdrant server with ``url=``. On
    every start the declared routes are diffed against the collection, so only new utterances
    are encoded.

    Args:
        routes: the routes to serve.
        encoder: embeds utterances and queries; default: the process-wide shared
            :class:`~semrouter.LocalEncoder`.
        path, url, api_key, prefer_grpc, timeout, client, aclient: where the collection lives
            (see :class:`~semrouter.QdrantLocation`); or pass ``location=`` instead.
        location: a ready :class:`~semrouter.QdrantLocation`.
        collection: the collection name.
        options: a :class:`~semrouter.RouterOptions`; or its fields one by one (``threshold``,
            ``aggregation``, ``top_k``, ``candidates``, ``search``, ``exact_limit``,
            ``learn``, ``hybrid``, ``hybrid_weight``).
        rebuild: replace a collection made by another encoder instead of raising
            :class:`~semrouter.IndexMismatchError`.
        calibration: a :class:`Calibration` from :meth:`fit` (as saved in a config file).

    Example:
        >>> from semrouter import Route, SemanticRouter
        >>> from semrouter.encoders import FakeEncoder
        >>> router = SemanticRouter(
        ...     [Route("greet", ["hello there", "hi how are you"]),
        ...      Route("bye", ["goodbye now", "see you later"])],
        ...     encoder=FakeEncoder(),
        ... )
        >>> router.route("hello, how are you?").name
        'greet'
    """

    _state: RouteSet

    def __init__(
        self,
        routes: Sequence[Route] | None = None,
        *,
        encoder: Encoder | None = None,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        timeout: float = 5.0,
        client: Any = None,
        aclient: Any = None,
        location: QdrantLocation | None = None,
        collection: str = "semrouter",
        options: RouterOptions | None = None,
        threshold: float | None = _UNSET,
        aggregation: Aggregation = _UNSET,
        top_k: int = _UNSET,
        candidates: int = _UNSET,
        search: SearchMode = _UNSET,
        exact_limit: int = _UNSET,
        learn: bool = _UNSET,
        hybrid: Hybrid = _UNSET,
        hybrid_weight: float = _UNSET,
        rebuild: bool = False,
        calibration: Calibration | dict[str, Any] | None = None,
        sync: SyncPolicy = "merge",
        tenant: str = "",
        mode: StoreMode = "auto",
        refresh_interval: float | None = None,
        _require_stored: bool = False,
    ) -> None:
        self._closed = True  # until the store is open (repr() works on a half-built router)
        self._collection: RouteCollection | None = None
        declared = validate_routes(routes) if routes is not None else None
        if sync not in POLICIES:
            raise ConfigurationError(f"sync must be one of {', '.join(POLICIES)}; got {sync!r}")
        if not isinstance(tenant, str) or len(tenant) > 256 or check_text(tenant, "tenant"):
            raise ConfigurationError("tenant must be a str of at most 256 characters")
        if refresh_interval is not None and (
            isinstance(refresh_interval, bool)
            or not isinstance(refresh_interval, (int, float))
            or not refresh_interval >= 0
        ):
            raise ConfigurationError("refresh_interval must be a number of seconds >= 0")
        self.tenant = tenant
        self._refresh_interval = refresh_interval
        self._next_refresh = 0.0
        self._learning: threading.Thread | None = None
        self._log: DecisionLog | None = None  # log_decisions()
        self._options = _options(
            options,
            threshold=threshold,
            aggregation=aggregation,
            top_k=top_k,
            candidates=candidates,
            search=search,
            exact_limit=exact_limit,
            learn=learn,
            hybrid=hybrid,
            hybrid_weight=hybrid_weight,
        )
        if not isinstance(collection, str) or not _COLLECTION_NAME.match(collection):
            raise ConfigurationError(
                f"collection name {collection!r} must be letters, digits, '_', '-' or '.' (max 128)"
            )
        self.collection = collection
        if location is None:
            if isinstance(path, str) and path == ":memory:":
                raise ConfigurationError("leave path unset for an in-memory index")
            location = QdrantLocation(
                path=path,
                url=url,
                api_key=api_key,
                prefer_grpc=prefer_grpc,
                timeout=timeout,
                client=client,
                aclient=aclient,
            )
        elif any(x is not None for x in (path, url, api_key, client, aclient)):
            raise ConfigurationError("give location= or path/url/client, not both")
        self._location = location
        if encoder is None:
            from .encoders._local import LocalEncoder

            encoder = LocalEncoder.shared()
        if not isinstance(encoder, Encoder):
            raise ConfigurationError("encoder must be a semrouter.encoders.Encoder")
        self.encoder = encoder
        self._lock = threading.RLock()
        self._warned_stale = False
        edge = {"mode": mode, "rebuild": rebuild} if location.kind in ("path", "memory") else {}
        if _require_stored and location.path is not None:
            folder = Path(location.path) / collection
            if not folder.is_dir():  # never create a folder for a worker with a typo in its path
                raise RouteSetNotFoundError(f"{folder} holds no route set (no such folder)")
        store = location.open_store(collection, **edge)
        try:
            self._collection = RouteCollection(
                store, encoder, tenant=tenant, rebuild=rebuild, create=not _require_stored
            )
            self._closed = False
            self.last_sync = self._start(
                self._collection, declared, sync, calibration, _require_stored
            )
        except BaseException:
            self._closed = True
            self._collection = None
            store.close()
            raise

    @classmethod
    def open(
        cls,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        client: Any = None,
        **options: Any,
    ) -> SemanticRouter:
        """Serve the route set stored in a collection, with no routes in code; nothing is
        encoded (the vectors come from Qdrant) and nothing is deleted.

        A place that holds no route set (a missing folder or collection, another tenant's, a
        writer that has published none within 30 s) raises
        :class:`~semrouter.RouteSetNotFoundError` naming it: creating one is the
        constructor's job.

        Example: ``SemanticRouter.open(path="./routes_db", refresh_interval=1)``. Any other
        constructor keyword (``collection=``, ``tenant=``, ``encoder=``, ``api_key=`` ...) works.
        """
        if "routes" in options:
            raise ConfigurationError("open() serves the stored routes: use SemanticRouter(routes)")
        return cls(None, path=path, url=url, client=client, _require_stored=True, **options)

    def _start(
        self,
        collection: RouteCollection,
        declared: list[Route] | None,
        sync: SyncPolicy,
        calibration: Calibration | dict[str, Any] | None,
        require: bool,
    ) -> SyncReport:
        """Open the route set: read what is stored, apply the sync policy, publish."""
        encoder = self.encoder

        def apply(stored: StoredRouteSet | None) -> tuple[list[Route], Calibration | None] | None:
            base = list(stored.routes) if stored is not None else []
            first = stored is None or not stored.revision  # nothing stored, or a 0.1 collection
            if declared is None:
                routes = base
            elif first:
                routes = declared if sync != "merge" else apply_policy("merge", declared, base)
            else:
                routes = apply_policy(sync, declared, base)
            stored_fit = stored.calibration if stored is not None else None
            fitted = _calibration(calibration, encoder, routes) if calibration else stored_fit
            if not first and routes == base and fitted == stored_fit:
                return None
            return routes, fitted

        version = collection.open(
            apply,
            self._options,
            learn=self._learner(),
            require=require,
            on_conflict="retry" if sync == "merge" else "raise",
        )
        self._publish_version(version)
        self._schedule_refresh()
        self._learn()
        return version.report

    # -- following other processes ---------------------------------------------------------------
    @property
    def revision(self) -> int:
        """The revision of the stored route set this router serves (one per change; ``0``
        when none is stored). See :attr:`identity`."""
        identity = self._state.identity
        return identity.revision if identity is not None else 0

    @property
    def identity(self) -> RouteSetId | None:
        """Which stored version this router serves: generation (new whenever the route set
        is created anew), revision and digest; ``None`` when no route set is stored (deleted,
        or never written)."""
        return self._state.identity

    @property
    def read_only(self) -> bool:
        """Whether this router only reads (another process writes its embedded folder)."""
        return self._open_collection().store.read_only

    def refresh(self) -> bool:
        """Serve the stored route set if another process or machine changed it.

        Costs one small read when nothing changed (a ``stat`` and a dictionary lookup for an
        embedded folder; one round trip to a server); after a change, only the points of
        changed routes are read. Nothing is encoded. Returns whether anything changed.

        A route set that was deleted is served as no routes (every query answers
        ``name=None``) until one is created again; one re-created with another encoder
        raises :class:`~semrouter.IndexMismatchError` (and no routes are served).
        """
        with self._lock:
            collection = self._open_collection()
            self._schedule_refresh()
            try:
                version = collection.follow(self._state.identity, self._options)
            except IndexMismatchError:
                self._publish_version(Version.nothing())  # never serve another encoder's set
                raise
            if version is None:
                return self._pick_up_learned(collection)
            self._publish_version(version)
            return True

    async def arefresh(self) -> bool:
        """Asynchronous :meth:`refresh` (in a worker thread: the event loop is never blocked)."""
        import asyncio

        return await asyncio.to_thread(self.refresh)

    def promote(self) -> None:
        """Turn this reader of an embedded folder into its writer, once no writer holds it
        (:class:`~semrouter.RouterLockedError` while one does)."""
        with self._lock:
            store = self._open_collection().store
            promote = getattr(store, "promote", None)
            if promote is not None:
                promote()
            self._collection = RouteCollection(store, self.encoder, tenant=self.tenant)

    def _schedule_refresh(self) -> None:
        if self._refresh_interval is not None:
            self._next_refresh = time.monotonic() + self._refresh_interval

    def _refresh_due(self) -> bool:
        return self._refresh_interval is not None and time.monotonic() >= self._next_refresh

    def delete_route_set(self) -> SyncReport:
        """Delete this router's route set (its tenant's points and stored document) from the
        collection; other tenants are left alone. This router and every follower then serve
        no routes; a later change creates a new route set (a new generation)."""
        with self._lock:
            version = self._writable().delete(self._options, self._state.identity)
            self._publish_version(version)
            return version.report

    def tenants(self) -> list[str]:
        """The tenants whose route sets this collection stores."""
        return self._open_collection().tenants()

    # -- the route set --------------------------------------------------------------------------
    def _publish(
        self,
        routes: Sequence[Route],
        snapshot: Snapshot,
        *,
        options: RouterOptions | None = None,
        calibration: Calibration | None = _UNSET,
        learned: Learned | None = _UNSET,
        identity: RouteSetId | None = _UNSET,
    ) -> None:
        """Build the next route set and publish it in one assignment (what is not given is
        kept from the route set served now)."""
        previous: RouteSet | None = getattr(self, "_state", None)
        if calibration is _UNSET:
            calibration = previous.calibration if previous is not None else None
        if learned is _UNSET:
            learned = previous.learned if previous is not None else None
        if identity is _UNSET:
            identity = previous.identity if previous is not None else None
        options = options or self._options
        state = build_route_set(
            routes,
            snapshot,
            options,
            default_threshold=self.encoder.default_threshold,
            calibration=calibration,
            digest=routes_digest(routes),
            learned=learned if options.learn else None,
            default_declared=self.encoder.threshold_declared,
            identity=identity,
        )
        if state.stale and not self._warned_stale and previous is not None:
            self._warned_stale = True
            warnings.warn(
                "the routes changed since fit(): the fitted head and thresholds are stale and "
                "ignored until the router is fitted again",
                StaleCalibrationWarning,
                stacklevel=4,
            )
        if state.fusion is not None and snapshot.vectors is not None:
            snapshot.lexical  # noqa: B018 - built here, not by the first query (60 ms at 15k)
        self._options = state.options
        self._state = state

    def _publish_version(self, version: Version) -> None:
        """Serve a version of the stored route set (opened, committed, followed, deleted)."""
        self._publish(
            version.routes,
            version.snapshot,
            calibration=version.calibration,
            learned=version.learned,
            identity=version.identity,
        )

    @property
    def routes(self) -> list[Route]:
        """The routes served, in declaration order."""
        return list(self._state.routes)

    @property
    def route_names(self) -> list[str]:
        """The names of the routes served."""
        return list(self._state.names)

    def get(self, name: str) -> Route:
        """The route called ``name``."""
        state = self._state
        try:
            return state.routes[state.position[name]]
        except (KeyError, TypeError):
            raise RouteNotFoundError(f"no route named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._state.position

    def __len__(self) -> int:
        return len(self._state.names)

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
            self._publish(list(state.routes), snapshot, options=options)
            self._learn()
            return options

    threshold = _option("threshold", "The router-wide threshold (``None``: learnt or default).")
    aggregation = _option("aggregation", "How a route's nearest utterances become its score.")
    top_k = _option("top_k", "Utterances per route averaged by ``aggregation='mean'``.")
    candidates = _option("candidates", "Nearest utterances retrieved per query.")

    def _open_collection(self) -> RouteCollection:
        if self._closed or self._collection is None:
            raise RouterClosedError("this router was closed; open a new one")
        return self._collection

    def _open_index(self) -> RouteIndex:
        return self._open_collection().index

    # -- persistence and life cycle -------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write routes, options, encoder spec and Qdrant location to YAML or JSON (never
        secrets)."""
        from ._config import RouterSpec, save_router

        state = self._state
        save_router(
            RouterSpec(
                routes=state.routes,
                encoder=self.encoder.to_config(),
                location=self._location,
                collection=self.collection,
                options=state.options,
                calibration=state.calibration,
            ),
            Path(path),
        )

    @classmethod
    def load(cls, file: str | Path, /, **overrides: Any) -> SemanticRouter:
        """Build a router from a file written by :meth:`save`.

        Keyword arguments override the file (``encoder=``, ``api_key=``, ``client=`` ...).
        """
        from ._config import load_router_kwargs

        return cls(**load_router_kwargs(Path(file), overrides))

    @property
    def location(self) -> QdrantLocation:
        """Where the collection lives (secrets hidden)."""
        return self._location

    @property
    def index_size(self) -> int:
        """Number of utterances in the index."""
        return self._state.snapshot.size

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Flush and close the index (and any client the router made itself). Idempotent.

        A background learning run is told to stop and waited for: it may be reading the store.
        """
        self._closed = True  # a learning run checks this before it writes
        running = getattr(self, "_learning", None)
        if running is not None and running is not threading.current_thread():
            running.join()
        with self._lock:
            collection, self._collection = self._collection, None
            log, self._log = getattr(self, "_log", None), None
            if log is not None:
                log.close()
            if collection is not None:
                collection.close()

    def __enter__(self) -> SemanticRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __deepcopy__(self, memo: dict[int, Any]) -> SemanticRouter:
        # A router is a handle on a shared collection, like a client: copies share it.
        return self

    def __copy__(self) -> SemanticRouter:
        return self

    def __reduce__(self) -> NoReturn:
        raise SemRouterError(
            "a SemanticRouter cannot be pickled (it holds an open Qdrant collection): save() it "
            "and SemanticRouter.load() it in the other process, or open the same path=/url= "
            "there"
        )

    def __repr__(self) -> str:
        state: RouteSet | None = getattr(self, "_state", None)
        location = getattr(self, "_location", None)
        where = location.target if location is not None else "?"
        routes = len(state.names) if state is not None else 0
        size = state.snapshot.size if state is not None else 0
        closed = ", closed" if getattr(self, "_closed", True) else ""
        return (
            f"SemanticRouter(routes={routes}, utterances={size}, "
            f"encoder={getattr(self, 'encoder', None)!r}, "
            f"collection={getattr(self, 'collection', None)!r}, location={where!r}{closed})"
        )


def _options(options: RouterOptions | None, **fields: Any) -> RouterOptions:
    given = {name: value for name, value in fields.items() if value is not _UNSET}
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
