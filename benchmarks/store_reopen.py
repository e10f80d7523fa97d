"""Why the embedded default is Qdrant Edge: write and reopen cost of the two embedded stores.

Writes N 384-d points (with route/utterance payloads) to qdrant-client's local mode (path=) and to
qdrant-edge-py, then times reopening each and reading every vector back (what a router does at
start). Medians of --repeat runs.

    python benchmarks/store_reopen.py --points 10000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

DIM = 384


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def client_store(folder: Path, ids: list[str], vectors: np.ndarray) -> dict[str, float]:
    def write() -> None:
        client = QdrantClient(path=str(folder))
        client.create_collection(
            "r", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        )
        for s in range(0, len(ids), 1000):
            client.upsert(
                "r",
                models.Batch(
                    ids=ids[s : s + 1000],
                    vectors=vectors[s : s + 1000].tolist(),
                    payloads=[
                        {"route": f"r{i % 100}", "utterance": f"u{i}"}
                        for i in range(s, s + len(ids[s : s + 1000]))
                    ],
                ),
            )
        client.close()

    def reopen() -> None:
        client = QdrantClient(path=str(folder))
        offset = None
        while True:
            _, offset = client.scroll("r", limit=2048, offset=offset, with_vectors=True)
            if offset is None:
                break
        client.close()

    return {"write": timed(write), "reopen+read": timed(reopen)}


def edge_store(folder: Path, ids: list[str], vectors: np.ndarray) -> dict[str, float]:
    def write() -> None:
        shard = qe.EdgeShard.create(
            str(folder),
            qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)),
        )
        for s in range(0, len(ids), 1000):
            points = [
                qe.Point(
                    id=ids[i],
                    vector=vectors[i].tolist(),
                    payload={"route": f"r{i % 100}", "utterance": f"u{i}"},
                )
                for i in range(s, min(len(ids), s + 1000))
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
        shard.flush()
        shard.close()

    def reopen() -> None:
        shard = qe.EdgeShard.load(str(folder))
        offset = None
        while True:
            _, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=2048, with_payload=True, with_vector=True)
            )
            if offset is None:
                break
        shard.close()

    return {"write": timed(write), "reopen+read": timed(reopen)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.points, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))) for i in range(args.points)]
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.repeat):
        for name, func in (
            ("qdrant-client local (path=)", client_store),
            ("qdrant-edge-py 0.9.0", edge_store),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                for key, value in func(Path(tmp) / "s", ids, vectors).items():
                    results.setdefault(name, {}).setdefault(key, []).append(value)
    print(f"{args.points} points x {DIM}-d, median of {args.repeat} runs (seconds)")
    print(f"{'store':<30}{'write':>10}{'reopen+read':>14}")
    for name, row in results.items():
        print(
            f"{name:<30}{statistics.median(row['write']):>10.3f}"
            f"{statistics.median(row['reopen+read']):>14.3f}"
        )
    a, b = ({k: statistics.median(v) for k, v in row.items()} for row in results.values())
    print(
        f"edge is {a['write'] / b['write']:.0f}x faster to write, "
        f"{a['reopen+read'] / b['reopen+read']:.1f}x faster to reopen"
    )


if __name__ == "__main__":
    main()
