"""What the parts of :class:`~semrouter.SemanticRouter` share: its state, declared once.

The router is one class assembled from parts, each in a module a newcomer can read alone:
``_router.py`` (building and closing it, files), ``_router_query.py`` (routing),
``_router_edit.py`` (changing routes and options), ``_router_version.py`` (opening, publishing
and following the stored route set), ``_router_teach.py`` (learning from the utterances,
feedback, the decision log) and ``_router_fit.py`` (fitting and evaluation). :class:`RouterBase`
names the attributes they all read and the methods one part calls on another.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._collection import RouteCollection, Version
    from ._decisions import DecisionLog
    from ._feedback import Feedback
    from ._index import RouteIndex, SyncReport
    from ._learned import Learned
    from ._options import RouterOptions
    from ._routes import Route, RouteMatch
    from ._routeset import Calibration, RouteSet, Snapshot
    from ._routestore import RouteSetId
    from ._stores._location import QdrantLocation
    from .encoders import Encoder

__all__ = ["UNSET", "RouterBase"]

#: A keyword not given (``None`` may be a value).
UNSET: Any = object()


class RouterBase:
    """The state every part of the router reads (set by ``SemanticRouter.__init__``)."""

    encoder: Encoder
    tenant: str
    collection: str
    _location: QdrantLocation
    _lock: threading.RLock
    _state: RouteSet
    _options: RouterOptions
    _closed: bool
    _collection: RouteCollection | None
    _learning: threading.Thread | None
    _log: DecisionLog | None
    _warned_stale: bool
    _refresh_interval: float | None
    _next_refresh: float
    last_sync: SyncReport

    if TYPE_CHECKING:  # implemented by the parts

        def _open_collection(self) -> RouteCollection: ...
        def _open_index(self) -> RouteIndex: ...
        def _writable(self) -> RouteCollection: ...
        def _publish_version(self, version: Version) -> None: ...
        def _publish(self, state: RouteSet) -> None: ...
        def _build(
            self,
            routes: Sequence[Route],
            snapshot: Snapshot,
            *,
            options: RouterOptions | None = None,
            calibration: Calibration | None = ...,
            learned: Learned | None = ...,
            identity: RouteSetId | None = ...,
        ) -> RouteSet: ...
        def _refresh_due(self) -> bool: ...
        def _stored_now(self) -> Feedback: ...
        def _schedule_refresh(self) -> None: ...
        def _pick_up_learned(self, collection: RouteCollection) -> bool: ...
        def refresh(self) -> bool: ...
        async def arefresh(self) -> bool: ...
        @property
        def revision(self) -> int: ...
        @property
        def routes(self) -> list[Route]: ...
        def _learn(self) -> None: ...
        def _learner(
            self,
        ) -> Callable[[Sequence[Route], Snapshot, Learned | None], Learned | None]: ...
        def _check(self, texts: Sequence[str], *, blanks: bool = False) -> list[str]: ...
        def route_many(self, texts: Sequence[str]) -> list[RouteMatch]: ...
