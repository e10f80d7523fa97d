"""One embedded folder, one writer, many reader processes (store level).

A writer process owns the folder (``EdgeStore(mode="write")``) holding ``--points`` utterance
vectors (FakeEncoder, 384-d) and adds or removes a 10-utterance route every ``--period`` seconds,
flushing each change (which publishes a snapshot). ``--readers`` processes open the same folder
with ``mode="read"`` and, in a loop, check for a new revision (``changed()``, one stat), reload
when there is one, and search (exact, in numpy) for a query vector, pausing ``--pause`` seconds
between queries as a server would. Reported: errors, search latency p50/p99 per reader against
one reader alone, the time from the writer's publish to each reader serving it (p50/max), the
writer's flush+publish cost, a reader's reload cost, and the cost of the revision check.

    flock /tmp/semrouter-bench.lock python benchmarks/multiprocess.py \
        --out benchmarks/results/multiprocess.txt
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from semrouter import FakeEncoder
from semrouter._index import point_id
from semrouter._stores import EdgeStore

DIM = 384
META = {"fingerprint": "fake-bow/384", "dimension": DIM, "schema_version": 1}


def _route(name: str, size: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    utterances = [f"{name} example {j} words about {name}" for j in range(size)]
    ids = [point_id(name, u) for u in utterances]
    vectors = FakeEncoder(DIM).encode(utterances)
    payloads = [{"route": name, "utterance": u, "metadata": {}} for u in utterances]
    return ids, vectors, payloads


def _setup(folder: Path, points: int) -> None:
    store = EdgeStore(folder, "routes", mode="write")
    store.create(META, DIM)
    for r in range(points // 10):
        ids, vectors, payloads = _route(f"route{r}", 10)
        store.upsert(ids, vectors, payloads)
    store.flush()
    store.close()


def _writer(folder: Path, duration: float, period: float, out: Any, ready: Any) -> None:
    try:
        store = EdgeStore(folder, "routes", mode="write")
        ready.wait()
        log = []
        began = time.monotonic()
        step = 0
        while time.monotonic() - began < duration:
            time.sleep(max(0.0, began + (step + 1) * period - time.monotonic()))
            ids, vectors, payloads = _route(f"temp{step // 2}", 10)
            start = time.perf_counter()
            if step % 2 == 0:
                store.upsert(ids, vectors, payloads)
            else:
                store.delete(ids)
            store.flush()
            log.append((store.revision(), time.time(), time.perf_counter() - start))
            step += 1
        store.close()
        out.put(("writer", {"log": log}))
    except Exception:
        out.put(("writer", {"error": traceback.format_exc()}))


def _reader(
    folder: Path, duration: float, pause: float, seed: int, out: Any, ready: Any | None
) -> None:
    errors: list[str] = []
    latencies: list[float] = []
    seen: dict[int, float] = {}
    reloads: list[float] = []
    try:
        store = EdgeStore(folder, "routes", mode="read")
        queries = FakeEncoder(DIM).encode([f"query {i} about route{i % 50}" for i in range(64)])
        if ready is not None:
            ready.wait()
        rng = np.random.default_rng(seed)
        began = time.monotonic()
        while time.monotonic() - began < duration:
            try:
                if store.changed():
                    start = time.perf_counter()
                    if store.reload():
                        reloads.append(time.perf_counter() - start)
                        seen[store.loaded_revision] = time.time()
                query = queries[rng.integers(len(queries))][None, :]
                start = time.perf_counter()
                hits = store.search(query, 10)
                latencies.append(time.perf_counter() - start)
                if not hits[0]:
                    errors.append("empty result")
            except Exception as exc:  # counted, reported
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(pause)
        store.close()
    except Exception:
        errors.append(traceback.format_exc())
    out.put(("reader", {"errors": errors, "lat": latencies, "seen": seen, "reloads": reloads}))


def _check_cost(folder: Path) -> float:
    store = EdgeStore(folder, "routes", mode="read")
    start = time.perf_counter()
    for _ in range(10_000):
        store.changed()
    elapsed = (time.perf_counter() - start) / 10_000
    store.close()
    return elapsed


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--pause", type=float, default=0.005)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        _setup(folder, args.points)
        setup = time.perf_counter() - start

        start = time.perf_counter()
        EdgeStore(folder, "routes", mode="write").close()
        reopen = time.perf_counter() - start
        check = _check_cost(folder)

        out: Any = ctx.Queue()
        alone = ctx.Process(target=_reader, args=(folder, 5.0, args.pause, 99, out, None))
        alone.start()
        _, baseline = out.get()
        alone.join()

        ready = ctx.Event()
        writer = ctx.Process(target=_writer, args=(folder, args.duration, args.period, out, ready))
        readers = [
            ctx.Process(target=_reader, args=(folder, args.duration + 1, args.pause, i, out, ready))
            for i in range(args.readers)
        ]
        for process in [writer, *readers]:
            process.start()
        time.sleep(3.0)  # every process imported and opened
        ready.set()
        results = [out.get() for _ in range(args.readers + 1)]
        for process in [writer, *readers]:
            process.join()

    wrote = next(r for kind, r in results if kind == "writer")
    read = [r for kind, r in results if kind == "reader"]
    if "error" in wrote:
        raise SystemExit(wrote["error"])
    published = {rev: at for rev, at, _ in wrote["log"]}
    delays = [
        seen_at - published[rev]
        for r in read
        for rev, seen_at in r["seen"].items()
        if rev in published
    ]
    missed = sum(1 for r in read for rev in published if rev not in r["seen"])
    errors = sum(len(r["errors"]) for r in read)
    lines.append(
        f"{args.points} points x {DIM}-d, 1 writer + {args.readers} reader processes, "
        f"{args.duration:.0f} s, a route added or removed every {args.period} s, "
        f"readers pause {args.pause * 1000:.0f} ms between queries, {mp.cpu_count()} CPUs"
    )
    lines.append(f"setup (write {args.points} points, one flush): {setup:.2f} s")
    lines.append(f"writer reopen (lock, load, snapshot check): {reopen * 1000:.0f} ms")
    lines.append(f"revision check (changed(), one stat): {check * 1e6:.1f} us")
    lines.append(f"errors: {errors}  (first: {next((e for r in read for e in r['errors']), '-')})")
    flushes = [cost for _, _, cost in wrote["log"]]
    lines.append(
        f"writer change+flush+publish: p50 {statistics.median(flushes) * 1000:.1f} ms, "
        f"max {max(flushes) * 1000:.1f} ms over {len(flushes)} changes"
    )
    reloads = [x for r in read for x in r["reloads"]]
    lines.append(
        f"reader reload of a new revision: p50 {_pct(reloads, 50) * 1000:.1f} ms, "
        f"p99 {_pct(reloads, 99) * 1000:.1f} ms"
    )
    lines.append(
        f"publish -> served by a reader: p50 {_pct(delays, 50) * 1000:.1f} ms, "
        f"max {max(delays) * 1000:.1f} ms; revisions never seen: {missed}"
    )
    lines.append(
        f"search alone:       p50 {_pct(baseline['lat'], 50) * 1000:.3f} ms  "
        f"p99 {_pct(baseline['lat'], 99) * 1000:.3f} ms  ({len(baseline['lat'])} queries)"
    )
    for i, r in enumerate(read):
        lines.append(
            f"search reader {i}:   p50 {_pct(r['lat'], 50) * 1000:.3f} ms  "
            f"p99 {_pct(r['lat'], 99) * 1000:.3f} ms  ({len(r['lat'])} queries)"
        )
    all_lat = [x for r in read for x in r["lat"]]
    lines.append(
        f"search all readers: p50 {_pct(all_lat, 50) * 1000:.3f} ms  "
        f"p99 {_pct(all_lat, 99) * 1000:.3f} ms; p50 ratio to alone "
        f"{_pct(all_lat, 50) / _pct(baseline['lat'], 50):.2f}"
    )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        (args.out.with_suffix(".json")).write_text(
            json.dumps({"delays": delays, "flushes": flushes, "reloads": reloads}, indent=0)
        )


if __name__ == "__main__":
    main()
