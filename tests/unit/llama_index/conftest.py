"""Fixtures for the LlamaIndex adapter tests: encoders, a mock LLM and small query engines."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import MockLLM
from llama_index.core.tools import QueryEngineTool

from semrouter import Encoder, FakeEncoder, LocalEncoder

#: name -> (description, document text) of the query engines the router tests choose from.
ENGINES = {
    "billing": (
        "Invoices, payments, refunds and subscription charges",
        "BILLING-DOC: refunds are issued within five days.",
    ),
    "shipping": (
        "Parcel delivery, shipping times and tracking numbers",
        "SHIPPING-DOC: parcels arrive within three days.",
    ),
    "weather": (
        "The weather forecast: rain, sun, temperature",
        "WEATHER-DOC: tomorrow will be sunny.",
    ),
}


class LoopGuardEncoder(FakeEncoder):
    """A fake encoder whose sync path refuses to run on an event-loop thread.

    The async path is a real coroutine: a selector that is truly async never touches the sync
    path while a loop runs (encoding new utterances is handed to a worker thread).
    """

    def __init__(self) -> None:
        super().__init__()
        self.async_calls = 0
        self.armed = True

    def encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return super().encode_batch(texts)
        if self.armed:
            raise AssertionError("sync encode called on the event loop")
        return super().encode_batch(texts)

    async def aencode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.async_calls += 1
        return FakeEncoder.encode_batch(self, texts)  # the same vectors, without the guard


@pytest.fixture(scope="session")
def local_encoder() -> Encoder:
    """One real offline MiniLM encoder for the whole session (loading it takes ~0.4 s)."""
    return LocalEncoder()


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    """A deterministic encoder that counts its calls."""
    return FakeEncoder()


@pytest.fixture
def loop_guard_encoder() -> LoopGuardEncoder:
    """A fake encoder that fails if its sync path runs on the event loop."""
    return LoopGuardEncoder()


@pytest.fixture(scope="session")
def engine_tools() -> list[QueryEngineTool]:
    """Three query engines over one-document in-memory indices (MockLLM, MockEmbedding)."""
    llm = MockLLM()
    embed_model = MockEmbedding(embed_dim=8)
    tools = []
    for name, (description, text) in ENGINES.items():
        index = VectorStoreIndex.from_documents([Document(text=text)], embed_model=embed_model)
        engine = index.as_query_engine(llm=llm)
        tools.append(QueryEngineTool.from_defaults(engine, name=name, description=description))
    return tools


@pytest.fixture(scope="session")
def engine_retrievers() -> dict[str, object]:
    """Retrievers over the same one-document indices, by engine name."""
    embed_model = MockEmbedding(embed_dim=8)
    return {
        name: VectorStoreIndex.from_documents(
            [Document(text=text)], embed_model=embed_model
        ).as_retriever()
        for name, (_, text) in ENGINES.items()
    }


@pytest.fixture
def spans() -> Iterator[SimpleSpanHandler]:
    """A span handler on the root dispatcher; ``completed_spans`` lists what ran."""
    handler = SimpleSpanHandler()
    root = get_dispatcher()
    root.add_span_handler(handler)
    try:
        yield handler
    finally:
        root.span_handlers.remove(handler)
