from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semrouter import ConfigurationError, Route, RouteMatch
from semrouter._routes import validate_routes


def test_route_keeps_fields_and_dedupes_utterances() -> None:
    route = Route("a", ["x", "y", "x"], description="d", threshold=0.5, metadata={"k": 1})
    assert route.utterances == ("x", "y")
    assert (route.description, route.threshold, route.metadata) == ("d", 0.5, {"k": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "utterances": ["x"]}, "empty"),
        ({"name": "  ", "utterances": ["x"]}, "empty"),
        ({"name": "a", "utterances": []}, "at least one utterance"),
        ({"name": "a", "utterances": ["ok", "  "]}, "blank"),
        ({"name": "a", "utterances": "one string"}, "list of strings"),
        ({"name": "a", "utterances": [1, 2]}, "strings"),
        ({"name": "a", "utterances": ["x"], "threshold": 2.0}, "threshold"),
        ({"name": "a", "utterances": ["x"], "colour": "red"}, "colour"),
    ],
)
def test_invalid_routes_raise_configuration_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Route(**kwargs)  # type: ignore[arg-type]


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Route("a", [])


def test_duplicate_route_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="duplicate route name: 'a'"):
        validate_routes([Route("a", ["x"]), Route("a", ["y"])])


def test_routes_from_mappings() -> None:
    routes = validate_routes([{"name": "a", "utterances": ["x"]}])
    assert routes == [Route("a", ["x"])]


def test_route_match_truthiness() -> None:
    assert not RouteMatch(name=None, score=0.1)
    assert RouteMatch(name="a", score=0.9)


@given(
    name=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.strip()),
    utterances=st.lists(st.text(min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=8),
)
def test_valid_routes_round_trip_through_json(name: str, utterances: list[str]) -> None:
    route = Route(name, utterances)
    again = Route.from_dict(route.model_dump(mode="json"))
    assert again == route
    assert list(route.utterances) == list(dict.fromkeys(utterances))


@given(
    st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=3))
)
def test_garbage_utterances_never_escape_as_other_errors(value: object) -> None:
    # None of these is a list of non-blank strings: each is refused, naming route and field.
    with pytest.raises(ConfigurationError, match=r"^invalid route 'a': utterances"):
        Route("a", value)
