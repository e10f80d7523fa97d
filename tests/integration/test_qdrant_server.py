"""The same router behaviour on a real Qdrant server: runs when QDRANT_URL is set.

QDRANT_URL=http://localhost:6333 [QDRANT_API_KEY=...] pytest tests/integration
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from semrouter import FakeEncoder, IndexMismatchError, Route, SemanticRouter

URL = os.environ.get("QDRANT_URL")
KEY = os.environ.get("QDRANT_API_KEY")
pytestmark = pytest.mark.skipif(not URL, reason="set QDRANT_URL to run against a Qdrant server")

ROUTES = [
    Route("flights", ["book a flight to paris", "cheap flights to rome"]),
    Route("weather", ["what is the weather today", "will it rain tomorrow"]),
]


@pytest.fixture
def collection() -> Iterator[str]:
    name = f"semrouter-test-{uuid.uuid4().hex[:8]}"
    yield name
    from qdrant_client import QdrantClient

    QdrantClient(url=URL, api_key=KEY).delete_collection(name)


@pytest.mark.parametrize("search", ["exact", "qdrant"])
async def test_route_sync_and_async_on_a_server(collection: str, search: str) -> None:
    router = SemanticRouter(
        ROUTES,
        encoder=FakeEncoder(),
        url=URL,
        api_key=KEY,
        collection=collection,
        search=search,  # type: ignore[arg-type]
    )
    assert router.route("book a flight to paris").name == "flights"
    assert (await router.aroute("will it rain tomorrow")).name == "weather"
    router.close()


def test_reopen_encodes_nothing_and_refuses_another_encoder(collection: str) -> None:
    SemanticRouter(
        ROUTES, encoder=FakeEncoder(), url=URL, api_key=KEY, collection=collection
    ).close()
    encoder = FakeEncoder()
    again = SemanticRouter(ROUTES, encoder=encoder, url=URL, api_key=KEY, collection=collection)
    assert encoder.encoded_texts == 0 and again.last_sync.kept == 4
    again.close()
    with pytest.raises(IndexMismatchError):
        SemanticRouter(ROUTES, encoder=FakeEncoder(32), url=URL, api_key=KEY, collection=collection)
