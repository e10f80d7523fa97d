"""Python code run in a fresh interpreter, for tests of what an import loads or refuses."""

from __future__ import annotations

import subprocess
import sys

__all__ = ["run_python"]


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -c`` (``args`` in ``sys.argv[1:]``); its output as text."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout
    )
