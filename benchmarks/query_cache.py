"""The encoder's query cache on a stream with realistic repetition (issue 24, point 5).

A router of 10k CLINC150 train utterances answers a stream of requests drawn from the 4,500
CLINC150 test texts with Zipf-distributed popularity (rank r is asked with probability
proportional to 1 / r^s, ranks in a seeded random order), one ``route(text)`` at a time, with the
real ``LocalEncoder``. The same stream goes to two routers side by side, one with the cache off
(``cache_size=0``) and one with it on (the default 1024, and a bigger one), in alternating chunks
so that load changes hit all alike. The cache starts empty: the first requests fill it.

Reported: requests per second, p50 and p90 latency of ``route()``, the hit rate, and the p50 of
hits and of misses (a miss pays a look-up and an insert beside the model).

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/query_cache.py \\
        --data ../shared/data --out benchmarks/results/query_cache.txt
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchtools import data_parser, machine, pct, write_report
from users_run import BenchEncoder, Corpus

from semrouter import SemanticRouter
from semrouter.encoders import Encoder


class FreeEncoder(Encoder):
    """No model: what the cache itself costs."""

    model_id, dimension = "free", 384

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), self.dimension), np.float32)


def cache_cost(count: int = 20_000) -> str:
    """encode([text]) of new texts with the cache off and on, free encoder: the cache's cost."""
    out = []
    for size in (0, 1024):
        encoder = FreeEncoder()
        encoder.cache_size = size
        began = time.perf_counter()
        for i in range(count):
            encoder.encode([f"text {i}"])
        out.append((time.perf_counter() - began) / count)
    return (
        f"the cache's own cost on a miss (free encoder, encode([new text])): "
        f"{(out[1] - out[0]) * 1e6:.1f} us ({out[0] * 1e6:.1f} us off, {out[1] * 1e6:.1f} us on);"
        " a miss after hits is slower mostly because the model ran less recently (colder)"
    )


def zipf_stream(texts: list[str], count: int, exponent: float, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    weights = 1.0 / np.arange(1, len(texts) + 1) ** exponent
    ranks = rng.choice(len(texts), size=count, p=weights / weights.sum())
    return [texts[order[r]] for r in ranks]


def main() -> None:
    parser = data_parser(__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent s (1.0)")
    parser.add_argument("--chunk", type=int, default=200)
    args = parser.parse_args()

    corpus = Corpus(args.data)
    routes = corpus.routes("10k")
    stream = zipf_stream(corpus.test, args.requests, args.zipf)
    sizes = {"off (cache_size=0)": 0, "on (default, 1024)": 1024, "on (cache_size=8192)": 8192}
    runs = {}
    for label, size in sizes.items():
        encoder = BenchEncoder(corpus.table, cache_size=size)
        router = SemanticRouter(routes, encoder=encoder)
        router.learn()
        encoder.live = True
        for text in corpus.queries[:10]:  # warm the model (not in the stream's cache: cleared)
            router.route(text)
        encoder.cache_clear()
        runs[label] = {"router": router, "encoder": encoder, "times": [], "hit": []}

    utterances = next(iter(runs.values()))["router"].index_size
    load_before = os.getloadavg()[0]
    for start in range(0, len(stream), args.chunk):
        chunk = stream[start : start + args.chunk]
        for run in runs.values():
            encoder, router = run["encoder"], run["router"]
            for text in chunk:
                hits = encoder.cache_info().hits
                began = time.perf_counter()
                router.route(text)
                run["times"].append(time.perf_counter() - began)
                run["hit"].append(encoder.cache_info().hits > hits)

    lines = [
        f"query cache on a Zipf stream  ({machine(load_before)})",
        f"{len(stream)} route() calls over {len(corpus.test)} CLINC150 test texts, Zipf s="
        f"{args.zipf} ({len(set(stream))} distinct), router of {utterances} CLINC150 "
        "utterances, real LocalEncoder, one caller; cache empty at the start",
        "",
        f"{'cache':<22} {'requests/s':>10} {'p50':>9} {'p90':>9} {'hit rate':>9}"
        f" {'p50 hit':>9} {'p50 miss':>9}",
    ]
    base = None
    for label, run in runs.items():
        times = run["times"]
        hits = [t for t, h in zip(times, run["hit"]) if h]
        misses = [t for t, h in zip(times, run["hit"]) if not h]
        rate = len(times) / sum(times)
        p50 = statistics.median(times)
        base = base or (rate, p50)
        lines.append(
            f"{label:<22} {rate:>10.0f} {p50 * 1e3:>6.2f} ms "
            f"{pct(times, 0.9) * 1e3:>6.2f} ms "
            f"{len(hits) / len(times):>8.1%} "
            + (f"{statistics.median(hits) * 1e3:>6.3f} ms " if hits else f"{'-':>9} ")
            + f"{statistics.median(misses) * 1e3:>6.2f} ms"
            + (f"   x{rate / base[0]:.2f} requests/s, p50 x{p50 / base[1]:.2f}" if hits else "")
        )
        run["router"].close()
    lines.append(cache_cost())
    write_report("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
