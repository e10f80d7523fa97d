"""Damaged embedded folders (issue 12, points 1, 4 and 7): every Qdrant Edge failure is a
semrouter error naming the folder and the remedy, nothing aborts the process, and
``rebuild=True`` recovers any folder semrouter owns (restoring its points from the snapshot)."""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter._exceptions import ConfigurationError, StoreDamagedError
from semrouter._stores import EdgeStore
from semrouter._stores._edge_files import SNAPSHOT_FILE, read_snapshot

CHILD = Path(__file__).with_name("edge_child.py")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CHILD.parent))
from edge_child import QUERIES, ROUTES  # noqa: E402


def _child(path: Path, rebuild: bool = False) -> dict[str, Any]:
    """Open a router on ``path`` in a fresh process; a crash fails the test with its code."""
    run = subprocess.run(
        [sys.executable, str(CHILD), str(path), "rebuild" if rebuild else "no"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 0, f"the process died ({run.returncode}): {run.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert "raw" not in result, f"an unmapped error reached the user: {result['raw']}"
    return result


def _router(path: Path, encoder: FakeEncoder | None = None, **kw: Any) -> SemanticRouter:
    return SemanticRouter(ROUTES, encoder=encoder or FakeEncoder(dimension=16), path=path, **kw)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A persistent router's parent folder, made and closed."""
    _router(tmp_path).close()
    return tmp_path


def _collection(folder: Path) -> Path:
    return folder / "semrouter"


def _segment(folder: Path) -> Path:
    segments = [p for p in (_collection(folder) / "segments").iterdir() if p.is_dir()]
    assert len(segments) == 1
    return segments[0]


def _answers_after_rebuild(folder: Path) -> None:
    encoder = FakeEncoder(dimension=16)
    with _router(folder, encoder, rebuild=True) as router:
        assert {q: router.route(q).name for q in QUERIES} == QUERIES
        assert router.last_sync.encoded == 0  # restored from the snapshot, nothing re-encoded


def test_a_huge_internal_id_is_refused_instead_of_aborting(folder: Path) -> None:
    mappings = _segment(folder) / "mutable_id_tracker.mappings"
    data = bytearray(mappings.read_bytes())
    assert data[0] == 2  # an insert of a uuid id: kind, 16 bytes of id, 4 of internal id
    data[17:21] = b"\xf0\xff\xff\xff"  # Qdrant Edge would try to allocate ~100 GB and abort
    mappings.write_bytes(bytes(data))
    result = _child(folder)
    assert result["error"] == "StoreDamagedError"
    assert str(_collection(folder)) in result["message"] and "rebuild=True" in result["message"]
    assert "mutable_id_tracker.mappings" in result["message"]
    assert "answers" in _child(folder, rebuild=True)


@pytest.mark.parametrize("seed", range(6))
def test_random_damage_never_crashes_and_rebuild_recovers(tmp_path: Path, seed: int) -> None:
    _router(tmp_path).close()
    rng = random.Random(seed)
    files = sorted(
        p
        for p in _collection(tmp_path).rglob("*")
        if p.is_file() and p.stat().st_size and not p.name.startswith("semrouter")
    )
    target = rng.choice(files)
    kind = rng.choice(["flip", "truncate", "delete"])
    data = bytearray(target.read_bytes())
    if kind == "flip":
        used = min(len(data), 1 << 16)  # the written part of a sparse file
        for _ in range(8):
            data[rng.randrange(used)] ^= 0xFF
        target.write_bytes(bytes(data))
    elif kind == "truncate":
        target.write_bytes(bytes(data[: len(data) // 2]))
    else:
        target.unlink()
    first = _child(tmp_path)  # a semrouter error or correct answers; never a crash or raw error
    if "answers" in first:
        assert first["answers"] == QUERIES, (target, kind)
    else:
        assert first["error"] in ("StoreDamagedError", "IndexMismatchError"), first
        assert str(_collection(tmp_path)) in first["message"]
    again = _child(tmp_path, rebuild=True)
    assert again.get("answers") == QUERIES, (target, kind, again)


def test_a_deleted_version_info_is_reported_as_damage(folder: Path) -> None:
    (_segment(folder) / "version.info").unlink()
    with pytest.raises(StoreDamagedError) as caught:
        _router(folder)
    message = str(caught.value)
    assert "version.info" in message and "rebuild=True" in message
    assert "not made by semrouter" not in message
    _answers_after_rebuild(folder)


def test_a_payload_edge_cannot_read_back_is_refused(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path, "c")
    store.create({"fingerprint": "f"}, 4)
    deep: dict[str, Any] = {}
    level = deep
    for _ in range(130):
        level["a"] = level = {}
    with pytest.raises(ConfigurationError, match="nested deeper"):
        store.upsert(
            ["a2b0e7a4-0000-5000-8000-000000000001"],
            np.eye(1, 4, dtype=np.float32),
            [{"metadata": deep}],
        )
    store.close()
    EdgeStore(tmp_path, "c").close()  # nothing was written: the folder still opens


def test_a_folder_bricked_by_deep_metadata_is_recovered_by_rebuild(folder: Path) -> None:
    import qdrant_edge

    deep: dict[str, Any] = {}
    level = deep
    for _ in range(200):
        level["a"] = level = {}
    # As an older semrouter did: the payload went into the WAL, which cannot be read back.
    shard = qdrant_edge.EdgeShard.load(str(_collection(folder)))
    point = qdrant_edge.Point(id=7, vector=[1.0] + [0.0] * 15, payload={"metadata": deep})
    shard.update(qdrant_edge.UpdateOperation.upsert_points([point]))
    shard.close()
    with pytest.raises(StoreDamagedError, match=r"RecursionLimitExceeded|recursion"):
        _router(folder)
    _answers_after_rebuild(folder)


def test_rebuild_leaves_a_folder_semrouter_does_not_own_alone(tmp_path: Path) -> None:
    target = tmp_path / "semrouter"
    (target / "segments").mkdir(parents=True)
    (target / "edge_config.json").write_text("{not json")
    (target / "my-notes.txt").write_text("precious")
    with pytest.raises(StoreDamagedError, match="not marked as semrouter's"):
        EdgeStore(tmp_path, "semrouter", rebuild=True)
    assert (target / "my-notes.txt").read_text() == "precious"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bit flip"])
def test_a_damaged_snapshot_is_ignored_logged_and_rebuilt(
    folder: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot = _collection(folder) / SNAPSHOT_FILE
    data = bytearray(snapshot.read_bytes())
    if damage == "garbage":
        data = bytearray(b"not a numpy file")
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x01  # inside the stored vectors: only a checksum can tell
    snapshot.write_bytes(bytes(data))
    encoder = FakeEncoder(dimension=16)
    with caplog.at_level(logging.WARNING, logger="semrouter"):
        router = _router(folder, encoder)
    with router:
        assert {q: router.route(q).name for q in QUERIES} == QUERIES
        assert router.last_sync.encoded == 0
    assert any("damaged snapshot" in r.getMessage() for r in caplog.records)
    rebuilt = read_snapshot(_collection(folder))  # republished: intact again
    # the metadata point, the route set document and head, and one point per utterance
    assert rebuilt is not None and len(rebuilt.ids) == 3 + sum(len(r.utterances) for r in ROUTES)


def _zero_vectors(folder: Path) -> None:
    chunk = _segment(folder) / "vector_storage" / "vectors" / "chunk_0.mmap"
    data = bytearray(chunk.read_bytes())
    data[: 4 * 16 * 64] = bytes(4 * 16 * 64)
    chunk.write_bytes(bytes(data))


def test_zeroed_stored_vectors_are_detected_against_the_snapshot(folder: Path) -> None:
    _zero_vectors(folder)
    with pytest.raises(StoreDamagedError, match="bit rot"):
        _router(folder)
    _answers_after_rebuild(folder)


def test_zeroed_stored_vectors_are_detected_without_a_snapshot(folder: Path) -> None:
    (_collection(folder) / SNAPSHOT_FILE).unlink()
    _zero_vectors(folder)
    with pytest.raises(StoreDamagedError, match="not unit vectors"):
        _router(folder)


def test_lost_edge_files_with_an_intact_snapshot_are_restored(folder: Path) -> None:
    shutil.rmtree(_collection(folder) / "segments")
    (_collection(folder) / "edge_config.json").unlink()
    shutil.rmtree(_collection(folder) / "wal")
    with pytest.raises(StoreDamagedError, match="lost its Qdrant Edge files"):
        _router(folder)
    _answers_after_rebuild(folder)


def test_routes_survive_a_rebuild_of_a_router_with_more_routes(tmp_path: Path) -> None:
    routes = [*ROUTES, Route("music", ["play some jazz", "put on a song"])]
    SemanticRouter(routes, encoder=FakeEncoder(dimension=16), path=tmp_path).close()
    (_segment(tmp_path) / "segment.json").write_text("{")
    EdgeStore(tmp_path, "semrouter", rebuild=True).close()
    encoder = FakeEncoder(dimension=16)
    with SemanticRouter(routes, encoder=encoder, path=tmp_path) as router:
        assert router.route("play some jazz").name == "music"
        assert encoder.encoded_texts == 1  # the query only
