"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from semrouter import FakeEncoder, Route
from tests.support.examples import load_example


@pytest.fixture
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own OpenAI settings must not leak into (or be spent by) a test."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    """A fresh deterministic encoder that counts what it encodes."""
    return FakeEncoder(dimension=64)


@pytest.fixture(scope="session")
def local_encoder() -> Iterator[object]:
    """The real offline MiniLM encoder, loaded once per test session."""
    from semrouter.encoders import LocalEncoder

    yield LocalEncoder()


@pytest.fixture
def seed_routes() -> list[Route]:
    """The Qdrant docs' seed example, as examples/demo.py has it: politics and chitchat."""
    demo = load_example("demo")
    return [demo.politics, demo.chitchat]
