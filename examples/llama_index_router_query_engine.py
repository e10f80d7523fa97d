"""RouterQueryEngine with SemRouterSelector: pick the query engine by meaning, not by an LLM call.

Three small in-memory indices (billing, shipping, weather) become query engine tools; the
selector routes each question with one embedding call against route vectors kept in Qdrant.
``MockLLM`` and ``MockEmbedding`` stand in for real models, so this runs offline as it stands:
the mock LLM echoes its prompt, which shows which index answered.

    python examples/llama_index_router_query_engine.py
"""

from __future__ import annotations

import asyncio
import time

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.tools import QueryEngineTool

from llama_index_semrouter import SemRouterSelector
from semrouter import LocalEncoder, NoRouteMatchedError

ENGINES = {
    "billing": ("Invoices, payments, refunds and subscription charges.", "Refunds take 5 days."),
    "shipping": ("Parcel delivery times and tracking.", "Parcels arrive within 3 days."),
    "weather": ("The weather forecast.", "Tomorrow will be sunny and 24°C."),
}
EXAMPLES = {
    "billing": ["I was charged twice", "how do I get a refund", "update my credit card"],
    "shipping": ["where is my parcel", "track my order", "when will my package arrive"],
    "weather": ["will it rain tomorrow", "is it going to be sunny", "temperature this weekend"],
}


def tools() -> list[QueryEngineTool]:
    llm, embed_model = MockLLM(), MockEmbedding(embed_dim=8)
    return [
        QueryEngineTool.from_defaults(
            VectorStoreIndex.from_documents(
                [Document(text=doc)], embed_model=embed_model
            ).as_query_engine(llm=llm),
            name=name,
            description=description,
        )
        for name, (description, doc) in ENGINES.items()
    ]


def answered_by(response: object) -> str:
    text = str(response)
    return next((name for name, (_, doc) in ENGINES.items() if doc in text), "?")


def main() -> None:
    encoder = LocalEncoder()
    query_tools = tools()
    selector = SemRouterSelector.from_defaults(
        [t.metadata for t in query_tools], encoder=encoder, utterances=EXAMPLES
    )
    engine = RouterQueryEngine(selector=selector, query_engine_tools=query_tools, llm=MockLLM())

    print("Single selection (one embedding call per question):")
    for question in [
        "Can I get my money back for last month's invoice?",
        "My package still hasn't shown up",
        "Should I bring an umbrella tomorrow?",
    ]:
        start = time.perf_counter()
        selection = selector.select([t.metadata for t in query_tools], question)
        ms = (time.perf_counter() - start) * 1000
        response = engine.query(question)
        print(f"  {question!r}\n    -> {answered_by(response)} ({ms:.1f} ms to select)")
        print(f"       reason: {selection.reason}")

    print("\nMulti-selection (max_outputs=2): both answers are combined by the summarizer:")
    multi = RouterQueryEngine(
        selector=SemRouterSelector.from_defaults(
            encoder=encoder, utterances=EXAMPLES, max_outputs=2
        ),
        query_engine_tools=query_tools,
        llm=MockLLM(),
    )
    response = multi.query("Where is my parcel, and will it rain tomorrow?")
    picked = [query_tools[i].metadata.name for i in response.metadata["selector_result"].inds]
    print(f"  selected {picked}")

    print("\nNothing close enough: a clear error, or a fallback engine:")
    try:
        engine.query("Explain quantum chromodynamics")
    except NoRouteMatchedError as exc:
        print(f"  NoRouteMatchedError: {exc}")
    fallback = RouterQueryEngine(
        selector=SemRouterSelector.from_defaults(
            encoder=encoder, utterances=EXAMPLES, fallback="billing"
        ),
        query_engine_tools=query_tools,
        llm=MockLLM(),
    )
    response = fallback.query("Explain quantum chromodynamics")
    print(f"  with fallback='billing': {response.metadata['selector_result'].reason}")

    print("\nAsync (aquery -> aselect, never blocking the event loop):")
    response = asyncio.run(engine.aquery("track my order please"))
    print(f"  'track my order please' -> {answered_by(response)}")


if __name__ == "__main__":
    main()
