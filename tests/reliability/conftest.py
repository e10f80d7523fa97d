"""Fixtures for the reliability tests: FakeEncoder routers and misbehaving loopback servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient

from semrouter import FakeEncoder, Route, SemanticRouter
from tests.support.loopback import tcp_server

#: Queries paired with the route they must reach with :data:`ROUTES` and a ``FakeEncoder``.
EXPECTED = {
    "hello there friend": "greet",
    "hi how are you": "greet",
    "goodbye see you later": "bye",
    "book a flight to paris": "travel",
    "cancel my hotel booking": "travel",
    "what is the weather today": "weather",
    "will it rain tomorrow": "weather",
}

ROUTES = [
    Route("greet", ["hello there", "hi how are you", "good morning friend"]),
    Route("bye", ["goodbye now", "see you later", "bye bye"]),
    Route("travel", ["book a flight", "cancel my hotel booking", "flight to paris"]),
    Route("weather", ["what is the weather", "will it rain tomorrow", "is it sunny today"]),
]

#: Queries for load tests: the expected ones plus some that match nothing.
QUERIES = [*EXPECTED, "zzz qqq", "completely unrelated words", "héllo 你好 مرحبا"]


@pytest.fixture
def encoder() -> FakeEncoder:
    """A fresh deterministic encoder that counts what it encodes."""
    return FakeEncoder(dimension=32)


@pytest.fixture
def router(encoder: FakeEncoder) -> Iterator[SemanticRouter]:
    """A router over :data:`ROUTES` on an injected in-process ``QdrantClient(":memory:")``.

    Fast (milliseconds to build), so the many bad-input cases can each have a fresh one.
    """
    with SemanticRouter(ROUTES, encoder=encoder, client=QdrantClient(":memory:")) as r:
        yield r


@pytest.fixture
def edge_router(encoder: FakeEncoder) -> Iterator[SemanticRouter]:
    """The default embedded router (Qdrant Edge in a temporary folder) over :data:`ROUTES`."""
    with SemanticRouter(ROUTES, encoder=encoder) as r:
        yield r


@pytest.fixture(params=["memory-client", "edge"])
def any_router(request: pytest.FixtureRequest, encoder: FakeEncoder) -> Iterator[SemanticRouter]:
    """Both store kinds: an injected ``QdrantClient(":memory:")`` and the embedded default."""
    client = QdrantClient(":memory:") if request.param == "memory-client" else None
    with SemanticRouter(ROUTES, encoder=encoder, client=client) as r:
        yield r


def assert_usable(router: SemanticRouter) -> None:
    """The router still ranks the known queries' routes first."""
    for query, name in EXPECTED.items():
        assert router.top_routes(query, 1, apply_threshold=False)[0].name == name, query


@pytest.fixture
def refusing_url() -> str:
    """A loopback URL whose port refuses connections (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A loopback URL that accepts connections and never answers."""
    held: list[socket.socket] = []  # kept open: read nothing, answer nothing
    try:
        with tcp_server(held.append, backlog=64) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        for conn in held:
            conn.close()
