"""The router's options: one validated, frozen value used by the constructor, files and the CLI.

A router holds one :class:`RouterOptions`; ``router.configure(threshold=0.4)`` validates a copy
and publishes it with the route set, so an option can never be set to nonsense and a concurrent
query sees either the old options or the new ones.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._aggregation import Aggregation
from ._exceptions import ConfigurationError

__all__ = ["Hybrid", "RouterOptions", "SearchMode"]

SearchMode = Literal["auto", "exact", "qdrant"]
Hybrid = Literal["off", "dbsf", "rrf"]


class RouterOptions(BaseModel):
    """How a router scores and decides; saved whole with the router.

    Attributes:
        threshold: the score every route must reach, unless the route sets its own. ``None``
            (default): the fitted thresholds after :meth:`~semrouter.SemanticRouter.fit`, else
            the encoder's ``default_threshold``. ``-1`` never abstains. Scores lie in [-1, 1]
            for every router, fitted or not (see docs/architecture.md, "One score scale").
        aggregation: a route's score from its nearest utterances: ``"mean"`` of its best
            ``top_k``, or ``"max"``.
        top_k: utterances per route averaged by ``"mean"`` (1 to 16).
        candidates: nearest utterances retrieved per query before aggregation (1 to 4096).
        search: ``"auto"`` (in-process exact search up to ``exact_limit`` utterances, Qdrant's
            HNSW index above), ``"exact"`` or ``"qdrant"``.
        exact_limit: see ``search``.
        learn: learn from the routes' own utterances, with no labelled data: a head that ranks
            the routes and an abstention threshold that adapts to the route set
            (``_selftrain.py``). Trained when the routes change (in the background above
            2,000 utterances) and stored with them.
        hybrid: fuse a lexical (BM25) ranking of the routes with the dense one: ``"dbsf"``
            or ``"rrf"`` (Qdrant's fusion formulas, applied per route; see ``_lexical.py``),
            or ``"off"``. ``None`` (default): off, unless :meth:`~semrouter.SemanticRouter.fit`
            found on its held-out texts that fusion routes them significantly better (then its
            choice and weight apply while the fit is current). It helps where words matter
            more than meaning (product codes, error codes, names); on CLINC150 it gains nothing
            (benchmarks/results/hybrid.txt). Needs the query texts: ``route_vectors`` and
            friends take them as ``texts=``.
        hybrid_weight: the lexical ranking's weight in the fusion (the dense one weighs 1).

    Example:
        >>> from semrouter import RouterOptions
        >>> RouterOptions(threshold=0.4).model_copy(update={"top_k": 3}).top_k
        3
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    threshold: float | None = Field(default=None, ge=-1.0, le=1.0, allow_inf_nan=False)
    aggregation: Aggregation = "mean"
    top_k: int = Field(default=2, ge=1, le=16)
    candidates: int = Field(default=32, ge=1, le=4096)
    search: SearchMode = "auto"
    exact_limit: int = Field(default=20_000, ge=0, le=10_000_000)
    learn: bool = True
    hybrid: Hybrid | None = None
    hybrid_weight: float = Field(default=0.5, gt=0.0, le=10.0, allow_inf_nan=False)

    @classmethod
    def build(cls, **values: Any) -> RouterOptions:
        """Validated options; a clear :class:`~semrouter.ConfigurationError` otherwise."""
        for name in ("threshold", "hybrid_weight"):
            value = values.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                values[name] = float(value)  # 0, -1 and 1 are fine values
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc)) from None

    def replace(self, **changes: Any) -> RouterOptions:
        """A validated copy with ``changes`` applied."""
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise ConfigurationError(f"unknown router options: {', '.join(unknown)}")
        return type(self).build(**{**self.model_dump(), **changes})


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(x) for x in error["loc"]) or "options"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message} (got {error.get('input')!r})")
    return "invalid router options: " + "; ".join(parts)
