"""Embeddings both ways between LlamaIndex and semrouter.

1. ``SemRouterEmbedding``: semrouter's offline local encoder (MiniLM, no API key) as a
   LlamaIndex ``BaseEmbedding``: here it embeds a small ``VectorStoreIndex``.
2. ``LlamaIndexEncoder``: any LlamaIndex ``BaseEmbedding`` as a semrouter encoder: here the
   same local model, wrapped back, routes queries (sync and async).

    python examples/llama_index_embeddings.py
"""

from __future__ import annotations

import asyncio

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding

from llama_index_semrouter import LlamaIndexEncoder, SemRouterEmbedding
from semrouter import Route, SemanticRouter


def main() -> None:
    embed_model = SemRouterEmbedding()  # the offline LocalEncoder
    print(f"SemRouterEmbedding: model {embed_model.model_name!r}, {embed_model.dimension} dims")
    docs = [
        Document(text="Refunds are paid back to your card within five working days."),
        Document(text="Parcels are delivered within three days; tracking links come by email."),
        Document(text="Our office is closed on public holidays."),
    ]
    index = VectorStoreIndex.from_documents(docs, embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=1)
    for question in ["When do I get my money back?", "How can I follow my delivery?"]:
        best = retriever.retrieve(question)[0]
        print(f"  {question!r} -> {best.node.get_content()!r} ({best.score:.2f})")

    # Any BaseEmbedding works as a router's encoder; here a LlamaIndex model of the same
    # weights (a real app would pass e.g. OpenAIEmbedding or HuggingFaceEmbedding).
    class LlamaSideModel(SemRouterEmbedding):
        @classmethod
        def class_name(cls) -> str:
            return "LlamaSideModel"

    encoder = LlamaIndexEncoder(LlamaSideModel(embed_model.encoder), default_threshold=0.4)
    print(f"\nLlamaIndexEncoder: model_id {encoder.model_id!r}, {encoder.dimension} dims")
    router = SemanticRouter(
        [
            Route("refunds", ["I want my money back", "refund my order"]),
            Route("delivery", ["where is my parcel", "track my package"]),
        ],
        encoder=encoder,
    )
    print(f"  route('give me a refund please') -> {router.route('give me a refund please').name}")
    match = asyncio.run(router.aroute("has my package shipped yet?"))
    print(f"  await aroute('has my package shipped yet?') -> {match.name} ({match.score:.2f})")

    mock = LlamaIndexEncoder(MockEmbedding(embed_dim=8))
    print(
        f"\nThe dimension is read from the model, never probed: {mock.model_id} -> {mock.dimension}"
    )
    router.close()


if __name__ == "__main__":
    main()
