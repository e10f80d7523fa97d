"""Which version of the stored route set a router serves: opening it, publishing it in one
assignment, following other processes and machines, promoting a reader.

A part of :class:`~semrouter.SemanticRouter` (``_router_base.py``). The stored route set's life
itself (store, identity, commit, follow, delete) is :class:`~semrouter._collection.RouteCollection`;
this part turns each :class:`~semrouter._collection.Version` it returns into the
:class:`~semrouter._routeset.RouteSet` queries read.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

from ._collection import RouteCollection, Version
from ._exceptions import IndexMismatchError
from ._index import SyncReport
from ._learned import Learned
from ._options import RouterOptions
from ._router_base import UNSET, RouterBase
from ._router_fit import _calibration
from ._routes import Route
from ._routeset import Calibration, RouteSet, Snapshot, build_route_set, routes_digest
from ._routestore import RouteSetId, StoredRouteSet, SyncPolicy, apply_policy

__all__ = ["Following", "StaleCalibrationWarning"]


class StaleCalibrationWarning(UserWarning):
    """The routes changed after :meth:`SemanticRouter.fit`; the fit is ignored until redone."""


class Following(RouterBase):
    """Opening, publishing and following the route set, for :class:`~semrouter.SemanticRouter`."""

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

    # -- following other processes ------------------------------------------------------------
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

    def tenants(self) -> list[str]:
        """The tenants whose route sets this collection stores."""
        return self._open_collection().tenants()

    # -- publishing -----------------------------------------------------------------------------
    def _build(
        self,
        routes: Sequence[Route],
        snapshot: Snapshot,
        *,
        options: RouterOptions | None = None,
        calibration: Calibration | None = UNSET,
        learned: Learned | None = UNSET,
        identity: RouteSetId | None = UNSET,
    ) -> RouteSet:
        """The next route set, unpublished (what is not given is kept from the route set served
        now): :meth:`_publish` serves it, ``fit(gate=...)`` routes with it first."""
        previous: RouteSet | None = getattr(self, "_state", None)
        if calibration is UNSET:
            calibration = previous.calibration if previous is not None else None
        if learned is UNSET:
            learned = previous.learned if previous is not None else None
        if identity is UNSET:
            identity = previous.identity if previous is not None else None
        options = options or self._options
        return build_route_set(
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

    def _publish(self, state: RouteSet) -> None:
        """Serve ``state`` (from :meth:`_build`): published in one assignment."""
        previous: RouteSet | None = getattr(self, "_state", None)
        if state.stale and not self._warned_stale and previous is not None:
            self._warned_stale = True
            warnings.warn(
                "the routes changed since fit(): the fitted head and thresholds are stale and "
                "ignored until the router is fitted again",
                StaleCalibrationWarning,
                stacklevel=4,
            )
        if state.fusion is not None and state.snapshot.vectors is not None:
            state.snapshot.lexical  # noqa: B018 - built here, not by the first query (60 ms at 15k)
        self._options = state.options
        self._state = state

    def _publish_version(self, version: Version) -> None:
        """Serve a version of the stored route set (opened, committed, followed, deleted)."""
        self._publish(
            self._build(
                version.routes,
                version.snapshot,
                calibration=version.calibration,
                learned=version.learned,
                identity=version.identity,
            )
        )
