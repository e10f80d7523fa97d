"""Python code run in a fresh interpreter, for tests of what an import loads or refuses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

__all__ = ["missing_dependency_error", "run_python"]


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -c`` (``args`` in ``sys.argv[1:]``); its output as text."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout
    )


def missing_dependency_error(statement: str, *, hidden: Sequence[str], setup: str = "") -> str:
    """The text of the ``MissingDependencyError`` that ``statement`` raises in a fresh
    interpreter where the ``hidden`` modules cannot be imported (``setup`` runs first and must
    work there); any other outcome fails the calling test."""
    result = run_python(
        f"import sys\nfor name in {list(hidden)!r}:\n    sys.modules[name] = None\n"
        "from semrouter import MissingDependencyError\n"
        f"{setup}\n"
        f"try:\n    {statement}\n"
        "except MissingDependencyError as exc:\n    print(exc)\n"
        "else:\n    sys.exit('no error')\n"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
