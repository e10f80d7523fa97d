"""Many callers at once: coalescing requests into one encoder batch (issue 24, point 6).

A router of 10k CLINC150 train utterances, the real ``LocalEncoder`` (query cache off: every
request is encoded), and 32 concurrent callers in a closed loop (each sends its next request as
soon as its last one is answered), every request a distinct CLINC150 test text:

- threads calling ``route()`` and tasks awaiting ``aroute()`` (one event loop),
- each with coalescing off (plain calls: what 0.x users get) and on (``coalesce_ms``).

Beside them: a lone caller's ``route()`` latency (coalescing off, and on: a lone request pays
the hand-offs to the encoder's and the search's worker threads), the encoder's own batch
throughput in two forms, and ``route_many()`` in calls of 32 texts (one caller batching for
itself). The encoder's batch throughput is ``encode()`` of 320 texts, which sorts them by
length into batches of 32 (little padding); 32 callers can only ever form batches of their own
<= 32 texts in arrival order, so ``encode()`` of 32-text calls in arrival order is given beside
it, with the share of each. Targets: throughput >= 0.9 x the batch throughput, p99 <= 3 x a
lone request. Configurations run in alternating rounds so load changes hit all.

Note: with C callers in a closed loop, Little's law makes the mean latency C / throughput; at
32 callers and the batch throughput of a 2-core machine that is about 32 / (batch throughput),
far above 3 lone requests: the p99 target and the throughput target cannot both hold there.
The report gives that bound beside the p99.

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/concurrent_callers.py \\
        --data ../shared/data --out benchmarks/results/concurrent_callers.txt
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchtools import data_parser, machine, pct, write_report
from users_run import BenchEncoder, Corpus

from semrouter import SemanticRouter


def threads_load(router: SemanticRouter, texts: Any, callers: int, each: int) -> tuple:
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(callers + 1)

    def caller() -> None:
        mine = []
        barrier.wait()
        for _ in range(each):
            with lock:
                text = next(texts)
            began = time.perf_counter()
            router.route(text)
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - began


def async_load(router: SemanticRouter, texts: Any, callers: int, each: int) -> tuple:
    latencies: list[float] = []

    async def caller() -> None:
        for _ in range(each):
            text = next(texts)
            began = time.perf_counter()
            await router.aroute(text)
            latencies.append(time.perf_counter() - began)

    async def main() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return time.perf_counter() - began

    return latencies, asyncio.run(main())


def lone_latencies(router: SemanticRouter, texts: Any, count: int = 100) -> list[float]:
    """``route()`` latencies of ``count`` requests sent one at a time."""
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        router.route(next(texts))
        latencies.append(time.perf_counter() - began)
    return latencies


def texts_per_s(call: Callable[[list[str]], object], texts: Any, page: int) -> float:
    """Texts a second of ``call`` over the next 320 texts, ``page`` texts a call."""
    batch = [next(texts) for _ in range(320)]
    began = time.perf_counter()
    for start in range(0, len(batch), page):
        call(batch[start : start + page])
    return len(batch) / (time.perf_counter() - began)


def main() -> None:
    parser = data_parser(__doc__)
    parser.add_argument("--callers", type=int, default=32)
    parser.add_argument("--each", type=int, default=16, help="requests per caller per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--waits", default="1,2", help="coalesce_ms values to try (1,2)")
    args = parser.parse_args()

    corpus = Corpus(args.data)
    encoder = BenchEncoder(corpus.table)
    router = SemanticRouter(corpus.routes("10k"), encoder=encoder)
    router.learn()
    encoder.live = True
    texts = itertools.cycle(corpus.test)
    for _ in range(20):
        router.route(next(texts))
    load_before = os.getloadavg()[0]

    lone, lone_on, batch_rate, batch32_rate, many_rate = [], [], [], [], []
    waits = [None, *(float(w) for w in args.waits.split(","))]
    configs = [(kind, wait) for kind in ("threads", "async") for wait in waits]
    results: dict[tuple, dict[str, Any]] = {c: {"lat": [], "wall": 0.0, "n": 0} for c in configs}
    for _ in range(args.rounds):
        encoder.coalesce_ms = None
        lone += lone_latencies(router, texts)
        encoder.coalesce_ms = waits[1] if len(waits) > 1 else 1.0
        lone_on += lone_latencies(router, texts)
        encoder.coalesce_ms = None
        batch_rate.append(texts_per_s(encoder.encode, texts, page=320))
        batch32_rate.append(texts_per_s(encoder.encode, texts, page=32))
        many_rate.append(texts_per_s(router.route_many, texts, page=32))
        for kind, wait in configs:
            encoder.coalesce_ms = wait
            load = threads_load if kind == "threads" else async_load
            lat, wall = load(router, texts, args.callers, args.each)
            entry = results[(kind, wait)]
            entry["lat"] += lat
            entry["wall"] += wall
            entry["n"] += len(lat)
    router.close()

    lone_p50 = statistics.median(lone)
    batch_tps = statistics.median(batch_rate)
    batch32_tps = statistics.median(batch32_rate)
    lines = [
        f"{args.callers} concurrent callers  ({machine(load_before)})",
        f"router of {router.index_size} CLINC150 utterances, real LocalEncoder (query cache off), "
        f"{args.rounds} rounds of {args.callers} x {args.each} requests per configuration",
        f"lone request: route() p50 {lone_p50 * 1e3:.2f} ms, p99 {pct(lone, 0.99) * 1e3:.2f} ms "
        f"({1 / lone_p50:.0f} requests/s one at a time); with coalescing on: p50 "
        f"{statistics.median(lone_on) * 1e3:.2f} ms, p99 {pct(lone_on, 0.99) * 1e3:.2f} ms",
        f"encoder batch throughput: encode(320 texts) {batch_tps:.0f} texts/s (median of "
        f"{args.rounds}); Little's law at {args.callers} callers and that rate: mean latency >= "
        f"{args.callers / batch_tps * 1e3:.0f} ms",
        f"encode() of 32-text calls in arrival order (the batches callers can form): "
        f"{batch32_tps:.0f} texts/s ({batch32_tps / batch_tps:.2f} x batch)",
        f"route_many() of 320 texts in calls of 32: {statistics.median(many_rate):.0f} texts/s "
        f"({statistics.median(many_rate) / batch_tps:.2f} x batch, "
        f"{statistics.median(many_rate) / batch32_tps:.2f} x encode of 32-text calls)",
        "",
        f"{'callers':<8} {'coalesce_ms':>11} {'requests/s':>10} {'/ batch':>8} {'/ enc32':>8} "
        f"{'p50':>9} {'p99':>9} {'p99 / lone':>10}  verdict (>= 0.9 x batch; p99 <= 3 x lone)",
    ]
    for (kind, wait), entry in results.items():
        rate = entry["n"] / entry["wall"]
        p50, p99 = statistics.median(entry["lat"]), pct(entry["lat"], 0.99)
        share, slow = rate / batch_tps, p99 / lone_p50
        verdict = "throughput " + ("MET" if share >= 0.9 else f"MISSED by {0.9 / share:.2f}x")
        verdict += ", p99 " + ("MET" if slow <= 3 else f"MISSED by {slow / 3:.1f}x")
        lines.append(
            f"{kind:<8} {('off' if wait is None else f'{wait:g}'):>11} {rate:>10.0f} "
            f"{share:>8.2f} {rate / batch32_tps:>8.2f} {p50 * 1e3:>6.1f} ms "
            f"{p99 * 1e3:>6.1f} ms {slow:>10.1f}  {verdict}"
        )
    write_report("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
