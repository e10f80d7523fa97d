"""Fixtures for the LangChain adapter tests: routers, fake chains, run trees."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from qdrant_client import QdrantClient

from semrouter import FakeEncoder, Route, SemanticRouter

from ._helpers import ROUTES

# fake_encoder and local_encoder: tests/conftest.py


@pytest.fixture
def make_router() -> Iterator[Callable[..., SemanticRouter]]:
    """Build embedded routers that are closed after the test."""
    with contextlib.ExitStack() as stack:

        def make(routes: Sequence[Route] = ROUTES, **kwargs: Any) -> SemanticRouter:
            kwargs.setdefault("encoder", FakeEncoder(dimension=64))
            kwargs.setdefault("aggregation", "max")
            if "path" not in kwargs:
                # The embedded store costs ~0.3 s to open and close; tests use the in-memory
                # client.
                kwargs.setdefault("client", QdrantClient(":memory:"))
            return stack.enter_context(SemanticRouter(routes, **kwargs))

        yield make


@pytest.fixture
def router(make_router: Callable[..., SemanticRouter]) -> SemanticRouter:
    return make_router()
