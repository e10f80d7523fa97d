"""The README's LlamaIndex section runs as written (with its MockLLM) and picks billing."""

from __future__ import annotations

from tests.unit.langchain.test_readme import run_section


def test_llama_index_section() -> None:
    assert run_section("## LlamaIndex (") == ["0"]
