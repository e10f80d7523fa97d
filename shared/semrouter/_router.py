"""SemanticRouter: route texts to routes by meaning, on a Qdrant-backed route index.

The router holds one immutable :class:`~semrouter._routeset.RouteSet` (routes, index snapshot,
options, calibration, resolved thresholds) and replaces it in one assignment after every change.
A query reads it once, asks the index for the nearest utterances and hands both to the scorer
(``_scorer.py``), where every decision is made.

This module builds the router (where its collection lives, its encoder, its options) and closes
it; its parts are one module each (``_router_base.py`` lists them): routing
(``_router_query.py``), changing routes and options (``_router_edit.py``), the version served
and following it (``_router_version.py``), learning and feedback (``_router_teach.py``), fitting
(``_router_fit.py``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._aggregation import Aggregation
from ._collection import RouteCollection
from ._decisions import DecisionLog
from ._exceptions import (
    ConfigurationError,
    RouteNotFoundError,
    RouterClosedError,
    RouteSetNotFoundError,
    SemRouterError,
)
from ._index import RouteIndex
from ._options import Hybrid, RouterOptions, SearchMode
from ._router_base import UNSET
from ._router_edit import Editing, build_options
from ._router_fit import Fitting
from ._router_query import Querying
from ._router_teach import Teaching
from ._router_version import Following
from ._routes import Route, check_text, validate_routes
from ._routeset import Calibration, RouteSet
from ._routestore import POLICIES, SyncPolicy
from ._stores._edge import StoreMode
from ._stores._location import QdrantLocation
from .encoders import Encoder

__all__ = ["SemanticRouter"]

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class SemanticRouter(Querying, Teaching, Fitting, Editing, Following):
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
        threshold: float | None = UNSET,
        aggregation: Aggregation = UNSET,
        top_k: int = UNSET,
        candidates: int = UNSET,
        search: SearchMode = UNSET,
        exact_limit: int = UNSET,
        learn: bool = UNSET,
        hybrid: Hybrid = UNSET,
        hybrid_weight: float = UNSET,
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
        self._options = build_options(
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


