"""OpenAI embeddings, or any OpenAI-compatible ``/v1/embeddings`` server, through the official SDK.

The dimension is never probed with a (paid) API call: it comes from ``dimension=``, from
``dimensions=`` (the API's own truncation option), or from a table of OpenAI's models.
The API key is kept as a :class:`pydantic.SecretStr` and is scrubbed from every message this
module writes.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from pydantic import SecretStr

from .._deadline import deadline_transports
from .._exceptions import ConfigurationError, EncoderError, missing_dependency
from ._base import Encoder

if TYPE_CHECKING:
    import openai
    from openai.types import CreateEmbeddingResponse

__all__ = ["OpenAIEncoder"]

DEFAULT_MODEL = "text-embedding-3-small"
#: Output widths of OpenAI's embedding models, so that no API call is needed to learn them.
KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# Models that accept the ``dimensions`` request parameter (text-embedding-3 and later).
_NO_DIMENSIONS_PARAM = frozenset({"text-embedding-ada-002"})
# OpenAI caps one request at 2048 inputs.
_MAX_BATCH = 2048
_DEFAULTS: dict[str, Any] = {"batch_size": 256, "max_retries": 3, "timeout": 30.0}
_SDK_PREFIX = re.compile(r"^Error code: \d+ - ")
# Keys shorter than this are not secrets worth scrubbing (and replacing them would mangle text).
_MIN_SCRUB_LEN = 8


class OpenAIEncoder(Encoder):
    """Embeddings from the OpenAI API or an OpenAI-compatible server (vLLM, Ollama, LiteLLM...).

    Args:
        model: the embedding model name sent to the API.
        dimensions: ask the API to shorten the vectors to this length (text-embedding-3 only).
        base_url: an OpenAI-compatible server, such as ``"http://localhost:8000/v1"``; by default
            the SDK's (``$OPENAI_BASE_URL`` or api.openai.com).
        api_key: the key; defaults to ``$OPENAI_API_KEY``. Never shown in ``repr``, config or
            error messages.
        batch_size: texts per request (OpenAI accepts at most 2048).
        max_retries: retries of rate-limited, failed or timed-out requests (the SDK backs off
            exponentially and honours ``Retry-After``).
        timeout: seconds per request, from connecting to the last byte of the answer (the
            SDK's own timeout bounds each socket read only, so a server dripping its answer
            never trips it); each retry gets a budget of its own. Not applied to an injected
            ``client=`` / ``async_client=``: configure those yourself.
        dimension: the output width, needed for models missing from :data:`KNOWN_DIMENSIONS`.
        client: a ready ``openai.OpenAI`` to use instead of building one.
        async_client: a ready ``openai.AsyncOpenAI`` for :meth:`aencode`. With ``client=`` but
            no ``async_client=``, :meth:`aencode` runs the sync client in a worker thread.

    Example:
        >>> enc = OpenAIEncoder(model="text-embedding-3-small", dimensions=256)  # doctest: +SKIP
        >>> enc.encode(["book a flight"]).shape  # doctest: +SKIP
        (1, 256)
    """

    config_type: ClassVar[str | None] = "openai"
    # text-embedding-3 cosine scores are compressed: unrelated sentences score roughly
    # 0.0-0.25, paraphrases roughly 0.5-0.8, so 0.3 separates them. ada-002 scores everything
    # above 0.7, so it gets its own default (see __init__).
    default_threshold = 0.3

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        dimensions: int | None = None,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        batch_size: int = _DEFAULTS["batch_size"],
        max_retries: int = _DEFAULTS["max_retries"],
        timeout: float = _DEFAULTS["timeout"],
        dimension: int | None = None,
        client: openai.OpenAI | None = None,
        async_client: openai.AsyncOpenAI | None = None,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise missing_dependency("openai", "openai") from exc
        self._openai = openai

        if not isinstance(model, str) or not model:
            raise ConfigurationError("model must be a non-empty string")
        if not 1 <= batch_size <= _MAX_BATCH:
            raise ConfigurationError(f"batch_size must be between 1 and {_MAX_BATCH}")
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if timeout <= 0:
            raise ConfigurationError("timeout must be positive")
        if base_url is not None:
            _check_base_url(base_url)
        self.model = model
        self.dimensions = dimensions
        self.base_url = base_url
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.model_id = f"openai:{model}"
        self.dimension = _resolve_dimension(model, dimensions, dimension)
        if model == "text-embedding-ada-002":
            # ada-002 cosine scores sit between 0.7 and 1.0 even for unrelated texts.
            self.default_threshold = 0.82

        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if isinstance(key, str):
            key = SecretStr(key)
        if key is not None and not key.get_secret_value():
            key = None
        if key is None and client is None and async_client is None:
            raise ConfigurationError(
                "no OpenAI API key: pass api_key=, set OPENAI_API_KEY or inject client= "
                "(a server without auth still needs a placeholder key)"
            )
        self._api_key: SecretStr | None = key
        self._client = client
        self._async_client = async_client
        self._thread_offload = client is not None and async_client is None
        self._owns_sync = self._owns_async = False
        self._lock = threading.Lock()

    def encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        client = self._sync_client()
        with self._api_errors(client.max_retries):
            response = client.embeddings.create(input=texts, model=self.model, **self._extra())
        return self._matrix(response, len(texts))

    async def aencode_batch(self, texts: list[str]) -> npt.ArrayLike:
        if self._thread_offload:
            return await super().aencode_batch(texts)
        client = self._asynchronous_client()
        with self._api_errors(client.max_retries):
            response = await client.embeddings.create(
                input=texts, model=self.model, **self._extra()
            )
        return self._matrix(response, len(texts))

    def close(self) -> None:
        """Close the HTTP connections of the sync client this encoder built (not injected ones)."""
        with self._lock:
            client = self._client if self._owns_sync else None
            if client is not None:
                self._client, self._owns_sync = None, False
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close both clients this encoder built (not injected ones)."""
        self.close()
        with self._lock:
            client = self._async_client if self._owns_async else None
            if client is not None:
                self._async_client, self._owns_async = None, False
        if client is not None:
            await client.close()

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "type": "openai",
            "model": self.model,
            "dimensions": self.dimensions,
            "base_url": self.base_url,
            "dimension": self.dimension,
        }
        for name, default in _DEFAULTS.items():
            if getattr(self, name) != default:
                config[name] = getattr(self, name)
        return config

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"OpenAIEncoder(model={self.model!r}, dimension={self.dimension}{where})"

    # -- clients -----------------------------------------------------------------------------

    def _sync_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                options = self._client_options("client=")
                http = self._openai.DefaultHttpxClient
                self._client = self._openai.OpenAI(
                    **options, http_client=http(mounts=self._deadline_mounts(http, False))
                )
                self._owns_sync = True
            return self._client

    def _asynchronous_client(self) -> openai.AsyncOpenAI:
        with self._lock:
            if self._async_client is None:
                options = self._client_options("async_client=")
                http = self._openai.DefaultAsyncHttpxClient
                self._async_client = self._openai.AsyncOpenAI(
                    **options, http_client=http(mounts=self._deadline_mounts(http, True))
                )
                self._owns_async = True
            return self._async_client

    def _deadline_mounts(self, client_class: type, asynchronous: bool) -> dict[str, Any]:
        """Mounts that hold every request to ``timeout`` seconds whole (see ``_deadline``).

        Mounted at ``"all://"``: a proxy from the environment (a more specific mount) still
        applies, with the SDK's per-read timeouts only.
        """
        transports = deadline_transports(self.timeout, flavour=_httpx_flavour(client_class))
        return {"all://": transports[1] if asynchronous else transports[0]}

    def _client_options(self, injectable: str) -> dict[str, Any]:
        if self._api_key is None:
            raise ConfigurationError(
                f"no OpenAI API key to build a client with: pass api_key= or {injectable}"
            )
        return {
            "api_key": self._api_key.get_secret_value(),
            "base_url": self.base_url,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
        }

    def _extra(self) -> dict[str, Any]:
        return {} if self.dimensions is None else {"dimensions": self.dimensions}

    # -- responses and errors ----------------------------------------------------------------

    def _matrix(self, response: CreateEmbeddingResponse, rows: int) -> npt.NDArray[np.float32]:
        # A proxy or a wrong base_url can answer 200 with an HTML page: the SDK then hands back
        # a str (or a half-filled object) instead of an embeddings response.
        items = getattr(response, "data", None)
        if not isinstance(items, list) or not all(
            isinstance(getattr(item, "index", None), int)
            and isinstance(getattr(item, "embedding", None), list)
            for item in items
        ):
            raise EncoderError(
                f"{self!r}: the server's answer is not an embeddings response "
                f"({self._scrub(_excerpt(response))}); is base_url an OpenAI-compatible "
                "/v1 endpoint?"
            )
        data = sorted(items, key=lambda item: item.index)
        if [item.index for item in data] != list(range(rows)):
            raise EncoderError(
                f"{self!r}: the server returned {len(data)} embeddings for {rows} texts"
            )
        widths = {len(item.embedding) for item in data}
        if widths != {self.dimension}:
            raise EncoderError(
                f"{self!r}: the server returned vectors of length {sorted(widths)}, "
                f"expected {self.dimension}; pass dimension= with the model's real width"
            )
        try:
            matrix = np.asarray([item.embedding for item in data], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EncoderError(f"{self!r}: the server returned non-numeric embeddings") from exc
        if not np.all(np.isfinite(matrix)):
            raise EncoderError(f"{self!r}: the server returned embeddings with NaN or infinity")
        return matrix

    @contextmanager
    def _api_errors(self, retries: int) -> Iterator[None]:
        """Translate the SDK's exceptions into :class:`EncoderError`, without the key."""
        openai = self._openai
        try:
            yield
        except EncoderError:
            raise
        except openai.APITimeoutError as exc:
            budget = f"no complete answer within {self.timeout:g} s"
            raise self._error(f"timed out ({budget}, after {retries} retries)", exc) from exc
        except openai.APIConnectionError as exc:
            where = self.base_url or "the OpenAI API"
            raise self._error(f"cannot connect to {where} (after {retries} retries)", exc) from exc
        except openai.AuthenticationError as exc:
            raise self._error("the API key was rejected (HTTP 401)", exc) from exc
        except openai.RateLimitError as exc:
            raise self._error(f"rate limited (HTTP 429) after {retries} retries", exc) from exc
        except openai.APIStatusError as exc:
            raise self._error(f"HTTP {exc.status_code}", exc) from exc
        except (openai.OpenAIError, ValueError) as exc:  # malformed or empty responses
            raise self._error(type(exc).__name__, exc) from exc
        except (AttributeError, TypeError) as exc:
            # The SDK's own parser trips over a 200 answer that is not JSON (an HTML page).
            raise self._error(
                "the server's answer is not an embeddings response; is base_url an "
                "OpenAI-compatible /v1 endpoint?",
                exc,
            ) from exc

    def _error(self, what: str, exc: BaseException) -> EncoderError:
        self._scrub_exception(exc)
        detail = getattr(exc, "message", None) or str(exc)
        detail = _SDK_PREFIX.sub("", detail)  # "Error code: 429 - ..." repeats our status
        return EncoderError(
            f"OpenAI embeddings request for {self.model!r} failed: {what}: {self._scrub(detail)}"
        )

    def __reduce__(self) -> Any:
        raise TypeError(
            "OpenAIEncoder is not picklable: it holds an API key and live clients; "
            "rebuild it with encoder_from_config(encoder.to_config())"
        )

    def _scrub_exception(self, exc: BaseException) -> None:
        """Remove the key from the SDK's exception itself: it stays chained as ``__cause__``,
        and tracebacks, loggers and tracers (LangSmith) print the whole chain."""
        exc.args = tuple(self._scrub(a) if isinstance(a, str) else a for a in exc.args)
        message = getattr(exc, "message", None)
        if isinstance(message, str):
            exc.message = self._scrub(message)  # type: ignore[attr-defined]
        body = getattr(exc, "body", None)
        if body is not None:
            try:
                exc.body = json.loads(self._scrub(json.dumps(body)))  # type: ignore[attr-defined]
            except (TypeError, ValueError):
                exc.body = None  # type: ignore[attr-defined]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            if len(secret) >= _MIN_SCRUB_LEN:
                text = text.replace(secret, "***")
        return text

    def _secrets(self) -> Sequence[str]:
        found = [] if self._api_key is None else [self._api_key.get_secret_value()]
        for client in (self._client, self._async_client):
            key = getattr(client, "api_key", None)
            if isinstance(key, str):
                found.append(key)
        return found


def untrusted_key_destination(base_url: Any) -> str | None:
    """The server named by ``base_url`` if the user did not choose it, else ``None``.

    The user chose OpenAI's API (the SDK's default) and ``$OPENAI_BASE_URL``; a config file
    naming any other server must not get ``$OPENAI_API_KEY`` sent there without the caller's
    consent. The answer names the server without credentials.
    """
    from .._exceptions import redact_url

    if base_url is None:
        return None
    if not isinstance(base_url, str):
        return repr(base_url)
    chosen = os.environ.get("OPENAI_BASE_URL")
    if chosen and _same_server(chosen, base_url):
        return None
    parts = urlsplit(base_url)
    if parts.scheme == "https" and parts.hostname == "api.openai.com" and parts.port in (None, 443):
        return None
    return redact_url(base_url)


def _same_server(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def _check_base_url(base_url: Any) -> None:
    from .._exceptions import redact_url

    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a str, got {type(base_url).__name__}")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigurationError(f"base_url {redact_url(base_url)!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url {redact_url(base_url)!r} must be an http:// or https:// URL"
        )


def _httpx_flavour(client_class: type) -> ModuleType:
    """The httpx module the SDK's HTTP client derives from: ``httpx`` (openai 1.x) or an
    API-compatible fork such as ``httpx2`` (openai 3.x); the deadline transports must answer
    with its classes."""
    for base in client_class.__mro__:
        root = base.__module__.partition(".")[0]
        if root.startswith("httpx"):
            return importlib.import_module(root)
    return importlib.import_module("httpx")


def _excerpt(response: Any, limit: int = 120) -> str:
    text = response if isinstance(response, str) else f"a {type(response).__name__}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _resolve_dimension(model: str, dimensions: int | None, dimension: int | None) -> int:
    for name, value in (("dimensions", dimensions), ("dimension", dimension)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigurationError(f"{name} must be an integer")
        if value is not None and value < 1:
            raise ConfigurationError(f"{name} must be at least 1")
    native = KNOWN_DIMENSIONS.get(model)
    if dimensions is not None:
        if model in _NO_DIMENSIONS_PARAM:
            raise ConfigurationError(f"{model} does not accept dimensions=")
        if native is not None and dimensions > native:
            raise ConfigurationError(f"{model} makes {native}-d vectors; dimensions={dimensions}")
        if dimension is not None and dimension != dimensions:
            raise ConfigurationError(f"dimension={dimension} contradicts dimensions={dimensions}")
        return dimensions
    if dimension is not None:
        return dimension
    if native is None:
        raise ConfigurationError(
            f"the output width of {model!r} is not known: pass dimension= (the vector length) "
            "so that no API call is spent to find it"
        )
    return native
