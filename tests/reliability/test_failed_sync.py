"""A sync that fails after its deletes leaves no false memory: the next sync re-reads the store
and repairs it, and the route is answered again (issue 12, point 2)."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import QdrantClient

from semrouter import BackendError, FakeEncoder, Route, SemanticRouter
from semrouter._stores import ClientStore

ROUTES = [
    Route("flights", ["book a flight to paris", "cheap flights to rome"], metadata={"v": 1}),
    Route("weather", ["will it rain tomorrow", "sunny forecast"]),
]


@pytest.mark.parametrize("search", ["exact", "qdrant"])
def test_a_sync_failing_after_its_deletes_is_repaired_by_the_next(
    monkeypatch: pytest.MonkeyPatch, search: str
) -> None:
    client = QdrantClient(":memory:")
    router = SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client, search=search)  # type: ignore[arg-type]
    changed = Route("flights", ["book a flight to paris", "fly me to rome"], metadata={"v": 2})

    def fail(self: ClientStore, ids: Any, payloads: Any) -> None:
        raise BackendError("the server went away mid-sync")

    with monkeypatch.context() as patch:  # deletes and upserts land, then the payload write fails
        patch.setattr(ClientStore, "set_payloads", fail)
        with pytest.raises(BackendError):
            router.update(changed)
    router.update(ROUTES[0])  # roll back: the utterance the failed sync deleted must return
    stored = {
        (p.payload or {}).get("utterance")
        for p in client.scroll("semrouter", limit=100, with_payload=True)[0]
        if (p.payload or {}).get("route") == "flights"
    }
    assert stored == {"book a flight to paris", "cheap flights to rome"}
    assert router.route("cheap flights to rome").name == "flights"
    report = router.update(changed)  # and the change itself goes through whole
    assert report.updated == 1 and router.get("flights").metadata == {"v": 2}
    assert router.route("fly me to rome").name == "flights"
    router.close()
