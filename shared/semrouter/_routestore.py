"""The route set stored in its Qdrant collection, beside the vectors: the store of record.

Each route set (one per tenant; the default tenant is ``""``) lives in one *head* point with a
unit vector and no route payload, so routing never returns it. Its payload holds

- ``semrouter_head``: the route set's identity (:class:`RouteSetId`: a *generation* that is new
  whenever the route set is created anew, the revision, the digest of its routes) and a nonce
  naming the write;
- ``semrouter_routeset``: every route (name, utterances, description, threshold, metadata) and
  the fitted calibration.

One point, so a change is one atomic write: a writer writes it only if the head still holds the
identity it started from (:meth:`~semrouter._stores.Store.write_if`: Qdrant's conditional
update on a server, the folder's one writer on an embedded folder). What the router learnt from
the utterances is stored in a point of its own, keyed by the digest (:func:`learned_id`), so a
background learning run adds no revision. Route sets written before 0.2 kept the document in a
second point; they are read as generation ``""``.

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
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._exceptions import ConfigurationError
from ._feedback import Feedback
from ._learned import Learned
from ._routes import Route
from ._routeset import Calibration
from ._stores._base import NAMESPACE, Store, _meta_vector

__all__ = [
    "DOC_KEY",
    "HEAD_KEY",
    "LEARNED_KEY",
    "RouteSetId",
    "StoredRouteSet",
    "SyncPolicy",
    "apply_policy",
    "delete_route_set",
    "learned_id",
    "new_generation",
    "read_head",
    "read_learned",
    "read_route_set",
    "route_set_ids",
    "write_learned",
    "write_route_set",
]

DOC_KEY = "semrouter_routeset"
HEAD_KEY = "semrouter_head"
LEARNED_KEY = "semrouter_learned"
SyncPolicy = Literal["merge", "replace", "check"]
POLICIES: tuple[str, ...] = ("merge", "replace", "check")


@dataclass(frozen=True)
class RouteSetId:
    """Which version of a route set: two versions are the same only if all three agree.

    A revision alone restarts at 1 when a route set is deleted and created again, or when a
    folder is re-created; the generation (random, new at each creation) tells them apart.
    """

    generation: str
    revision: int
    digest: str

    def expected(self) -> dict[str, Any]:
        """The head fields a conditional write compares (old heads have no generation)."""
        if not self.generation:
            return {"revision": self.revision}
        return {"generation": self.generation, "revision": self.revision}


@dataclass(frozen=True)
class StoredRouteSet:
    """A route set as read from its collection."""

    routes: tuple[Route, ...]
    calibration: Calibration | None
    identity: RouteSetId
    learned: Learned | None = None  # stored inside the document before 0.2
    #: examples (already among ``routes``' utterances) and negatives
    feedback: Feedback = field(default_factory=Feedback)
    #: the head point's payload as read (what :func:`restore_head` puts back)
    head: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def revision(self) -> int:
        return self.identity.revision


def new_generation() -> str:
    """A fresh generation: random, because a re-created route set must differ from every
    earlier one, even one with the same routes."""
    return uuid.uuid4().hex


def route_set_ids(tenant: str) -> tuple[str, str]:
    """The ids of a tenant's legacy document point and of its head point."""
    doc = str(uuid.uuid5(NAMESPACE, f"semrouter:routeset:{len(tenant)}:{tenant}"))
    head = str(uuid.uuid5(NAMESPACE, f"semrouter:routeset-head:{len(tenant)}:{tenant}"))
    return doc, head


def learned_id(tenant: str, digest: str) -> str:
    """The id of the point holding what was learnt for one route set content."""
    return str(uuid.uuid5(NAMESPACE, f"semrouter:learned:{len(tenant)}:{tenant}:{digest}"))


def _identity(found: Any) -> RouteSetId | None:
    if not isinstance(found, dict):
        return None
    try:
        revision = int(found.get("revision", 0))
    except (TypeError, ValueError):
        return None
    return RouteSetId(str(found.get("generation", "")), revision, str(found.get("digest", "")))


def read_head(store: Store, tenant: str) -> RouteSetId | None:
    """The identity of the stored route set, or ``None`` if none is stored (one small read)."""
    _, head = route_set_ids(tenant)
    payload = store.read_payloads([head], keys=(HEAD_KEY,)).get(head)
    return _identity(payload.get(HEAD_KEY)) if payload else None


