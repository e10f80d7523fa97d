"""Telemetry costs nothing and imports nothing while OpenTelemetry is absent or unused
(issue 21, point 1). Runs whether or not ``semrouter[otel]`` is installed."""

from __future__ import annotations

import subprocess
import sys


def _child(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


ROUTE_AND_OBSERVE = (
    "r = semrouter.SemanticRouter([semrouter.Route('a', ['hello there'])],"
    " encoder=semrouter.FakeEncoder())\n"
    "with routing_span('route') as span:\n"
    "    span.observe([r.route('hello')])\n"
    "observe('route', [r.route('hello')])\n"
    "observe('route', [], error=RuntimeError('x'))\n"
)


def test_semrouter_never_imports_opentelemetry() -> None:
    code = (
        "import sys, semrouter\n"
        "from semrouter._telemetry import observe, routing_span\n"
        + ROUTE_AND_OBSERVE
        + "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    assert _child(code) == "[]"


def test_everything_works_with_opentelemetry_not_installed() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # what an install without the extra looks like\n"
        "import semrouter\n"
        "from semrouter._telemetry import observe, routing_span\n"
        "semrouter.configure_telemetry(record_text=True)\n"
        + ROUTE_AND_OBSERVE
        + "semrouter.configure_telemetry(enabled=False)\n"
        + ROUTE_AND_OBSERVE
        + "semrouter.configure_telemetry()\n"
        "print('ok')"
    )
    assert _child(code) == "ok"
