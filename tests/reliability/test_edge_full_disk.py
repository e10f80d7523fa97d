"""A full disk (issue 12, point 3): Qdrant Edge maps a 32 MiB write-ahead-log segment when it
opens a folder and dies of SIGBUS when the disk fills under it, so semrouter checks free space
first and raises :class:`StorageFullError` naming the folder and the space needed, with nothing
lost. The real test mounts a small tmpfs (root only); the write path is also tested with the
free-space probe reporting a full disk, which runs anywhere."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter._exceptions import StorageFullError
from semrouter._stores import _edge_files as edge_files

CHILD = Path(__file__).with_name("edge_child.py")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CHILD.parent))
from edge_child import QUERIES, ROUTES  # noqa: E402


def _child(path: Path) -> str:
    run = subprocess.run(
        [sys.executable, str(CHILD), str(path), "no"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 0, f"the process died ({run.returncode}): {run.stderr[-2000:]}"
    return run.stdout.strip().splitlines()[-1]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (too small for Qdrant Edge's 32 MiB WAL segment)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("mounting a tmpfs needs root; the write path is tested without it below")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "semrouter.lock"  # holds the pid of the last writer
    }


def test_creating_on_a_full_disk_is_a_clear_error_not_sigbus(small_disk: Path) -> None:
    result = _child(small_disk / "routes")
    assert "StorageFullError" in result and "MiB needed" in result
    assert str(small_disk / "routes" / "semrouter") in result


def test_reopening_on_a_full_disk_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    source = tmp_path / "made"
    SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=16), path=source).close()
    # --sparse=always: Edge's files are mostly holes; a plain copy would fill the tmpfs itself.
    subprocess.run(["cp", "-r", "--sparse=always", str(source), str(small_disk)], check=True)
    copy = small_disk / "made"
    before = _digest(copy)
    assert "StorageFullError" in _child(copy)  # used to die of SIGBUS inside EdgeShard.load
    assert _digest(copy) == before
    subprocess.run(["mount", "-o", "remount,size=128m", str(small_disk)], check=True)
    assert '"encoded": 3' in _child(copy)  # room again: opens, nothing re-encoded but queries


def test_writing_with_too_little_space_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=16), path=tmp_path)
    monkeypatch.setattr(edge_files, "free_bytes", lambda folder: 4 << 20)  # 4 MiB left
    with pytest.raises(StorageFullError) as caught:
        router.add(Route("music", ["play some jazz"]))
    assert str(tmp_path / "semrouter") in str(caught.value) and "needed" in str(caught.value)
    router.close()
    monkeypatch.undo()
    encoder = FakeEncoder(dimension=16)
    with SemanticRouter(ROUTES, encoder=encoder, path=tmp_path) as again:
        assert {q: again.route(q).name for q in QUERIES} == QUERIES
        assert again.last_sync.encoded == 0 and again.last_sync.deleted == 0  # nothing written


def test_opening_with_too_little_space_is_refused_before_edge_sees_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=16), path=tmp_path).close()
    before = _digest(tmp_path / "semrouter")
    monkeypatch.setattr(edge_files, "free_bytes", lambda folder: 33 << 20)  # SIGBUS measured
    with pytest.raises(StorageFullError, match=r"40\.0 MiB needed"):
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=16), path=tmp_path)
    assert _digest(tmp_path / "semrouter") == before
