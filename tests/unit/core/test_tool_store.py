"""The tool set stored in Qdrant: tools and the examples learnt from calls are shared by every
index on one location (a folder, an injected client), nothing is encoded twice, and the
examples are listed, capped, deduplicated and removed through the route set's feedback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from semrouter import (
    ConfigurationError,
    EncodeCache,
    FakeEncoder,
    QdrantLocation,
    Route,
    RouterClosedError,
    SemanticRouter,
    ToolIndex,
    ToolSpec,
)
from semrouter.tools import location_from
from tests.unit.core.test_tools import TOOLS as TOOL_SET

TOOLS = TOOL_SET[:3]  # get_weather, bookFlight, send-email


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder(dimension=64)


@pytest.fixture
def opened() -> Iterator[list[ToolIndex]]:
    indexes: list[ToolIndex] = []
    yield indexes
    for index in indexes:
        index.close()


def open_index(
    opened: list[ToolIndex],
    encoder: FakeEncoder,
    tools: list[ToolSpec] = TOOLS,
    **where: object,
) -> ToolIndex:
    """An index with a cache of its own: what it does not encode came from the store."""
    index = ToolIndex(tools, encoder=encoder, cache=EncodeCache(), **where)  # type: ignore[arg-type]
    opened.append(index)
    return index


def _locations(tmp_path: Path) -> dict[str, dict[str, object]]:
    client = QdrantClient(":memory:")
    return {"folder": {"path": tmp_path}, "client": {"location": QdrantLocation(client=client)}}


@pytest.mark.parametrize("kind", ["folder", "client"])
def test_a_second_index_on_the_location_sees_the_tools_and_learnt_examples(
    kind: str, tmp_path: Path, encoder: FakeEncoder, opened: list[ToolIndex]
) -> None:
    where = _locations(tmp_path)[kind]
    first = open_index(opened, encoder, **where)
    request = "will I need an umbrella in Berlin"
    _, vectors = first.encode_request(request)
    encoder.reset_counts()
    assert first.observe("get_weather", request, vectors[0])
    assert encoder.encoded_texts == 0  # the request's own vector is stored

    second = open_index(opened, encoder, **where)
    assert encoder.encoded_texts == 0  # tools and examples: vectors from the collection
    assert second.examples("get_weather") == [request]
    top = second.rank(request, 1)[0]
    assert top.name == "get_weather" and top.scores["example"] == pytest.approx(1.0, abs=1e-5)

    assert first.observe("send-email", "tell Anna I am late")
    assert second.examples("send-email") == ["tell Anna I am late"]  # listed as stored now
    second.clear_examples("send-email")
    assert first.examples("send-email") == [] and first.examples("get_weather") == [request]


def test_an_injected_client_shared_by_two_indexes(
    encoder: FakeEncoder, opened: list[ToolIndex]
) -> None:
    client = QdrantClient(":memory:")
    first = open_index(opened, encoder, client=client)
    second = open_index(opened, encoder, client=client, refresh_interval=0)
    assert first.observe("bookFlight", "get me to Lisbon on Friday")
    before = second.version
    second.rank("get me to Lisbon on Friday")  # refresh_interval=0 follows before ranking
    assert second.version > before
    assert second.rank("get me to Lisbon on Friday", 1)[0].scores["example"] == pytest.approx(1.0)


def test_examples_are_deduplicated_capped_and_one_revision_per_batch(
    tmp_path: Path, encoder: FakeEncoder, opened: list[ToolIndex]
) -> None:
    index = open_index(opened, encoder, path=tmp_path, max_examples=2)
    assert index.observe_many(["a b c", "d e f", "a b c"], ["get_weather"] * 3) == 2
    assert not index.observe("get_weather", "a b c")  # already an example: nothing written
    assert not index.observe("get_weather", "get weather")  # the tool's own text
    assert index.observe("get_weather", "g h i")
    assert index.examples("get_weather") == ["d e f", "g h i"]  # the oldest went first
    again = open_index(opened, encoder, path=tmp_path)
    assert again.examples("get_weather") == ["d e f", "g h i"]
    with pytest.raises(ConfigurationError, match="no tool"):
        index.observe("nope", "hello")
    with pytest.raises(ConfigurationError, match="vectors"):
        index.observe_many(["x y"], ["get_weather"], vectors=np.zeros((2, 64), np.float32))


def test_dropping_a_tool_drops_its_examples_and_changed_tools_are_stored(
    tmp_path: Path, encoder: FakeEncoder, opened: list[ToolIndex]
) -> None:
    index = open_index(opened, encoder, path=tmp_path)
    index.observe("send-email", "write to my boss")
    index.observe("get_weather", "is it cold outside")
    index.set_tools([*TOOLS[:2]])
    assert index.names == ["get_weather", "bookFlight"]
    renamed = TOOLS[0].model_copy(update={"description": "Forecasts: rain and sun."})
    index.update([renamed])
    stored = open_index(opened, encoder, [], path=tmp_path)  # no tools: what is stored
    assert stored.tools == [renamed, TOOLS[1]]
    assert stored.examples("get_weather") == ["is it cold outside"]  # kept across the change
    again = open_index(opened, encoder, path=tmp_path)  # the declared tools are merged in
    assert again.tools == TOOLS and stored.refresh() and stored.tools == TOOLS
    assert again.examples("send-email") == []  # went with the tool


def test_location_keywords_and_collections(
    tmp_path: Path, encoder: FakeEncoder, opened: list[ToolIndex]
) -> None:
    fields: dict[str, object] = {"url": "http://localhost:6333", "lexical_weight": 0.1}
    assert location_from(fields) == QdrantLocation(url="http://localhost:6333")
    assert fields == {"lexical_weight": 0.1}
    with pytest.raises(ConfigurationError, match="not both"):
        ToolIndex(encoder=encoder, location=QdrantLocation(), path=tmp_path)
    with pytest.raises(ConfigurationError, match="collection name"):
        ToolIndex(encoder=encoder, collection="no spaces please")
    index = open_index(opened, encoder, path=tmp_path, collection="agent-a")
    other = open_index(opened, encoder, path=tmp_path, collection="agent-b")
    index.observe("get_weather", "sunny tomorrow?")
    assert other.examples("get_weather") == []  # one tool set per collection


def test_a_router_collection_is_not_a_tool_set(tmp_path: Path, encoder: FakeEncoder) -> None:
    with SemanticRouter([Route("greet", ["hello there"])], encoder=encoder, path=tmp_path):
        pass
    with pytest.raises(ConfigurationError, match="not a tool"):
        ToolIndex(encoder=encoder, path=tmp_path, collection="semrouter")


def test_a_closed_index_ranks_but_does_not_change(encoder: FakeEncoder) -> None:
    index = ToolIndex(TOOLS, encoder=encoder, cache=EncodeCache())
    index.close()
    assert index.rank("book a flight", 1)[0].name == "bookFlight"
    with pytest.raises(RouterClosedError):
        index.observe("bookFlight", "fly me to Rome")
    index.close()  # idempotent


def test_a_request_of_several_sentences_keeps_the_one_that_found_the_tool(
    encoder: FakeEncoder, opened: list[ToolIndex]
) -> None:
    index = open_index(opened, encoder)
    request = "Book a flight ticket to Oslo. Then send an email message to Anna."
    index.rank(request)  # ranked sentence by sentence: both vectors are cached
    encoder.reset_counts()
    assert index.observe_many([request, request], ["bookFlight", "send-email"]) == 2
    assert encoder.encoded_texts == 0
    assert index.examples("bookFlight") == ["Book a flight ticket to Oslo."]
    assert index.examples("send-email") == ["Then send an email message to Anna."]
