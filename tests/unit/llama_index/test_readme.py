"""The README's LlamaIndex section runs as written (with its MockLLM): it picks billing, and
the tool retriever learns the call it is shown."""

from __future__ import annotations

from tests.unit.langchain.test_readme import run_section


def test_llama_index_section() -> None:
    assert run_section("## LlamaIndex (") == [
        "0",
        "['get_weather']",
        "['will I need an umbrella in Berlin?']",
    ]
