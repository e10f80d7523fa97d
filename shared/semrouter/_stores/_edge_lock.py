"""Locks of embedded folders: the one-writer lock of a persistent folder and the lifetime lock of
a temporary one.

Both are Linux open-file-description locks (``F_OFD_SETLK``; ``flock`` elsewhere): held per open
file, so two routers in one process exclude each other too; released when the file is closed or
the process dies, whatever PID namespace it ran in; testable without taking them
(``F_OFD_GETLK``), so a reader never takes the writer's lock.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import stat
import struct
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from .._exceptions import RouterLockedError, StoreDamagedError
from .._safe_files import NOFOLLOW, read_regular_file
from ._edge_files import LOCK_FILE, os_failure

__all__ = ["TempFolder", "WriterLock", "read_holder", "sweep_temp_folders", "writer_alive"]

# -- the writer lock -----------------------------------------------------------------------------
if sys.platform == "win32":  # pragma: no cover - byte-range locks; no test without taking
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _is_locked(fd: int) -> bool:
        if not _try_lock(fd):
            return True
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return False

else:
    import fcntl

    _OFD = hasattr(fcntl, "F_OFD_SETLK")
    # struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (+pad)
    _FLOCK = "hhqqi4x"

    def _ofd(fd: int, command: int, kind: int) -> int:
        packed = fcntl.fcntl(fd, command, struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0))
        return int(struct.unpack(_FLOCK, packed)[0])

    def _try_lock(fd: int) -> bool:
        """Take an exclusive lock on ``fd`` if free; ``False`` if someone holds it."""
        try:
            if _OFD:
                _ofd(fd, fcntl.F_OFD_SETLK, fcntl.F_WRLCK)
            else:  # pragma: no cover - non-Linux Unix
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def _is_locked(fd: int) -> bool:
        """Whether someone holds the lock, tested without taking it (Linux)."""
        if _OFD:
            return _ofd(fd, fcntl.F_OFD_GETLK, fcntl.F_WRLCK) != fcntl.F_UNLCK
        try:  # pragma: no cover - non-Linux Unix: a shared lock conflicts only with a writer
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # pragma: no cover
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)  # pragma: no cover
        return False  # pragma: no cover


class WriterLock:
    """The one-writer lock of a folder: an open-file-description lock (per open file, so two
    routers in one process exclude each other too), released when the file is closed or the
    process dies. ``holder()`` tests it without taking it."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._fd: int | None = None
        self._closer: Any = None  # a weakref.finalize closing the descriptor

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; :class:`RouterLockedError` if not."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        try:  # never through a symbolic link: it could point at any file of the user's
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._not_a_file("a symbolic link") from exc
            raise os_failure(exc, self.file.parent, "take the writer lock of") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._not_a_file("not a regular file")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if _try_lock(fd):
                    break
            except OSError as exc:
                os.close(fd)
                raise os_failure(exc, self.file.parent, "lock") from exc
            if time.monotonic() >= deadline:
                os.close(fd)
                raise self._locked_error()
            time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": platform.node()}).encode())
        self._fd = fd
        # a writer dropped without close() (``del router`` in a notebook) releases the lock
        self._closer = weakref.finalize(self, os.close, fd)

    def _not_a_file(self, what: str) -> StoreDamagedError:
        return StoreDamagedError(
            f"the lock file {self.file} is {what}; semrouter writes its pid there and never "
            "writes through a link: remove it"
        )

    def _locked_error(self) -> RouterLockedError:
        holder = read_holder(self.file)
        who = "another writer"
        if holder is not None:
            pid = holder.get("pid")
            who = f"process {pid}" + (" (this process)" if pid == os.getpid() else "")
            if holder.get("host") not in (None, platform.node()):
                who += f" on host {holder.get('host')}"
        return RouterLockedError(
            f"the embedded folder {self.file.parent} is held by {who} for writing; only one "
            "writer may open it: open it with mode='read' (or mode='auto') to follow that writer, "
            "or close the other router first"
        )

    def release(self) -> None:
        """Drop the lock (closing the file drops it)."""
        if self._fd is not None:
            self._closer()
            self._fd = None

    def __getstate__(self) -> None:
        raise TypeError("a writer lock cannot be copied")

    def forget(self) -> None:
        """In a forked child: close the inherited descriptor. The lock stays the parent's (an
        open-file-description lock ends with the last descriptor of that open file)."""
        if self._fd is not None:
            self._closer()
            self._fd = None


def read_holder(file: Path) -> dict[str, Any] | None:
    """What the lock file says about its holder (``pid``, ``host``), if readable."""
    try:
        value = json.loads(read_regular_file(file, limit=4096))
    except (OSError, ValueError):  # ConfigurationError is a ValueError
        return None
    return value if isinstance(value, dict) else None


def writer_alive(folder: Path) -> bool:
    """Whether some process holds ``folder``'s writer lock (tested without taking it)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # (non-blocking: a FIFO planted there cannot hang a reader)
        return False
    try:
        return _is_locked(fd)
    except OSError:  # cannot tell: assume a writer, so nobody waits on a wrong "gone"
        return True
    finally:
        os.close(fd)


# -- temporary folders ---------------------------------------------------------------------------
_TEMP_PREFIX = "semrouter-tmp-"
_TEMP_LOCK = ".semrouter-tmp.lock"


class TempFolder:
    """A folder for a temporary collection, in RAM where possible, locked for its lifetime.

    Folders of processes that died without cleaning up (SIGKILL) are swept on the next start:
    a folder is stale when nobody holds its lock (a lock dies with its process, in any PID
    namespace that shares the file system), never judged by a PID.
    """

    def __init__(self) -> None:
        parent = _ram_dir() or tempfile.gettempdir()
        sweep_temp_folders(parent)
        # Made under a name the sweep ignores, locked, then renamed: never seen unlocked.
        hidden = Path(tempfile.mkdtemp(prefix=".semrouter-new-", dir=parent))
        self._lock = WriterLock(hidden / _TEMP_LOCK)
        self._lock.acquire()
        self.path = hidden.with_name(_TEMP_PREFIX + hidden.name.removeprefix(".semrouter-new-"))
        os.rename(hidden, self.path)

    def remove(self) -> None:
        """Delete the folder and release its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.release()


def sweep_temp_folders(parent: str | Path) -> int:
    """Remove temporary folders whose owner is gone (their lock is free); returns how many."""
    removed = 0
    for stale in Path(parent).glob(_TEMP_PREFIX + "*"):
        try:
            fd = os.open(stale / _TEMP_LOCK, os.O_RDWR | NOFOLLOW)
        except OSError:
            continue  # no lock file: not ours to judge
        try:
            try:
                if not _try_lock(fd):
                    continue  # its owner is alive
            except OSError:
                continue
            shutil.rmtree(stale, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


def _ram_dir() -> str | None:
    """A RAM-backed folder for temporary collections (fsync on disk costs ~100 ms a flush)."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and shutil.disk_usage(shm).free > 1 << 30:
            return str(shm)
    except OSError:
        pass
    return None
