"""The route set's life: identity, one revision per change, followers that see deletion and
re-creation, conflicting writers, failed changes, forks, notebook re-runs, open() of nothing."""

from __future__ import annotations

import gc
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from semrouter import (
    FakeEncoder,
    IndexMismatchError,
    ReadOnlyRouterError,
    Route,
    RouteSetConflictError,
    RouteSetNotFoundError,
    SemanticRouter,
    StorageFullError,
)
from semrouter._stores._edge import EdgeStore
from semrouter._stores._edge_lock import WriterLock

ROUTES = [
    Route("greet", ["hello there", "hi how are you"]),
    Route("bye", ["goodbye now", "see you later"]),
]
EXTRA = Route("weather", ["will it rain", "sunny forecast"])


def _where(kind: str, tmp_path: Path) -> dict[str, object]:
    return {"path": tmp_path} if kind == "edge" else {"client": QdrantClient(":memory:")}


def _reader(kind: str, where: dict[str, object]) -> SemanticRouter:
    extra = {"mode": "read"} if kind == "edge" else {}
    return SemanticRouter.open(encoder=FakeEncoder(), **where, **extra)  # type: ignore[arg-type]


# -- identity and revisions -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["edge", "client"])
def test_one_change_is_one_revision(kind: str, tmp_path: Path) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), **_where(kind, tmp_path)) as router:
        assert router.revision == 1  # built: learnt before it was written, not after
        first = router.identity
        router.add(EXTRA)
        assert router.revision == 2 and router.learn() is False  # learnt with the change
        router.remove("weather")
        assert router.revision == 3
        assert router.identity is not None and first is not None
        assert router.identity.generation == first.generation
        router.set_routes(router.routes)  # nothing changed: nothing written
        assert router.revision == 3


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_a_follower_sees_a_deleted_route_set_and_its_re_creation(kind: str, tmp_path: Path) -> None:
    where = _where(kind, tmp_path)
    writer = SemanticRouter(ROUTES, encoder=FakeEncoder(), **where)  # type: ignore[arg-type]
    with writer, _reader(kind, where) as reader:
        old = reader.identity
        assert reader.route("hello there").name == "greet"
        writer.delete_route_set()
        assert reader.refresh()
        assert reader.routes == [] and reader.identity is None
        assert reader.route("hello there").name is None  # deleted: no route, not stale
        assert not reader.refresh()
        writer.add(Route("greet", ["hello there", "good morning"]))  # created anew
        assert writer.revision == 1 and writer.identity is not None and old is not None
        assert writer.identity.generation != old.generation
        assert reader.refresh() and reader.route_names == ["greet"]
        assert reader.identity == writer.identity


def test_a_reader_follows_a_folder_deleted_and_re_created(tmp_path: Path) -> None:
    """The new folder's revision restarts at 1, as the old one was at 1: only the generation
    tells them apart."""
    writer = SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path)
    reader = SemanticRouter.open(path=tmp_path, encoder=FakeEncoder(), mode="read")
    try:
        assert reader.revision == writer.revision == 1
        writer.close()
        shutil.rmtree(tmp_path / "semrouter")
        assert reader.refresh() and reader.routes == []
        other = [Route("sales", ["buy a plan", "pricing please"]), EXTRA]
        with SemanticRouter(other, encoder=FakeEncoder(), path=tmp_path) as again:
            assert again.revision == 1
            assert reader.refresh()
            assert reader.route_names == ["sales", "weather"]
    finally:
        reader.close()


def test_a_rebuild_with_another_encoder_stops_a_running_reader(tmp_path: Path) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as writer:
        reader = SemanticRouter.open(path=tmp_path, encoder=FakeEncoder(), mode="read")
        writer.close()
        other = FakeEncoder(model_id="fake-other")
        with SemanticRouter([EXTRA], encoder=other, path=tmp_path, rebuild=True):
            with pytest.raises(IndexMismatchError, match="fake-other"):
                reader.refresh()
            assert reader.routes == []  # never the old encoder's routes
            assert reader.route("hello there").name is None
        reader.close()


