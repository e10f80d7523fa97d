"""One embedded folder, many processes (issue 10, point 4): one writer holds the folder's lock,
readers follow its published snapshots without ever taking the lock or breaking the writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter._exceptions import ReadOnlyRouterError, RouterLockedError
from semrouter._stores import EdgeStore

REPO = Path(__file__).resolve().parents[2]
DIM = 8
META = {"fingerprint": "fake-bow/8", "dimension": DIM, "schema_version": 1}


def _ids(start: int, count: int) -> list[str]:
    return [f"00000000-0000-5000-8000-{i:012d}" for i in range(start, start + count)]


def _vectors(count: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _payloads(ids: list[str]) -> list[dict[str, Any]]:
    return [{"route": "r", "utterance": pid} for pid in ids]


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


HOLDER = """
import sys
from semrouter._stores import EdgeStore
store = EdgeStore(sys.argv[1], "c", mode="write")
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""


def test_a_second_writer_in_another_process_gets_a_clear_error(tmp_path: Path) -> None:
    holder = _spawn(HOLDER, str(tmp_path))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(RouterLockedError) as caught:
            EdgeStore(tmp_path, "c", mode="write")
        message = str(caught.value)
        assert str(tmp_path / "c") in message and f"process {holder.pid}" in message
        # A reader opens beside the live writer without disturbing it.
        reader = EdgeStore(tmp_path, "c", mode="read", wait=0)
        assert reader.read_only and reader.writer_pid() == holder.pid
        reader.close()
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    EdgeStore(tmp_path, "c", mode="write").close()  # the lock died with its holder's close


def test_two_routers_in_one_process_on_one_folder(tmp_path: Path) -> None:
    routes = [Route("greet", ["hello there"]), Route("bye", ["goodbye now"])]
    with SemanticRouter(routes, encoder=FakeEncoder(), path=tmp_path) as writer:
        # every router of this process shares the folder's writer (mode="write" or "auto")
        with SemanticRouter(
            [Route("weather", ["will it rain"])],
            encoder=FakeEncoder(),
            path=tmp_path,
            mode="write",
        ) as second:
            assert not second.read_only and second.route_names == ["greet", "bye", "weather"]
            assert writer.refresh() and writer.route_names == second.route_names
        writer.add(Route("sales", ["buy a plan"]))  # closing the second left the writer open
        # mode="read" opens a reader of the same folder
        with SemanticRouter(encoder=FakeEncoder(), path=tmp_path, mode="read") as reader:
            assert reader.read_only and not writer.read_only
            assert reader.route_names == writer.route_names


def test_a_reader_follows_the_writer_and_cannot_write(tmp_path: Path) -> None:
    writer = EdgeStore(tmp_path, "c", mode="write")
    writer.create(META, DIM)
    first = _ids(0, 20)
    writer.upsert(first, _vectors(20), _payloads(first))
    writer.flush()
    reader = EdgeStore(tmp_path, "c", mode="auto")  # the folder is held: auto reads
    assert reader.read_only and reader.read_meta() == META
    assert [pid for pid, _, _ in reader.scroll(with_vectors=False)] == first
    query = _vectors(20)[:2]
    exact = [[pid for pid, _ in hits if pid in first][:3] for hits in reader.search(query, 3)]
    edge = [[pid for pid, _ in hits if pid in first][:3] for hits in writer.search(query, 3)]
    assert exact == edge and exact[0][0] == first[0]
    assert not reader.changed() and reader.revision() == writer.revision()

    more = _ids(100, 5)
    writer.upsert(more, _vectors(5, seed=1), _payloads(more))
    writer.delete(first[:3])
    assert not reader.changed()  # nothing is visible before the writer's flush
    writer.flush()
    assert reader.changed() and reader.revision() == writer.revision()
    assert reader.reload() and not reader.reload()
    assert {pid for pid, _, _ in reader.scroll(with_vectors=False)} == set(first[3:] + more)
    found = reader.load_vectors(META["fingerprint"], DIM)
    assert found is not None and np.allclose(found[1][found[0].index(more[0])], _vectors(5, 1)[0])

    for write in (
        lambda: reader.upsert(more, _vectors(5), _payloads(more)),
        lambda: reader.delete(more),
        lambda: reader.set_payloads(more, _payloads(more)),
        lambda: reader.create(META, DIM),
        reader.drop,
    ):
        with pytest.raises(ReadOnlyRouterError, match=f"process {os.getpid()}"):
            write()
    reader.close()
    writer.close()


