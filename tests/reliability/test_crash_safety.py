"""SIGKILL in the middle of a sync of a persistent embedded router, then reopen.

After the kill the collection must hold, per utterance, either the old or the new state (never a
half-written point, never a duplicate), and the next open must repair it to the declared routes
encoding only what is missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter._index import point_id
from semrouter._stores import EdgeStore

DIM = 16
REPO = Path(__file__).resolve().parents[2]


def _old() -> list[Route]:
    return [
        Route(f"r{i}", [f"r{i} item{j} alpha" for j in range(100)], metadata={"v": 1})
        for i in range(10)
    ]


def _new() -> list[Route]:
    routes = []
    for i in range(8):  # r8, r9 removed: 200 deletions
        utts = [f"r{i} item{j} alpha" for j in range(100)]
        if i == 1:
            utts += [f"r1 extra{j} beta" for j in range(50)]  # 50 new
        routes.append(
            Route(f"r{i}", utts, metadata={"v": 2} if i == 0 else {"v": 1})
        )  # 100 changed
    routes += [
        Route(f"r{i}", [f"r{i} item{j} gamma" for j in range(100)]) for i in (10, 11)
    ]  # 200 new
    return routes


def _payload(route: Route, utt: str) -> dict[str, Any]:
    return {"route": route.name, "utterance": utt, "metadata": dict(route.metadata)}


def _states(routes: list[Route]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.name, u): _payload(r, u) for r in routes for u in r.utterances}


# The child opens the router with the new routes. A proxy around Qdrant Edge's shard counts
# write operations; the process SIGKILLs itself right after write number KILL_AT (or right after
# the shard is created, for KILL_AT == "create"). With KILL_AT == "never", it sleeps in the
# encoder so that the parent can kill it at an arbitrary moment of the sync.
_CHILD = (
    textwrap.dedent(
        """
    import json, os, signal, sys, time
    import qdrant_edge
    import semrouter._stores._edge as stores  # the batch size EdgeStore writes with
    from semrouter import FakeEncoder, Route, SemanticRouter

    path, kill_at, routes_json = sys.argv[1], sys.argv[2], sys.argv[3]
    stores._WRITE_BATCH = 50
    real = qdrant_edge.EdgeShard
    writes = 0

    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    class Shard:
        def __init__(self, shard):
            self._shard = shard
        def update(self, op):
            global writes
            result = self._shard.update(op)
            writes += 1
            if str(writes) == kill_at:
                die()
            return result
        def __getattr__(self, name):
            return getattr(self._shard, name)

    class Factory:
        @staticmethod
        def create(*args, **kwargs):
            shard = Shard(real.create(*args, **kwargs))
            if kill_at == "create":
                die()
            return shard
        @staticmethod
        def load(*args, **kwargs):
            return Shard(real.load(*args, **kwargs))

    qdrant_edge.EdgeShard = Factory

    class SlowEncoder(FakeEncoder):
        def _encode_batch(self, texts):
            if kill_at == "never":
                print("batch", flush=True)
                time.sleep(0.02)
            return super()._encode_batch(texts)

    routes = [Route(**r) for r in json.loads(routes_json)]
    SemanticRouter(routes, encoder=SlowEncoder(%d), path=path, sync="replace")
    print("done", writes, flush=True)
    """
    )
    % DIM
)


def _run_child(path: Path, kill_at: str, routes: list[Route]) -> subprocess.Popen[str]:
    data = json.dumps([r.model_dump(mode="json") for r in routes])
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), kill_at, data],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _stored(path: Path) -> list[tuple[str, dict[str, Any], Any]]:
    store = EdgeStore(path, "semrouter")
    try:
        # utterance points only (the route set document and head carry no route)
        return [p for p in store.scroll(with_vectors=True) if "route" in p[1]]
    finally:
        store.close()


def _check_old_or_new(path: Path, old: list[Route], new: list[Route]) -> set[tuple[str, str]]:
    """Assert the crash-time invariant; return the (route, utterance) pairs present."""
    old_states, new_states = _states(old), _states(new)
    points = _stored(path)
    present: set[tuple[str, str]] = set()
    encoder = FakeEncoder(DIM)
    for pid, payload, vector in points:
        key = (payload.get("route"), payload.get("utterance"))
        assert key not in present, f"duplicate point for {key}"
        present.add(key)  # type: ignore[arg-type]
        assert pid == point_id(*key), key
        assert payload in (old_states.get(key), new_states.get(key)), (key, payload)
        np.testing.assert_allclose(vector, encoder.encode([key[1]])[0], atol=1e-5)
    missing_everywhere = (set(old_states) & set(new_states)) - present
    assert not missing_everywhere, f"{len(missing_everywhere)} utterances in both states were lost"
    assert present <= set(old_states) | set(new_states)
    return present


def _repair(path: Path, new: list[Route], present: set[tuple[str, str]]) -> None:
    encoder = FakeEncoder(DIM)
    with SemanticRouter(new, encoder=encoder, path=path, sync="replace") as router:
        missing = set(_states(new)) - present
        assert encoder.encoded_texts == len(missing) == router.last_sync.encoded
        assert router.index_size == len(_states(new))
        assert router.route("r11 item3 gamma").name == "r11"
    # the repaired collection is exactly the new state, and a second open does nothing
    points = _stored(path)
    assert {(p["route"], p["utterance"]): p for _, p, _ in points} == _states(new)
    encoder = FakeEncoder(DIM)
    with SemanticRouter(new, encoder=encoder, path=path, sync="replace") as router:
        assert encoder.encoded_texts == 0
        assert router.last_sync.encoded == router.last_sync.deleted == router.last_sync.updated == 0


@pytest.fixture
def old_index(tmp_path: Path) -> Path:
    path = tmp_path / "index"
    with SemanticRouter(_old(), encoder=FakeEncoder(DIM), path=path) as router:
        assert router.index_size == 1000
    return path


# Writes during the new sync: 1-5 upsert 250 points (50 per batch), 6-9 delete 200 points,
# then two writes per changed point (delete the old metadata, set the new payload).
@pytest.mark.parametrize(
    "kill_at",
    [
        "1",
        "3",
        "5",
        "7",
        pytest.param("10"),
        "11",
        "61",
    ],
)
def test_sigkill_at_a_write_leaves_old_or_new_state(old_index: Path, kill_at: str) -> None:
    child = _run_child(old_index, kill_at, _new())
    out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, out
    present = _check_old_or_new(old_index, _old(), _new())
    _repair(old_index, _new(), present)


def test_sigkill_from_outside_during_slow_encoding(old_index: Path) -> None:
    child = _run_child(old_index, "never", _new())
    assert child.stdout is not None
    for _ in range(2):  # let it get well into encoding
        assert child.stdout.readline().startswith("batch")
    time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    present = _check_old_or_new(old_index, _old(), _new())
    _repair(old_index, _new(), present)


@pytest.mark.parametrize(
    "kill_at",
    [
        pytest.param("create"),
        pytest.param("1"),
        "2",
        "4",
    ],
)
def test_sigkill_during_first_creation(tmp_path: Path, kill_at: str) -> None:
    path = tmp_path / "fresh"
    child = _run_child(path, kill_at, _old())
    out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, out
    encoder = FakeEncoder(DIM)
    with SemanticRouter(_old(), encoder=encoder, path=path) as router:
        assert router.index_size == 1000
        assert encoder.encoded_texts == router.last_sync.encoded <= 1000


def test_child_without_kill_completes(old_index: Path) -> None:
    # control: the instrumented child syncs normally when nobody kills it
    child = _run_child(old_index, "0", _new())
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and out.startswith("done"), out
    assert _check_old_or_new(old_index, _old(), _new()) == set(_states(_new()))
