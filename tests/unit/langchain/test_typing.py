"""`branch = SemRouterBranch(...)` type-checks under mypy --strict without an annotation, as
`RunnableBranch(...)` does (issue 11 point 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SNIPPET = """
from langchain_core.runnables import RunnableBranch, RunnableLambda

from langchain_semrouter import SemRouterBranch
from semrouter import FakeEncoder, Route

classic = RunnableBranch((lambda x: "a" in x, lambda x: "A"), lambda x: "D")
encoder = FakeEncoder()
branch = SemRouterBranch((Route("a", ["hello"]), lambda x: "A"), lambda x: "D", encoder=encoder)
mapping = SemRouterBranch({"a": RunnableLambda(lambda x: "A")}, router=branch.router)
named = SemRouterBranch(("a", lambda x: "A"), router=branch.router, route_on="question")
"""


def test_strict_mypy_infers_the_branch_type(tmp_path: Path) -> None:
    pytest.importorskip("mypy")  # not in the lowest-pins venv
    snippet = tmp_path / "snippet_typing.py"
    snippet.write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
