"""The encoder's query-vector cache: same vectors, bounded, off switch, copies, threads."""

from __future__ import annotations

import asyncio
import copy
import pickle

import numpy as np
import pytest

from semrouter import ConfigurationError, Route, SemanticRouter
from semrouter.encoders import CacheInfo, Encoder, FakeEncoder
from tests.support.threads import in_threads


def cached(size: int = 8, dimension: int = 16) -> FakeEncoder:
    encoder = FakeEncoder(dimension=dimension)
    encoder.cache_size = size
    return encoder


def test_cached_vectors_are_the_uncached_ones() -> None:
    texts = ["book a flight", "cancel my order", "book a flight", "hello there"]
    plain = FakeEncoder(dimension=16).encode(texts)
    encoder = cached()
    first, again = encoder.encode(texts), encoder.encode(texts[::-1])
    assert np.array_equal(first, plain)
    assert np.array_equal(again, plain[::-1])
    assert first.dtype == np.float32 and first.flags.c_contiguous


def test_a_repeated_request_skips_the_model() -> None:
    encoder = cached()
    encoder.encode(["hi"])
    encoder.encode(["hi"])
    encoder.encode(["hi", "thanks", "hi"])  # duplicates in one call: encoded once
    assert encoder.encoded_texts == 2
    assert encoder.cache_info() == CacheInfo(hits=3, misses=2, size=2, max_size=8)


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    encoder = cached(size=3)
    for text in ("a", "b", "c"):
        encoder.encode([text])
    encoder.encode(["a"])  # a is now the most recent
    encoder.encode(["d"])  # evicts b
    assert encoder.cache_info().size == 3
    encoder.reset_counts()
    encoder.encode(["a", "c", "d"])
    assert encoder.encoded_texts == 0
    encoder.encode(["b"])
    assert encoder.encoded_texts == 1
    encoder.cache_size = 1  # shrinking keeps the newest
    assert encoder.cache_info().size == 1
    encoder.reset_counts()
    encoder.encode(["b"])
    assert encoder.encoded_texts == 0


def test_the_off_switch() -> None:
    encoder = FakeEncoder(dimension=8)
    assert encoder.cache_size == 0  # the counting test encoder has none by default
    encoder.encode(["same"])
    encoder.encode(["same"])
    assert encoder.encoded_texts == 2
    encoder.cache_size = 4
    encoder.encode(["same"])
    encoder.encode(["same"])
    assert encoder.encoded_texts == 3
    encoder.cache_size = 0
    encoder.encode(["same"])
    assert encoder.encoded_texts == 4 and encoder.cache_info().size == 0


def test_real_encoders_cache_by_default() -> None:
    class Plain(Encoder):
        model_id, dimension = "plain", 4

        def encode_batch(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 4), np.float32)

    assert Plain().cache_size == Encoder.default_cache_size == 1024


def test_no_caller_can_change_what_another_gets() -> None:
    encoder = cached()
    first = encoder.encode(["query"])
    first[:] = 0.0
    second = encoder.encode(["query"])
    assert np.isclose(np.linalg.norm(second), 1.0)
    second[:] = 7.0
    assert np.isclose(np.linalg.norm(encoder.encode(["query"])), 1.0)


def test_another_fingerprint_is_another_key() -> None:
    encoder = cached()
    encoder.encode(["hello"])
    encoder.model_id = "another-model"
    encoder.encode(["hello"])
    assert encoder.encoded_texts == 2


def test_bulk_calls_are_looked_up_but_not_kept() -> None:
    encoder = cached(size=1000)
    utterances = [f"utterance {i}" for i in range(encoder.batch_size + 1)]
    encoder.encode(utterances)
    assert encoder.cache_info().size == 0
    encoder.encode(["utterance 1"])
    encoder.reset_counts()
    encoder.encode(utterances)  # the one kept is not encoded again
    assert encoder.encoded_texts == len(utterances) - 1


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10", None, 10**9])
def test_a_bad_size_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="cache_size"):
        FakeEncoder().cache_size = bad  # type: ignore[assignment]


def test_copies_get_an_empty_cache_of_the_same_size() -> None:
    encoder = cached(size=5)
    encoder.encode(["a", "b"])
    for twin in (copy.deepcopy(encoder), pickle.loads(pickle.dumps(encoder))):
        assert twin.cache_info() == CacheInfo(0, 0, 0, 5)
        assert np.array_equal(twin.encode(["a"]), encoder.encode(["a"]))


def test_threads_share_one_cache_safely() -> None:
    encoder = cached(size=20)
    pool = [f"request {i}" for i in range(40)]
    expected = dict(zip(pool, FakeEncoder(dimension=16).encode(pool)))

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(300):
            texts = [pool[int(i)] for i in rng.integers(0, len(pool), rng.integers(1, 4))]
            got = encoder.encode(texts)
            for text, row in zip(texts, got):
                assert np.array_equal(row, expected[text])

    assert in_threads(hammer, 8) == []
    info = encoder.cache_info()
    assert info.size <= 20 and info.hits > 0 and info.hits + info.misses >= 8 * 300


def test_the_async_path_uses_the_cache() -> None:
    encoder = cached()

    async def main() -> None:
        first = await encoder.aencode(["async hello"])
        again = await encoder.aencode(["async hello", "other"])
        assert np.array_equal(first[0], again[0])

    asyncio.run(main())
    assert encoder.encoded_texts == 2


def test_a_router_on_a_caching_encoder_routes_alike_and_encodes_once(
    seed_routes: list[Route],
) -> None:
    plain = SemanticRouter(seed_routes, encoder=FakeEncoder(dimension=64))
    encoder = FakeEncoder(dimension=64)
    router = SemanticRouter(seed_routes, encoder=encoder)
    encoder.cache_size = 64
    encoder.reset_counts()
    queries = ["how are you today", "the president will save us", "how are you today"]
    for query in queries:
        assert router.route(query) == plain.route(query)
    assert encoder.encoded_texts == 2
    plain.close()
    router.close()


def test_the_local_encoder_takes_and_saves_its_run_time_options() -> None:
    pytest.importorskip("onnxruntime")
    from semrouter.encoders import LocalEncoder, encoder_from_config

    encoder = LocalEncoder(cache_size=0, coalesce_ms=1.5, spinning=False)
    assert encoder.cache_size == 0 and encoder.coalesce_ms == 1.5
    config = encoder.to_config()
    assert config["cache_size"] == 0 and config["coalesce_ms"] == 1.5
    assert config["spinning"] is False
    rebuilt = encoder_from_config(config)
    assert rebuilt.cache_size == 0 and rebuilt.coalesce_ms == 1.5
    twin = pickle.loads(pickle.dumps(encoder))
    assert twin.cache_size == 0 and twin.coalesce_ms == 1.5 and twin.spinning is False
    assert np.allclose(twin.encode(["same vector"]), LocalEncoder.shared().encode(["same vector"]))
    assert LocalEncoder.shared().to_config().keys() == {"type", "model_id"}
    with pytest.raises(ConfigurationError, match="cache_size"):
        LocalEncoder(cache_size=-1)
    with pytest.raises(ConfigurationError, match="spinning"):
        LocalEncoder(spinning="no")  # type: ignore[arg-type]