def read_route_set(store: Store, tenant: str) -> StoredRouteSet | None:
    """The stored route set, or ``None`` if the collection holds none for ``tenant``."""
    doc, head = route_set_ids(tenant)
    payload = store.read_payloads([head]).get(head) or {}
    identity = _identity(payload.get(HEAD_KEY))
    if identity is None:
        return None
    found = payload.get(DOC_KEY)
    if not isinstance(found, dict):  # written before 0.2: the document is a point of its own
        legacy = store.read_payloads([doc]).get(doc)
        found = legacy.get(DOC_KEY) if legacy else None
        if not isinstance(found, dict):
            return None
    try:
        routes = tuple(_route(r) for r in found.get("routes", []))
        raw = found.get("calibration")
        calibration = Calibration.model_validate(raw) if raw is not None else None
        raw = found.get("learned")
        learned = Learned.from_dict(raw) if isinstance(raw, dict) else None
        feedback = Feedback.from_dict(found.get("feedback"))
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"the route set stored in {store.target} cannot be read ({exc}); rewrite it with "
            "sync='replace'"
        ) from None
    return StoredRouteSet(routes, calibration, identity, learned, feedback, payload)


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


#: Nonces of the latest writes a head remembers: a writer whose conditional write was
#: followed at once by others' still finds its own among them.
RECENT_WRITES = 64


def head_payload(
    tenant: str,
    routes: Sequence[Route],
    calibration: Calibration | None,
    identity: RouteSetId,
    previous: dict[str, Any] | None,
    feedback: Feedback,
) -> dict[str, Any]:
    """The head point's payload for one version of the route set (``previous``: the head
    payload it replaces, whose recent write nonces it carries forward)."""
    nonce = uuid.uuid4().hex  # tells a writer whether its conditional write won
    before = (previous or {}).get(HEAD_KEY)
    recent = before.get("recent") if isinstance(before, dict) else None
    recent = [str(n) for n in recent] if isinstance(recent, list) else []
    head = {
        "generation": identity.generation,
        "revision": identity.revision,
        "digest": identity.digest,
        "write": nonce,
        "recent": [*recent, nonce][-RECENT_WRITES:],
    }
    document = {
        "tenant": tenant,
        "routes": [route.model_dump(mode="json", exclude_defaults=True) for route in routes],
        "calibration": calibration.model_dump(mode="json") if calibration is not None else None,
    }
    if feedback:
        document["feedback"] = feedback.to_dict()
    return {HEAD_KEY: head, DOC_KEY: document}


def write_route_set(
    store: Store,
    tenant: str,
    payload: dict[str, Any],
    *,
    expected: RouteSetId | None,
    dimension: int,
) -> bool:
    """Write a :func:`head_payload` if the stored head is still ``expected`` (``None``: no
    route set is stored); returns whether it was written. Call after the utterance points
    are written, so a reader that sees the new head finds every point it names."""
    _, head = route_set_ids(tenant)
    vector = np.asarray([_meta_vector(dimension)], dtype=np.float32)
    condition = expected.expected() if expected is not None else None
    return store.write_if(head, vector[0], payload, key=HEAD_KEY, expected=condition)


def restore_head(store: Store, tenant: str, payload: dict[str, Any] | None, dimension: int) -> None:
    """Put a head back as it was (``None``: there was none) after a change failed half-way."""
    _, head = route_set_ids(tenant)
    if payload is None:
        store.delete([head])
        return
    vector = np.asarray([_meta_vector(dimension)], dtype=np.float32)
    store.upsert([head], vector, [payload])


def delete_route_set(store: Store, tenant: str, digest: str | None) -> None:
    """Delete a tenant's head, legacy document and learnt point (not its utterance points)."""
    ids = list(route_set_ids(tenant))
    if digest:
        ids.append(learned_id(tenant, digest))
    store.delete(ids)


def read_learned(store: Store, tenant: str, digest: str) -> Learned | None:
    """What was learnt for the route set content ``digest``, if stored."""
    pid = learned_id(tenant, digest)
    payload = store.read_payloads([pid]).get(pid)
    found = payload.get(LEARNED_KEY) if payload else None
    if not isinstance(found, dict):
        return None
    try:
        learned = Learned.from_dict(found)
    except (ValueError, TypeError, KeyError):
        return None  # written by another release: learnt again
    return learned if learned.digest == digest else None


def write_learned(store: Store, tenant: str, learned: Learned, dimension: int) -> None:
    """Store what was learnt for one route set content (no new revision: the routes are the
    same; a follower picks it up by the digest)."""
    vector = np.asarray([_meta_vector(dimension)], dtype=np.float32)
    store.upsert(
        [learned_id(tenant, learned.digest)],
        vector,
        [{LEARNED_KEY: learned.to_dict()}],
    )


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
