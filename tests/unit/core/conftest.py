"""Fixtures shared by the core unit tests."""

from __future__ import annotations

# -- an OpenAI-compatible embeddings server on 127.0.0.1 (tests/support/openai_server.py) ------
from collections.abc import Iterator as _Iterator  # noqa: E402

import pytest as _pytest  # noqa: E402

from tests.support.openai_server import OpenAIServer as _OpenAIServer  # noqa: E402


@_pytest.fixture
def openai_server() -> _Iterator[_OpenAIServer]:
    """A fresh fake OpenAI server per test; it expects the key ``sk-test-fixture``."""
    with _OpenAIServer(api_key="sk-test-fixture") as server:
        yield server
