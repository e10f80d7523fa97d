"""The route set stored whole in its Qdrant collection, beside the vectors: the store of record.

Each route set (one per tenant; the default tenant is ``""``) is two points with a unit vector
and no route payload, so routing never returns them:

- the *document* (``semrouter_routeset``): every route (name, utterances, description,
  threshold, metadata), the fitted calibration, and the revision;
- the *head* (``semrouter_head``): the revision and digest alone, so a router can tell in one
  small read whether another process changed the set.

A writer upserts the utterance points first, then the document, then the head: a reader that
sees a new head finds every point it names. Opening a router without routes reads the document
and takes the vectors from Qdrant (nothing is encoded).

Sync policies, when routes are declared in code (``SemanticRouter(routes, sync=...)``):

============  ===================================================================  ==========
policy        the stored set becomes                                               deletes
============  ===================================================================  ==========
``"merge"``   the stored routes plus the declared ones (declared wins on a name)   never
``"replace"`` exactly the declared routes                                          yes
``"check"``   unchanged; a declared set that differs raises ``RouteSetMismatch``   never
============  ===================================================================  ==========

``"merge"`` is the default: a deploy with fewer routes, or a replica on an older release,
never deletes another process's routes. A collection written before route sets were stored
(no document) is adopted as the declared routes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._exceptions import ConfigurationError
from ._routes import Route
from ._routeset import Calibration, Learned
from ._stores import NAMESPACE, Store, _meta_vector

__all__ = [
    "DOC_KEY",
    "HEAD_KEY",
    "StoredRouteSet",
    "SyncPolicy",
    "apply_policy",
    "read_head",
    "read_route_set",
    "route_set_ids",
    "write_route_set",
]

DOC_KEY = "semrouter_routeset"
HEAD_KEY = "semrouter_head"
SyncPolicy = Literal["merge", "replace", "check"]
POLICIES: tuple[str, ...] = ("merge", "replace", "check")


@dataclass(frozen=True)
class StoredRouteSet:
    """A route set as read from its collection."""

    routes: tuple[Route, ...]
    calibration: Calibration | None
    revision: int
    digest: str
    learned: Learned | None = None


def route_set_ids(tenant: str) -> tuple[str, str]:
    """The ids of a tenant's document and head points."""
    doc = str(uuid.uuid5(NAMESPACE, f"semrouter:routeset:{len(tenant)}:{tenant}"))
    head = str(uuid.uuid5(NAMESPACE, f"semrouter:routeset-head:{len(tenant)}:{tenant}"))
    return doc, head


def read_head(store: Store, tenant: str) -> tuple[int, str] | None:
    """``(revision, digest)`` of the stored route set, or ``None`` if none is stored."""
    _, head = route_set_ids(tenant)
    payload = store.read_payloads([head]).get(head)
    found = payload.get(HEAD_KEY) if payload else None
    if not isinstance(found, dict):
        return None
    return int(found.get("revision", 0)), str(found.get("digest", ""))


def read_route_set(store: Store, tenant: str) -> StoredRouteSet | None:
    """The stored route set, or ``None`` if the collection holds none for ``tenant``."""
    doc, _ = route_set_ids(tenant)
    payload = store.read_payloads([doc]).get(doc)
    found = payload.get(DOC_KEY) if payload else None
    if not isinstance(found, dict):
        return None
    try:
        routes = tuple(_route(r) for r in found.get("routes", []))
        raw = found.get("calibration")
        calibration = Calibration.model_validate(raw) if raw is not None else None
        raw = found.get("learned")
        learned = Learned.from_dict(raw) if isinstance(raw, dict) else None
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"the route set stored in {store.target} cannot be read ({exc}); rewrite it with "
            "sync='replace'"
        ) from None
    return StoredRouteSet(
        routes, calibration, int(found.get("revision", 0)), str(found.get("digest", "")), learned
    )


_PARSED: dict[str, Route] = {}  # route document entry (as JSON) -> validated Route
_PARSED_LIMIT = 4096


def _route(data: Any) -> Route:
    """A stored route, validated once per distinct content: a refresh after one changed route
    re-validates that route only (validation is most of reading a big route set)."""
    if not isinstance(data, dict):
        return Route.from_dict(data)
    key = json.dumps(data, sort_keys=True, ensure_ascii=False)
    route = _PARSED.get(key)
    if route is None:
        route = Route.from_dict(dict(data))
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        _PARSED[key] = route
    return route


def write_route_set(
    store: Store,
    tenant: str,
    routes: Sequence[Route],
    calibration: Calibration | None,
    *,
    revision: int,
    digest: str,
    dimension: int,
    learned: Learned | None = None,
) -> None:
    """Write the document, then the head (call after the utterance points are written)."""
    doc, head = route_set_ids(tenant)
    document: dict[str, Any] = {
        "revision": revision,
        "digest": digest,
        "tenant": tenant,
        "routes": [route.model_dump(mode="json", exclude_defaults=True) for route in routes],
        "calibration": calibration.model_dump(mode="json") if calibration is not None else None,
        "learned": learned.to_dict() if learned is not None else None,
    }
    import numpy as np

    vector = np.asarray([_meta_vector(dimension)], dtype=np.float32)
    store.upsert([doc], vector, [{DOC_KEY: document}])
    store.upsert([head], vector, [{HEAD_KEY: {"revision": revision, "digest": digest}}])


def apply_policy(
    policy: SyncPolicy, declared: Sequence[Route], stored: Sequence[Route]
) -> list[Route]:
    """The route set a router serves, from the declared and the stored routes (module table)."""
    if policy not in POLICIES:
        raise ConfigurationError(f"sync must be one of {', '.join(POLICIES)}; got {policy!r}")
    if policy == "replace":
        return list(declared)
    if policy == "check":
        problems = differences(declared, stored)
        if problems:
            from ._exceptions import RouteSetMismatchError

            raise RouteSetMismatchError(
                "the declared routes differ from the stored ones: "
                + "; ".join(problems[:10])
                + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
                + " (sync='merge' adds them, sync='replace' makes the store match)"
            )
        return list(stored)
    chosen = {route.name: route for route in declared}
    merged = [chosen.get(route.name, route) for route in stored]
    kept = {route.name for route in stored}
    return merged + [route for route in declared if route.name not in kept]


def differences(declared: Sequence[Route], stored: Sequence[Route]) -> list[str]:
    """What a declared route set changes in a stored one, in words."""
    old = {route.name: route for route in stored}
    new = {route.name: route for route in declared}
    problems = [f"route {name!r} is not stored" for name in new if name not in old]
    problems += [f"stored route {name!r} is not declared" for name in old if name not in new]
    problems += [
        f"route {name!r} differs" for name in new if name in old and new[name] != old[name]
    ]
    return problems
