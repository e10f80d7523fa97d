"""Routes (what the user declares) and route matches (what routing returns)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._exceptions import ConfigurationError

__all__ = ["Route", "RouteMatch", "check_text", "validate_routes"]

#: Route metadata travels in every point's payload: keep it small.
MAX_METADATA_CHARS = 64 * 1024


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
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"utterances must be strings, got {type(item).__name__}")
            if not item.strip():
                raise ValueError("utterances must not be blank")
            _check_text(item, "utterance")
        # Keep the first occurrence of each utterance, in order.
        return tuple(dict.fromkeys(items))

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, ensure_ascii=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc
        if size > MAX_METADATA_CHARS:
            raise ValueError(
                f"metadata is {size} characters as JSON; the limit is {MAX_METADATA_CHARS}"
            )
        return value

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
    """

    model_config = ConfigDict(frozen=True)

    name: str | None
    score: float
    scores: dict[str, float] = Field(default_factory=dict)
    utterance: str | None = None
    threshold: float | None = None

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


def _describe(exc: ValidationError, name: Any) -> str:
    where = f"route {name!r}" if isinstance(name, str) else "route"
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )
    return f"invalid {where}: {problems}"
