"""What the speed benchmarks share: interleaved timing, percentiles, the machine's load, reports.

Imported by the scripts in ``benchmarks/`` (``sys.path`` gets this folder first), e.g.::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchtools import time_pairs, write_report
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from semrouter import Encoder

T = TypeVar("T")


def data_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with ``--data`` (the data sets, ``../shared/data``) and ``--out`` (the report
    file), described by ``doc``'s first line."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path)
    return parser


def time_pairs(
    items: Iterable[T], first: Callable[[T], object], second: Callable[[T], object]
) -> tuple[list[float], list[float]]:
    """Seconds of ``first(item)`` and of ``second(item)``, each item in turn.

    Interleaved, so that load changes hit both alike (the encoder and the router beside it).
    """
    firsts, seconds = [], []
    for item in items:
        start = time.perf_counter()
        first(item)
        mid = time.perf_counter()
        second(item)
        seconds.append(time.perf_counter() - mid)
        firsts.append(mid - start)
    return firsts, seconds


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``values``: the sorted value at ``int(q * n)``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine(load_before: float) -> str:
    """``"<time>; <n> cpus, load avg <before> before, <now> after"`` for a report's title."""
    return (
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {os.cpu_count()} cpus, "
        f"load avg {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )


def write_report(
    text: str, out: Path | None, *, json_out: Path | None = None, data: Any = None
) -> None:
    """Print ``text``; write it to ``out`` and ``data`` as JSON to ``json_out`` where given."""
    print(text)
    for path, content in ((out, text), (json_out, None)):
        if path is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            content = json.dumps(data, indent=2, default=float)
        path.write_text(content + "\n")


class CachedEncoder(Encoder):
    """Wraps an encoder with an on-disk cache of its vectors (accuracy runs, never speed runs).

    Keyed by the model id and the texts, so two encoders may share one folder.
    """

    batch_size = 1_000_000

    def __init__(self, inner: Encoder, cache: Path) -> None:
        self.inner, self.cache = inner, cache
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self.default_threshold = inner.default_threshold
        cache.mkdir(parents=True, exist_ok=True)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256(("\x1e".join([self.model_id, *texts])).encode()).hexdigest()[:24]
        file = self.cache / f"{key}.npy"
        if file.exists():
            return np.load(file)
        vectors = self.inner.encode(texts)
        np.save(file, vectors)
        return vectors
