"""Routing overhead of SemanticBranch.invoke versus a bare router.route() and a RunnableBranch.

Side by side, in one run, for FakeEncoder and LocalEncoder: the median wall time of
- router.route(text)                  the routing alone;
- SemanticBranch.invoke(text)         routing + the runnable machinery (callbacks, config);
- RunnableBranch.invoke(text)         a trivial predicate + the same machinery, no routing.
Every branch is a trivial RunnableLambda, so the differences are pure overhead.

    python benchmarks/langchain_overhead.py > benchmarks/results/langchain_overhead.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import langchain_core
from langchain_core.runnables import RunnableBranch, RunnableLambda

from langchain_semrouter import SemanticBranch
from semrouter import Encoder, FakeEncoder, LocalEncoder, Route, SemanticRouter

ROUTES = [
    Route("weather", ["what is the weather today", "will it rain tomorrow", "is it sunny outside"]),
    Route("math", ["what is two plus two", "solve this equation", "calculate the sum"]),
    Route("greet", ["hello there", "hi how are you", "good morning"]),
]
QUERIES = ["will it be sunny tomorrow?", "what's 3 plus 4?", "hey, good morning!", "tell me a joke"]


def median_us(func: Callable[[str], Any], iterations: int) -> float:
    for query in QUERIES * 5:  # warm-up
        func(query)
    samples = []
    for i in range(iterations):
        query = QUERIES[i % len(QUERIES)]
        start = time.perf_counter_ns()
        func(query)
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def measure(encoder: Encoder, iterations: int) -> dict[str, float]:
    router = SemanticRouter(ROUTES, encoder=encoder)
    leaf = {name: RunnableLambda(lambda x, n=name: n) for name in ("weather", "math", "greet")}
    default = RunnableLambda(lambda x: "default")
    semantic = SemanticBranch(leaf, default=default, router=router)
    classic = RunnableBranch(
        (lambda x: "sunny" in x, leaf["weather"]),
        (lambda x: "plus" in x, leaf["math"]),
        (lambda x: "morning" in x, leaf["greet"]),
        default,
    )
    results = {
        "router.route": median_us(router.route, iterations),
        "SemanticBranch.invoke": median_us(semantic.invoke, iterations),
        "RunnableBranch.invoke": median_us(classic.invoke, iterations),
    }
    router.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    print("SemanticBranch routing overhead (median wall time per call, microseconds)")
    print(
        f"python {platform.python_version()}, langchain-core {langchain_core.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.iterations} iterations each"
    )
    print()
    header = (
        f"{'encoder':<14}{'router.route':>14}{'SemanticBranch':>16}{'RunnableBranch':>16}"
        f"{'overhead':>12}"
    )
    print(header)
    print("-" * len(header))
    for name, encoder in (("FakeEncoder", FakeEncoder()), ("LocalEncoder", LocalEncoder())):
        r = measure(encoder, args.iterations)
        overhead = r["SemanticBranch.invoke"] - r["router.route"]
        print(
            f"{name:<14}{r['router.route']:>14.1f}{r['SemanticBranch.invoke']:>16.1f}"
            f"{r['RunnableBranch.invoke']:>16.1f}{overhead:>12.1f}"
        )
    print()
    print("overhead = SemanticBranch.invoke - router.route: what the runnable adds to routing")
    print("(chain run, child run with tag and metadata, config handling). RunnableBranch is")
    print("the same machinery with keyword predicates instead of routing.")


if __name__ == "__main__":
    main()
