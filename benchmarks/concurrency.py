"""Concurrent writers and followers of one route set: is any acknowledged change lost?

1. **One collection through qdrant-client** (``QdrantClient(":memory:")``, or ``$QDRANT_URL``):
   W writer threads, each with its own router on the collection, make C changes each (``add``
   of a new route); a reader thread follows with ``refresh()`` in a loop. Reported: changes
   acknowledged, changes found in the stored route set at the end (lost = the difference),
   utterance points orphaned, the final revision, and the reader's lag (from a writer's
   ``add()`` returning until the reader serves that route: p50 / max).
2. **One embedded folder, W writer processes**: each process makes C changes, each in its own
   short-lived writer (``mode="write"``, retried while another process holds the folder), as
   admin scripts or deploy jobs do; a reader process follows. Same report.
3. **Refresh after one changed route** at 10k utterances: a reader of the folder and a router on
   the client, median of 20.

Every router uses the FakeEncoder (a change costs its writes, not a model); the life cycle is
what is measured. Usage::

    .venv/bin/python benchmarks/concurrency.py [--writers 4] [--changes 50] \\
        [--out benchmarks/results/concurrency.txt]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from semrouter import FakeEncoder, Route, RouterLockedError, SemanticRouter

BASE = [
    Route("billing", ["why is my bill so high", "I was charged twice"]),
    Route("shipping", ["where is my parcel", "track my order"]),
]


def _route(writer: int, change: int) -> Route:
    return Route(
        f"w{writer}-c{change}", [f"writer {writer} change {change}", f"probe {writer} {change}"]
    )


def _follow(
    router: SemanticRouter, added: dict[str, float], seen: dict[str, float], stop: threading.Event
) -> None:
    while not stop.is_set():
        router.refresh()
        now = time.perf_counter()
        for name in router.route_names:
            if name in added and name not in seen:
                seen[name] = now
        time.sleep(0.001)


def _lags(added: dict[str, float], seen: dict[str, float]) -> str:
    """Reader lag from a writer's ``add()`` returning; a change the reader served before
    ``add()`` returned (it returns after learning, once the head is written) counts as 0."""
    raw = [seen[n] - added[n] for n in added if n in seen]
    if not raw:
        return "no changes seen"
    lags = sorted(1000 * max(0.0, lag) for lag in raw)
    early = sum(lag < 0 for lag in raw)
    return (
        f"p50 {statistics.median(lags):.1f} ms, max {lags[-1]:.1f} ms ({len(lags)} changes "
        f"seen, {early} of them before add() returned)"
    )


def client_writers(writers: int, changes: int) -> list[str]:
    url = os.environ.get("QDRANT_URL")
    client = QdrantClient(url=url) if url else QdrantClient(":memory:")
    collection = f"concurrency_{os.getpid()}"
    first = SemanticRouter(BASE, encoder=FakeEncoder(), client=client, collection=collection)
    reader = SemanticRouter.open(encoder=FakeEncoder(), client=client, collection=collection)
    added: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(reader, added, seen, stop))
    follower.start()
    acknowledged = []
    errors: list[str] = []

    def write(me: int) -> None:
        router = SemanticRouter(encoder=FakeEncoder(), client=client, collection=collection)
        for change in range(changes):
            route = _route(me, change)
            try:
                router.add(route)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            added[route.name] = time.perf_counter()
            acknowledged.append(route.name)
        router.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    time.sleep(0.2)
    stop.set()
    follower.join()
    reader.close()
    with SemanticRouter.open(encoder=FakeEncoder(), client=client, collection=collection) as end:
        stored = set(end.route_names)
        points = [
            p for p in client.scroll(collection, limit=100_000)[0] if (p.payload or {}).get("route")
        ]
        orphans = len(points) - end.index_size
        revision = end.revision
    first.close()
    lost = [name for name in acknowledged if name not in stored]
    where = "server " + url if url else "qdrant-client local mode"
    return [
        f"## {writers} writer threads x {changes} changes, one collection ({where})",
        f"acknowledged {len(acknowledged)}, lost {len(lost)}, errors {len(errors)}, "
        f"orphaned points {orphans}, final revision {revision} (1 + one per change), "
        f"{elapsed:.1f} s",
        f"reader lag: {_lags(added, seen)}",
        *(f"error: {e}" for e in errors[:5]),
    ]


def _folder_writer(folder: str, me: int, changes: int, acks: Any) -> None:
    for change in range(changes):
        route = _route(me, change)
        while True:
            try:
                router = SemanticRouter(encoder=FakeEncoder(), path=folder, mode="write")
                break
            except RouterLockedError:
                time.sleep(0.002)
        try:
            router.add(route)
            acks.put((route.name, time.time()))
        finally:
            router.close()


def _folder_reader(folder: str, stop: Any, out: Any) -> None:
    reader = SemanticRouter.open(path=folder, encoder=FakeEncoder(), mode="read")
    seen: dict[str, float] = {}
    while not stop.is_set():
        reader.refresh()
        now = time.time()
        for name in reader.route_names:
            seen.setdefault(name, now)
        time.sleep(0.001)
    reader.close()
    out.put(seen)


def folder_writers(writers: int, changes: int) -> list[str]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        SemanticRouter(BASE, encoder=FakeEncoder(), path=folder).close()
        acks, out, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        reader = ctx.Process(target=_folder_reader, args=(folder, stop, out))
        reader.start()
        time.sleep(2.0)
        start = time.perf_counter()
        procs = [
            ctx.Process(target=_folder_writer, args=(folder, w, changes, acks))
            for w in range(writers)
        ]
        for proc in procs:
            proc.start()
        acknowledged: dict[str, float] = {}
        while len(acknowledged) < writers * changes and any(p.is_alive() for p in procs):
            try:
                name, at = acks.get(timeout=1)
                acknowledged[name] = at
            except Exception:
                continue
        for proc in procs:
            proc.join()
        while not acks.empty():
            name, at = acks.get()
            acknowledged[name] = at
        elapsed = time.perf_counter() - start
        time.sleep(0.5)
        stop.set()
        seen = out.get(timeout=60)
        reader.join()
        with SemanticRouter.open(path=folder, encoder=FakeEncoder()) as end:
            stored = set(end.route_names)
            revision = end.revision
        lost = [name for name in acknowledged if name not in stored]
    lags = {n: seen[n] for n in acknowledged if n in seen}
    return [
        f"## {writers} writer processes x {changes} changes, one embedded folder",
        f"acknowledged {len(acknowledged)}, lost {len(lost)}, final revision {revision}, "
        f"{elapsed:.1f} s (each change opens and closes its own writer)",
        f"reader lag: {_lags(acknowledged, lags)}",
    ]


def refresh_cost() -> list[str]:
    routes = [Route(f"r{i}", [f"route {i} utterance {j}" for j in range(100)]) for i in range(100)]
    lines = ["## refresh after one changed route, 10k utterances (median of 20)"]
    with tempfile.TemporaryDirectory() as folder:
        client = QdrantClient(":memory:")
        for name, where in (
            ("embedded folder reader", {"path": folder}),
            ("qdrant-client router", {"client": client}),
        ):
            writer = SemanticRouter(routes, encoder=FakeEncoder(), **where)  # type: ignore[arg-type]
            extra = {"mode": "read"} if "path" in where else {}
            reader = SemanticRouter.open(encoder=FakeEncoder(), **where, **extra)  # type: ignore[arg-type]
            times, still = [], []
            for i in range(20):
                writer.update(
                    Route("r7", [f"route 7 utterance {j}" for j in range(99)] + [f"new {i}"])
                )
                start = time.perf_counter()
                assert reader.refresh()
                times.append(1000 * (time.perf_counter() - start))
                start = time.perf_counter()
                reader.refresh()
                still.append(1000 * (time.perf_counter() - start))
            lines.append(
                f"{name}: after a change {statistics.median(times):.1f} ms, "
                f"nothing changed {statistics.median(still):.3f} ms"
            )
            reader.close()
            writer.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lines = [f"# concurrency.py (python {sys.version.split()[0]}, {os.cpu_count()} cores)", ""]
    for part in (
        client_writers(args.writers, args.changes),
        [""],
        folder_writers(args.writers, args.changes),
        [""],
        refresh_cost(),
    ):
        lines += part
        print("\n".join(part), flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
