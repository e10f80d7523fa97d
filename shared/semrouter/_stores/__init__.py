"""Where route vectors live: one Qdrant collection behind the :class:`Store` interface.

- ``_base.py``: the interface, the metadata point and point helpers;
- ``_client.py``: a Qdrant server or any ready ``QdrantClient`` (conditional writes);
- ``_edge.py`` and ``_edge_*.py``: Qdrant Edge embedded in the process: the store, its
  one-writer lock, its files, the readers' snapshot and the writer's mirror;
- ``_location.py``: :class:`QdrantLocation`, which opens the right store.
"""

from __future__ import annotations

from ._base import (
    META_ID,
    META_KEY,
    NAMESPACE,
    Hit,
    Store,
    StoredPoint,
    payload_sparse,
    same_payload,
)
from ._client import ClientStore
from ._edge import EdgeStore, StoreMode
from ._location import QdrantLocation

__all__ = [
    "META_ID",
    "META_KEY",
    "NAMESPACE",
    "ClientStore",
    "EdgeStore",
    "Hit",
    "QdrantLocation",
    "Store",
    "StoreMode",
    "StoredPoint",
    "payload_sparse",
    "same_payload",
]