# -- writers ---------------------------------------------------------------------------------
def test_concurrent_writers_on_one_server_collection_lose_nothing() -> None:
    client = QdrantClient(":memory:")
    routers = [SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client) for _ in range(2)]
    errors: list[BaseException] = []

    def write(router: SemanticRouter, me: int) -> None:
        try:
            for i in range(40):
                router.add(Route(f"r{me}-{i}", [f"utterance {me} {i}", f"another {me} {i}"]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r, i)) for i, r in enumerate(routers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with SemanticRouter.open(client=client, encoder=FakeEncoder()) as check:
        assert len(check.routes) == 2 + 80 and check.revision == 1 + 80
        utterance_points = [
            p for p in client.scroll("semrouter", limit=10_000)[0] if p.payload.get("route")
        ]
        assert len(utterance_points) == check.index_size == 4 + 160  # none orphaned
    for router in routers:
        router.close()


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_a_lost_conditional_write_is_retried_or_refused(kind: str, tmp_path: Path) -> None:
    where = _where(kind, tmp_path)
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), **where) as a,  # type: ignore[arg-type]
        SemanticRouter(encoder=FakeEncoder(), **where) as b,  # type: ignore[arg-type]
    ):
        collection = a._open_collection()
        raced = []

        def change(stored: object) -> tuple[list[Route], None]:
            if not raced:  # another writer commits between our read and our write
                raced.append(True)
                b.add(Route("sales", ["buy a plan", "pricing please"]))
            return [*a.routes, EXTRA], None

        with pytest.raises(RouteSetConflictError):
            collection.commit(change, a.options, learn=None, on_conflict="raise")
        assert "weather" not in b.routes and b.refresh() is False
        raced.clear()

        def merge(stored: object) -> tuple[list[Route], None]:
            if not raced:
                raced.append(True)
                b.add(Route("support", ["help me please", "it is broken"]))
            base = list(getattr(stored, "routes", ()))
            return [*base, EXTRA], None

        version = collection.commit(merge, a.options, learn=None, on_conflict="retry")
        assert version is not None
        assert [r.name for r in version.routes] == ["greet", "bye", "sales", "support", "weather"]


def test_a_change_whose_final_flush_fails_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as router:
        real = EdgeStore.flush
        failures = []

        def full_once(self: EdgeStore) -> None:
            if not failures:
                failures.append(True)
                raise StorageFullError("no space left (simulated)")
            real(self)

        monkeypatch.setattr(EdgeStore, "flush", full_once)
        with pytest.raises(StorageFullError):
            router.remove("greet")
        assert router.route("hello there").name == "greet"  # still served
        router.add(EXTRA)  # an unrelated change must not apply the failed one
        assert router.route_names == ["greet", "bye", "weather"]
        assert router.route("hello there").name == "greet"
    with SemanticRouter.open(path=tmp_path, encoder=FakeEncoder()) as reopened:
        assert reopened.route_names == ["greet", "bye", "weather"]


