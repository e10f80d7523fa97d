"""Speed as users run it: the real encoder beside the search (issue 24, point 1).

One process, the real ``LocalEncoder``, CLINC150 train utterances as routes: each of 300 test
queries is encoded alone (``encoder.encode([q])``) and then routed (``router.route(q)``, which
encodes it again), interleaved, so both see the same load. "Beyond encoding" is the difference
of the medians. Beside it, the floor: the same router with a free encoder (a table of the same
vectors, no model call), as ``core_perf.py``'s routing-path figures.

Sizes: 10 utterances (2 intents x 5), 10k (100 intents x their ~100 train utterances) and 100k
(all 150 intents: the 15k train vectors and jittered copies of them, cosine ~0.9 to their
original, texts suffixed " #k"). Each is measured straight after building (big route sets learn
in the background then) and after ``learn()``; ``route_many`` against ``encode`` of the same
300 queries is reported too.

The utterances' vectors come from the table (as a reopened router reads them from Qdrant); only
the queries are really encoded. The encoder's query cache is off here: the interleaved
``encode([q])`` would otherwise hand ``route(q)`` its vector for free.

Used by ``core_perf.py --data`` (and the cache and concurrency benchmarks use its corpus)::

    flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/core_perf.py \\
        --data ../shared/data --users-only
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "quality"))
from benchtools import time_pairs
from compare import embed_table, load_clinc

from semrouter import Route, SemanticRouter
from semrouter.encoders import LocalEncoder

CACHE = Path("/tmp/semrouter-bench")
SIZES = ("10", "10k", "100k")


class Corpus:
    """CLINC150 texts, their MiniLM vectors (cached as .npy) and the test queries."""

    def __init__(self, data: Path, cache: Path = CACHE, queries: int = 300, seed: int = 0):
        self.splits = load_clinc(data)
        texts = [t for rows in self.splits.values() for t, _ in rows]
        self.table: dict[str, Any] = embed_table("clinc150", texts, cache)
        self.by_intent: dict[str, list[str]] = {}
        for text, intent in self.splits["train"]:
            assert intent is not None
            self.by_intent.setdefault(intent, []).append(text)
        for intent, rows in self.by_intent.items():
            self.by_intent[intent] = list(dict.fromkeys(rows))
        self.test = [t for t, _ in self.splits["test"]]
        pick = np.random.default_rng(seed).choice(len(self.test), queries, replace=False)
        self.queries = [self.test[i] for i in sorted(pick)]

    def routes(self, size: str, seed: int = 0) -> list[Route]:
        intents = sorted(self.by_intent)
        if size == "10":
            return [Route(i, self.by_intent[i][:5]) for i in intents[:2]]
        if size == "10k":
            return [Route(i, self.by_intent[i][:100]) for i in intents[:100]]
        if size != "100k":
            raise ValueError(size)
        rng = np.random.default_rng(seed)
        routes = []
        for intent in intents:  # 150 x 667 = 100,050 utterances
            base = self.by_intent[intent]
            copies = [f"{base[j % len(base)]} #{j // len(base)}" for j in range(len(base), 667)]
            for text in copies:
                if text not in self.table:
                    original = self.table[text.rsplit(" #", 1)[0]]
                    noisy = original + 0.5 * rng.standard_normal(len(original)) / np.sqrt(
                        len(original)
                    )
                    self.table[text] = (noisy / np.linalg.norm(noisy)).astype(np.float32)
            routes.append(Route(intent, [*base, *copies]))
        return routes


class BenchEncoder(LocalEncoder):
    """The real encoder (``live``) or a free one reading the same vectors from a table.

    Same model id and dimension either way, so one router serves both; the query cache is
    off (see the module docstring).
    """

    def __init__(self, table: dict[str, Any], **options: Any) -> None:
        options.setdefault("cache_size", 0)
        super().__init__(**options)
        self.table = table
        self.live = False

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        if self.live:
            return super().encode_batch(texts)
        return np.stack([self.table[t] for t in texts])


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1e3


def interleaved(router: SemanticRouter, encoder: BenchEncoder, queries: list[str]) -> dict:
    """encode([q]) then route(q), each query in turn, with the real encoder."""
    encoder.live = True
    for q in queries[:10]:
        encoder.encode([q])
        router.route(q)
    enc, rte = time_pairs(queries, lambda q: encoder.encode([q]), router.route)
    encoder.live = False
    return {"encode": median_ms(enc), "route": median_ms(rte)}


def floor(router: SemanticRouter, encoder: BenchEncoder, queries: list[str]) -> dict:
    """The same with the free encoder: table look-up, then route()."""
    encoder.live = False
    enc, rte = time_pairs(queries, lambda q: encoder.encode([q]), router.route)
    return {"encode": median_ms(enc), "route": median_ms(rte)}


#: Bytes read between the free encoder's queries for the "evicted" floor: about the int8 MiniLM
#: model's weights (23 MB), which every real encode() streams through the caches.
EVICT_BYTES = 32 << 20
_evict_buffer = np.ones(EVICT_BYTES // 4, np.float32)


def floor_evicted(router: SemanticRouter, encoder: BenchEncoder, queries: list[str]) -> dict:
    """The floor with the caches evicted before each call (a 32 MB read, as an encode() of
    the real model does): what the search costs once the encoder has run, without its
    threads. Tells a cache cost from a thread contention cost."""
    encoder.live = False
    enc: list[float] = []
    rte: list[float] = []
    calls = ((lambda q: encoder.encode([q]), enc), (router.route, rte))
    for q in queries:  # interleaved, as the other measurements
        for call, samples in calls:
            _evict_buffer.sum()
            started = time.perf_counter()
            call(q)
            samples.append(time.perf_counter() - started)
    return {"encode": median_ms(enc), "route": median_ms(rte)}


def batch(router: SemanticRouter, encoder: BenchEncoder, queries: list[str]) -> dict:
    """encode(queries) and route_many(queries), best of 2, interleaved."""
    encoder.live = True
    enc, rte = time_pairs([queries] * 2, encoder.encode, router.route_many)
    encoder.live = False
    return {"encode_tps": len(queries) / min(enc), "route_many_tps": len(queries) / min(rte)}


def measure(
    corpus: Corpus, sizes: Sequence[str] = SIZES, log: Any = print, **options: Any
) -> list[dict]:
    """Rows of the as-users-run table: one per size and state (``options``: LocalEncoder's)."""
    rows = []
    queries = corpus.queries
    for size in sizes:
        routes = corpus.routes(size)
        encoder = BenchEncoder(corpus.table, **options)
        log(f"users-run {size}: building")
        started = time.perf_counter()
        router = SemanticRouter(routes, encoder=encoder)
        built = time.perf_counter() - started
        states = [("after build", None), ("after learn()", "learn")]
        for state, action in states:
            learn_s = 0.0
            if action == "learn":
                started = time.perf_counter()
                router.learn()
                learn_s = time.perf_counter() - started
            row = {"size": size, "utterances": router.index_size, "state": state}
            row["build_s"], row["learn_wait_s"] = built, learn_s
            row["live"] = interleaved(router, encoder, queries)
            row["free"] = floor(router, encoder, queries)
            row["evicted"] = floor_evicted(router, encoder, queries)
            row |= batch(router, encoder, queries)
            rows.append(row)
            log(f"users-run {size} {state}: {summary(row)}")
        router.close()
    return rows


def summary(row: dict) -> str:
    live, free = row["live"], row["free"]
    beyond = live["route"] - live["encode"]
    floor_beyond = free["route"] - free["encode"]
    return (
        f"encode {live['encode']:.2f} route {live['route']:.2f} ms "
        f"(x{live['route'] / live['encode']:.2f}), beyond {beyond:.3f} ms, "
        f"floor {floor_beyond:.3f} ms (x{beyond / floor_beyond:.2f}); "
        f"route_many/encode {row['route_many_tps'] / row['encode_tps']:.2f}"
    )


def table(rows: list[dict]) -> list[str]:
    """The report's lines: the issue's table, with the free-encoder floor beside it."""
    out = [
        f"{'utterances':>10} {'state':<14} {'encode p50':>10} {'route p50':>10} {'route/enc':>9}"
        f" {'beyond enc':>10} {'floor':>8} {'beyond/floor':>12} {'evicted':>8}"
        f" {'many/batch':>10}",
    ]
    for row in rows:
        live, free = row["live"], row["free"]
        beyond = live["route"] - live["encode"]
        floor_beyond = free["route"] - free["encode"]
        evicted = row["evicted"]["route"] - row["evicted"]["encode"]
        out.append(
            f"{row['utterances']:>10} {row['state']:<14} {live['encode']:>7.2f} ms "
            f"{live['route']:>7.2f} ms {live['route'] / live['encode']:>9.2f} "
            f"{beyond:>7.3f} ms {floor_beyond:>5.3f} ms {beyond / floor_beyond:>12.2f} "
            f"{evicted:>5.3f} ms "
            f"{row['route_many_tps'] / row['encode_tps']:>10.2f}"
        )
    out.append(
        "(medians of 300 CLINC150 test queries; 'beyond enc' = route p50 - encode p50 with the"
        " real encoder interleaved; 'floor' = the same with a free table encoder; 'evicted' = the"
        " floor with 32 MB read before each call (what a real encode() does to the caches);"
        " 'many/batch'"
        " = route_many(300) / encode(300) throughput, best of 2)"
    )
    return out
