"""What OpenTelemetry instrumentation costs ``route()`` (issue 21, point 1: under 2 %).

Times one ``route()`` of a FakeEncoder router (20 routes of 5 utterances, embedded store) and
what the router adds per call once wired: ``routing_span(...)`` around the call and
its ``observe(...)`` after it (see ``_telemetry``), in three states of the process:

1. OpenTelemetry never imported (an application that does not use it, or has no extra);
2. ``opentelemetry-api`` imported but no SDK configured (a library imported it);
3. an SDK configured (spans and metrics kept in memory): for information, not the target.

Each figure is the median of ``--rounds`` rounds of ``--calls`` calls. The states run in this
order in one process, since importing OpenTelemetry cannot be undone.

Usage::

    .venv/bin/python benchmarks/telemetry_cost.py [--out benchmarks/results/telemetry_cost.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from semrouter import FakeEncoder, Route, RouteMatch, SemanticRouter, configure_telemetry
from semrouter._telemetry import routing_span

WORDS = [
    "account",
    "billing",
    "card",
    "delivery",
    "email",
    "flight",
    "hotel",
    "invoice",
    "login",
    "menu",
    "order",
]


def _routes() -> list[Route]:
    routes = []
    for r in range(20):
        topic = f"topic{r}"
        routes.append(
            Route(topic, [f"{topic} {WORDS[(r + u) % len(WORDS)]} question {u}" for u in range(5)])
        )
    return routes


def _median_us(run: Callable[[], object], calls: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times) * 1e6


def _instrumentation(match: RouteMatch) -> Callable[[], None]:
    """What the router adds to one route() call."""
    matches = [match]

    def run() -> None:
        with routing_span("route", tenant="") as span:
            span.observe(matches, candidates=32, encode_s=1e-4, search_s=1e-4)

    return run


def _between_routes(router: SemanticRouter, query: str, run: Callable[[], None], n: int) -> float:
    """The instrumentation's median cost, in us, timed between two route() calls: its code and
    data are cold there, as in a real router (2-4 x the figure of a tight loop)."""
    clock = time.perf_counter_ns
    costs, empty = [], []
    for _ in range(n):
        router.route(query)
        start = clock()
        run()
        costs.append(clock() - start)
        router.route(query)
        start = clock()
        empty.append(clock() - start)
    return (statistics.median(costs) - statistics.median(empty)) / 1000


def _end_to_end(router: SemanticRouter, query: str, calls: int, rounds: int) -> str:
    """route() bare and route() with the instrumentation around it, timed bare / instrumented /
    bare in each round (drift and order cancel); the median of the per-round ratios. On a
    shared 2-core machine one round's ratio varies by a few per cent either way: the isolated
    figures above are the precise ones."""

    def bare() -> None:
        router.route(query)

    def instrumented() -> None:
        with routing_span("route", tenant="") as span:
            span.observe([router.route(query)], candidates=32, encode_s=1e-4, search_s=1e-4)

    ratios = []
    for _ in range(rounds):
        before = _median_us(bare, calls, 1)
        during = _median_us(instrumented, calls, 1)
        after = _median_us(bare, calls, 1)
        ratios.append(2 * during / (before + after))
    state = "api imported, no SDK" if "opentelemetry.trace" in sys.modules else "no OpenTelemetry"
    return (
        f"route() with the instrumentation around it ({state}), bare/instrumented/bare: "
        f"{100 * (statistics.median(ratios) - 1):+.2f} % (median of {rounds} rounds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    router = SemanticRouter(_routes(), encoder=FakeEncoder())
    query = "topic3 billing question"
    match = router.route(query)

    def route() -> None:
        router.route(query)

    lines = [
        "# OpenTelemetry cost on route() (benchmarks/telemetry_cost.py)",
        f"# python {platform.python_version()}, {platform.machine()}, "
        f"{args.rounds} rounds x {args.calls} calls, medians; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start",
    ]
    route_us = _median_us(route, args.calls // 10, args.rounds)
    lines.append(f"route(), FakeEncoder, 20 routes x 5 utterances: {route_us:9.2f} us")
    run = _instrumentation(match)

    def measure(label: str) -> None:
        hot = _median_us(run, args.calls, args.rounds)
        cold = _between_routes(router, query, run, args.calls)
        lines.append(
            f"{label}: {hot:6.2f} us in a loop, {cold:6.2f} us between route() calls "
            f"= {100 * cold / route_us:5.2f} % of route()"
        )

    assert not any(m.startswith("opentelemetry") for m in sys.modules)
    measure("1. OpenTelemetry never imported              ")
    try:
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        lines.append("(opentelemetry-api not installed: states 2 and 3 not measured)")
    else:
        measure("2. opentelemetry-api imported, no SDK        ")
        try:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
        except ImportError:
            lines.append("(opentelemetry-sdk not installed: state 3 not measured)")
        else:
            tracer_provider = TracerProvider()
            tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
            meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
            configure_telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
            measure("3. SDK configured, in-memory (information)   ")
    configure_telemetry()
    lines.append(_end_to_end(router, query, args.calls // 10, 2 * args.rounds + 1))
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
