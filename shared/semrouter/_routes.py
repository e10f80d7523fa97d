"""Routes (what the user declares) and route matches (what routing returns).

Route metadata travels in the payload of every point of the route and is written to Qdrant's
write-ahead log, so it is held to what every Qdrant store reads back unchanged:

- a mapping with ``str`` keys; values ``None``, ``bool``, ``int``, finite ``float``, ``str``,
  lists and nested mappings (tuples become lists);
- at most :data:`MAX_METADATA_DEPTH` levels of nesting (the metadata mapping is level 1; Qdrant
  Edge cannot read back a log entry nested about 128 levels deep);
- at most :data:`MAX_METADATA_CHARS` characters as JSON;
- integers outside the signed 64-bit range become floats (what Qdrant stores for them), so
  the route equals what is read back;
- text must be valid Unicode (no lone surrogates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._exceptions import ConfigurationError

__all__ = ["AbstainReason", "Route", "RouteMatch", "check_text", "validate_routes"]

#: Why a match has no route (:attr:`RouteMatch.reason`).
AbstainReason = Literal["below_threshold", "blank", "no_routes", "unsupported_language"]

#: Route metadata travels in every point's payload: keep it small.
MAX_METADATA_CHARS = 64 * 1024
#: Deepest nesting of metadata containers (the metadata mapping itself is level 1).
MAX_METADATA_DEPTH = 32
_INT64 = (-(2**63), 2**63 - 1)


class Route(BaseModel):
    """A destination and the example utterances that should lead to it.

    Example:
        >>> Route(name="chitchat", utterances=["how are you?", "lovely weather today"]).name
        'chitchat'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    utterances: tuple[str, ...]
    description: str | None = None
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def __init__(
        self,
        name: str | None = None,
        utterances: Any = None,
        **data: Any,
    ) -> None:
        if name is not None:
            data["name"] = name
        if utterances is not None:
            data["utterances"] = utterances
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, data.get("name"))) from exc

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        _check_text(value, "route name")
        if not value.strip():
            raise ValueError("route name must not be empty")
        if value != value.strip():
            raise ValueError("route name must not start or end with white space")
        return value

    @field_validator("utterances", mode="before")
    @classmethod
    def _check_utterances(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("utterances must be a list of strings, not one string")
        if value is None:
            value = []
        if isinstance(value, (bytes, dict)) or not hasattr(value, "__iter__"):
            raise ValueError(f"utterances must be a list of strings, got {type(value).__name__}")
        items = list(value)
        if not items:
            raise ValueError("a route needs at least one utterance")
        for position, item in enumerate(items):
            if not isinstance(item, str):
                raise ValueError(
                    f"utterances must be strings, got {type(item).__name__} at "
                    f"utterances[{position}]"
                )
            if not item.strip():
                raise ValueError(f"utterances[{position}] is blank: {item!r}")
            _check_text(item, f"utterances[{position}]")
        # Keep the first occurrence of each utterance, in order.
        return tuple(dict.fromkeys(items))

    @field_validator("metadata", mode="before")
    @classmethod
    def _check_metadata(cls, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"metadata must be a mapping, got {type(value).__name__}")
        normal = _plain(value, "metadata", 1)
        size = len(json.dumps(normal, ensure_ascii=False, allow_nan=False))
        if size > MAX_METADATA_CHARS:
            raise ValueError(
                f"metadata is {size} characters as JSON; the limit is {MAX_METADATA_CHARS}"
            )
        return normal  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Route:
        """Build a route from a plain mapping, as read from a config file."""
        if not isinstance(data, dict):
            raise ConfigurationError(f"a route must be a mapping, got {type(data).__name__}")
        return cls(**data)


class RouteMatch(BaseModel):
    """The result of routing one query.

    ``name`` is ``None`` when no route passed its threshold: that is a normal answer, not an
    error. ``scores`` holds the aggregated score of every candidate route that was looked at,
    best first, so a caller can see how close the others came.

    ``threshold`` is the threshold the route needed; on an abstaining match, the one its best
    route missed (``score`` is that route's score). ``reason`` says why a match has no route:
    ``"below_threshold"`` (the best route scored under ``threshold``), ``"blank"`` (the
    request was empty or white space: :meth:`~semrouter.SemanticRouter.route_many` answers it
    without failing the batch), ``"no_routes"`` (no route was scored: the router holds
    none) or ``"unsupported_language"`` (below threshold, and the request seems written in a
    language the encoder does not read: ``language`` says which; ``pip install
    'semrouter[multilingual]'`` brings :class:`~semrouter.encoders.MultilingualEncoder`);
    ``None`` on a match with a route.

    ``language`` is set with ``reason="unsupported_language"`` only: a BCP 47 tag (``"es"``,
    ``"fr"``, ``"und-Cyrl"`` when only the script is known), guessed from the request's
    script and function words for encoders that declare their
    :attr:`~semrouter.encoders.Encoder.languages`.

    Example:
        >>> RouteMatch(name=None, score=0.21, threshold=0.3, reason="below_threshold").reason
        'below_threshold'
    """

    model_config = ConfigDict(frozen=True)

    name: str | None
    score: float
    scores: dict[str, float] = Field(default_factory=dict)
    utterance: str | None = None
    threshold: float | None = None
    reason: AbstainReason | None = None
    language: str | None = None

    def __bool__(self) -> bool:
        return self.name is not None


def validate_routes(routes: Any) -> list[Route]:
    """Coerce a sequence of routes or mappings into routes, refusing duplicate names."""
    if isinstance(routes, (str, bytes, Route)) or routes is None:
        raise ConfigurationError("routes must be a list of Route objects")
    result: list[Route] = []
    seen: set[str] = set()
    for item in routes:
        route = item if isinstance(item, Route) else Route.from_dict(item)
        if route.name in seen:
            raise ConfigurationError(f"duplicate route name: {route.name!r}")
        seen.add(route.name)
        result.append(route)
    return result


def check_text(value: str, what: str) -> str | None:
    """Why ``value`` cannot be stored or encoded (lone surrogates are not UTF-8), or ``None``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} contains a lone surrogate and is not valid Unicode text"
    return None


def _check_text(value: str, what: str) -> None:
    problem = check_text(value, what)
    if problem:
        raise ValueError(problem)


def _plain(value: Any, where: str, depth: int) -> Any:
    """``value`` as plain JSON data that every Qdrant store reads back unchanged."""
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            _check_text(value, where)
        return value
    if isinstance(value, int):
        value = int(value)  # an int subclass (IntEnum) as a plain int
        if _INT64[0] <= value <= _INT64[1]:
            return value
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{where} is an integer too large to store") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}: metadata numbers must be finite")
        return float(value)
    if isinstance(value, (Mapping, list, tuple)):
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(
                f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep (at {where})"
            )
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"{where} has a {type(key).__name__} key; keys must be str")
                _check_text(key, f"a key of {where}")
                result[key] = _plain(item, f"{where}[{key!r}]", depth + 1)
            return result
        return [_plain(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise ValueError(
        f"{where} is a {type(value).__name__}; metadata holds only None, bool, int, float, "
        "str, lists and mappings"
    )


def _describe(exc: ValidationError, name: Any) -> str:
    where = f"route {name!r}" if isinstance(name, str) else "route"
    problems = []
    for err in exc.errors():
        message = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        field = ".".join(str(p) for p in err["loc"]) or "value"
        problems.append(message if message.startswith(field) else f"{field}: {message}")
    return f"invalid {where}: {'; '.join(problems)}"
