"""Coalescing concurrent requests into one encoder batch (Encoder.coalesce_ms)."""

from __future__ import annotations

import asyncio
import copy
import threading
import time

import numpy as np
import pytest

from semrouter import ConfigurationError, EncoderError, FakeEncoder, Route, SemanticRouter
from tests.support.threads import in_threads


class Recording(FakeEncoder):
    """Records each model call's texts and thread; ``delay`` seconds a call."""

    def __init__(self, delay: float = 0.0, *, fail: bool = False) -> None:
        super().__init__(dimension=16)
        self.delay = delay
        self.fail = fail
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.threads.add(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model down")
        return super().encode_batch(texts)


def run_threads(encoder: FakeEncoder, texts: list[str]) -> dict[str, np.ndarray]:
    """Every text from its own thread, all released at once."""
    barrier = threading.Barrier(len(texts))
    out: dict[str, np.ndarray] = {}

    def call(text: str) -> None:
        barrier.wait()
        out[text] = encoder.encode([text])[0]

    threads = [threading.Thread(target=call, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def test_concurrent_callers_share_batches_and_get_their_own_vectors() -> None:
    encoder = Recording(delay=0.02)
    encoder.coalesce_ms = 5
    texts = [f"request number {i}" for i in range(16)]
    got = run_threads(encoder, texts)
    expected = FakeEncoder(dimension=16).encode(texts)
    for text, row in zip(texts, expected):
        assert np.array_equal(got[text], row)
    assert len(encoder.batches) < len(texts)  # coalesced: fewer model calls than requests
    assert max(map(len, encoder.batches)) > 1
    assert sorted(t for b in encoder.batches for t in b) == sorted(texts)  # each text once


def test_off_by_default_every_caller_encodes_in_its_own_thread() -> None:
    encoder = Recording(delay=0.01)
    assert encoder.coalesce_ms is None
    run_threads(encoder, [f"q{i}" for i in range(4)])
    assert len(encoder.batches) == 4 and len(encoder.threads) == 4


def test_a_lone_request_does_not_wait() -> None:
    encoder = Recording()
    encoder.coalesce_ms = 100
    encoder.encode(["warm up"])  # starts the worker
    started = time.perf_counter()
    for i in range(5):
        encoder.encode([f"alone {i}"])
    assert time.perf_counter() - started < 0.25  # 5 x 100 ms if each waited for company


def test_big_calls_bypass_the_worker() -> None:
    encoder = Recording()
    encoder.coalesce_ms = 1
    encoder.encode([f"utterance {i}" for i in range(encoder.batch_size)])
    assert encoder.threads == {threading.get_ident()}


def test_every_waiting_caller_gets_the_encoders_error() -> None:
    encoder = Recording(delay=0.01, fail=True)
    encoder.coalesce_ms = 5
    errors = in_threads(lambda i: encoder.encode([f"q{i}"]), 6)
    assert len(errors) == 6 and all(isinstance(e, RuntimeError) for e in errors)


def test_a_wrong_shape_is_an_encoder_error_for_the_caller() -> None:
    class Short(FakeEncoder):
        def encode_batch(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 3), np.float32)

    encoder = Short(dimension=16)
    encoder.coalesce_ms = 1
    with pytest.raises(EncoderError, match="shape"):
        encoder.encode(["x"])


def test_async_callers_are_coalesced_and_the_loop_keeps_running() -> None:
    encoder = Recording(delay=0.05)
    encoder.coalesce_ms = 5
    texts = [f"async request {i}" for i in range(12)]

    async def main() -> tuple[list[np.ndarray], int, int]:
        loop_thread = threading.get_ident()
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.002)

        tick = asyncio.create_task(ticker())
        rows = await asyncio.gather(*(encoder.aencode([t]) for t in texts))
        done.set()
        await tick
        return [r[0] for r in rows], ticks, loop_thread

    rows, ticks, loop_thread = asyncio.run(main())
    assert loop_thread not in encoder.threads  # the model never ran on the event loop
    assert ticks >= 10  # the loop ticked while batches were encoded (~100 ms)
    assert len(encoder.batches) < len(texts)
    for text, row in zip(texts, rows):
        assert np.array_equal(row, FakeEncoder(dimension=16).encode([text])[0])


def test_a_cancelled_async_caller_does_not_hurt_the_others() -> None:
    encoder = Recording(delay=0.05)
    encoder.coalesce_ms = 2

    async def main() -> np.ndarray:
        first = asyncio.create_task(encoder.aencode(["keeps the worker busy"]))
        await asyncio.sleep(0.01)
        doomed = asyncio.create_task(encoder.aencode(["cancelled"]))
        kept = asyncio.create_task(encoder.aencode(["kept"]))
        await asyncio.sleep(0)
        doomed.cancel()
        await first
        return await kept

    row = asyncio.run(main())
    assert np.array_equal(row, FakeEncoder(dimension=16).encode(["kept"]))


def test_routers_coalesce_concurrent_aroute_calls(seed_routes: list[Route]) -> None:
    encoder = Recording(delay=0.01)
    router = SemanticRouter(seed_routes, encoder=encoder)
    queries = [f"how are you today {i}" for i in range(10)] + ["the president will save us"]
    expected = [router.route(q) for q in queries]
    encoder.coalesce_ms = 3
    encoder.batches.clear()

    async def main() -> list[object]:
        return list(await asyncio.gather(*(router.aroute(q) for q in queries)))

    assert asyncio.run(main()) == expected
    assert len(encoder.batches) < len(queries)
    router.close()


def test_switching_off_and_copies() -> None:
    encoder = Recording()
    encoder.coalesce_ms = 2
    encoder.encode(["x"])
    twin = copy.deepcopy(encoder)
    assert twin.coalesce_ms == 2 and twin.encode(["y"]).shape == (1, 16)
    encoder.coalesce_ms = None
    encoder.threads.clear()
    encoder.encode(["z"])
    assert encoder.threads == {threading.get_ident()}


@pytest.mark.parametrize("bad", [-1, 101, "2", True])
def test_a_bad_wait_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="coalesce_ms"):
        FakeEncoder().coalesce_ms = bad  # type: ignore[assignment]
