"""What the router learnt from its own utterances, as stored and served.

:class:`SelfTraining` (a head that ranks the routes and an adaptive abstention threshold, one
cut per route) is made by ``semrouter.training._selftrain`` when the routes change;
:class:`Learned` ties it to the route set content it was learnt for. Both are stored with the
route set, so a reopen, a reader or another process trains nothing: serving reads them here
and never imports ``semrouter.training``. ``_routeset.build_route_set`` applies the cuts, never
under :data:`FLOOR_RATIO` times the encoder's default threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._aggregation import AGGREGATIONS, Aggregation, hits_counted
from ._exceptions import ConfigurationError
from ._head import LogisticHead

if TYPE_CHECKING:
    from ._options import RouterOptions

__all__ = ["FLOOR_RATIO", "Learned", "SelfTraining"]

_FORMAT = "semrouter.self_training/1"
#: The learnt cuts never fall under this share of the encoder's default threshold (where it
#: states one): a request from far outside every route scores low against any route set,
#: while a small route set's own scores say little about where such requests fall. Chosen on
#: small route sets (validation splits, benchmarks/results/small_sets.txt).
FLOOR_RATIO = 0.85


@dataclass(frozen=True)
class SelfTraining:
    """What the router learns from its own utterances; persisted with the route set.

    Attributes:
        head: the route head.
        threshold: the adaptive abstention cut on the similarity scale, or ``None`` (no route
            has two utterances: keep the encoder's default).
        reject_share: the quantile it was taken at.
        top_k: the aggregation's hits per route the threshold was measured with.
        aggregation: ``"mean"`` or ``"max"``; a router with other settings must recompute.
        route_thresholds: one cut per route of the head (``training/_abstention.py``), or
            ``None`` (payloads written before they existed: ``threshold`` for every route).
    """

    head: LogisticHead
    threshold: float | None
    reject_share: float
    top_k: int
    aggregation: Aggregation
    route_thresholds: tuple[float, ...] | None = None

    def thresholds_by_route(self) -> dict[str, float]:
        """The adaptive cut of each route by name (empty without a threshold)."""
        if self.threshold is None:
            return {}
        cuts = self.route_thresholds or (self.threshold,) * len(self.head.route_names)
        return dict(zip(self.head.route_names, cuts, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe mapping (the head's weights as base64 float32)."""
        return {
            "format": _FORMAT,
            "head": self.head.to_dict(),
            "threshold": self.threshold,
            "reject_share": self.reject_share,
            "top_k": self.top_k,
            "aggregation": self.aggregation,
            "route_thresholds": None
            if self.route_thresholds is None
            else list(self.route_thresholds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SelfTraining:
        """Rebuild from :meth:`to_dict`'s output."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ConfigurationError(f"not a self-training payload (expected {_FORMAT!r})")
        try:
            threshold = data["threshold"]
            aggregation = data["aggregation"]
            if aggregation not in AGGREGATIONS:
                raise ValueError(f"unknown aggregation {aggregation!r}")
            head = LogisticHead.from_dict(data["head"])
            cuts = data.get("route_thresholds")
            if cuts is not None and len(cuts) != len(head.route_names):
                raise ValueError(f"{len(cuts)} route thresholds for {len(head.route_names)} routes")
            return cls(
                head=head,
                threshold=None if threshold is None else float(threshold),
                reject_share=float(data["reject_share"]),
                top_k=int(data["top_k"]),
                aggregation=aggregation,
                route_thresholds=None if cuts is None else tuple(float(c) for c in cuts),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid self-training payload: {exc}") from exc


@dataclass(frozen=True, eq=False)
class Learned:
    """What the router learnt from its own utterances for one route set (a
    :class:`SelfTraining`) and how alike they are; stored with the route set, so a reopen or
    another process trains nothing."""

    digest: str
    training: SelfTraining
    typical: float = 1.0  # the median leave-one-out similarity of an utterance to its route

    def credible(self, default_threshold: float) -> bool:
        """Whether the route set meets the adaptive threshold's assumption: a route's
        utterances resemble each other (paraphrases) at least as much as the encoder's
        default threshold asks of a match. Otherwise (keyword lists, unrelated examples, a
        test encoder) the default threshold stays."""
        return self.typical >= default_threshold

    def current(self, digest: str, options: RouterOptions) -> bool:
        """Whether it belongs to this route set and was measured with these options."""
        training = self.training
        return (
            self.digest == digest
            and training.aggregation == options.aggregation
            and hits_counted(training.aggregation, training.top_k)
            == hits_counted(options.aggregation, options.top_k)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "typical": self.typical, **self.training.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Learned:
        rest = {k: v for k, v in data.items() if k not in ("digest", "typical")}
        typical = float(data.get("typical", 1.0))
        return cls(str(data.get("digest", "")), SelfTraining.from_dict(rest), typical)
