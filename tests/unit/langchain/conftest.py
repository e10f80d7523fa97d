"""Fixtures for the LangChain adapter tests: encoders, routers, fake chains, run trees."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from qdrant_client import QdrantClient

from semrouter import Encoder, FakeEncoder, Route, SemanticRouter

from ._helpers import ROUTES


@pytest.fixture(scope="session")
def local_encoder() -> Encoder:
    """One real MiniLM for the whole session (it takes about 0.4 s to load)."""
    from semrouter import LocalEncoder

    return LocalEncoder()


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder(dimension=64)


@pytest.fixture
def make_router() -> Iterator[Callable[..., SemanticRouter]]:
    """Build embedded routers that are closed after the test."""
    made: list[SemanticRouter] = []

    def make(routes: Sequence[Route] = ROUTES, **kwargs: Any) -> SemanticRouter:
        kwargs.setdefault("encoder", FakeEncoder(dimension=64))
        kwargs.setdefault("aggregation", "max")
        if "path" not in kwargs:
            # The embedded store costs ~0.3 s to open and close; tests use the in-memory client.
            kwargs.setdefault("client", QdrantClient(":memory:"))
        router = SemanticRouter(routes, **kwargs)
        made.append(router)
        return router

    yield make
    for router in made:
        router.close()


@pytest.fixture
def router(make_router: Callable[..., SemanticRouter]) -> SemanticRouter:
    return make_router()
