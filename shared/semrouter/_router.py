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

import numpy as np

from ._collection import RouteCollection, Version
from ._decisions import Decision, DecisionLog, LogOptions, read_decisions
from ._evaluation import EvaluationReport
from ._exceptions import (
    ConfigurationError,
    IndexMismatchError,
    InvalidQueryError,
    QueryTypeError,
    ReadOnlyRouterError,
    RouteNotFoundError,
    RouterClosedError,
    RouteSetNotFoundError,
    SemRouterError,
)
from ._feedback import Feedback
from ._fitting import FitSettings, FitSource, Progress
from ._index import RouteIndex, SyncReport
from ._options import Aggregation, Hybrid, RouterOptions, SearchMode
from ._review import Review, review
from ._routes import Route, RouteMatch, check_text, validate_routes
from ._routeset import (
    Calibration,
    Learned,
    RouteSet,
    Snapshot,
    adopt_calibration,
    build_route_set,
    routes_digest,
)
from ._routestore import (
    POLICIES,
    RouteSetId,
    StoredRouteSet,
    SyncPolicy,
    apply_policy,
    read_route_set,
)
from ._scorer import candidates_wanted, route_similarities, score_and_decide, with_blanks
from ._selftrain import own_route_scores, self_train
from ._stores._edge import StoreMode
from ._stores._location import QdrantLocation
from ._telemetry import routing_span
from .encoders import Encoder, Vectors

__all__ = ["SemanticRouter", "StaleCalibrationWarning"]


class StaleCalibrationWarning(UserWarning):
    """The routes changed after :meth:`SemanticRouter.fit`; the fit is ignored until redone."""


logger = logging.getLogger("semrouter")
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_UNSET: Any = object()
#: Route sets up to this many utterances learn inline (~0.1 s); bigger ones in the background.
_LEARN_INLINE = 2_000


def _option(name: str, doc: str) -> Any:
    """A read-only router attribute mirroring one option; setting it says to use configure()."""

    def get(router: Any) -> Any:
        return getattr(router._state.options, name)

    def refuse(router: Any, value: object) -> NoReturn:
        _read_only(name)

    return property(get, refuse, doc=doc)


