"""The decision log: sampled routing decisions, kept in Qdrant beside the route set.

Opt in with :meth:`SemanticRouter.log_decisions`. Each routing call offers its decisions; the
log keeps every abstention and every decision whose margin to the runner-up is under
``margin``, and a ``sample`` share of the rest (a seeded draw). Kept decisions are queued and
written by a background thread every half second, so routing pays a queue put (the request
path never waits for Qdrant). Each entry is a point whose vector is the request's own (nothing
is ever encoded again: review clusters them, feedback reuses them) and whose payload is the
decision: time, tenant, route (``None``: abstained), score, threshold, runner-up and margin,
the route set revision, and the request text, or only its SHA-256 with ``keep_text=False``.

Where: a server collection ``<collection>-log`` that every replica writes; on an embedded
folder, a collection ``<collection>-log-<host>-<pid>`` per process (an embedded collection has
one writer process), all read together by :func:`read_decisions`. Each writer keeps its latest
``max_entries`` (the oldest are deleted).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import queue
import random
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._exceptions import ConfigurationError, SemRouterError
from ._routes import RouteMatch
from ._stores import Store
from ._stores._location import QdrantLocation

__all__ = ["Decision", "DecisionLog", "LogOptions", "read_decisions"]

logger = logging.getLogger("semrouter")
LOG_KEY = "semrouter_decision"
_FLUSH_EVERY = 0.5
_META = {"kind": "semrouter-decision-log", "schema_version": 1}


@dataclass(frozen=True)
class LogOptions:
    """What the decision log keeps.

    Args:
        sample: share of confident decisions kept (abstentions and low margins always are).
        margin: a decision whose best route leads the runner-up by less is always kept.
        max_entries: the latest entries each writer keeps.
        keep_text: store the request text; ``False``: only its SHA-256.
    """

    sample: float = 0.05
    margin: float = 0.05
    max_entries: int = 10_000
    keep_text: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample <= 1.0 or not 0.0 <= self.margin <= 2.0:
            raise ConfigurationError("sample must lie in [0, 1] and margin in [0, 2]")
        if isinstance(self.max_entries, bool) or not 1 <= self.max_entries <= 10_000_000:
            raise ConfigurationError("max_entries must be an int from 1 to 10,000,000")


@dataclass(frozen=True)
class Decision:
    """One logged routing decision."""

    time: float
    tenant: str
    route: str | None
    best: str | None  # the route ``score`` belongs to (``route``, or the best one missed)
    score: float
    threshold: float | None
    runner_up: str | None
    margin: float | None
    revision: int
    text: str | None
    text_sha256: str
    vector: npt.NDArray[np.float32] | None = None

    @property
    def abstained(self) -> bool:
        return self.route is None


def _decision(
    match: RouteMatch, text: str, keep_text: bool, tenant: str, revision: int
) -> dict[str, Any]:
    ranked = list(match.scores.items())  # best first
    best = match.name if match.name is not None else (ranked[0][0] if ranked else None)
    runner = next((name for name, _ in ranked if name != best), None)
    margin = match.score - match.scores[runner] if runner is not None else None
    return {
        "time": time.time(),
        "tenant": tenant,
        "route": match.name,
        "best": best,  # the route of ``score``: the one chosen, or the best one missed
        "score": float(match.score),
        "threshold": match.threshold,
        "runner_up": runner,
        "margin": None if margin is None else float(margin),
        "revision": revision,
        "text": text if keep_text else None,
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


class DecisionLog:
    """The writer of one process's decision log (see the module docstring)."""

    def __init__(
        self,
        location: QdrantLocation,
        collection: str,
        dimension: int,
        options: LogOptions,
        *,
        tenant: str = "",
        seed: int = 0,
    ) -> None:
        self.options = options
        self.tenant = tenant
        self._where = (location, collection, dimension)
        self._draw = random.Random(seed)
        self._closed = False
        self._open()

    def _open(self) -> None:
        """Open this process's log collection and start its writer thread (again in a forked
        child: the parent's thread and embedded collection stay the parent's)."""
        location, collection, dimension = self._where
        self._pid = os.getpid()
        self._store = location.open_store(log_collection(location, collection), **_edge(location))
        if self._store.read_meta() is None:
            self._store.create(dict(_META, dimension=dimension), dimension)
        self._queue: queue.SimpleQueue[tuple[str, npt.NDArray[np.float32], dict[str, Any]]]
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._since_trim = self.options.max_entries  # trim at the first write
        self._thread = threading.Thread(target=self._write_loop, daemon=True, name="semrouter-log")
        self._thread.start()

    @property
    def store(self) -> Store:
        return self._store

    def offer(
        self,
        texts: Sequence[str] | None,
        vectors: npt.NDArray[np.float32],
        matches: Sequence[RouteMatch],
        revision: int,
    ) -> None:
        """Queue the decisions worth keeping (a few microseconds; nothing waits for Qdrant)."""
        if self._closed or texts is None:
            return
        if self._pid != os.getpid():
            self._open()  # a forked child logs to its own collection, with its own thread
        options = self.options
        for text, vector, match in zip(texts, vectors, matches):
            keep = match.name is None or self._draw.random() < options.sample
            if not keep and len(match.scores) > 1:  # a close call? (scores are best first)
                scores = iter(match.scores.values())
                keep = next(scores) - next(scores) < options.margin
            if keep:  # only kept decisions pay for their record
                entry = _decision(match, text, options.keep_text, self.tenant, revision)
                self._queue.put((str(uuid.uuid4()), np.array(vector, np.float32), entry))

    def flush(self) -> None:
        """Write what is queued now (tests, shutdown)."""
        with self._lock:
            batch = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write_loop(self) -> None:
        while not self._closed:
            time.sleep(_FLUSH_EVERY)
            try:
                self.flush()
            except Exception as exc:  # a log must never break routing: say so, keep going
                logger.warning("the decision log could not be written: %s", exc)

    def _write(self, batch: list[tuple[str, npt.NDArray[np.float32], dict[str, Any]]]) -> None:
        store = self._store
        store.upsert(
            [pid for pid, _, _ in batch],
            np.stack([vector for _, vector, _ in batch]),
            [{LOG_KEY: entry} for _, _, entry in batch],
        )
        self._since_trim += len(batch)
        if self._since_trim >= max(1, min(100, self.options.max_entries // 10)):  # now and then
            self._since_trim = 0
            entries = [
                (pid, float(payload[LOG_KEY].get("time", 0.0)))
                for pid, payload, _ in store.scroll(with_vectors=False)
                if isinstance(payload.get(LOG_KEY), dict)
            ]
            extra = len(entries) - self.options.max_entries
            if extra > 0:
                entries.sort(key=lambda item: item[1])
                store.delete([pid for pid, _ in entries[:extra]])
        store.flush()

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(SemRouterError):
            self.flush()
        self._closed = True
        self._store.close()


def log_collection(location: QdrantLocation, collection: str) -> str:
    """The collection this process writes its decisions to."""
    if location.kind in ("path", "memory"):  # one writer process per embedded collection
        host = re.sub(r"[^A-Za-z0-9_.-]", "-", platform.node())[:40] or "host"
        return f"{collection}-log-{host}-{os.getpid()}"
    return f"{collection}-log"


def _edge(location: QdrantLocation) -> dict[str, Any]:
    return {"mode": "write"} if location.kind in ("path", "memory") else {}


def read_decisions(
    location: QdrantLocation,
    collection: str,
    *,
    tenant: str | None = None,
    own: DecisionLog | None = None,
    with_vectors: bool = True,
) -> list[Decision]:
    """Every logged decision of a route set, oldest first: all replicas' on a server, all
    processes' on an embedded folder (``own``: this process's log, read from its store)."""
    stores: list[Store] = []
    owned: list[Store] = []
    if own is not None:
        stores.append(own.store)
    if location.kind == "path" and location.path is not None:
        mine = own.store.target if own is not None else None
        for folder in sorted(Path(location.path).glob(f"{collection}-log-*")):
            if folder.is_dir() and str(folder) != mine:
                try:
                    store = location.open_store(folder.name, mode="read")
                except SemRouterError as exc:
                    logger.warning("skipping the decision log %s: %s", folder, exc)
                    continue
                stores.append(store)
                owned.append(store)
    elif location.kind not in ("path", "memory") and own is None:
        store = location.open_store(f"{collection}-log")
        if store.read_meta() is not None:
            stores.append(store)
        owned.append(store)
    out = []
    try:
        for store in stores:
            for _, payload, vector in store.scroll(with_vectors=with_vectors):
                entry = payload.get(LOG_KEY)
                if not isinstance(entry, dict):
                    continue
                if tenant is not None and entry.get("tenant") != tenant:
                    continue
                out.append(_read(entry, vector))
    finally:
        for store in owned:
            store.close()
    return sorted(out, key=lambda decision: decision.time)


def _read(entry: dict[str, Any], vector: Any) -> Decision:
    return Decision(
        time=float(entry.get("time", 0.0)),
        tenant=str(entry.get("tenant", "")),
        route=entry.get("route"),
        best=entry.get("best"),
        score=float(entry.get("score", 0.0)),
        threshold=entry.get("threshold"),
        runner_up=entry.get("runner_up"),
        margin=entry.get("margin"),
        revision=int(entry.get("revision", 0)),
        text=entry.get("text"),
        text_sha256=str(entry.get("text_sha256", "")),
        vector=None if vector is None else np.asarray(vector, np.float32),
    )
