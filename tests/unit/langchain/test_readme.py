"""The README's LangChain section runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def run_section(title: str) -> list[str]:
    section = README.read_text(encoding="utf-8").split(title, 1)[1].split("\n## ", 1)[0]
    scope: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in re.findall(r"```python\n(.*?)```", section, re.S):
            exec(compile(code, "README.md", "exec"), scope)
    return out.getvalue().splitlines()


def test_langchain_section() -> None:
    assert run_section("## LangChain (") == [
        "LCEL: compose runnables with |",
        "general answer",
        "LCEL: compose runnables with |",
        "offered: ['get_weather', 'search']",
        "1 get_weather",
        "2 send_email",
        "['will I need an umbrella in Berlin?']",
    ]
