"""The read side of an embedded folder: the writer's published snapshot, served from memory.

A reader never opens Qdrant Edge (which would take the writer's WAL lock): it loads
``semrouter-snapshot.bin`` (every point, a revision and a checksum; the vectors memory-mapped,
so every reader shares one copy in the page cache), answers reads from it and searches it
exactly in numpy. :meth:`SnapshotReader.changed` is one ``stat``; :meth:`reload`
swaps a newer snapshot in as one immutable value, so a concurrent query sees one revision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ReadOnlyRouterError, StoreDamagedError
from .._search import exact_search
from . import _edge_files as files
from ._base import META_ID, META_KEY, Hit, StoredPoint
from ._edge_lock import writer_alive

__all__ = ["SnapshotReader"]

logger = logging.getLogger("semrouter")


@dataclass(frozen=True)
class _Served:
    """One loaded snapshot and what searching it needs."""

    snapshot: files.Snapshot
    row: dict[str, int]
    search_rows: npt.NDArray[np.int64]  # every row but the metadata point
    unit: npt.NDArray[np.float32]  # normalised vectors of ``search_rows`` (cosine)
    #: each tenant's search rows and vectors, computed on first use
    tenants: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = field(
        default_factory=dict
    )


class SnapshotReader:
    """Serves the snapshot a folder's writer publishes.

    Args:
        folder: the collection folder.
        wait: seconds to wait for a live writer's first snapshot (a folder being created).
    """

    def __init__(self, folder: Path, wait: float, *, require: bool = True) -> None:
        self.folder = folder
        self._served: _Served | None = None
        self._stamp: tuple[int, int, int] | None = None
        self.loaded_revision = 0
        deadline = time.monotonic() + wait
        while not self.reload():
            if not writer_alive(folder) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if require and self._served is None and files.has_shard(folder):
            raise ReadOnlyRouterError(
                f"the embedded folder {folder} has no read snapshot yet (written by an older "
                "semrouter, or its writer has not flushed): open it once with mode='write' to "
                "publish one"
            )

    @classmethod
    def empty(cls, folder: Path) -> SnapshotReader:
        """A reader that serves nothing yet and picks up the writer's next snapshot."""
        return cls(folder, 0.0, require=False)

    # -- following the writer -------------------------------------------------------------------
    def changed(self) -> bool:
        """Whether the writer has published since the last load (one ``stat``)."""
        return files.snapshot_stamp(self.folder) != self._stamp

    def published_revision(self) -> int:
        """The revision on disk: the loaded one unless the file changed (then a small read)."""
        if not self.changed():
            return self.loaded_revision
        published = files.snapshot_revision(self.folder)
        return self.loaded_revision if published is None else published

    def reload(self) -> bool:
        """Load a newer snapshot; ``True`` if one was swapped in. A damaged new snapshot is
        skipped with a log line and the old one stays (the writer republishes on its next
        write); with nothing loaded yet it raises :class:`StoreDamagedError`."""
        stamp = files.snapshot_stamp(self.folder)
        if stamp is None and self._served is not None and not self.folder.exists():
            # the folder was deleted: serve nothing (a re-created folder is loaded when it
            # publishes, whatever its revision number)
            self._served, self._stamp, self.loaded_revision = None, None, 0
            return True
        if stamp is None or stamp == self._stamp:
            return False
        try:
            snapshot = files.read_snapshot(self.folder)
        except files.SnapshotDamaged as exc:
            self._stamp = stamp  # do not re-read the same damaged file on every refresh
            if self._served is None:
                raise StoreDamagedError(
                    f"the read snapshot of {self.folder} is damaged ({exc}); its writer "
                    "publishes a new one on its next write, or open the folder once with "
                    "mode='write' (it is rebuilt from the collection)"
                ) from exc
            logger.warning(
                "keeping revision %d: the new snapshot of %s is damaged (%s)",
                self.loaded_revision,
                self.folder,
                exc,
            )
            return False
        if snapshot is None:
            return False
        first = 1 if snapshot.ids[:1] == (META_ID,) else 0
        rows = np.arange(first, len(snapshot.ids), dtype=np.int64)
        if META_ID in snapshot.ids[first:]:  # not published by this version: copy once
            rows = rows[np.asarray(snapshot.ids[first:]) != META_ID]
            unit = unit_rows(np.asarray(snapshot.vectors[rows]))
        else:  # the usual case: the memory-mapped rows in place (unit rows, as stored)
            unit = snapshot.vectors[first:]
        self._served = _Served(
            snapshot=snapshot,
            row={pid: row for row, pid in enumerate(snapshot.ids)},
            search_rows=rows,
            unit=unit,
        )
        self._stamp = stamp
        self.loaded_revision = snapshot.revision
        return True

    # -- the read path of the Store interface ---------------------------------------------------
    def read_meta(self) -> dict[str, Any] | None:
        served = self._served
        if served is None:
            return None
        row = served.row.get(META_ID)
        meta = served.snapshot.payloads[row].get(META_KEY) if row is not None else None
        return dict(meta) if isinstance(meta, dict) else {}

    def scroll(self, *, with_vectors: bool) -> Iterator[StoredPoint]:
        served = self._served
        if served is None:
            return
        snapshot = served.snapshot
        for row, pid in enumerate(snapshot.ids):
            if pid != META_ID:
                vector = snapshot.vectors[row].tolist() if with_vectors else None
                yield pid, dict(snapshot.payloads[row]), vector

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        served = self._served
        if served is None:
            return {}
        payloads = served.snapshot.payloads
        return {pid: dict(payloads[served.row[pid]]) for pid in ids if pid in served.row}

    def vectors(self, ids: Sequence[str]) -> dict[str, Any]:
        served = self._served
        if served is None:
            return {}
        return {pid: served.snapshot.vectors[served.row[pid]] for pid in ids if pid in served.row}

    def load_vectors(self, fingerprint: str) -> tuple[list[str], np.ndarray] | None:
        served = self._served
        if served is None or (self.read_meta() or {}).get("fingerprint") != fingerprint:
            return None
        ids = served.snapshot.ids
        return [ids[r] for r in served.search_rows], np.asarray(served.unit)

    def search(self, vectors: np.ndarray, limit: int, tenant: str = "") -> list[list[Hit]]:
        """Exact cosine search of the snapshot (what Edge's search returns, exhaustively);
        with ``tenant``, of that tenant's points only."""
        served = self._served
        if served is None or not len(served.search_rows):
            return [[] for _ in vectors]
        search_rows, unit = self._tenant_rows(served, tenant)
        if not len(search_rows):
            return [[] for _ in vectors]
        found = exact_search(unit, unit_rows(np.asarray(vectors, np.float32)), limit + 1)
        ids = served.snapshot.ids
        return [
            [(ids[search_rows[c]], float(score)) for c, score in zip(cols, scores) if c >= 0]
            for cols, scores in zip(found.rows.tolist(), found.scores.tolist())
        ]

    def _tenant_rows(
        self, served: _Served, tenant: str
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``tenant``'s rows of the served snapshot and their vectors (kept per snapshot)."""
        cached = served.tenants.get(tenant)
        if cached is None:
            payloads = served.snapshot.payloads
            rows = served.search_rows.tolist()
            ours = np.fromiter(
                (payloads[r].get("tenant", "") == tenant for r in rows), bool, len(rows)
            )
            if ours.all():  # one route set in the folder: the memory-mapped rows, no copy
                cached = served.tenants[tenant] = (served.search_rows, served.unit)
                return cached
            keep = ours & np.fromiter(("route" in payloads[r] for r in rows), bool, len(rows))
            cached = served.tenants[tenant] = (served.search_rows[keep], served.unit[keep])
        return cached


def unit_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (zero rows left as they are)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)
