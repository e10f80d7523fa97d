"""The tool index: representation, one encoding per text, exact ranking, examples, fit()."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from semrouter import (
    ConfigurationError,
    EncodeCache,
    Encoder,
    FakeEncoder,
    InvalidQueryError,
    QueryTypeError,
    ToolIndex,
    ToolMatch,
    ToolOptions,
    ToolSpec,
)
from semrouter.encoders import LocalEncoder
from semrouter.tools import name_words, request_parts

TOOLS = [
    ToolSpec(
        name="get_weather",
        description="Weather forecast for a city: rain, sun and temperature.",
        arguments={"city": "The city to forecast"},
    ),
    ToolSpec(name="bookFlight", description="Book a flight ticket to a destination."),
    ToolSpec(name="send-email", description="Send an email message to a contact."),
    ToolSpec(name="ConvertCurrency", description="Convert money between currencies."),
    ToolSpec(name="play_music", description="Play a song or a playlist."),
]


class _OneVector(Encoder):
    """Every text gets the same vector."""

    model_id, dimension = "one-vector", 8

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), self.dimension), dtype=np.float32)


def make(**options: object) -> tuple[ToolIndex, FakeEncoder]:
    encoder = FakeEncoder(dimension=64)
    return ToolIndex(TOOLS, encoder=encoder, cache=EncodeCache(), **options), encoder


# -- representation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("get_weather", "get weather"),
        ("send-email", "send email"),
        ("FinanceTool", "finance tool"),
        ("getHTTPStatus", "get http status"),
        ("search_web2", "search web2"),
        ("x", "x"),
    ],
)
def test_name_words(name: str, words: str) -> None:
    assert name_words(name) == words


def test_spec_texts_cover_every_part_once() -> None:
    spec = ToolSpec.from_schema(
        "getArtwork",
        "Find an artwork. Works for any museum.",
        {"type": "object", "properties": {"artId": {"type": "string", "description": "The id"}}},
        ["show me the Mona Lisa", "show me the Mona Lisa"],
    )
    assert spec.texts() == [
        ("name", "get artwork"),
        ("description", "get artwork: Find an artwork. Works for any museum."),
        ("sentence", "Find an artwork."),
        ("sentence", "Works for any museum."),
        ("argument", "art id: The id"),
        ("example", "show me the Mona Lisa"),
    ]
    assert spec.document() == "get artwork Find an artwork. Works for any museum. art id The id"


def test_spec_is_validated() -> None:
    with pytest.raises(ValueError):
        ToolSpec(name="")
    with pytest.raises(ValueError):
        ToolSpec(name="x", examples="one string")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ToolSpec.from_schema("x", "", ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_request_parts() -> None:
    assert request_parts("What is the weather in Paris?") == []
    assert request_parts("Book a flight to Rome. Ok. Then send an email to Bob.") == [
        "Book a flight to Rome.",
        "Then send an email to Bob.",
    ]


# -- encoding once ------------------------------------------------------------------------------
def test_each_distinct_text_is_encoded_once_and_shared_between_indexes() -> None:
    encoder, cache = FakeEncoder(dimension=64), EncodeCache()
    ToolIndex(TOOLS, encoder=encoder, cache=cache)
    texts = {text for spec in TOOLS for _, text in spec.texts()}
    assert encoder.encoded_texts == len(texts)
    encoder.reset_counts()
    second = ToolIndex(TOOLS, encoder=encoder, cache=cache)  # same tools, same process
    assert encoder.encoded_texts == 0
    second.update([TOOLS[0].model_copy(update={"description": "Umbrella advice."})])
    assert encoder.encoded_texts == 1  # only the changed description


def test_a_tool_set_is_encoded_in_batches_of_similar_length(
    local_encoder: LocalEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local encoder runs a tool set's texts in batches sorted by token count (little
    padding) and returns each row in the order given."""
    texts = [f"tool {i}: " + "word " * ((i * 7) % 40) for i in range(3 * LocalEncoder.batch_size)]
    batches: list[list[str]] = []
    run = local_encoder.encode_batch

    def spy(batch: list[str]) -> np.ndarray:
        batches.append(batch)
        return run(batch)

    monkeypatch.setattr(local_encoder, "encode_batch", spy)
    together = local_encoder.encode(texts)
    assert sum(map(len, batches)) == len(texts)
    lengths = [[len(t) for t in batch] for batch in batches]
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(lengths))  # longer each time
    local_encoder.cache_clear()
    alone = np.stack([local_encoder.encode([t])[0] for t in texts[:: LocalEncoder.batch_size // 4]])
    rows = together[:: LocalEncoder.batch_size // 4]
    assert np.min(np.sum(alone * rows, axis=1)) > 0.9999


def test_cache_is_bounded_and_keyed_by_encoder() -> None:
    cache = EncodeCache(max_texts=2)
    small, other = FakeEncoder(dimension=8), FakeEncoder(dimension=16)
    cache.encode(small, ["a", "b", "c"])
    assert len(cache) == 2 and cache.missing(small, ["a", "c"]) == ["a"]
    assert cache.missing(other, ["c"]) == ["c"]  # another fingerprint, another vector
    with pytest.raises(ConfigurationError):
        cache.put(small, ["x"], np.zeros((1, 3)))


# -- ranking ------------------------------------------------------------------------------------
def test_rank_gives_every_tool_with_its_parts_scores() -> None:
    index, _ = make()
    ranked = index.rank("weather forecast for Paris")
    assert [m.rank for m in ranked] == [1, 2, 3, 4, 5]
    assert ranked[0].name == "get_weather"
    assert set(ranked[0].scores) == {"description", "name", "argument", "lexical"}
    assert ranked[0].scores["lexical"] > 0 and ranked[0].similarity > ranked[1].similarity
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)


@pytest.mark.parametrize(
    "request_text",
    ["weather forecast", "play a song", "convert money", "email a contact", "zebra quantum"],
)
def test_ranks_do_not_depend_on_how_many_are_asked_for(request_text: str) -> None:
    index, _ = make()
    full = index.rank(request_text)
    for limit in range(6):
        assert index.rank(request_text, limit) == full[:limit]
    offered = ["play_music", "bookFlight", "get_weather"]
    subset = index.rank(request_text, tools=offered)
    assert [m.name for m in subset] == [m.name for m in full if m.name in offered]
    assert [m.score for m in subset] == [m.score for m in full if m.name in offered]


def test_each_part_scores_a_tools_best_text() -> None:
    """Tools with 0 to 3 arguments in mixed order and a description of several sentences: each
    part's score is the best cosine over that tool's own texts of the part."""
    tools = [
        ToolSpec(name="a", description="One thing.", arguments={"x": "the x", "y": "the y"}),
        ToolSpec(name="b", description="Does b. It also does c. And d too."),
        ToolSpec(name="c", description="Three.", arguments={"p": "p1", "q": "q1", "r": "r1"}),
        ToolSpec(name="d", description="One arg.", arguments={"z": "only z"}),
    ]
    encoder = FakeEncoder(dimension=32)
    index = ToolIndex(tools, encoder=encoder, cache=EncodeCache(), lexical_weight=0.0)
    request = "the request text"
    query = encoder.encode([request])[0]
    for match in index.rank(request):
        spec = next(t for t in tools if t.name == match.name)
        by_part: dict[str, list[str]] = {}
        for kind, text in spec.texts():
            part = "description" if kind == "sentence" else kind
            by_part.setdefault(part, []).append(text)
        expected = {
            part: float(np.max(encoder.encode(texts) @ query)) for part, texts in by_part.items()
        }
        assert match.scores.keys() == expected.keys()
        for part, value in expected.items():
            assert match.scores[part] == pytest.approx(value, abs=1e-6)


def test_a_limited_ranking_is_the_full_rankings_beginning_with_ties() -> None:
    """Many tools whose texts all have one vector (equal dense scores; BM25 tells some apart):
    a ranking of ``limit`` tools, of all or of some offered ones, is the full ranking's
    beginning, ties in the order the tools were given in."""
    tools = [
        ToolSpec(name=f"{name}_{copy}", description=f"{name} things, copy {copy % 2}.")
        for name in ("weather", "music", "email", "money", "flight", "hotel")
        for copy in range(4)
    ]
    index = ToolIndex(tools, encoder=_OneVector(), cache=EncodeCache())
    full = index.rank("weather things")
    assert [m.name for m in full[:4]] == [f"weather_{copy}" for copy in range(4)]
    tied = [m.name for m in full if m.score == full[-1].score]
    assert len(tied) > 10 and tied == [t.name for t in tools if t.name in tied]
    offered = [t.name for t in tools[::3]]
    offered_full = [m.name for m in full if m.name in offered]
    for limit in (1, 2, 5):
        assert index.rank("weather things", limit) == full[:limit]
        limited = index.rank("weather things", limit, tools=offered)
        assert [m.name for m in limited] == offered_full[:limit]


def test_a_request_of_several_sentences_finds_each_tool() -> None:
    index, encoder = make()
    encoder.reset_counts()
    request = "Book a flight ticket to Rome. After that, play a song from my playlist."
    top = [m.name for m in index.rank(request, 2)]
    assert sorted(top) == ["bookFlight", "play_music"]
    assert encoder.calls == 1  # the request and its sentences in one batch
    index.rank(request, 2)
    assert encoder.calls == 1  # a repeated request is not encoded again


def test_lexical_and_split_can_be_turned_off() -> None:
    index, _ = make(lexical_weight=0.0, split_requests=False)
    match = index.rank("weather forecast", 1)[0]
    assert "lexical" not in match.scores and match.score == pytest.approx(match.similarity)
    assert index.request_texts("One two three. Four five six.") == ["One two three. Four five six."]


def test_bad_requests_and_options() -> None:
    index, _ = make()
    with pytest.raises(InvalidQueryError):
        index.rank("   ")
    with pytest.raises(QueryTypeError):
        index.rank(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="limit"):
        index.rank("weather", -1)
    with pytest.raises(ConfigurationError, match="lexical_weight"):
        ToolOptions.build(lexical_weight=-1)
    with pytest.raises(ConfigurationError, match="distinct"):
        ToolIndex([TOOLS[0], TOOLS[0]], encoder=FakeEncoder(), cache=EncodeCache())
    with pytest.raises(QueryTypeError):
        index.rank_vectors(np.zeros((2, 64), np.float32), ["only one text"])
    assert index.configure(lexical_weight=0.5).lexical_weight == 0.5
    assert ToolIndex(encoder=FakeEncoder(), cache=EncodeCache()).rank("anything") == []


def test_set_tools_drops_the_others() -> None:
    index, _ = make()
    assert index.set_tools(TOOLS[:2]) and index.names == ["get_weather", "bookFlight"]
    assert not index.set_tools(TOOLS[:2])
    assert {m.name for m in index.rank("play a song")} == {"get_weather", "bookFlight"}


# -- examples: observe() is the seam for learning from calls -----------------------------------
def test_observe_keeps_an_example_with_its_vector_and_caps_them() -> None:
    index, encoder = make(max_examples=2)
    request = "my lungs hurt from the smog"
    _, vectors = index.encode_request(request)
    encoder.reset_counts()
    assert index.observe("get_weather", request, vectors[0])
    assert encoder.encoded_texts == 0  # the given vector is used, nothing is re-encoded
    assert not index.observe("get_weather", request)  # deduplicated
    top = index.rank(request, 1)[0]
    assert top.name == "get_weather" and top.scores["example"] == pytest.approx(1.0, abs=1e-5)
    index.observe("get_weather", "is it cold outside")
    index.observe("get_weather", "will it snow")
    assert index.examples("get_weather") == ["is it cold outside", "will it snow"]
    index.clear_examples("get_weather")
    assert index.examples("get_weather") == []
    with pytest.raises(ConfigurationError, match="no tool"):
        index.observe("nope", "hello")


def test_fit_keeps_requests_as_examples_and_picks_the_lexical_weight() -> None:
    index, _ = make()
    report = index.fit(
        [
            ("I want to hear something by Queen", ["play_music"]),
            ("Fly me to Oslo. Then tell Anna about it by mail.", ["bookFlight", "send-email"]),
            ("unknown tools are ignored", ["nope"]),
        ]
    )
    assert report["examples"] == 3 and report["lexical_weight"] in report["recall_at_5"]
    assert index.options.lexical_weight == report["lexical_weight"]
    assert index.rank("I want to hear something by Queen", 1)[0].name == "play_music"
    with pytest.raises(ConfigurationError):
        index.fit([("nothing indexed", ["nope"])])


def test_match_is_a_frozen_model() -> None:
    match = ToolMatch(name="x", score=1.0, similarity=0.5)
    with pytest.raises(ValueError):
        match.name = "y"  # type: ignore[misc]
