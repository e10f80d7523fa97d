"""Temporary (``":memory:"``) embedded collections live in folders locked by their owner; the
sweep of leftovers judges a folder by its lock, never by a PID (issue 12, point 12: a PID from
another PID namespace sharing /dev/shm looked dead and a live router's folder was deleted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter._stores._edge_lock import TempFolder, _ram_dir, sweep_temp_folders

REPO = Path(__file__).resolve().parents[2]

OWNER = """
import sys
from semrouter._stores._edge_lock import TempFolder
folder = TempFolder()
print(folder.path, flush=True)
sys.stdin.readline()
"""


def _owner() -> tuple[subprocess.Popen[str], Path]:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OWNER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def test_a_killed_owners_folder_is_swept_by_the_next_start() -> None:
    child, left = _owner()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert left.is_dir()  # SIGKILL: no cleanup ran
    mine = TempFolder()
    try:
        assert not left.exists() and mine.path.is_dir()
    finally:
        mine.remove()


def test_a_live_owners_folder_is_never_swept_whatever_its_pid(tmp_path: Path) -> None:
    child, live = _owner()
    try:
        # Named as if by a PID that does not exist here (another PID namespace): still kept.
        renamed = live.with_name("semrouter-tmp-4194303-x")
        live.rename(renamed)
        sweep_temp_folders(renamed.parent)
        assert renamed.is_dir()
        renamed.rename(live)
    finally:
        child.communicate("\n", timeout=30)
    sweep_temp_folders(live.parent)
    assert not live.exists()  # its owner exited without cleaning up: swept now


def test_a_temporary_router_removes_its_folder_on_close() -> None:
    parent = _ram_dir() or tempfile.gettempdir()
    before = set(Path(parent).glob("semrouter-tmp-*"))
    router = SemanticRouter([Route("greet", ["hello there"])], encoder=FakeEncoder())
    made = set(Path(parent).glob("semrouter-tmp-*")) - before
    assert len(made) == 1
    router.close()
    assert not made.pop().exists()
