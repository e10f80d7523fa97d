"""The route set: everything a query needs, as one immutable value published in one assignment.

A :class:`RouteSet` bundles the routes, their digest, the index :class:`Snapshot` (which row is
which route and utterance, and the vectors when searched in-process), the router's options, the
fitted calibration and the thresholds resolved from all of them. The router swaps the whole value
after every change (``self._state = new``), so a concurrent query reads one consistent version:
never a new snapshot with old thresholds.

Threshold precedence, for each route (first that applies):

1. the route's own ``Route.threshold``;
2. the router's ``threshold`` option, when set (``-1`` never abstains);
3. the threshold chosen by :meth:`~semrouter.SemanticRouter.fit` (while the fit is current);
4. the threshold learnt from the utterances (``_learned.py``, ``training/``), at any
   size, when the route set meets its assumption (see :meth:`Learned.credible`; always for an
   encoder that states no default threshold of its own), never under
   ``FLOOR_RATIO`` times the encoder's default threshold (where it states one);
5. the encoder's ``default_threshold``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._head import LogisticHead
from ._learned import FLOOR_RATIO, Learned
from ._lexical import LexicalIndex
from ._options import RouterOptions
from ._routes import Route

if TYPE_CHECKING:
    from ._routestore import RouteSetId
    from ._search import Pruning

__all__ = [
    "Calibration",
    "RouteSet",
    "Snapshot",
    "adopt_calibration",
    "build_route_set",
    "routes_digest",
]

CALIBRATION_VERSION = 2


class Calibration(BaseModel):
    """What :meth:`SemanticRouter.fit` learnt; plain data, safe to store in a config file.

    A fitted route's score is ``(p + w * s) / (1 + w)``: the head's probability ``p`` and the
    route's nearest-neighbour similarity ``s`` weighted by ``similarity_weight`` ``w``, on the
    same [-1, 1] scale as an unfitted router's similarity, so ``thresholds`` (and any threshold a
    user sets by hand) mean the same thing everywhere. Version 1 files (thresholds on the raw
    ``p + w * s`` scale) are converted when read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = CALIBRATION_VERSION
    routes_digest: str
    fingerprint: str
    head: dict[str, Any] | None
    thresholds: dict[str, float]
    similarity_weight: float = 1.0
    metric: Literal["accuracy", "f1"] = "accuracy"
    heldout: dict[str, float] = {}
    #: Hybrid routing as fit() chose it on the held-out texts ("off": dense only); applies
    #: while the fit is current and the router's ``hybrid`` option is ``None``.
    hybrid: Literal["off", "dbsf", "rrf"] = "off"
    hybrid_weight: float = Field(default=0.5, gt=0.0, le=10.0)  # as RouterOptions bounds it

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("version", CALIBRATION_VERSION) == 1:
            data = dict(data)
            if data.get("head") is not None:  # v1 thresholds were on the p + w * s scale
                scale = 1.0 + float(data.get("similarity_weight", 1.0))
                data["thresholds"] = {k: v / scale for k, v in data["thresholds"].items()}
            data["version"] = CALIBRATION_VERSION
            data["routes_digest"] = "v1:" + str(data.get("routes_digest", ""))
        return data


FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The index rows: one per (route, utterance), grouped by route in declaration order."""

    ids: tuple[str, ...]
    row_route: IntArray  # (N,) route position of each row
    route_sizes: IntArray  # (R,) rows per route
    utterances: tuple[str, ...]
    id_to_row: Mapping[str, int]
    vectors: FloatArray | None  # (N, d) unit rows for exact search; None: search in Qdrant
    pruning: Pruning | None = None  # a projection that prunes the exact search (_search.py)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls((), np.zeros(0, np.int64), np.zeros(0, np.int64), (), {}, None)

    @property
    def size(self) -> int:
        return len(self.ids)

    @cached_property
    def lexical(self) -> LexicalIndex:
        """BM25 over these utterances, built on first use (hybrid routing; ``_lexical.py``)."""
        return LexicalIndex(self.utterances)


@dataclass(frozen=True, eq=False)
class RouteSet:
    """One consistent version of what the router serves (see the module docstring)."""

    routes: tuple[Route, ...]
    names: tuple[str, ...]
    position: Mapping[str, int]
    digest: str
    snapshot: Snapshot
    options: RouterOptions
    default_threshold: float
    calibration: Calibration | None = None  # as given, current or stale
    head: LogisticHead | None = None  # only while the calibration is current
    head_columns: IntArray | None = None  # head column of each route position
    similarity_weight: float = 1.0
    thresholds: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    learned: Learned | None = None  # as given, current or not
    rank_head: LogisticHead | None = None  # the learned head, while current and no fit applies
    rank_columns: IntArray | None = None
    #: Hybrid routing in force: (method, lexical weight), or ``None`` for dense only.
    fusion: tuple[str, float] | None = None
    #: Which stored version this is (``None``: none is stored; see ``_routestore.RouteSetId``).
    identity: RouteSetId | None = None

    @property
    def stale(self) -> bool:
        """Whether a calibration is held but belongs to another route set."""
        return self.calibration is not None and self.calibration.routes_digest != self.digest

    def threshold_for(self, name: str) -> float:
        return float(self.thresholds[self.position[name]])


def routes_digest(routes: Sequence[Route]) -> str:
    """A hash of the route names and utterances (order-free): what a calibration is valid for."""
    content = sorted([route.name, sorted(route.utterances)] for route in routes)
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()[:32]


def build_route_set(
    routes: Sequence[Route],
    snapshot: Snapshot,
    options: RouterOptions,
    *,
    default_threshold: float,
    calibration: Calibration | None,
    digest: str | None = None,
    learned: Learned | None = None,
    default_declared: bool = True,
    identity: RouteSetId | None = None,
) -> RouteSet:
    """Resolve the thresholds and the heads for ``routes`` into one :class:`RouteSet`.

    ``default_declared=False``: the encoder did not state a default threshold, so the learnt
    one applies at any size and whatever the utterances look like (a guess about an unknown
    similarity scale is no better)."""
    names = tuple(route.name for route in routes)
    digest = digest if digest is not None else routes_digest(routes)
    current = calibration is not None and calibration.routes_digest == digest
    head = head_columns = None
    weight = 1.0
    if current and calibration is not None:
        weight = calibration.similarity_weight
        if calibration.head is not None:
            head = LogisticHead.from_dict(calibration.head)
            column = {name: i for i, name in enumerate(head.route_names)}
            head_columns = np.array([column[name] for name in names], dtype=np.int64)
    rank_head = rank_columns = None
    learnt = learned is not None and learned.current(digest, options) and not current
    adaptive: dict[str, float] | None = None  # the learnt cut of each route
    floor = FLOOR_RATIO * default_threshold if default_declared else 0.0
    if learnt and learned is not None:
        rank_head = learned.training.head
        column = {name: i for i, name in enumerate(rank_head.route_names)}
        rank_columns = np.array([column[name] for name in names], dtype=np.int64)
        if not default_declared or learned.credible(default_threshold):
            adaptive = learned.training.thresholds_by_route() or None
    thresholds = np.empty(len(names), dtype=np.float64)
    for i, route in enumerate(routes):
        if route.threshold is not None:
            thresholds[i] = route.threshold
        elif options.threshold is not None:
            thresholds[i] = options.threshold
        elif current and calibration is not None and route.name in calibration.thresholds:
            thresholds[i] = calibration.thresholds[route.name]
        elif adaptive is not None:
            # Never under the floor (far requests); a negative cosine never matches.
            thresholds[i] = max(adaptive[route.name], floor, 0.0)
        else:
            thresholds[i] = default_threshold
    return RouteSet(
        routes=tuple(routes),
        names=names,
        position={name: i for i, name in enumerate(names)},
        digest=digest,
        snapshot=snapshot,
        options=options,
        default_threshold=default_threshold,
        calibration=calibration,
        head=head,
        head_columns=head_columns,
        similarity_weight=weight,
        thresholds=thresholds,
        learned=learned,
        rank_head=rank_head,
        rank_columns=rank_columns,
        fusion=_fusion(options, calibration if current else None),
        identity=identity,
    )


def _fusion(options: RouterOptions, calibration: Calibration | None) -> tuple[str, float] | None:
    """The hybrid routing in force: the router's option when set, else what a current fit
    chose, else none."""
    if options.hybrid is not None:
        return None if options.hybrid == "off" else (options.hybrid, options.hybrid_weight)
    if calibration is not None and calibration.hybrid != "off":
        return calibration.hybrid, calibration.hybrid_weight
    return None


def adopt_calibration(calibration: Calibration, routes: Sequence[Route]) -> Calibration:
    """``calibration`` with a version-1 digest rewritten when it matches ``routes``."""
    if not calibration.routes_digest.startswith("v1:"):
        return calibration
    content = [[route.name, sorted(route.utterances)] for route in routes]
    legacy = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()[:32]
    if calibration.routes_digest != "v1:" + legacy:
        return calibration
    return calibration.model_copy(update={"routes_digest": routes_digest(routes)})
