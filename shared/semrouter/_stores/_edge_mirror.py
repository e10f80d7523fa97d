"""The writer's copy of every point of an embedded folder, and the checks made with it.

The writer keeps each point's payload and vector in memory (its *mirror*) so that after every
flush it can publish the readers' snapshot without reading anything back through Qdrant Edge,
and so that reopening costs one snapshot read instead of a scroll of every vector. On reopen the
snapshot is trusted only when it is current (no dirty mark) and agrees with Edge (point count
and a sample of points); a cosine collection's stored vectors must be unit vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError, StoreDamagedError
from . import _edge_files as files
from ._base import META_ID, META_KEY, _plain_vector, same_payload
from ._edge_reader import unit_rows

__all__ = [
    "Mirror",
    "check_against",
    "check_norms",
    "check_payloads",
    "from_snapshot",
    "restorable_rows",
    "to_snapshot",
    "vectors_for",
]

logger = logging.getLogger("semrouter")
#: point id -> (payload, vector), in insertion order.
Mirror = dict[str, tuple[dict[str, Any], npt.NDArray[np.float32]]]
_SAMPLE = 16  # points compared between Edge and the snapshot when the writer reopens


def from_snapshot(snapshot: files.Snapshot) -> Mirror:
    """The mirror a (trusted) snapshot describes (its vectors copied out of the file's map)."""
    vectors = np.array(snapshot.vectors, dtype=np.float32)
    return {
        pid: (payload, vectors[row])
        for row, (pid, payload) in enumerate(zip(snapshot.ids, snapshot.payloads))
    }


def to_snapshot(mirror: Mirror, revision: int) -> files.Snapshot:
    """The snapshot to publish for ``mirror``: the metadata point first (readers search the
    rows after it in place). Vectors are kept bit for bit as written (an encoder's unit rows,
    or Edge's normalised copies), so a reopened router scores exactly as before."""
    ids = sorted(mirror, key=lambda pid: pid != META_ID)  # stable: the rest keep their order
    dimension = next(iter(mirror.values()))[1].shape[0] if mirror else 0
    vectors = (
        np.stack([mirror[pid][1] for pid in ids]) if ids else np.zeros((0, dimension), np.float32)
    )
    return files.Snapshot(revision, tuple(ids), tuple(mirror[pid][0] for pid in ids), vectors)


def vectors_for(
    mirror: Mirror | None, fingerprint: str, dimension: int
) -> tuple[list[str], np.ndarray] | None:
    """Every point's id and vector (the metadata point left out), if the mirror holds a
    collection of this encoder."""
    if not mirror or META_ID not in mirror:
        return None
    if mirror[META_ID][0].get(META_KEY, {}).get("fingerprint") != fingerprint:
        return None
    ids = [pid for pid in mirror if pid != META_ID]
    if not ids:
        return [], np.zeros((0, dimension), np.float32)
    matrix = np.stack([mirror[pid][1] for pid in ids])
    return (ids, matrix) if matrix.shape[1] == dimension else None


def check_against(shard: Any, edge: Any, folder: Path, snapshot: files.Snapshot) -> None:
    """Edge must hold what a current snapshot says: the same count and the same sampled points
    (a dropped segment, zeroed vectors or flipped payload bytes show up here)."""
    count = int(shard.count(edge.CountRequest(exact=True)))
    if count != len(snapshot.ids):
        raise StoreDamagedError(
            f"the embedded folder {folder} is damaged: Qdrant Edge holds {count} points but "
            f"its last snapshot {len(snapshot.ids)}; " + files.rebuild_hint(True)
        )
    if not snapshot.ids:
        return
    step = max(1, len(snapshot.ids) // _SAMPLE)
    rows = list(range(0, len(snapshot.ids), step))[:_SAMPLE]
    records = shard.retrieve([snapshot.ids[i] for i in rows], with_payload=True, with_vector=True)
    found = {str(r.id): r for r in records}
    expected = unit_rows(snapshot.vectors[rows])
    for row, unit in zip(rows, expected):
        record = found.get(snapshot.ids[row])
        vector = _plain_vector(record.vector) if record is not None else None
        if record is None or vector is None:
            problem = "is missing from Qdrant Edge"
        elif not same_payload(dict(record.payload or {}), snapshot.payloads[row]):
            problem = "has another payload in Qdrant Edge than in its snapshot"
        elif not np.allclose(unit, vector, atol=1e-4):
            problem = "has another vector in Qdrant Edge than in its snapshot"
        else:
            continue
        raise StoreDamagedError(
            f"the embedded folder {folder} is damaged: point {snapshot.ids[row]} {problem} "
            "(bit rot in the stored vectors or payloads); " + files.rebuild_hint(True)
        )


def check_norms(mirror: Mirror, folder: Path) -> None:
    """A cosine collection stores unit vectors: a zeroed or non-finite one is bit rot."""
    bad = [
        pid
        for pid, (_, vector) in mirror.items()
        if not np.isfinite(vector).all() or abs(float(np.linalg.norm(vector)) - 1.0) > 1e-3
    ]
    if bad:
        raise StoreDamagedError(
            f"the embedded folder {folder} is damaged: {len(bad)} stored vectors are not unit "
            f"vectors (zeroed or corrupted; first: {bad[0]}); "
            + files.rebuild_hint(files.owned(folder))
        )


def check_payloads(ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
    """Refuse, before anything is written, a payload Qdrant Edge could not read back."""
    for point_id, payload in zip(ids, payloads):
        if files.payload_depth(payload) > files.MAX_PAYLOAD_DEPTH:
            raise ConfigurationError(
                f"point {point_id}: metadata nested deeper than {files.MAX_PAYLOAD_DEPTH} levels "
                "cannot be stored in an embedded folder (Qdrant Edge could not read it back)"
            )


def restorable_rows(snapshot: files.Snapshot, folder: Path) -> list[int]:
    """Rows of ``snapshot`` safe to write back: a payload Edge cannot read back is what bricked
    some folders, so it is left out (with a log line)."""
    rows = [
        row
        for row, payload in enumerate(snapshot.payloads)
        if files.payload_depth(payload) <= files.MAX_PAYLOAD_DEPTH
    ]
    if len(rows) < len(snapshot.ids):
        logger.warning(
            "left out %d points nested deeper than %d levels while restoring %s",
            len(snapshot.ids) - len(rows),
            files.MAX_PAYLOAD_DEPTH,
            folder,
        )
    return rows
