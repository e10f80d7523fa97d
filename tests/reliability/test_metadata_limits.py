"""Route metadata is validated at ``Route`` (issue 12, points 1 and 12).

Metadata goes into every point's payload and Qdrant Edge's write-ahead log: what ``Route``
accepts must be read back unchanged by every store, after the process closes too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from semrouter import ConfigurationError, FakeEncoder, Route, SemanticRouter
from semrouter._routes import MAX_METADATA_CHARS, MAX_METADATA_DEPTH


def _nested(levels: int) -> dict[str, Any]:
    """A metadata mapping ``levels`` containers deep (the mapping itself is level 1)."""
    value: Any = "leaf"
    for _ in range(levels - 1):
        value = {"k": value}
    return {"k": value}


@pytest.mark.parametrize("levels", [MAX_METADATA_DEPTH + 1, 126, 200])
def test_too_deep_metadata_is_refused_at_route(levels: int) -> None:
    # Old code accepted it; Qdrant Edge then could not read its log back after close.
    with pytest.raises(ConfigurationError, match=f"nested more than {MAX_METADATA_DEPTH}"):
        Route("deep", ["hello"], metadata=_nested(levels))


def test_extremely_deep_metadata_is_a_configuration_error_not_recursion_error() -> None:
    # Old code: a raw RecursionError from json.dumps.
    value: Any = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(ConfigurationError, match="nested"):
        Route("deep", ["hello"], metadata={"k": value})


def test_metadata_at_the_depth_limit_survives_close_and_reopen(tmp_path: Path) -> None:
    meta = _nested(MAX_METADATA_DEPTH)
    route = Route("deep", ["hello there", "hi friend"], metadata=meta)
    encoder = FakeEncoder(dimension=16)
    with SemanticRouter([route, Route("bye", ["goodbye"])], encoder=encoder, path=tmp_path):
        pass
    with SemanticRouter(
        [route, Route("bye", ["goodbye"])], encoder=encoder, path=tmp_path
    ) as router:
        assert router.last_sync.encoded == 0
        assert router.last_sync.updated == 0
        assert router.get("deep").metadata == meta
        assert router.route("hello there").name == "deep"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad: float) -> None:
    with pytest.raises(ConfigurationError, match="finite"):
        Route("a", ["x"], metadata={"score": [1.0, {"v": bad}]})


def test_lone_surrogates_in_metadata_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="surrogate"):
        Route("a", ["x"], metadata={"k": "bad \ud800 text"})
    with pytest.raises(ConfigurationError, match="surrogate"):
        Route("a", ["x"], metadata={"bad \udfff key": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {1: "int key"},
        {"k": {2: "nested int key"}},
        {"k": {1, 2}},
        {"k": b"bytes"},
        {"k": object()},
        {"k": 2**2000},
    ],
)
def test_non_json_metadata_is_refused(bad: dict[Any, Any]) -> None:
    with pytest.raises(ConfigurationError, match="metadata"):
        Route("a", ["x"], metadata=bad)


def test_oversized_metadata_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="characters as JSON"):
        Route("a", ["x"], metadata={"k": "x" * (MAX_METADATA_CHARS + 1)})


def test_tuples_and_big_integers_are_normalised_at_route() -> None:
    route = Route(
        "a",
        ["x"],
        metadata={"t": (1, (2, 3)), "big": 2**64 + 1, "small": -(2**63) - 1, "ok": 2**63 - 1},
    )
    assert route.metadata == {
        "t": [1, [2, 3]],
        "big": float(2**64 + 1),
        "small": float(-(2**63) - 1),
        "ok": 2**63 - 1,
    }
    assert isinstance(route.metadata["big"], float)
    assert type(route.metadata["ok"]) is int


@pytest.mark.parametrize("memory", [False, True])
def test_normalised_metadata_is_not_rewritten_on_reopen(tmp_path: Path, memory: bool) -> None:
    # Old code: tuples and integers above 2**64 came back as lists and floats, so every open
    # found the payload changed and rewrote it.
    routes = [
        Route("a", ["hello there"], metadata={"t": (1, 2), "big": 10**30}),
        Route("b", ["goodbye now"], metadata={"n": 2**64 + 5}),
    ]
    encoder = FakeEncoder(dimension=16)
    where: dict[str, Any] = {"client": QdrantClient(":memory:")} if memory else {"path": tmp_path}
    with SemanticRouter(routes, encoder=encoder, **where):
        pass
    with SemanticRouter(routes, encoder=encoder, **where) as router:
        assert router.last_sync.updated == 0
        assert router.last_sync.encoded == 0


def test_blank_utterance_error_names_route_and_position_without_pydantic_prefix() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Route("billing", ["refund please", "   ", "invoice"])
    message = str(caught.value)
    assert "billing" in message
    assert "utterances[1] is blank" in message
    assert "Value error" not in message


def test_blank_utterance_in_a_router_names_the_route() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SemanticRouter(
            [{"name": "ok", "utterances": ["hi"]}, {"name": "bad", "utterances": ["a", "\t"]}],
            encoder=FakeEncoder(dimension=8),
        )
    message = str(caught.value)
    assert "'bad'" in message and "utterances[1] is blank" in message
    assert "Value error" not in message
