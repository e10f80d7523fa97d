"""LangChain Embeddings as a semrouter encoder, and semrouter encoders as LangChain Embeddings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_semrouter import LangChainEncoder, SemRouterBranch, SemRouterEmbeddings
from semrouter import ConfigurationError, Encoder, FakeEncoder, Route, SemanticRouter


class CountingEmbeddings(Embeddings):
    """Delegates to FakeEncoder; counts sync and async calls."""

    def __init__(self) -> None:
        self.inner = FakeEncoder(dimension=32)
        self.sync_calls = 0
        self.async_calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.sync_calls += 1
        return self.inner.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.async_calls += 1
        return self.inner.encode(texts).tolist()  # type: ignore[no-any-return]


async def test_langchain_embeddings_route_sync_and_async() -> None:
    embeddings = CountingEmbeddings()
    encoder = LangChainEncoder(embeddings, dimension=32, model_id="counting")
    assert encoder.fingerprint == "counting|dim=32|l2"
    router = SemanticRouter(
        [Route("weather", ["will it rain tomorrow"]), Route("math", ["solve this equation"])],
        encoder=encoder,
    )
    assert router.route("rain tomorrow").name == "weather"
    sync_calls = embeddings.sync_calls
    assert (await router.aroute("solve the equation")).name == "math"
    assert embeddings.async_calls == 1 and embeddings.sync_calls == sync_calls
    router.close()


def test_model_id_and_validation() -> None:
    fake = DeterministicFakeEmbedding(size=8)
    assert (
        LangChainEncoder(fake, dimension=8).model_id
        == "langchain:DeterministicFakeEmbedding:size=8"
    )
    with pytest.raises(ConfigurationError):
        LangChainEncoder(object(), dimension=8)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="shape"):
        LangChainEncoder(fake, dimension=4).encode(["x"])


def test_semrouter_encoder_as_embeddings() -> None:
    encoder = FakeEncoder(dimension=16)
    embeddings = SemRouterEmbeddings(encoder)
    docs = embeddings.embed_documents(["a b", "c d"])
    assert len(docs) == 2 and len(docs[0]) == 16
    assert np.allclose(embeddings.embed_query("a b"), docs[0], atol=1e-6)
    assert LangChainEncoder.from_embeddings(embeddings) is encoder


async def test_async_embeddings() -> None:
    embeddings = SemRouterEmbeddings(FakeEncoder(dimension=16))
    assert len(await embeddings.aembed_query("hello")) == 16
    assert len(await embeddings.aembed_documents(["a", "b"])) == 2


@pytest.mark.slow
def test_one_local_model_for_retrieval_and_routing(
    local_encoder: Encoder, make_router: Any
) -> None:
    embeddings = SemRouterEmbeddings(local_encoder)
    store = InMemoryVectorStore(embeddings)
    store.add_texts(["Paris is the capital of France", "Python is a programming language"])
    assert store.similarity_search("French capital city", k=1)[0].page_content.startswith("Paris")
    router = make_router(
        [
            Route("geo", ["what is the capital of a country"]),
            Route("code", ["how do I write python"]),
        ],
        encoder=LangChainEncoder.from_embeddings(embeddings),
    )
    branch = SemRouterBranch({"geo": lambda x: "geo", "code": lambda x: "code"}, router=router)
    assert branch.invoke("capital of Spain?") == "geo"
