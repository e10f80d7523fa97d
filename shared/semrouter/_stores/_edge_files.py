"""The files semrouter keeps beside a Qdrant Edge collection, and the checks made before Edge
is handed a folder.

Qdrant Edge 0.9 holds an exclusive lock on its write-ahead log for as long as a shard is open
(a second ``EdgeShard.load`` fails with ``Can't init WAL: Kind(WouldBlock)``) and has no
read-only mode, so only one process can have a folder open. semrouter adds, inside the
collection folder:

``semrouter.lock``
    held (an open-file-description lock) by the one writer for its lifetime, its pid inside;
    readers only test it, never take it.
``semrouter.json``
    the marker: this folder is semrouter's (``rebuild=True`` may wipe it), and whether its
    creation finished.
``semrouter-snapshot.bin``
    the snapshot: every point (ids, payloads, vectors) with a revision number and a checksum,
    published by the writer after each flush (temporary file, fsync, ``os.replace``); readers
    serve queries from it, the writer reopens from it instead of reading vectors back from Edge.
``semrouter-snapshot.dirty``
    exists while the writer has changed Edge since the last snapshot (a crash leaves it: the
    snapshot is then stale and is rebuilt from Edge on the next open).

Everything here is plain Python: no Edge call, so nothing here can abort the process.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._exceptions import (
    ReadOnlyRouterError,
    RouterLockedError,
    SemRouterError,
    StorageFullError,
    StoreDamagedError,
)
from .._safe_files import NOFOLLOW, open_regular, read_regular_file, write_atomic

logger = logging.getLogger("semrouter")

LOCK_FILE = "semrouter.lock"
MARKER_FILE = "semrouter.json"
# The snapshot replaces the vector cache of earlier versions (removed at the first publish).
SNAPSHOT_FILE = "semrouter-snapshot.bin"
LEGACY_CACHE = "semrouter-vectors.npz"
DIRTY_FILE = "semrouter-snapshot.dirty"
#: Names an Edge shard writes at the top of its folder.
_EDGE_NAMES = {"edge_config.json", "segments", "wal"}
_SNAPSHOT_FORMAT = 1

# Qdrant Edge fills a 32 MiB write-ahead-log segment when it opens a folder and maps it: with
# less free space the process dies of SIGBUS (measured on a tmpfs: 33 MiB free crashes, 40 MiB
# opens). Writes also touch memory-mapped vector and payload pages.
WAL_SEGMENT = 32 << 20
OPEN_RESERVE = WAL_SEGMENT + (8 << 20)
TEMP_RESERVE = 8 << 20


# -- errors --------------------------------------------------------------------------------------
def rebuild_hint(owned: bool) -> str:
    if owned:
        return "pass rebuild=True to recreate it (points are restored from its snapshot if intact)"
    return "it is not marked as semrouter's, so rebuild=True will not touch it: move it away"


def edge_failure(
    exc: BaseException, folder: Path, action: str, *, owned: bool = True
) -> SemRouterError:
    """The semrouter error for a Qdrant Edge failure (``Exception`` or pyo3's ``PanicException``).

    ``WouldBlock`` is another process holding Edge's WAL lock; ``os error 28`` a full disk;
    ``os error 30/13`` a folder we may not write; anything else is damage.
    """
    text = f"{type(exc).__name__}: {exc}"
    if "WouldBlock" in text:
        return RouterLockedError(
            f"the embedded folder {folder} is open in another process (Qdrant Edge holds its "
            "write-ahead log); open it with mode='read' to follow that process, or close it there"
        )
    if "os error 28" in text or "No space left" in text:
        return StorageFullError(
            errno.ENOSPC,
            f"no space left on the device of {folder} while trying to {action}; free some space "
            f"(at least {OPEN_RESERVE >> 20} MiB) and retry: nothing acknowledged was lost",
        )
    if "os error 30" in text or "os error 13" in text or "Read-only file system" in text:
        return ReadOnlyRouterError(
            f"the embedded folder {folder} cannot be written ({text}); open it with mode='read'"
        )
    return StoreDamagedError(
        f"the embedded folder {folder} is damaged: Qdrant Edge failed to {action} ({text}); "
        + rebuild_hint(owned)
    )


def is_edge_failure(exc: BaseException) -> bool:
    """Whether ``exc`` came from Qdrant Edge (incl. pyo3's ``PanicException``, a BaseException)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, SemRouterError)):
        return False
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


@contextmanager
def edge_errors(folder: Path, action: str, *, owned: bool = True) -> Iterator[None]:
    """Map every Qdrant Edge failure inside the block to a semrouter error naming ``folder``."""
    try:
        yield
    except BaseException as exc:
        if not is_edge_failure(exc) or isinstance(exc, (MemoryError, RecursionError)):
            raise
        raise edge_failure(exc, folder, action, owned=owned) from exc


# -- free space ----------------------------------------------------------------------------------
def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use on ``folder``'s file system."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


def ensure_space(folder: Path, needed: int, action: str) -> None:
    """Raise :class:`StorageFullError` (nothing written yet) unless ``needed`` bytes are free."""
    free = free_bytes(folder)
    if free < needed:
        raise StorageFullError(
            errno.ENOSPC,
            f"too little free disk space to {action} {folder}: {_mib(free)} free, {_mib(needed)} "
            "needed (Qdrant Edge maps a 32 MiB write-ahead-log segment and dies of SIGBUS when "
            "the disk fills under it); free some space and retry, nothing was written",
        )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def os_failure(exc: OSError, folder: Path, action: str) -> SemRouterError:
    if exc.errno == errno.ENOSPC:
        return StorageFullError(errno.ENOSPC, f"no space left to {action} {folder}")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ReadOnlyRouterError(
            f"cannot {action} {folder} ({exc.strerror}); open it with mode='read'"
        )
    return StoreDamagedError(f"cannot {action} {folder}: {exc}")


# -- the marker ----------------------------------------------------------------------------------
MarkerState = Literal["creating", "ready"]


def write_marker(folder: Path, state: MarkerState) -> None:
    """Mark ``folder`` as semrouter's (atomically) with the state of its creation."""
    try:
        write_atomic(folder / MARKER_FILE, json.dumps({"semrouter": 1, "state": state}).encode())
    except OSError as exc:
        raise os_failure(exc, folder, "write to") from exc


def read_marker(folder: Path) -> MarkerState | None:
    """The marker's state, or ``None`` when the folder carries no (readable) marker."""
    try:
        value = json.loads(read_regular_file(folder / MARKER_FILE, limit=4096))
    except (OSError, ValueError):
        return None
    state = value.get("state") if isinstance(value, dict) else None
    return state if state in ("creating", "ready") else None


def owned(folder: Path) -> bool:
    """Whether ``rebuild=True`` may wipe ``folder``: it carries semrouter's marker or holds
    nothing but Edge's and semrouter's own files (a folder of an older semrouter)."""
    if (folder / MARKER_FILE).exists():
        return True
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return bool(names) and all(n in _EDGE_NAMES or n.startswith("semrouter") for n in names)


def wipe(folder: Path, *, keep: Sequence[str] = (LOCK_FILE,)) -> None:
    """Delete everything in ``folder`` except ``keep`` (the lock a writer holds)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def has_shard(folder: Path) -> bool:
    """Whether ``folder`` holds Edge files (a shard to load rather than create)."""
    return (folder / "edge_config.json").exists() or (folder / "segments").is_dir()


# -- checks before Edge sees a folder --------------------------------------------------------------
_MAPPING_SIZES = {1: 1 + 8 + 4, 2: 1 + 16 + 4, 3: 1 + 8, 4: 1 + 16}
_MAX_MAPPINGS = 1 << 30  # ~50 million entries: far beyond what a router holds


def validate_shard(folder: Path) -> list[str]:
    """Check what can be checked in plain Python before ``EdgeShard.load``.

    Raises :class:`StoreDamagedError` for files that would make Edge abort the process (an
    internal id in ``mutable_id_tracker.mappings`` read as 100 GB to allocate) or fail; returns
    the segments Edge will silently drop (no ``version.info``: Qdrant treats them as unfinished).
    """
    problems: list[str] = []
    config = folder / "edge_config.json"
    if config.exists():
        try:
            json.loads(read_regular_file(config))
        except (OSError, ValueError) as exc:
            problems.append(f"edge_config.json is unreadable ({exc})")
    dropped: list[str] = []
    segments = folder / "segments"
    for segment in sorted(segments.iterdir()) if segments.is_dir() else []:
        if not segment.is_dir():
            continue
        if not (segment / "version.info").exists():
            dropped.append(segment.name)
            continue
        for name in ("segment.json",):
            try:
                json.loads(read_regular_file(segment / name))
            except (OSError, ValueError) as exc:
                problems.append(f"segments/{segment.name}/{name} is unreadable ({exc})")
        mappings = segment / "mutable_id_tracker.mappings"
        if mappings.exists():
            try:
                problem = _check_mappings(read_regular_file(mappings, limit=_MAX_MAPPINGS))
            except (OSError, ValueError) as exc:
                problem = f"unreadable ({exc})"
            if problem:
                problems.append(f"segments/{segment.name}/{mappings.name}: {problem}")
    if problems:
        raise StoreDamagedError(
            f"the embedded folder {folder} is damaged: {'; '.join(problems)}; "
            + rebuild_hint(owned(folder))
        )
    return dropped


def _check_mappings(data: bytes) -> str | None:
    """The id tracker's log: entries of a kind byte, an id (u64 / u128) and, for inserts, a u32
    internal id. Internal ids are dense, so one above the number of inserts is damage."""
    stride = _MAPPING_SIZES[2]
    if data and len(data) % stride == 0:  # the usual log: uuid inserts only (vectorised)
        table = np.frombuffer(data, np.uint8).reshape(-1, stride)
        if bool((table[:, 0] == 2).all()):
            internal = table[:, stride - 4 :].copy().view("<u4").ravel()
            worst = int(internal.argmax())
            if int(internal[worst]) > 2 * len(table) + 1024:
                return (
                    f"internal id {int(internal[worst])} at byte {worst * stride} "
                    f"(only {len(table)} inserts)"
                )
            return None
    entries: list[tuple[int, int]] = []
    position = 0
    size = len(data)
    while position < size:
        kind = data[position]
        length = _MAPPING_SIZES.get(kind)
        if length is None:
            return f"unknown entry type {kind} at byte {position}"
        if position + length > size:
            break  # a partial last entry: Edge drops it (an interrupted flush)
        if kind in (1, 2):
            internal = int.from_bytes(data[position + length - 4 : position + length], "little")
            entries.append((position, internal))
        position += length
    bound = 2 * len(entries) + 1024
    for offset, internal in entries:
        if internal > bound:
            return f"internal id {internal} at byte {offset} (only {len(entries)} inserts)"
    return None


# -- payloads Qdrant Edge can read back ------------------------------------------------------------
#: Qdrant Edge writes a payload nested 126+ levels deep but cannot read it back (its WAL then
#: fails with RecursionLimitExceeded and the folder will not open): refuse it before writing.
MAX_PAYLOAD_DEPTH = 100


def payload_depth(value: Any) -> int:
    """Nesting depth of a JSON-like value (iterative: no RecursionError on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_PAYLOAD_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
    return deepest


# -- the snapshot ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """Every point of a collection as published by its writer."""

    revision: int
    ids: tuple[str, ...]
    payloads: tuple[dict[str, Any], ...]
    vectors: npt.NDArray[np.float32]

    @property
    def size(self) -> int:
        """Approximate bytes on disk."""
        return int(self.vectors.nbytes) + 200 * len(self.ids)


_MAGIC = b"SEMRSNAP"
_ALIGN = 64


def _checksum(ids: bytes, payloads: bytes, vectors: Any) -> int:
    value = zlib.crc32(ids)
    value = zlib.crc32(payloads, value)
    return zlib.crc32(vectors, value)


def write_snapshot(folder: Path, snapshot: Snapshot) -> None:
    """Publish ``snapshot`` atomically: readers see the old file or the new one, never half.

    Layout: magic, a 4-byte header length, a JSON header (format, revision, shape, lengths,
    CRC-32) padded so that the float32 vectors start 64-byte aligned, then the vectors, the
    ids (newline-separated) and the payloads (a JSON list). Readers memory-map the vectors:
    one copy in the page cache serves every reader process, and a reload copies nothing big.
    """
    ids = "\n".join(snapshot.ids).encode()
    payloads = json.dumps(list(snapshot.payloads), ensure_ascii=True).encode()
    vectors = np.ascontiguousarray(snapshot.vectors, dtype="<f4")
    header = {
        "format": _SNAPSHOT_FORMAT,
        "revision": snapshot.revision,
        "count": int(vectors.shape[0]),
        "dimension": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
        "ids": len(ids),
        "payloads": len(payloads),
        "checksum": _checksum(ids, payloads, vectors.data),
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-(len(_MAGIC) + 4 + len(raw)) % _ALIGN)
    ensure_space(
        folder, len(raw) + len(ids) + len(payloads) + vectors.nbytes + (1 << 20), "publish"
    )
    fd, partial = tempfile.mkstemp(prefix=".semrouter-snapshot-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_MAGIC + len(raw).to_bytes(4, "little") + raw)
            out.write(vectors.data)
            out.write(ids)
            out.write(payloads)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, folder / SNAPSHOT_FILE)
    except OSError as exc:
        Path(partial).unlink(missing_ok=True)
        raise os_failure(exc, folder, "publish the read snapshot of") from exc
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


class SnapshotDamaged(Exception):
    """The snapshot file exists but cannot be trusted (the message says why)."""


def read_snapshot(folder: Path) -> Snapshot | None:
    """The published snapshot, its vectors memory-mapped (read-only); ``None`` if there is
    none; :class:`SnapshotDamaged` if it fails to parse or its checksum does not match (bit
    rot, a torn copy)."""
    file = folder / SNAPSHOT_FILE
    try:
        with open_regular(file) as stream:
            start = stream.read(len(_MAGIC) + 4)
            if len(start) < len(_MAGIC) + 4 or not start.startswith(_MAGIC):
                raise SnapshotDamaged("not a semrouter snapshot")
            size = int.from_bytes(start[len(_MAGIC) :], "little")
            header = json.loads(stream.read(size))
            count, dimension = int(header["count"]), int(header["dimension"])
            offset = len(start) + size
            nbytes = 4 * count * dimension
            total = os.fstat(stream.fileno()).st_size
            if header["format"] != _SNAPSHOT_FORMAT:
                raise SnapshotDamaged(f"unknown format {header['format']}")
            if total != offset + nbytes + int(header["ids"]) + int(header["payloads"]):
                raise SnapshotDamaged(f"{total} bytes, not what its header describes")
            vectors: npt.NDArray[np.float32]
            if nbytes:
                vectors = np.memmap(stream, "<f4", "r", offset, (count, dimension))
            else:
                vectors = np.zeros((count, dimension), np.float32)
            stream.seek(offset + nbytes)
            ids = stream.read(int(header["ids"]))
            payloads = stream.read(int(header["payloads"]))
            revision, checksum = int(header["revision"]), int(header["checksum"])
    except FileNotFoundError:
        return None
    except SnapshotDamaged:
        raise
    except Exception as exc:  # a torn header, a missing key, a failed map...
        raise SnapshotDamaged(f"{type(exc).__name__}: {exc}") from exc
    if _checksum(ids, payloads, vectors.reshape(-1).view(np.uint8).data) != checksum:
        raise SnapshotDamaged("checksum mismatch (bit rot or a torn copy)")
    id_list = tuple(ids.decode().split("\n")) if ids else ()
    try:
        payload_list = json.loads(payloads)
    except ValueError as exc:
        raise SnapshotDamaged(f"payloads unreadable: {exc}") from exc
    if not (len(id_list) == len(payload_list) == count):
        raise SnapshotDamaged("ids, payloads and vectors disagree in length")
    return Snapshot(revision, id_list, tuple(payload_list), vectors)


def snapshot_revision(folder: Path) -> int | None:
    """The revision in the published snapshot's header (one small read), if readable."""
    try:
        with open_regular(folder / SNAPSHOT_FILE) as stream:
            start = stream.read(len(_MAGIC) + 4)
            size = int.from_bytes(start[len(_MAGIC) :], "little")
            return int(json.loads(stream.read(size))["revision"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def snapshot_stamp(folder: Path) -> tuple[int, int, int] | None:
    """A cheap identity of the published snapshot file (one ``stat``): changes on every publish."""
    try:
        st = os.stat(folder / SNAPSHOT_FILE)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def mark_dirty(folder: Path) -> None:
    """Record, durably, that Edge is about to change beyond the published snapshot."""
    try:
        fd = os.open(folder / DIRTY_FILE, os.O_WRONLY | os.O_CREAT | NOFOLLOW, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise os_failure(exc, folder, "write to") from exc
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
