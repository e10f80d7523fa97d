"""Coalescing concurrent requests into one encoder batch (Encoder.coalesce_ms)."""

from __future__ import annotations

import asyncio
import copy
import threading
import time

import numpy as np
import pytest

from semrouter import (
    ConfigurationError,
    EncoderError,
    FakeEncoder,
    IndexMismatchError,
    Route,
    RouteMatch,
    SemanticRouter,
)
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
    encoder, router = slow_router(seed_routes)
    queries = [f"how are you today {i}" for i in range(10)] + ["the president will save us"]
    expected = [router.route(q) for q in queries]
    encoder.coalesce_ms = 3
    encoder.batches.clear()

    async def main() -> list[object]:
        return list(await asyncio.gather(*(router.aroute(q) for q in queries)))

    got = asyncio.run(main())
    for match, alone in zip(got, expected, strict=True):
        assert_same_match(match, alone)
    assert len(encoder.batches) < len(queries)
    router.close()


def assert_same_match(match: RouteMatch, alone: RouteMatch) -> None:
    """A match from a shared batch equals the one routed alone, up to float32 rounding (a
    batched product sums in another order)."""
    assert (match.name, match.utterance, match.reason) == (
        alone.name,
        alone.utterance,
        alone.reason,
    )
    assert match.score == pytest.approx(alone.score, abs=1e-6)
    assert match.scores.keys() == alone.scores.keys()
    for name, score in alone.scores.items():
        assert match.scores[name] == pytest.approx(score, abs=1e-6)


class CountingSearch:
    """Wraps the router's index search: how many queries each search call got, and from
    which thread."""

    def __init__(self, router: SemanticRouter, *, fail: bool = False) -> None:
        self.index = router._open_index()
        self.inner = self.index.search
        self.fail = fail
        self.sizes: list[int] = []
        self.threads: set[int] = set()
        self.index.search = self  # type: ignore[method-assign]

    def __call__(self, snapshot: object, vectors: np.ndarray, candidates: int) -> object:
        self.sizes.append(len(vectors))
        self.threads.add(threading.get_ident())
        if self.fail:
            raise IndexMismatchError("the collection changed under the search")
        return self.inner(snapshot, vectors, candidates)  # type: ignore[arg-type]


def slow_router(routes: list[Route], **options: object) -> tuple[Recording, SemanticRouter]:
    """A router whose encoder takes 10 ms a batch, so concurrent callers overlap."""
    encoder = Recording(delay=0.01)
    return encoder, SemanticRouter(routes, encoder=encoder, **options)  # type: ignore[arg-type]


QUERIES = [f"how are you today {i}" for i in range(12)] + [
    "the president will save us",
    "what do you think of the election?",
    "lovely weather today",
    "who will win the vote?",
]


@pytest.mark.parametrize("search", ["exact", "qdrant"])
def test_concurrent_route_calls_share_one_search(seed_routes: list[Route], search: str) -> None:
    encoder, router = slow_router(seed_routes, search=search)
    alone = {q: router.route(q) for q in QUERIES}
    encoder.coalesce_ms = 5
    searches = CountingSearch(router)
    got: dict[str, RouteMatch] = {}
    assert in_threads(lambda i: got.__setitem__(QUERIES[i], router.route(QUERIES[i])), 16) == []
    for query in QUERIES:
        assert_same_match(got[query], alone[query])
    assert sum(searches.sizes) == len(QUERIES)  # every query searched once
    assert len(searches.sizes) < len(QUERIES) and max(searches.sizes) > 1  # together
    assert len(searches.threads) == 1  # by the router's worker, not the callers
    router.close()


def test_route_and_top_routes_together_get_their_own_answers(seed_routes: list[Route]) -> None:
    encoder, router = slow_router(seed_routes)
    ranked = [router.top_routes(q, 2, apply_threshold=False) for q in QUERIES]
    routed = [router.route(q) for q in QUERIES]
    encoder.coalesce_ms = 5
    searches = CountingSearch(router)
    got: dict[int, list[RouteMatch]] = {}

    def call(i: int) -> None:  # even callers route(), odd ones top_routes(): other candidates
        query = QUERIES[i]
        got[i] = (
            [router.route(query)]
            if i % 2 == 0
            else router.top_routes(query, 2, apply_threshold=False)
        )

    assert in_threads(call, len(QUERIES)) == []
    for i, answer in got.items():
        if i % 2 == 0:
            assert_same_match(answer[0], routed[i])
        else:
            assert [m.name for m in answer] == [m.name for m in ranked[i]]
            for match, single in zip(answer, ranked[i], strict=True):
                assert match.score == pytest.approx(single.score, abs=1e-6)
    assert sum(searches.sizes) == len(QUERIES) and len(searches.threads) == 1
    router.close()


def test_a_failed_shared_search_fails_each_caller_and_the_next_call_works(
    seed_routes: list[Route],
) -> None:
    encoder, router = slow_router(seed_routes)
    encoder.coalesce_ms = 5
    searches = CountingSearch(router, fail=True)
    errors = in_threads(lambda i: router.route(QUERIES[i]), 8)
    assert len(errors) == 8 and all(isinstance(e, IndexMismatchError) for e in errors)
    searches.fail = False
    assert router.route("the president will save us").name == "politics"
    router.close()


def test_without_coalescing_each_caller_searches_in_its_own_thread(
    seed_routes: list[Route],
) -> None:
    _, router = slow_router(seed_routes)
    searches = CountingSearch(router)
    assert in_threads(lambda i: router.route(QUERIES[i]), 8) == []
    assert searches.sizes == [1] * 8 and len(searches.threads) == 8
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
