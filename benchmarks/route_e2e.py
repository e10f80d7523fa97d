"""route() end to end against the encoder alone, by route-set size (the core issue's target 2).

For each size, a router of that many utterances (their vectors are random: only the query is
really encoded, so building is fast) answers 300 queries; each query is also encoded alone,
interleaved, and the medians are compared. Exact and Qdrant-HNSW search side by side.

    python benchmarks/route_e2e.py > benchmarks/results/route_e2e.txt
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from semrouter import Route, SemanticRouter
from semrouter.encoders import LocalEncoder


class QueryOnlyEncoder(LocalEncoder):
    """The real encoder for queries; seeded random vectors for the bulk of route utterances."""

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        if len(texts) > 100:
            rng = np.random.default_rng(len(texts))
            return rng.standard_normal((len(texts), self.dimension)).astype(np.float32)
        return super().encode_batch(texts)


def main() -> None:
    encoder = QueryOnlyEncoder()
    encoder.batch_size = 100_000
    queries = [f"what is the weather like in city number {i}" for i in range(300)]
    print(
        f"route() vs encode() alone, median of {len(queries)} interleaved queries; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'utterances':>10}  {'search':<7}{'encode ms':>10}{'route ms':>10}{'ratio':>7}")
    for size in (10, 1_000, 10_000):
        per_route = max(1, size // 100) if size >= 100 else 5
        routes = [
            Route(f"r{i}", [f"utterance {i} {j}" for j in range(per_route)])
            for i in range(max(1, size // per_route))
        ]
        for search in ("exact", "qdrant"):
            router = SemanticRouter(routes, encoder=encoder, search=search)  # type: ignore[arg-type]
            router.route(queries[0])
            encode_times, route_times = [], []
            for query in queries:
                start = time.perf_counter()
                encoder.encode([query])
                encode_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                router.route(query)
                route_times.append(time.perf_counter() - start)
            enc, route = statistics.median(encode_times), statistics.median(route_times)
            print(
                f"{router.index_size:>10}  {search:<7}{enc * 1e3:>10.2f}{route * 1e3:>10.2f}"
                f"{route / enc:>7.2f}"
            )
            router.close()


if __name__ == "__main__":
    main()