# -- processes -------------------------------------------------------------------------------
def test_a_notebook_cell_run_twice_shares_the_writer(tmp_path: Path) -> None:
    first = SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path)
    second = SemanticRouter([*ROUTES, EXTRA], encoder=FakeEncoder(), path=tmp_path)  # edited
    assert not second.read_only and second.route_names == ["greet", "bye", "weather"]
    second.add(Route("sales", ["buy a plan", "pricing please"]))  # this process writes it
    assert first.refresh() and "sales" in first.route_names
    del first, second
    gc.collect()  # dropped without close(): the lock is released
    lock = WriterLock(tmp_path / "semrouter" / "semrouter.lock")
    lock.acquire()
    lock.release()
    with SemanticRouter.open(path=tmp_path, encoder=FakeEncoder(), mode="write") as again:
        assert again.route_names == ["greet", "bye", "weather", "sales"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_never_inherits_the_writer_role(tmp_path: Path) -> None:
    router = SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, as a gunicorn --preload worker
        code = 1
        try:
            os.close(read)
            ok = router.read_only and router.route("hello there").name == "greet"
            try:
                router.add(EXTRA)
                ok = False
            except ReadOnlyRouterError as exc:
                ok = ok and str(os.getppid()) in str(exc)
            router.close()  # never touches the parent's shard or lock
            code = 0 if ok else 1
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    assert os.read(read, 1) == bytes([0])
    os.waitpid(pid, 0)
    router.add(EXTRA)  # the parent is still the writer
    assert not router.read_only and "weather" in router.route_names
    router.close()
    lock = WriterLock(tmp_path / "semrouter" / "semrouter.lock")  # released by the parent
    lock.acquire()
    lock.release()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_of_an_in_memory_router_keeps_serving() -> None:
    router = SemanticRouter(ROUTES, encoder=FakeEncoder())
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = router.route("hello there").name == "greet" and router.read_only
            try:
                router.add(EXTRA)
                ok = False
            except ReadOnlyRouterError:
                pass
            router.close()  # must not remove the parent's temporary folder
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    router.add(EXTRA)  # the parent's folder is intact
    assert router.route("will it rain").name == "weather"
    router.close()


def test_a_reader_waits_for_the_first_route_set(tmp_path: Path) -> None:
    """Two processes starting together on a new folder: the second waits for the first one's
    route set instead of serving nothing."""
    import subprocess
    import time

    script = (
        "import sys, time\n"
        "from semrouter import FakeEncoder, Route, SemanticRouter\n"
        "class Slow(FakeEncoder):\n"
        "    def encode_batch(self, texts):\n"
        "        time.sleep(2.0)\n"
        "        return super().encode_batch(texts)\n"
        "r = SemanticRouter([Route('greet', ['hello there', 'hi how are you']),"
        " Route('bye', ['goodbye now', 'see you later'])], encoder=Slow(), path=sys.argv[1])\n"
        "print('written', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lock = tmp_path / "semrouter" / "semrouter.lock"
        deadline = time.monotonic() + 60
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path) as second:
            assert second.read_only
            assert second.route_names == ["greet", "bye"]
            assert second.route("hello there").name == "greet"
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)


def test_open_of_a_place_with_no_route_set_raises_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_db"
    with pytest.raises(RouteSetNotFoundError, match="no_such_db"):
        SemanticRouter.open(path=missing, encoder=FakeEncoder())
    assert not missing.exists()
    with pytest.raises(RouteSetNotFoundError, match="collection 'nothing'"):
        SemanticRouter.open(
            client=QdrantClient(":memory:"), encoder=FakeEncoder(), collection="nothing"
        )
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path, tenant="acme"),
        pytest.raises(RouteSetNotFoundError, match="tenant 'other'"),
    ):
        SemanticRouter.open(path=tmp_path, encoder=FakeEncoder(), tenant="other")


def test_an_old_qdrant_client_without_conditional_updates_still_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """qdrant-client before 1.16 has no update_filter: the head is compared, then written."""
    from semrouter._stores import _client

    monkeypatch.setattr(_client, "_conditional_upsert", lambda client: False)
    client = QdrantClient(":memory:")
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client) as a,
        SemanticRouter(encoder=FakeEncoder(), client=client) as b,
    ):
        a.add(EXTRA)
        b.remove("bye")  # starts from a's change
        assert a.refresh() and a.route_names == ["greet", "weather"] and a.revision == 3


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_a_writer_reopening_unchanged_routes_reads_the_head_twice(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semrouter._collection as collection

    where = _where(kind, tmp_path)
    SemanticRouter(ROUTES, encoder=FakeEncoder(), **where).close()  # type: ignore[arg-type]
    reads = []
    real = collection.read_route_set
    monkeypatch.setattr(
        collection, "read_route_set", lambda *a, **k: reads.append(1) or real(*a, **k)
    )
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), **where) as router:  # type: ignore[arg-type]
        assert router.revision == 1 and [r.name for r in router.routes] == ["greet", "bye"]
    # once to see what is there, once inside commit() (which finds nothing to change): the
    # version served is that one, not a third read of every route
    assert len(reads) == 2
