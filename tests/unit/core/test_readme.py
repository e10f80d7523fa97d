"""The README's quickstart runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"


def test_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)  # it creates ./routes_db
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md", "exec"), {})
    first, second = out.getvalue().splitlines()
    assert first.startswith("chitchat ") and first.endswith("how are things going?")
    assert second == "None"
    assert (tmp_path / "routes_db").is_dir()


def test_deploying_section_follows_the_quickstart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text(encoding="utf-8")
    quickstart = re.search(r"```python\n(.*?)```", text.split("## Quickstart", 1)[1], re.S)
    deploying = re.search(r"```python\n(.*?)```", text.split("## Deploying", 1)[1], re.S)
    assert quickstart is not None and deploying is not None
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(quickstart.group(1), "README.md", "exec"), scope)
        exec(compile(deploying.group(1), "README.md", "exec"), scope)
    lines = out.getvalue().splitlines()
    assert lines[2] == "True ['politics', 'chitchat']"
    assert lines[3] == "weather"
    assert lines[4] == "True"  # the follower's identity is the writer's


def section_output(title: str) -> str:
    """What the first python block of the README section ``title`` prints."""
    section = README.read_text(encoding="utf-8").split(title, 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md", "exec"), {})
    return out.getvalue()


def test_hybrid_section_prints_what_it_says() -> None:
    assert section_output("## Hybrid routing").split() == ["xr200", "xr900"]


def test_running_in_production_section_prints_what_it_says() -> None:
    lines = section_output("## Running in production").splitlines()
    assert lines[0] == "None"
    reason, route, score, threshold = lines[1].split()
    assert (reason, route) == ("near_miss", "shipping") and float(score) < float(threshold)
    assert lines[2] == "shipping {'shipping': ['the driver threw it over the fence']}"
    assert len(lines) == 3