class SemanticRouter:
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

    # -- learning from the utterances -----------------------------------------------------------
    def learn(self) -> bool:
        """Train the head and the adaptive threshold on the routes' own utterances now (they
        are otherwise trained with each change, in the background for big route sets) and
        store them with the route set. Returns whether anything was trained."""
        running = self._learning
        if running is not None and running.is_alive():
            running.join()  # a background run for this route set may be finishing
        with self._lock:
            state = self._state
            if not self._needs_learning(state):
                return False
        return self._train(state)

    def _needs_learning(self, state: RouteSet) -> bool:
        if not state.options.learn or self._closed or self._collection is None:
            return False
        if self._collection.store.read_only or len(state.names) < 2:
            return False  # readers take what the writer learnt; one route: nothing to rank
        learned = state.learned
        return learned is None or not learned.current(state.digest, state.options)

    def _learner(self) -> Callable[[Sequence[Route], Snapshot, Learned | None], Learned | None]:
        """What a change learns before it is written (one change, one revision): small route
        sets inline; big ones are learnt in the background afterwards (see :meth:`_learn`)."""

        def learn(
            routes: Sequence[Route], snapshot: Snapshot, learned: Learned | None
        ) -> Learned | None:
            options = self._options
            if not options.learn or len(routes) < 2 or snapshot.size > _LEARN_INLINE:
                return None
            if learned is not None and learned.current(routes_digest(routes), options):
                return None
            return self._training(routes, snapshot, learned)

        return learn

    def _learn(self) -> None:
        """Learn for the current route set if it still needs it: inline when small, else in a
        background thread (routing meanwhile uses the similarity alone)."""
        state = self._state
        if not self._needs_learning(state):
            return
        if state.snapshot.size <= _LEARN_INLINE:
            self._train(state)
            return
        running = self._learning
        if running is not None and running.is_alive():
            return  # one run at a time: it learns the newest route set when it is done
        thread = threading.Thread(target=self._learn_in_background, daemon=True)
        thread.start()
        self._learning = thread

    def _learn_in_background(self) -> None:
        """Learn until the route set served no longer needs it (changes made meanwhile are
        learnt by the same thread, never by one thread per change)."""
        while True:
            state = self._state
            if not self._needs_learning(state) or not self._train(state, True):
                if self._needs_learning(self._state) and self._state is not state:
                    continue  # the routes changed during the run: learn the new ones
                return

    def _training(
        self, routes: Sequence[Route], snapshot: Snapshot, previous: Learned | None
    ) -> Learned:
        """Learn from the utterances of one route set (``_selftrain.py``)."""
        options = self._options
        names = tuple(route.name for route in routes)
        vectors = self._open_collection().index.vectors_of(snapshot)  # once for both
        rows = snapshot.row_route
        own = own_route_scores(
            vectors, rows, len(names), top_k=options.top_k, aggregation=options.aggregation
        )
        training = self_train(
            vectors,
            rows,
            names,
            top_k=options.top_k,
            aggregation=options.aggregation,
            previous=previous.training if previous is not None else None,
            fingerprint=self.encoder.fingerprint,
            own=own,
        )
        typical = float(np.nanmedian(own)) if np.isfinite(own).any() else 0.0
        return Learned(routes_digest(routes), training, typical)

    def _train(self, state: RouteSet, background: bool = False) -> bool:
        try:
            learned = self._training(state.routes, state.snapshot, state.learned)
            with self._lock:
                current = self._state
                if self._closed or current.digest != state.digest:
                    return False  # the routes changed meanwhile: that change learns again
                self._open_collection().store_learned(learned)  # no new revision
                self._publish(list(current.routes), current.snapshot, learned=learned)
            return True
        except Exception as exc:
            if not background:
                raise
            if not self._closed:  # a background thread says what went wrong, never raises
                logger.warning("learning from the utterances failed: %s", exc)
            return False

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

    def _pick_up_learned(self, collection: RouteCollection) -> bool:
        """What the writer learnt in the background for the routes served (no new revision)."""
        state = self._state
        options = state.options
        if not options.learn or len(state.names) < 2 or state.identity is None:
            return False
        if state.learned is not None and state.learned.current(state.digest, options):
            return False
        learned = collection.learned_for(state.digest)
        if learned is None or not learned.current(state.digest, options):
            return False
        self._publish(list(state.routes), state.snapshot, learned=learned)
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

    # -- feedback ---------------------------------------------------------------------------
    def feedback(
        self,
        request: str,
        route: str | None,
        *,
        vector: Vectors | None = None,
    ) -> None:
        """Teach the router what ``request`` should have reached: a route's name (the request
        becomes one of its examples) or ``None`` (it belonged to no route: a negative).

        For a thumbs-down button, a human hand-off, an agent's tool call. Feedback is stored
        with the route set (one revision; every process and replica shares it, a redeploy
        keeps it) and learnt from at once: an example is searched like an utterance and
        self-training learns from it. ``vector``: the request's vector as it was routed
        (``encoder.encode([request])``), so nothing is encoded again; without it the request
        is encoded once. See ``_feedback.py`` for what is kept.

        Example:
            >>> from semrouter import Route, SemanticRouter
            >>> from semrouter.encoders import FakeEncoder
            >>> router = SemanticRouter([Route("refunds", ["I want my money back"]),
            ...                          Route("shipping", ["where is my parcel"])],
            ...                         encoder=FakeEncoder())
            >>> router.feedback("the package never arrived", "shipping")
            >>> router.examples()
            {'shipping': ['the package never arrived']}
        """
        self.feedback_many([request], [route], vectors=None if vector is None else [vector])

    def feedback_many(
        self,
        requests: Sequence[str],
        routes: Sequence[str | None],
        *,
        vectors: Vectors | Sequence[Vectors] | None = None,
    ) -> None:
        """:meth:`feedback` for many requests in one revision (a labelled review file, a
        day of thumbs-down clicks): ``routes[i]`` for ``requests[i]``."""
        texts = self._check(requests)
        labels = list(routes)
        if len(labels) != len(texts):
            raise ConfigurationError(f"got {len(texts)} requests but {len(labels)} routes")
        unknown = {r for r in labels if r is not None and r not in self._state.position}
        if unknown:
            self.refresh()  # another process may have added them
            unknown = {r for r in unknown if r not in self._state.position}
            if unknown:
                raise RouteNotFoundError(f"no route named {sorted(unknown)[0]!r}")
        given: dict[str, Any] = {}
        if vectors is not None:
            matrix = _query_matrix(np.vstack(list(vectors)), self.encoder)
            if len(matrix) != len(texts):
                raise QueryTypeError(f"got {len(matrix)} vectors but {len(texts)} requests")
            given = dict(zip(texts, matrix))

        def edit(feedback: Feedback) -> Feedback:
            for text, route in zip(texts, labels):
                if route is None:
                    feedback = feedback.with_negative(text)
                else:
                    feedback = feedback.with_example(route, text)
            return feedback

        self._commit_feedback(edit, given)

    def examples(self) -> dict[str, list[str]]:
        """The examples feedback gave each route (as stored now), oldest first."""
        stored = self._stored_now()
        return {name: list(texts) for name, texts in stored.examples.items()}

    @property
    def negatives(self) -> list[str]:
        """Requests fed back as belonging to no route (as stored now), oldest first."""
        return list(self._stored_now().negatives)

    def remove_examples(self, route: str, texts: Sequence[str] | None = None) -> None:
        """Forget ``route``'s examples ``texts`` (``None``: all of them)."""
        chosen = list(texts) if texts is not None else None
        self._commit_feedback(lambda feedback: feedback.without(route, chosen), {})

    def _stored_now(self) -> Feedback:
        stored = read_route_set(self._open_collection().store, self.tenant)
        return stored.feedback if stored is not None else Feedback()

    def _commit_feedback(self, edit: Callable[[Feedback], Feedback], given: dict[str, Any]) -> None:
        with self._lock:
            version = self._writable().commit(
                lambda stored: None, self._options, learn=self._learner(), edit=edit, vectors=given
            )
            if version is not None:
                self._publish_version(version)
                self._learn()

    # -- the decision log and review ----------------------------------------------------------
    def log_decisions(
        self,
        *,
        sample: float = 0.05,
        margin: float = 0.05,
        max_entries: int = 10_000,
        keep_text: bool = True,
    ) -> None:
        """Keep routing decisions in Qdrant beside the route set (``_decisions.py``): every
        abstention and low-margin decision, ``sample`` of the rest; written off the request
        path; ``keep_text=False`` stores a hash instead of the request. Called again, it
        changes the options; :meth:`close` stops it."""
        options = LogOptions(sample, margin, max_entries, keep_text)
        with self._lock:
            if self._log is not None:
                self._log.options = options
                return
            self._log = DecisionLog(
                self._location, self.collection, self.encoder.dimension, options,
                tenant=self.tenant,
            )  # fmt: skip

    def decisions(self, *, with_vectors: bool = False) -> list[Decision]:
        """Every logged decision of this route set, oldest first: all replicas' on a server,
        all processes' on an embedded folder."""
        if self._log is not None:
            self._log.flush()
        return read_decisions(
            self._location, self.collection, tenant=self.tenant, own=self._log,
            with_vectors=with_vectors,
        )  # fmt: skip

    def review(self, *, limit: int = 50, similarity: float = 0.7) -> Review:
        """The logged decisions most worth a human look, and routes the traffic asks for
        (abstained requests within ``similarity`` of each other; ``_review.py``); label them
        and apply them with :meth:`feedback_many`."""
        return review(self.decisions(with_vectors=True), limit=limit, similarity=similarity)

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

    # -- routing -------------------------------------------------------------------------------
    def route(self, text: str) -> RouteMatch:
        """The best route for ``text``, or a match with ``name=None`` when none passes (its
        ``reason`` and the ``threshold`` missed say why). A blank ``text`` raises
        :class:`InvalidQueryError`."""
        return self._call("route", [text], None, 1, True, True)[0][0]

    async def aroute(self, text: str) -> RouteMatch:
        """Asynchronous :meth:`route`; never blocks the event loop on encoding or I/O."""
        return (await self._acall("aroute", [text], None, 1, True, True))[0][0]

    def route_many(self, texts: Sequence[str]) -> list[RouteMatch]:
        """Route many texts with one encoder batch and one batched index query. An empty or
        white-space text gets its own abstaining match (``reason="blank"``) instead of
        failing the batch."""
        blank, asked = self._blanks(texts)
        return with_blanks(blank, [m[0] for m in self._call("route", asked, None, 1, True, True)])

    async def aroute_many(self, texts: Sequence[str]) -> list[RouteMatch]:
        """Asynchronous :meth:`route_many`."""
        blank, asked = self._blanks(texts)
        found = await self._acall("aroute", asked, None, 1, True, True)
        return with_blanks(blank, [m[0] for m in found])

    def top_routes(
        self, text: str, limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Up to ``limit`` routes for ``text``, best first (empty when none passes).

        With ``apply_threshold=False`` the best ``limit`` routes are returned whatever their
        score, as tool preselection wants. ``limit=0`` returns an empty list.
        """
        return self.top_routes_many([text], limit, apply_threshold=apply_threshold)[0]

    def top_routes_many(
        self, texts: Sequence[str], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[list[RouteMatch]]:
        """:meth:`top_routes` for many texts in one batch."""
        _check_limit(limit)
        return self._call("top_routes", texts, None, limit, apply_threshold, False)

    async def atop_routes(
        self, text: str, limit: int = 3, *, apply_threshold: bool = True
    ) -> list[RouteMatch]:
        """Asynchronous :meth:`top_routes`."""
        return (await self.atop_routes_many([text], limit, apply_threshold=apply_threshold))[0]

    async def atop_routes_many(
        self, texts: Sequence[str], limit: int = 3, *, apply_threshold: bool = True
    ) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`top_routes_many`."""
        _check_limit(limit)
        return await self._acall("atop_routes", texts, None, limit, apply_threshold, False)

    def route_vectors(
        self, vectors: Vectors, *, texts: Sequence[str] | None = None
    ) -> list[RouteMatch]:
        """Route already-encoded queries (rows of ``encoder.encode(...)``); nothing is encoded.

        The seam for callers that keep query vectors (conversations, benchmarks, fitting).
        ``texts`` (the queries themselves) are needed by hybrid routing only; without them a
        hybrid router ranks by the dense side alone.
        """
        return [m[0] for m in self._call("route_vectors", texts, vectors, 1, True, True)]

    async def aroute_vectors(
        self, vectors: Vectors, *, texts: Sequence[str] | None = None
    ) -> list[RouteMatch]:
        """Asynchronous :meth:`route_vectors` (awaits Qdrant when the search runs there)."""
        return [m[0] for m in await self._acall("aroute_vectors", texts, vectors, 1, True, True)]

    def top_routes_vectors(
        self,
        vectors: Vectors,
        limit: int = 3,
        *,
        apply_threshold: bool = True,
        texts: Sequence[str] | None = None,
    ) -> list[list[RouteMatch]]:
        """:meth:`top_routes_many` for already-encoded queries (``texts``: see
        :meth:`route_vectors`)."""
        _check_limit(limit)
        return self._call("top_routes_vectors", texts, vectors, limit, apply_threshold, False)

    async def atop_routes_vectors(
        self,
        vectors: Vectors,
        limit: int = 3,
        *,
        apply_threshold: bool = True,
        texts: Sequence[str] | None = None,
    ) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`top_routes_vectors`."""
        _check_limit(limit)
        return await self._acall(
            "atop_routes_vectors", texts, vectors, limit, apply_threshold, False
        )

    def _call(
        self,
        kind: str,
        texts: Sequence[str] | None,
        vectors: Vectors | None,
        limit: int,
        apply_threshold: bool,
        one: bool,
    ) -> list[list[RouteMatch]]:
        """One routing call: encode (unless ``vectors`` are given), search, decide, and record
        it in a telemetry span (``_telemetry.py``: nothing when OpenTelemetry is unused)."""
        with routing_span(kind, tenant=self.tenant) as span:
            started = time.perf_counter()
            if vectors is None:
                items: list[str] | None = self._check(texts or ())
                matrix = self.encoder.encode(items) if items else _no_vectors(self.encoder)
            else:
                matrix, items = self._vector_query(vectors, texts)
            encoded = time.perf_counter()
            found = self._run(matrix, limit, apply_threshold, one, items)
            encode_s = encoded - started if vectors is None else 0.0  # given: not encoded
            self._observe(span, found, one, items, encode_s, encoded, matrix)
            return found

    async def _acall(
        self,
        kind: str,
        texts: Sequence[str] | None,
        vectors: Vectors | None,
        limit: int,
        apply_threshold: bool,
        one: bool,
    ) -> list[list[RouteMatch]]:
        """Asynchronous :meth:`_call` (the encoder's async path; Qdrant awaited)."""
        with routing_span(kind, tenant=self.tenant) as span:
            started = time.perf_counter()
            if vectors is None:
                items: list[str] | None = self._check(texts or ())
                matrix = await self.encoder.aencode(items) if items else _no_vectors(self.encoder)
            else:
                matrix, items = self._vector_query(vectors, texts)
            encoded = time.perf_counter()
            found = await self._arun(matrix, limit, apply_threshold, one, items)
            encode_s = encoded - started if vectors is None else 0.0  # given: not encoded
            self._observe(span, found, one, items, encode_s, encoded, matrix)
            return found

    def _observe(
        self,
        span: Any,
        found: list[list[RouteMatch]],
        one: bool,
        texts: list[str] | None,
        encode_s: float,
        encoded: float,
        vectors: Vectors,
    ) -> None:
        log = self._log
        if log is not None and one:  # route()-style decisions (top_routes is a ranking)
            log.offer(texts, vectors, [m[0] for m in found], self.revision)
        span.observe(
            [m[0] for m in found] if one else found,
            candidates=self._state.options.candidates,
            encode_s=encode_s,
            search_s=time.perf_counter() - encoded,
            texts=texts,
        )

    def _vector_query(
        self, vectors: Vectors, texts: Sequence[str] | None
    ) -> tuple[Vectors, list[str] | None]:
        matrix = _query_matrix(vectors, self.encoder)
        if texts is None:
            return matrix, None
        items = self._check(texts)
        if len(items) != len(matrix):
            raise QueryTypeError(f"got {len(matrix)} query vectors but {len(items)} texts")
        return matrix, items

    def _run(
        self,
        vectors: Vectors,
        limit: int,
        apply_threshold: bool,
        keep_empty: bool,
        texts: list[str] | None = None,
    ) -> list[list[RouteMatch]]:
        if self._refresh_due():
            self.refresh()
        state = self._state  # one version for the whole batch
        index = self._open_index()
        found = index.search(state.snapshot, vectors, candidates_wanted(state, limit))
        lexical = None
        if texts and state.fusion is not None:
            lexical = index.lexical(state.snapshot, texts, len(state.names))
        return score_and_decide(
            state,
            vectors,
            found,
            lexical,
            limit=limit,
            apply_threshold=apply_threshold,
            keep_empty=keep_empty,
        )

    async def _arun(
        self,
        vectors: Vectors,
        limit: int,
        apply_threshold: bool,
        keep_empty: bool,
        texts: list[str] | None = None,
    ) -> list[list[RouteMatch]]:
        if self._refresh_due():
            await self.arefresh()
        state = self._state
        index = self._open_index()
        found = await index.asearch(state.snapshot, vectors, candidates_wanted(state, limit))
        lexical = None
        if texts and state.fusion is not None:
            lexical = await index.alexical(state.snapshot, texts, len(state.names))
        return score_and_decide(
            state,
            vectors,
            found,
            lexical,
            limit=limit,
            apply_threshold=apply_threshold,
            keep_empty=keep_empty,
        )

    def _blanks(self, texts: Sequence[str]) -> tuple[list[bool], list[str]]:
        """Which of ``texts`` are blank, and the others (route_many answers blanks itself)."""
        items = self._check(texts, blanks=True)
        blank = [not text or text.isspace() for text in items]
        return blank, [text for text, empty in zip(items, blank, strict=True) if not empty]

    def _check(self, texts: Sequence[str], *, blanks: bool = False) -> list[str]:
        if isinstance(texts, str):
            raise QueryTypeError("route_many() takes a list of strings; use route() for one")
        items = list(texts)
        for text in items:
            if not isinstance(text, str):
                raise QueryTypeError(f"a query must be a str, got {type(text).__name__}")
            if not text or text.isspace():
                if blanks:
                    continue
                raise InvalidQueryError("a query must not be empty or only white space")
            if not text.isascii():
                problem = check_text(text, "the query")
                if problem:
                    raise InvalidQueryError(problem)
        return items

    def _open_collection(self) -> RouteCollection:
        if self._closed or self._collection is None:
            raise RouterClosedError("this router was closed; open a new one")
        return self._collection

    def _open_index(self) -> RouteIndex:
        return self._open_collection().index

    # -- fitting --------------------------------------------------------------------------------
    @property
    def calibration(self) -> Calibration | None:
        """What :meth:`fit` learnt, or ``None``."""
        return self._state.calibration

    @property
    def calibration_stale(self) -> bool:
        """Whether the routes changed since :meth:`fit` (the calibration is then ignored)."""
        return self._state.stale

    def threshold_for(self, name: str) -> float:
        """The score a query needs to match route ``name`` (see docs: threshold precedence)."""
        state = self._state
        if name not in state.position:
            raise RouteNotFoundError(f"no route named {name!r}")
        return state.threshold_for(name)

    def similarities(self, vectors: Vectors) -> np.ndarray:
        """Unfitted per-route similarities (n, R) of query vectors, in :attr:`route_names`
        order; NaN for routes with no utterance among the nearest ``candidates``."""
        state = self._state
        matrix = _query_matrix(vectors, self.encoder)
        found = self._open_index().search(state.snapshot, matrix, state.options.candidates)
        return route_similarities(state, found)[0]

    def fit(
        self,
        texts: Sequence[str] = (),
        labels: Sequence[str | None] = (),
        *,
        validation: tuple[Sequence[str], Sequence[str | None]] | None = None,
        holdout: float = 0.2,
        head: bool = True,
        per_route_thresholds: bool = False,
        metric: Literal["accuracy", "f1"] = "accuracy",
        none_weight: float = 5.0,
        none_share: float | None = 0.5,
        l2: float = 1e-5,
        seed: int = 0,
        folds: int = 5,
        progress: Progress | None = None,
    ) -> EvaluationReport:
        """Learn routing from labelled texts; returns the report on the held-out texts.

        Every text is embedded once. A logistic head is trained on the route utterances and
        the training share of ``texts`` (a ``None`` label means "should match no route"), and
        the threshold is chosen on ``validation`` or, by default, a stratified ``holdout``
        share of ``texts``, so the report is not measured on training data. With ``folds``
        (cross-fitting, the default) the held-out texts are dealt into folds, each scored by a
        head that never saw it; the thresholds are chosen on those out-of-fold scores, and the
        head finally kept trains on the held-out texts too, so no labelled text is wasted
        (5 per route on CLINC150: 87.0 % -> 92.3 %, benchmarks/results/quality.txt). The result is
        deterministic, saved by :meth:`save`, and goes stale when the routes change. A
        router-wide ``threshold`` option, when set, still wins over the fitted thresholds
        (``router.configure(threshold=None)`` to use them; ``-1`` never abstains).

        Args:
            texts: example queries (may be empty when ``validation`` is given).
            labels: the route each should reach, or ``None``.
            validation: explicit held-out ``(texts, labels)`` instead of a split.
            holdout: share of ``texts`` held out when ``validation`` is not given.
            head: train the logistic head; ``False`` fits thresholds on similarities only.
            per_route_thresholds: one threshold per route instead of one for all (needs many
                labelled texts per route; on CLINC150 a single one generalised better).
            metric: what the thresholds maximise.
            none_weight: weight of ``None``-labelled rows in the head's loss.
            none_share: how much the held-out ``None`` rows count when the threshold is
                chosen, as a share of the metric (``None``: as many as there are).
            l2: the head's L2 penalty.
            seed: seeds the held-out split.
            folds: cross-fitting folds; ``0`` or ``1``: the held-out texts only choose the
                thresholds and never train the head (needs 10 held-out texts per fold, else
                that is what happens).
            progress: called as ``progress(done, total)`` while texts are encoded.
        """
        from ._fitting import fit_router

        if isinstance(folds, bool) or not isinstance(folds, int) or not 0 <= folds <= 20:
            raise ConfigurationError(f"folds must be an int from 0 to 20; got {folds!r}")
        with self._lock:
            state = self._state
            index = self._writable().index
            source = FitSource(
                state=state,
                encoder=self.encoder,
                similarities=self.similarities,
                utterance_vectors=lambda: index.vectors_of(state.snapshot),
                check=self._check,
                lexical=lambda texts: index.lexical(state.snapshot, texts, len(state.names)),
            )
            report, calibration = fit_router(
                source,
                texts,
                labels,
                validation=validation,
                settings=FitSettings(
                    holdout,
                    head,
                    per_route_thresholds,
                    metric,
                    none_weight,
                    none_share,
                    l2,
                    seed,
                    folds,
                ),
                progress=progress,
            )
            self._store_calibration(calibration)
        return report

    def evaluate(
        self,
        texts: Sequence[str],
        labels: Sequence[str | None],
        *,
        progress: Progress | None = None,
    ) -> EvaluationReport:
        """Route ``texts`` and compare with ``labels`` (``None``: should match nothing).

        Warns when some texts are stored utterances: accuracy on them is inflated.
        """
        from ._fitting import evaluate_router

        return evaluate_router(
            self._state, self.route_many, self._check, texts, labels, progress=progress
        )

    def set_calibration(self, calibration: Calibration | dict[str, Any] | None) -> None:
        """Install a calibration (from :meth:`fit` or a file), or drop it with ``None``."""
        with self._lock:
            self._store_calibration(_calibration(calibration, self.encoder, self.routes))

    def _store_calibration(self, calibration: Calibration | None) -> None:
        """Store a calibration with the route set (it is part of it) and publish it."""
        collection = self._writable()

        def apply(stored: StoredRouteSet | None) -> tuple[list[Route], Calibration | None] | None:
            routes = list(stored.routes) if stored is not None else []
            if stored is not None and stored.revision and calibration == stored.calibration:
                return None
            return routes, calibration

        version = collection.commit(apply, self._options, learn=self._learner())
        self._warned_stale = False
        if version is not None:
            self._publish_version(version)

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


def _calibration(
    calibration: Calibration | dict[str, Any] | None, encoder: Encoder, routes: list[Route]
) -> Calibration | None:
    if calibration is None:
        return None
    if isinstance(calibration, dict):
        try:
            calibration = Calibration.model_validate(calibration)
        except ValueError as exc:
            raise ConfigurationError(f"invalid calibration: {exc}") from None
    if not isinstance(calibration, Calibration):
        raise ConfigurationError("calibration must be a semrouter.Calibration or a mapping")
    if calibration.fingerprint != encoder.fingerprint:
        raise IndexMismatchError(
            f"the calibration was fitted with {calibration.fingerprint!r}, "
            f"not {encoder.fingerprint!r}: fit again"
        )
    return adopt_calibration(calibration, routes)


def _read_only(name: str) -> NoReturn:
    raise AttributeError(
        f"router.{name} is read-only: use router.configure({name}=...) (validated)"
    )


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")


def _no_vectors(encoder: Encoder) -> Vectors:
    return np.zeros((0, encoder.dimension), dtype=np.float32)


def _query_matrix(vectors: Any, encoder: Encoder) -> Vectors:
    """Query vectors as a C-contiguous float32 ``(n, dimension)`` matrix of unit rows."""
    try:
        matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise QueryTypeError("query vectors must be a numeric (n, dimension) array") from None
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    dimension = encoder.dimension
    if matrix.ndim != 2 or matrix.shape[1] != dimension:
        raise QueryTypeError(f"query vectors must have shape (n, {dimension}), got {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise InvalidQueryError("query vectors must be finite")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


def _one_route(route: Any) -> Route:
    if isinstance(route, dict):
        return Route.from_dict(route)
    if not isinstance(route, Route):
        raise ConfigurationError(f"expected a Route, got {type(route).__name__}")
    return route
