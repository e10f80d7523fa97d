"""Embeddings both ways: SemRouterEmbedding and LlamaIndexEncoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.embeddings import MockEmbedding
from qdrant_client import QdrantClient

from llama_index_semrouter import LlamaIndexEncoder, SemRouterEmbedding
from llama_index_semrouter.embeddings import as_encoder
from semrouter import ConfigurationError, Encoder, FakeEncoder, Route, SemanticRouter


class CountingEmbedding(BaseEmbedding):
    """A LlamaIndex embedding over FakeEncoder vectors that counts sync and async calls."""

    sync_calls: int = 0
    async_calls: int = 0
    embed_dim: int = 32

    @classmethod
    def class_name(cls) -> str:
        return "CountingEmbedding"

    def _vector(self, text: str) -> list[float]:
        return [float(x) for x in FakeEncoder(self.embed_dim).encode([text])[0]]

    def _get_query_embedding(self, query: str) -> list[float]:
        self.sync_calls += 1
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        self.async_calls += 1
        return self._vector(query)

    _get_text_embedding = _get_query_embedding
    _aget_text_embedding = _aget_query_embedding


def test_semrouter_embedding_wraps_an_encoder(fake_encoder: FakeEncoder) -> None:
    embed_model = SemRouterEmbedding(fake_encoder)
    assert isinstance(embed_model, BaseEmbedding)
    assert SemRouterEmbedding.class_name() == "SemRouterEmbedding"
    assert embed_model.model_name == "fake-bow"
    query = embed_model.get_query_embedding("book a flight")
    texts = embed_model.get_text_embedding_batch(["book a flight", "weather"])
    assert len(query) == 64 and np.allclose(query, texts[0], atol=1e-6)
    assert fake_encoder.calls == 2  # one for the query, one batch for the texts


async def test_semrouter_embedding_async(loop_guard_encoder: Any) -> None:
    embed_model = SemRouterEmbedding(loop_guard_encoder)
    await embed_model.aget_query_embedding("hello")
    await embed_model.aget_text_embedding_batch(["a", "b", "c"])
    assert loop_guard_encoder.async_calls == 2


def test_semrouter_embedding_in_a_vector_index(local_encoder: Encoder) -> None:
    embed_model = SemRouterEmbedding(local_encoder)
    assert embed_model.dimension == local_encoder.dimension
    docs = [Document(text="Refunds take five days."), Document(text="Parcels ship in two days.")]
    index = VectorStoreIndex.from_documents(docs, embed_model=embed_model)
    best = index.as_retriever(similarity_top_k=1).retrieve("how long until I get my money back")
    assert "Refunds" in best[0].node.get_content()


def test_llama_index_encoder_reads_the_dimension() -> None:
    encoder = LlamaIndexEncoder(MockEmbedding(embed_dim=6))
    assert encoder.dimension == 6
    assert encoder.model_id == "llama-index/MockEmbedding/unknown"
    vectors = encoder.encode(["a", "b"])
    assert vectors.shape == (2, 6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_llama_index_encoder_needs_a_dimension_it_cannot_read() -> None:
    class NoDim(CountingEmbedding):
        embed_dim: int = 0

    model = NoDim()
    object.__setattr__(model, "embed_dim", None)
    with pytest.raises(ConfigurationError, match="dimension="):
        LlamaIndexEncoder(model)
    assert LlamaIndexEncoder(model, dimension=32).dimension == 32
    with pytest.raises(ConfigurationError):
        LlamaIndexEncoder("not a model")  # type: ignore[arg-type]


def test_any_base_embedding_routes_sync_and_async() -> None:
    model = CountingEmbedding()
    router = SemanticRouter(
        [Route("flights", ["book a flight"]), Route("weather", ["weather forecast"])],
        encoder=LlamaIndexEncoder(model, default_threshold=0.3),
        client=QdrantClient(":memory:"),
    )
    assert router.route("book a flight to Rome").name == "flights"
    assert model.sync_calls == 3 and model.async_calls == 0


async def test_any_base_embedding_routes_async() -> None:
    model = CountingEmbedding()
    router = SemanticRouter(
        [Route("flights", ["book a flight"]), Route("weather", ["weather forecast"])],
        encoder=LlamaIndexEncoder(model, default_threshold=0.3),
        client=QdrantClient(":memory:"),
    )
    before = model.sync_calls
    assert (await router.aroute("the weather forecast please")).name == "weather"
    assert model.sync_calls == before and model.async_calls == 1


def test_as_encoder() -> None:
    fake = FakeEncoder()
    assert as_encoder(fake) is fake
    assert as_encoder(SemRouterEmbedding(fake)) is fake  # no double wrapping
    assert isinstance(as_encoder(MockEmbedding(embed_dim=4)), LlamaIndexEncoder)
    with pytest.raises(ConfigurationError):
        as_encoder(object())  # type: ignore[arg-type]
