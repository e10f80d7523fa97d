"""Fixtures shared by the core unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.openai_server import TEST_API_KEY, OpenAIServer


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh OpenAI-compatible embeddings server on 127.0.0.1 that accepts ``TEST_API_KEY``."""
    with OpenAIServer(api_key=TEST_API_KEY) as server:
        yield server
