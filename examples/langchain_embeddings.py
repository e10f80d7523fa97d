"""One embedding model for LangChain retrieval and semrouter routing, in both directions.

- SemRouterEmbeddings: semrouter's offline LocalEncoder (MiniLM, no API key) as LangChain
  Embeddings, here behind an InMemoryVectorStore.
- LangChainEncoder: any LangChain Embeddings as a semrouter encoder (sync and async); wrapping
  SemRouterEmbeddings hands back the very same encoder, so the model is loaded once.

    python examples/langchain_embeddings.py
"""

from __future__ import annotations

import asyncio

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_semrouter import LangChainEncoder, SemRouterEmbeddings
from semrouter import FakeEncoder, Route, SemanticRouter


async def main() -> None:
    embeddings = SemRouterEmbeddings()  # the local MiniLM, loaded once
    store = InMemoryVectorStore(embeddings)
    store.add_texts(
        [
            "Refunds are issued within 14 days of a return.",
            "Our API rate limit is 100 requests per minute.",
            "The office is closed on public holidays.",
        ]
    )
    hit = store.similarity_search("how long until I get my money back?", k=1)[0]
    print(f"retrieval: {hit.page_content!r}")

    encoder = LangChainEncoder.from_embeddings(embeddings)
    print(f"router encoder is the retriever's model: {encoder is embeddings.encoder} ({encoder!r})")
    router = SemanticRouter(
        [
            Route("billing", ["I want a refund", "my invoice is wrong"]),
            Route("api", ["I hit the rate limit", "my API key does not work"]),
        ],
        encoder=encoder,
        aggregation="max",
    )
    for query in ["can I get my money back", "too many requests error"]:
        match = await router.aroute(query)
        print(f"route {query!r:30} -> {match.name} ({match.score:.2f})")
    router.close()

    # Any LangChain Embeddings works as an encoder; the dimension is given, never probed.
    fake = LangChainEncoder(DeterministicFakeEmbedding(size=32), dimension=32)
    print(f"LangChain embeddings as an encoder: {fake!r}, fingerprint {fake.fingerprint!r}")
    print(f"semrouter encoder as LangChain embeddings: {SemRouterEmbeddings(FakeEncoder(8))!r}")


if __name__ == "__main__":
    asyncio.run(main())
