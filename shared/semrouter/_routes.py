"""Routes (what the user declares) and route matches (what routing returns)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._exceptions import ConfigurationError

__all__ = ["Route", "RouteMatch", "validate_routes"]


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
        # Keep the first occurrence of each utterance, in order.
        return tuple(dict.fromkeys(items))

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


def _describe(exc: ValidationError, name: Any) -> str:
    where = f"route {name!r}" if isinstance(name, str) else "route"
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )
    return f"invalid {where}: {problems}"
