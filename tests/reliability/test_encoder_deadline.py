"""The OpenAI encoder's timeout bounds each request whole (issue 20, point 3).

The SDK's timeout is per socket read: a server that drips its answer one byte every 0.2 s never
trips ``timeout=2`` and the call hangs for as long as the answer lasts. semrouter hands the SDK
the same deadline transport as its Qdrant clients, so every request ends within its budget with
an :class:`EncoderError`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from semrouter import EncoderError
from semrouter.encoders import OpenAIEncoder
from tests.support.openai_server import TEST_API_KEY, OpenAIServer

openai = pytest.importorskip("openai")

BUDGET = 1.0
#: Far below what the dripping answer lasts (hundreds of bytes at 0.2 s each).
CUT_OFF_BY = BUDGET + 2.0


@pytest.fixture
def dripping() -> Iterator[OpenAIServer]:
    with OpenAIServer(api_key=TEST_API_KEY, drip=0.2) as server:
        yield server


def _encoder(server: OpenAIServer) -> OpenAIEncoder:
    return OpenAIEncoder(
        model="test-embedding",
        dimension=32,
        api_key=TEST_API_KEY,
        base_url=server.url,
        timeout=BUDGET,
        max_retries=0,
    )


def test_a_dripping_server_is_cut_off_at_the_timeout(dripping: OpenAIServer) -> None:
    encoder = _encoder(dripping)
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            encoder.encode(["hello"])
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    start = time.monotonic()
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(CUT_OFF_BY)
    elapsed = time.monotonic() - start
    try:
        assert not worker.is_alive(), f"encode() still running after {elapsed:.1f} s"
        assert isinstance(outcome[0], EncoderError), outcome
        assert "timed out" in str(outcome[0])
        assert isinstance(outcome[0].__cause__, openai.APITimeoutError)
        assert f"within {BUDGET:g} s" in str(outcome[0])
        assert BUDGET * 0.9 <= elapsed < CUT_OFF_BY
    finally:
        dripping.stop()  # ends the drip, so an old client stuck on it returns
        encoder.close()


def test_a_dripping_server_is_cut_off_in_async_calls(dripping: OpenAIServer) -> None:
    encoder = _encoder(dripping)

    async def call() -> float:
        start = time.monotonic()
        try:
            with pytest.raises(EncoderError, match="timed out"):
                await asyncio.wait_for(encoder.aencode(["hello"]), CUT_OFF_BY)
            return time.monotonic() - start
        finally:
            await encoder.aclose()

    elapsed = asyncio.run(call())
    assert BUDGET * 0.9 <= elapsed < CUT_OFF_BY


def test_answers_within_the_budget_arrive_whole() -> None:
    # A slow but complete answer inside the budget is not cut off, sync and async.
    with OpenAIServer(api_key=TEST_API_KEY, drip=0.0002) as server:
        encoder = _encoder(server)
        try:
            assert encoder.encode(["hello", "there"]).shape == (2, 32)
            assert asyncio.run(encoder.aencode(["again"])).shape == (1, 32)
        finally:
            encoder.close()