def test_a_reader_becomes_the_writer_only_when_asked_and_the_writer_is_gone(
    tmp_path: Path,
) -> None:
    writer = EdgeStore(tmp_path, "c")
    writer.create(META, DIM)
    reader = EdgeStore(tmp_path, "c", mode="read")
    with pytest.raises(RouterLockedError):
        reader.promote()
    assert reader.read_only  # a failed promotion leaves a working reader
    assert reader.read_meta() == META
    writer.close()
    assert reader.read_only  # never on its own
    reader.promote()
    assert not reader.read_only and reader.read_meta() == META
    ids = _ids(0, 2)
    reader.upsert(ids, _vectors(2), _payloads(ids))
    reader.flush()
    with pytest.raises(RouterLockedError):
        EdgeStore(tmp_path, "c")
    reader.close()


def test_a_reader_across_processes_sees_every_published_revision(tmp_path: Path) -> None:
    writer = EdgeStore(tmp_path, "c")
    writer.create(META, DIM)
    follower = _spawn(
        """
        import json, sys, time
        from semrouter._stores import EdgeStore
        store = EdgeStore(sys.argv[1], "c", mode="read")
        print("ready", flush=True)
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if store.reload():
                count = sum(1 for _ in store.scroll(with_vectors=False))
                seen.append([store.loaded_revision, count])
                print(json.dumps(seen[-1]), flush=True)
                if count == 50:
                    break
            time.sleep(0.001)
        store.close()
        """,
        str(tmp_path),
    )
    assert follower.stdout is not None and follower.stdout.readline().strip() == "ready"
    for step in range(5):
        ids = _ids(step * 10, 10)
        writer.upsert(ids, _vectors(10, seed=step), _payloads(ids))
        writer.flush()
        time.sleep(0.05)
    out, err = follower.communicate(timeout=60)
    writer.close()
    assert follower.returncode == 0, err
    seen = [json.loads(line) for line in out.splitlines()]
    assert seen[-1][1] == 50
    # Each snapshot is whole: a revision's count is what the writer had flushed by then.
    assert all(count % 10 == 0 for _, count in seen)


CONTENDER = """
import json, sys, time
from pathlib import Path
from semrouter._stores import EdgeStore
print("ready", flush=True)
start = Path(sys.argv[2])
while not start.exists():
    time.sleep(0.001)
meta = {"fingerprint": "fake-bow/8", "dimension": 8, "schema_version": 1}
store = EdgeStore(sys.argv[1], "c", mode="auto", wait=30)
if store.read_meta() is None:
    store.create(meta, 8)
print(json.dumps({"mode": store.mode, "meta": store.read_meta()}), flush=True)
sys.stdin.read()  # hold the store until every contender has opened its own
store.close()
"""


def test_concurrent_first_creation_makes_one_collection_and_no_failed_contender(
    tmp_path: Path,
) -> None:
    """Six processes open a new folder at once and keep it open: exactly one writes. No
    start-up sleeps: each contender says when it is ready, and holds its store until all have
    answered (a writer that closed early would let a late contender write, legitimately)."""
    start = tmp_path / "go"
    contenders = [_spawn(CONTENDER, str(tmp_path / "data"), str(start)) for _ in range(6)]
    for child in contenders:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    start.touch()
    results = []
    for child in contenders:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else ""
        results.append(json.loads(line))
    for child in contenders:
        child.communicate(input="", timeout=120)
        assert child.returncode == 0
    assert sorted(r["mode"] for r in results) == ["read"] * 5 + ["write"]
    assert all(r["meta"] == META for r in results)


def test_checking_for_a_new_revision_is_cheap(tmp_path: Path) -> None:
    writer = EdgeStore(tmp_path, "c")
    writer.create(META, DIM)
    ids = _ids(0, 2000)
    writer.upsert(ids, _vectors(2000), _payloads(ids))
    writer.flush()
    reader = EdgeStore(tmp_path, "c", mode="read")
    timings = []
    for _ in range(200):
        began = time.perf_counter()
        reader.changed()
        reader.revision()
        timings.append(time.perf_counter() - began)
    assert float(np.median(timings)) < 1e-3
    reader.close()
    writer.close()
