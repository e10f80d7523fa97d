"""Soak: many queries through SemanticBranch.invoke and SemRouterSelector.select; latency and RSS.

A soak is not a speed race: it looks for what only shows after many calls (memory that grows
per call, latency that creeps up). Each run routes a cycle of 1,000 distinct queries through
- (a) the LangChain ``SemanticBranch`` (``invoke``; trivial ``RunnableLambda`` branches), and
- (b) the LlamaIndex ``SemRouterSelector`` (``select(choices, query)``; five choices),
each on its own router over the default embedded store (Qdrant Edge in a temporary folder),
and reports p50/p99 latency per call and the process RSS after warm-up, at the end, and
their growth (target: at most 10 %).

Two encoders. The long run (100,000 queries by default) uses the deterministic
``FakeEncoder`` (tens of microseconds) so that the router, adapter and Qdrant path are what is
soaked; a shorter run (5,000 queries) uses the real ``LocalEncoder`` (MiniLM, ONNX int8),
which costs milliseconds per query on a small machine. Every run is a fresh subprocess, so
one run's memory does not count in another's.

    python benchmarks/soak.py > benchmarks/results/soak.txt      # about 5-10 minutes
    python benchmarks/soak.py --quick                            # about a minute
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

POOL_SIZE = 1000
LOCAL_WARMUP = 200
MAX_GROWTH = 10.0  # percent
MB = 1024 * 1024

ROUTES = {
    "weather": ["what is the weather today", "will it rain tomorrow", "is it sunny outside"],
    "travel": ["book a flight to paris", "cancel my hotel booking", "find a train ticket"],
    "math": ["what is two plus two", "calculate the sum of these numbers", "solve this equation"],
    "greet": ["hello there", "hi how are you", "good morning"],
}
DESCRIPTIONS = {
    "weather": "the weather forecast: rain, sun, temperature",
    "travel": "book or cancel flights, trains and hotels",
    "math": "arithmetic and equations",
    "greet": "greetings and pleasantries",
    "chat": "small talk and anything else",
}

_TEMPLATES = [
    "what is the weather in {city} {day}?",
    "will it rain in {city} {day}",
    "is it going to be sunny in {city} {day}",
    "book a flight from {city} to {city2} {day}",
    "cancel my hotel booking in {city}",
    "find me a train ticket to {city2} for {day}",
    "what is {a} plus {b}",
    "calculate {a} times {b} please",
    "solve {a} x + {b} = 0",
    "hello, my name is {name}",
    "good morning {name}, how are you",
    "hi {name}!",
    "tell me a joke about {thing}",
    "who invented the {thing}",
    "recommend a book about {thing} for {name}",
]
_WORDS = {
    "city": ["paris", "tokyo", "lima", "oslo", "cairo", "denver", "hanoi", "perth", "quito"],
    "day": ["today", "tomorrow", "on monday", "this weekend", "next week", "tonight"],
    "name": ["ada", "grace", "linus", "guido", "barbara", "ken", "margaret", "alan"],
    "thing": ["penguins", "compilers", "tea", "bicycles", "volcanoes", "jazz", "chess"],
}


def query_pool(size: int = POOL_SIZE, seed: int = 0) -> list[str]:
    """``size`` distinct queries across the routes and off them, the same in every run."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < size:
        words = {key: rng.choice(values) for key, values in _WORDS.items()}
        words["city2"] = rng.choice(_WORDS["city"])
        query = rng.choice(_TEMPLATES).format(a=rng.randint(2, 999), b=rng.randint(2, 999), **words)
        seen.setdefault(query, None)
    return list(seen)


# -- one run (in its own process) -------------------------------------------------------------


def _encoder(name: str) -> Any:
    from semrouter import FakeEncoder, LocalEncoder

    return FakeEncoder() if name == "fake" else LocalEncoder()


