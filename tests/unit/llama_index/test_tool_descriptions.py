"""How tool descriptions become route text: FunctionTool's ``name(signature)`` line is dropped."""

from __future__ import annotations

from llama_index_semrouter.retrievers import _describe


def test_signature_line_of_a_function_tool_is_dropped() -> None:
    described = _describe("get_weather", "get_weather(city: str) -> str\nThe weather in a city.")
    assert described == "The weather in a city."


def test_other_descriptions_are_kept_whole() -> None:
    assert _describe("get_weather", "The weather in a city.") == "The weather in a city."
    # a first line that is another tool's signature is content, not our signature
    text = "other(x) -> int\nDoes things."
    assert _describe("get_weather", text) == text
    # a signature with nothing after it stays (the description would otherwise be empty)
    assert _describe("get_weather", "get_weather(city: str)\n  ") == "get_weather(city: str)\n  "
