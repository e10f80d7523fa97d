"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from semrouter import FakeEncoder, Route


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
    """The Qdrant docs' seed example: politics and chitchat, five utterances each."""
    return [
        Route(
            "politics",
            [
                "isn't politics the best thing ever",
                "why don't you tell me about your political opinions",
                "don't you just love the president",
                "they're going to destroy this country!",
                "they will save the country!",
            ],
        ),
        Route(
            "chitchat",
            [
                "how's the weather today?",
                "how are things going?",
                "lovely weather today",
                "the weather is horrendous",
                "let's go to the chippy",
            ],
        ),
    ]