def _langchain(encoder: Any) -> tuple[Callable[[str], str], Callable[[], None]]:
    from langchain_core.runnables import RunnableLambda

    from langchain_semrouter import SemanticBranch
    from semrouter import Route, SemanticRouter

    router = SemanticRouter([Route(n, u) for n, u in ROUTES.items()], encoder=encoder)
    branches = {name: RunnableLambda(lambda x, n=name: n) for name in ROUTES}
    branch = SemanticBranch(branches, default=RunnableLambda(lambda x: "default"), router=router)
    return branch.invoke, router.close


def _llama_index(encoder: Any) -> tuple[Callable[[str], str], Callable[[], None]]:
    from llama_index.core.tools import ToolMetadata

    from llama_index_semrouter import SemRouterSelector

    choices = [ToolMetadata(name=n, description=d) for n, d in DESCRIPTIONS.items()]
    selector = SemRouterSelector.from_defaults(
        choices, encoder=encoder, utterances=ROUTES, fallback="chat"
    )

    def select(query: str) -> str:
        return choices[selector.select(choices, query).ind].name or "?"

    return select, selector.close


def run(adapter: str, encoder_name: str, queries: int) -> dict[str, Any]:
    """Route ``queries`` queries after a warm-up pass; latency samples and RSS readings."""
    build = _langchain if adapter == "langchain" else _llama_index
    call, close = build(_encoder(encoder_name))
    pool = query_pool()
    # One pass over the pool; a shorter one for the slow real encoder (its arenas settle fast).
    warmup = min(len(pool) if encoder_name == "fake" else LOCAL_WARMUP, queries)
    for i in range(warmup):
        call(pool[i])
    samples = np.full(queries, -1, dtype=np.int64)  # resident before the first RSS reading
    picked: Counter[str] = Counter()
    step = max(queries // 10, 1)
    trail: list[int] = []
    process = psutil.Process()
    gc.collect()
    rss_start = process.memory_info().rss
    began = time.perf_counter()
    for i in range(queries):
        query = pool[(warmup + i) % len(pool)]
        start = time.perf_counter_ns()
        out = call(query)
        samples[i] = time.perf_counter_ns() - start
        picked[out] += 1
        if (i + 1) % step == 0:
            trail.append(process.memory_info().rss)
    elapsed = time.perf_counter() - began
    gc.collect()
    rss_end = process.memory_info().rss
    close()
    return {
        "adapter": adapter,
        "encoder": encoder_name,
        "queries": queries,
        "warmup": warmup,
        "p50_us": float(np.percentile(samples, 50)) / 1000,
        "p99_us": float(np.percentile(samples, 99)) / 1000,
        "max_us": float(samples.max()) / 1000,
        "first_tenth_p50_us": float(np.percentile(samples[: max(queries // 10, 1)], 50)) / 1000,
        "last_tenth_p50_us": float(np.percentile(samples[-max(queries // 10, 1) :], 50)) / 1000,
        "rss_start": rss_start,
        "rss_end": rss_end,
        "rss_peak": max([rss_start, rss_end, *trail]),
        "trail": trail,
        "elapsed_s": elapsed,
        "picked": dict(picked.most_common()),
    }


# -- the report --------------------------------------------------------------------------------


def _in_subprocess(adapter: str, encoder_name: str, queries: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--run", f"{adapter}:{encoder_name}", "--queries"]
    done = subprocess.run([*command, str(queries)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the {adapter}/{encoder_name} run failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _growth(result: dict[str, Any]) -> float:
    return 100.0 * (result["rss_end"] - result["rss_start"]) / result["rss_start"]


def _versions() -> str:
    from importlib.metadata import version

    names = ("semrouter", "langchain-core", "llama-index-core", "qdrant-edge-py", "qdrant-client")
    return ", ".join(f"{name} {version(name)}" for name in names)


def report(results: list[dict[str, Any]], wall: float) -> None:
    header = (
        f"{'adapter call':<32}{'encoder':<14}{'queries':>9}{'p50 us':>10}{'p99 us':>10}"
        f"{'RSS start MB':>14}{'RSS end MB':>12}{'growth':>9}  verdict"
    )
    print(header)
    print("-" * len(header))
    calls = {"langchain": "SemanticBranch.invoke", "llama-index": "SemRouterSelector.select"}
    encoders = {"fake": "FakeEncoder", "local": "LocalEncoder"}
    for r in results:
        growth = _growth(r)
        verdict = "ok" if growth <= MAX_GROWTH else f"GROWTH > {MAX_GROWTH:.0f} %"
        print(
            f"{calls[r['adapter']]:<32}{encoders[r['encoder']]:<14}{r['queries']:>9,}"
            f"{r['p50_us']:>10.1f}{r['p99_us']:>10.1f}{r['rss_start'] / MB:>14.1f}"
            f"{r['rss_end'] / MB:>12.1f}{growth:>8.2f}%  {verdict}"
        )
    print()
    print("RSS (MB) after each tenth of the run, peak, and median latency in the first and last")
    print("tenth (a creeping p50 would show a per-call cost that grows with the call count):")
    for r in results:
        trail = " ".join(f"{rss / MB:.0f}" for rss in r["trail"])
        print(
            f"  {calls[r['adapter']]:<26}{encoders[r['encoder']]:<13}{trail}; "
            f"peak {r['rss_peak'] / MB:.1f}; p50 {r['first_tenth_p50_us']:.1f} -> "
            f"{r['last_tenth_p50_us']:.1f} us; max {r['max_us'] / 1000:.1f} ms; "
            f"{r['elapsed_s']:.0f} s"
        )
    print()
    print("Where the queries went (route or choice: count), to show both paths were exercised:")
    for r in results:
        spread = ", ".join(f"{name} {count}" for name, count in r["picked"].items())
        print(f"  {calls[r['adapter']]:<26}{encoders[r['encoder']]:<13}{spread}")
    print()
    print(
        "Each run: a fresh process; a router over the default embedded store (Qdrant Edge in\n"
        f"a temporary folder); a pool of {POOL_SIZE:,} distinct queries, cycled. Warm-up before\n"
        "the start RSS: one pass over the pool with FakeEncoder, "
        f"{LOCAL_WARMUP} queries with LocalEncoder\n"
        "(or the whole run if shorter); gc.collect() before both RSS readings. FakeEncoder\n"
        "(hashed bag of words) soaks the router, adapter and Qdrant path at full length;\n"
        "LocalEncoder (real MiniLM, ONNX int8) runs fewer queries because each costs\n"
        "milliseconds here. p50/p99 are per call, wall time, single thread.\n"
        f"Total wall time {wall / 60:.1f} min."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--queries", type=int, default=100_000, help="queries per FakeEncoder run (100,000)"
    )
    parser.add_argument(
        "--local-queries", type=int, default=5_000, help="queries per LocalEncoder run (5,000)"
    )
    parser.add_argument("--quick", action="store_true", help="5,000 fake and 300 local queries")
    parser.add_argument("--no-local", action="store_true", help="skip the LocalEncoder runs")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one run, JSON on stdout
    args = parser.parse_args()
    if args.run:
        adapter, encoder_name = args.run.split(":")
        print(json.dumps(run(adapter, encoder_name, args.queries)))
        return
    if args.quick:
        args.queries, args.local_queries = 5_000, 300
    plan = [("langchain", "fake", args.queries), ("llama-index", "fake", args.queries)]
    if not args.no_local:
        plan += [
            ("langchain", "local", args.local_queries),
            ("llama-index", "local", args.local_queries),
        ]
    print(
        f"Soak: SemanticBranch.invoke and SemRouterSelector.select, latency and RSS "
        f"(target: RSS growth <= {MAX_GROWTH:.0f} %)"
    )
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM; {_versions()}"
    )
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    began = time.perf_counter()
    results = [_in_subprocess(*step) for step in plan]
    report(results, time.perf_counter() - began)
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    failed = [r for r in results if _growth(r) > MAX_GROWTH]
    if failed:
        raise SystemExit(f"RSS grew more than {MAX_GROWTH:.0f} % in {len(failed)} run(s)")


if __name__ == "__main__":
    main()
