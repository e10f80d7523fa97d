"""Below langchain-core 1.8 (no ``langchain_core.decisions``) the decision model and its example
say which version they need (issue 20, point 11); they used to die on a bare import error.

Each case runs in a subprocess that hides ``langchain_core.decisions``, as langchain-core 1.2.5
(the extra's floor) lacks it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langchain_decision.py"
HIDE = "import sys; sys.modules['langchain_core.decisions'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_decision_module_names_the_version_it_needs() -> None:
    # The package attribute says so too (test_package.py); so does the module, imported alone.
    result = _run(
        """
        from semrouter import MissingDependencyError
        try:
            import langchain_semrouter.decision
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "needs langchain-core 1.8 or later" in result.stdout
    assert "pip install -U 'langchain-core>=1.8'" in result.stdout


def test_the_decision_example_says_what_it_needs() -> None:
    if not EXAMPLE.exists():  # pragma: no cover - the lowest-pins CI copies tests/ alone
        pytest.skip("examples/ not beside the tests")
    result = _run(f"import runpy; runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "needs langchain-core 1.8 or later" in result.stderr
