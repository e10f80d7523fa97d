"""OpenAIEncoder against a local OpenAI-compatible server, through the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import openai
import pytest

from semrouter._exceptions import ConfigurationError, EncoderError, MissingDependencyError
from semrouter.encoders import OpenAIEncoder, encoder_from_config
from tests.support.openai_server import TEST_API_KEY as OPENAI_TEST_KEY
from tests.support.openai_server import OpenAIServer, embedding_for

# A key that must never be printed: every check below greps for it.
CANARY = "sk-canary-7f3e9b1d2c4a6e8f0b1d3c5a7e9f1b3d"
MODEL = "test-embedding"  # unknown to the table, so tests pass dimension=
DIM = 32
# Read at import, before the no_openai_env fixture (every test here) clears the environment.
REAL_KEY = os.environ.get("OPENAI_API_KEY")


pytestmark = pytest.mark.usefixtures("no_openai_env")


def _encoder(server: OpenAIServer, **options: Any) -> OpenAIEncoder:
    """An encoder pointed at ``server`` (the test model, its width and key unless given)."""
    options.setdefault("model", MODEL)
    options.setdefault("dimension", None if "dimensions" in options else DIM)
    options.setdefault("api_key", OPENAI_TEST_KEY)
    options.setdefault("base_url", server.url)
    return OpenAIEncoder(**options)


@pytest.fixture
def make(openai_server: OpenAIServer) -> Iterator[Any]:
    """Build encoders pointed at the fixture server; closes them afterwards."""
    with contextlib.ExitStack() as stack:

        def build(**options: Any) -> OpenAIEncoder:
            encoder = _encoder(openai_server, **options)
            stack.callback(encoder.close)
            return encoder

        yield build


@pytest.fixture
async def amake(openai_server: OpenAIServer) -> AsyncIterator[Any]:
    """:func:`make` for async tests: the encoders are closed with ``aclose()``."""
    async with contextlib.AsyncExitStack() as stack:

        def build(**options: Any) -> OpenAIEncoder:
            encoder = _encoder(openai_server, **options)
            stack.push_async_callback(encoder.aclose)
            return encoder

        yield build


def expected(texts: list[str], width: int = DIM, model: str = MODEL) -> npt.NDArray[np.float32]:
    """What the encoder should return for ``texts``: the server's vectors, normalised."""
    rows = np.stack([embedding_for(text, width, model) for text in texts])
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- construction: dimension without an API call ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "width"),
    [
        ("text-embedding-3-small", 1536),
        ("text-embedding-3-large", 3072),
        ("text-embedding-ada-002", 1536),
    ],
)
def test_known_models_need_no_probe(
    make: Any, openai_server: OpenAIServer, model: str, width: int
) -> None:
    encoder = make(model=model, dimension=None)
    assert encoder.dimension == width
    assert encoder.model_id == f"openai:{model}"
    assert encoder.fingerprint == f"openai:{model}|dim={width}|l2"
    assert openai_server.requests == []


def test_unknown_model_without_dimension_is_a_configuration_error(
    openai_server: OpenAIServer,
) -> None:
    with pytest.raises(ConfigurationError, match="dimension=") as info:
        OpenAIEncoder(model="my-local-model", api_key=OPENAI_TEST_KEY, base_url=openai_server.url)
    assert isinstance(info.value, ValueError)
    assert openai_server.requests == []


def test_dimensions_sets_the_dimension(make: Any) -> None:
    encoder = make(model="text-embedding-3-large", dimensions=256)
    assert encoder.dimension == 256
    assert encoder.fingerprint == "openai:text-embedding-3-large|dim=256|l2"


@pytest.mark.parametrize(
    "options",
    [
        {"model": "text-embedding-3-small", "dimensions": 4096},
        {"model": "text-embedding-ada-002", "dimensions": 512},
        {"model": "text-embedding-3-small", "dimensions": 256, "dimension": 512},
        {"model": MODEL, "dimension": 0},
        {"model": MODEL, "dimension": DIM, "batch_size": 0},
        {"model": MODEL, "dimension": DIM, "batch_size": 4096},
        {"model": MODEL, "dimension": DIM, "max_retries": -1},
        {"model": MODEL, "dimension": DIM, "timeout": 0},
        {"model": "", "dimension": DIM},
    ],
)
def test_invalid_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        OpenAIEncoder(api_key=OPENAI_TEST_KEY, **options)


def test_thresholds_follow_the_model_family(make: Any) -> None:
    assert make(model="text-embedding-3-small", dimension=None).default_threshold == 0.3
    assert make(model="text-embedding-ada-002", dimension=None).default_threshold == 0.82


def test_missing_openai_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'semrouter\[openai\]'") as info:
        OpenAIEncoder(api_key=OPENAI_TEST_KEY)
    assert isinstance(info.value, ImportError)


# -- encoding -------------------------------------------------------------------------------


def test_encode_shape_normalisation_and_order(make: Any, openai_server: OpenAIServer) -> None:
    texts = ["book a flight", "cancel my order", "what's the weather?"]
    vectors = make().encode(texts)

    assert vectors.shape == (3, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # The server answers in reverse order: rows must follow the response's ``index``.
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-5, atol=1e-6)
    [request] = openai_server.embedding_requests
    assert request.inputs == texts
    assert request.model == MODEL
    assert request.authorization == f"Bearer {OPENAI_TEST_KEY}"
    assert request.dimensions is None and "dimensions" not in request.body


def test_encode_nothing_sends_nothing(make: Any, openai_server: OpenAIServer) -> None:
    assert make().encode([]).shape == (0, DIM)
    assert openai_server.requests == []


def test_batches_become_requests(make: Any, openai_server: OpenAIServer) -> None:
    texts = [f"utterance number {i}" for i in range(5)]
    vectors = make(batch_size=2).encode(texts)

    assert [r.inputs for r in openai_server.embedding_requests] == [
        texts[0:2],
        texts[2:4],
        texts[4:5],
    ]
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-5, atol=1e-6)


def test_dimensions_is_sent(make: Any, openai_server: OpenAIServer) -> None:
    vectors = make(model="text-embedding-3-small", dimensions=64).encode(["hello"])

    assert vectors.shape == (1, 64)
    [request] = openai_server.embedding_requests
    assert request.dimensions == 64
    np.testing.assert_allclose(
        vectors, expected(["hello"], 64, "text-embedding-3-small"), rtol=1e-5, atol=1e-6
    )


def test_float_responses_are_accepted(make: Any, openai_server: OpenAIServer) -> None:
    # Some compatible servers ignore encoding_format=base64 and send float lists.
    openai_server.floats_only = True
    np.testing.assert_allclose(make().encode(["a b"]), expected(["a b"]), rtol=1e-5, atol=1e-6)


def test_wrong_width_from_server(make: Any) -> None:
    encoder = make(dimension=16)  # the server sends 32
    with pytest.raises(EncoderError, match="length \\[32\\], expected 16"):
        encoder.encode(["hello"])


def test_missing_rows_from_server(make: Any, openai_server: OpenAIServer) -> None:
    openai_server.edit_response = lambda body: {**body, "data": body["data"][:-1]}
    with pytest.raises(EncoderError, match="1 embeddings for 2 texts"):
        make().encode(["one", "two"])


# -- async ----------------------------------------------------------------------------------


async def test_aencode_uses_the_async_client(
    amake: Any, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sync_path(self: OpenAIEncoder, texts: list[str]) -> Any:
        raise AssertionError("aencode must not run the sync client (in a thread or otherwise)")

    monkeypatch.setattr(OpenAIEncoder, "encode_batch", no_sync_path)
    encoder = amake(batch_size=2)
    texts = ["alpha", "beta", "gamma"]

    vectors = await encoder.aencode(texts)

    assert isinstance(encoder._async_client, openai.AsyncOpenAI)
    assert encoder._client is None  # the sync client was never built
    assert len(openai_server.embedding_requests) == 2
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-5, atol=1e-6)


async def test_aencode_runs_concurrently(amake: Any, openai_server: OpenAIServer) -> None:
    openai_server.delay = 0.3
    encoder = amake()
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(*(encoder.aencode([f"text {i}"]) for i in range(4)))
    elapsed = loop.time() - start
    assert [r.shape for r in results] == [(1, DIM)] * 4
    assert elapsed < 0.3 * 4 * 0.75  # overlapped, not one after another


async def test_aencode_errors_are_mapped(amake: Any, openai_server: OpenAIServer) -> None:
    openai_server.fail(503, times=2)
    encoder = amake(max_retries=1)
    with pytest.raises(EncoderError, match="HTTP 503") as info:
        await encoder.aencode(["hello"])
    assert isinstance(info.value.__cause__, openai.InternalServerError)


# -- retries and errors ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 429])
def test_transient_failures_are_retried(
    make: Any, openai_server: OpenAIServer, status: int
) -> None:
    openai_server.fail(status, times=2)
    vectors = make(max_retries=3).encode(["hello"])
    assert vectors.shape == (1, DIM)
    assert len(openai_server.embedding_requests) == 3


@pytest.mark.parametrize(
    ("status", "retries", "message", "cause"),
    [
        (429, 2, "rate limited \\(HTTP 429\\) after 2 retries", openai.RateLimitError),
        (500, 1, "HTTP 500", openai.InternalServerError),
    ],
)
def test_failure_after_retries(
    make: Any,
    openai_server: OpenAIServer,
    status: int,
    retries: int,
    message: str,
    cause: type[Exception],
) -> None:
    openai_server.fail(status, times=10)
    with pytest.raises(EncoderError, match=message) as info:
        make(max_retries=retries).encode(["hello"])
    assert isinstance(info.value.__cause__, cause)
    assert len(openai_server.embedding_requests) == retries + 1


def test_bad_request_is_not_retried(make: Any, openai_server: OpenAIServer) -> None:
    openai_server.fail(400, message="input cannot be an empty string")
    with pytest.raises(EncoderError, match="HTTP 400: input cannot be an empty string"):
        make().encode([""])
    assert len(openai_server.embedding_requests) == 1


def test_connection_refused(make: Any) -> None:
    encoder = make(base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0)
    with pytest.raises(EncoderError, match=r"cannot connect to http://127\.0\.0\.1") as info:
        encoder.encode(["hello"])
    assert isinstance(info.value.__cause__, openai.APIConnectionError)


def test_timeout(make: Any, openai_server: OpenAIServer) -> None:
    openai_server.delay = 1.0
    with pytest.raises(EncoderError, match="timed out") as info:
        make(timeout=0.2, max_retries=0).encode(["hello"])
    assert isinstance(info.value.__cause__, openai.APITimeoutError)


# -- the key --------------------------------------------------------------------------------


def test_key_never_shown(
    make: Any, openai_server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    openai_server.echo_key_in_errors = True  # a server that repeats the rejected key in full
    encoder = make(api_key=CANARY, max_retries=0)

    with caplog.at_level(logging.DEBUG), pytest.raises(EncoderError) as info:
        encoder.encode(["hello"])

    assert isinstance(info.value.__cause__, openai.AuthenticationError)
    # the server echoed the key; the chained SDK error, as tracebacks print it, is scrubbed too
    assert CANARY not in "".join(traceback.format_exception(info.value))
    assert "HTTP 401" in str(info.value)
    shown = [
        str(info.value),
        repr(info.value),
        repr(encoder),
        str(encoder),
        encoder.fingerprint,
        json.dumps(encoder.to_config()),
        repr(vars(encoder)),
        caplog.text,
    ]
    for text in shown:  # ...and we did not
        assert CANARY not in text
    assert openai_server.embedding_requests[0].authorization == f"Bearer {CANARY}"


async def test_key_never_shown_async(amake: Any, openai_server: OpenAIServer) -> None:
    openai_server.echo_key_in_errors = True
    encoder = amake(api_key=CANARY, max_retries=0)
    with pytest.raises(EncoderError) as info:
        await encoder.aencode(["hello"])
    assert CANARY not in str(info.value)


def test_secret_str_key(make: Any, openai_server: OpenAIServer) -> None:
    from pydantic import SecretStr

    encoder = make(api_key=SecretStr(OPENAI_TEST_KEY))
    assert encoder.encode(["x"]).shape == (1, DIM)
    assert openai_server.embedding_requests[0].authorization == f"Bearer {OPENAI_TEST_KEY}"
    assert OPENAI_TEST_KEY not in repr(vars(encoder))


def test_key_from_environment(
    make: Any, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_TEST_KEY)
    encoder = make(api_key=None)
    encoder.encode(["hello"])
    assert openai_server.embedding_requests[0].authorization == f"Bearer {OPENAI_TEST_KEY}"


def test_no_key_at_all(openai_server: OpenAIServer) -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIEncoder(model=MODEL, dimension=DIM, base_url=openai_server.url)
    with pytest.raises(ConfigurationError):
        OpenAIEncoder(model=MODEL, dimension=DIM, api_key="")


# -- config ---------------------------------------------------------------------------------


def test_to_config_and_back(
    make: Any, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = make(api_key=CANARY, batch_size=8)
    config = encoder.to_config()
    assert config == {
        "type": "openai",
        "model": MODEL,
        "dimensions": None,
        "base_url": openai_server.url,
        "dimension": DIM,
        "batch_size": 8,
    }

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_TEST_KEY)
    rebuilt = encoder_from_config(json.loads(json.dumps(config)))
    try:
        assert isinstance(rebuilt, OpenAIEncoder)
        assert rebuilt.to_config() == config
        assert rebuilt.fingerprint == encoder.fingerprint
        assert rebuilt.batch_size == 8
        np.testing.assert_allclose(rebuilt.encode(["hi"]), expected(["hi"]), rtol=1e-5, atol=1e-6)
    finally:
        rebuilt.close()  # type: ignore[attr-defined]


def test_config_with_dimensions(make: Any) -> None:
    config = make(model="text-embedding-3-small", dimensions=512).to_config()
    assert config["dimensions"] == 512 and config["dimension"] == 512
    assert "api_key" not in config


def test_bad_config_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        encoder_from_config({"type": "openai", "model": MODEL, "api_key": "k" * 10, "colour": 1})


# -- injected clients -----------------------------------------------------------------------


async def test_injected_sync_client(openai_server: OpenAIServer) -> None:
    client = openai.OpenAI(api_key=OPENAI_TEST_KEY, base_url=openai_server.url, max_retries=0)
    try:
        encoder = OpenAIEncoder(model=MODEL, dimension=DIM, client=client)
        assert encoder.encode(["a"]).shape == (1, DIM)
        # No async client given: aencode runs the injected sync client in a worker thread.
        assert (await encoder.aencode(["b"])).shape == (1, DIM)
        await encoder.aclose()
        assert not client.is_closed()  # injected clients belong to the caller
        assert len(openai_server.embedding_requests) == 2
    finally:
        client.close()


async def test_injected_async_client(openai_server: OpenAIServer) -> None:
    client = openai.AsyncOpenAI(api_key=OPENAI_TEST_KEY, base_url=openai_server.url)
    try:
        encoder = OpenAIEncoder(model=MODEL, dimension=DIM, async_client=client)
        assert (await encoder.aencode(["a"])).shape == (1, DIM)
        with pytest.raises(ConfigurationError, match="client="):
            encoder.encode(["b"])  # not cached; no key of its own to build a sync client with
    finally:
        await client.close()


def test_injected_client_key_is_scrubbed(openai_server: OpenAIServer) -> None:
    openai_server.echo_key_in_errors = True
    client = openai.OpenAI(api_key=CANARY, base_url=openai_server.url, max_retries=0)
    try:
        encoder = OpenAIEncoder(model=MODEL, dimension=DIM, client=client)
        with pytest.raises(EncoderError) as info:
            encoder.encode(["a"])
        assert CANARY not in str(info.value)
    finally:
        client.close()


# -- the real API, only when a key is configured ----------------------------------------------


@pytest.mark.skipif(not REAL_KEY, reason="OPENAI_API_KEY is not set")
def test_real_openai_api() -> None:
    encoder = OpenAIEncoder(model="text-embedding-3-small", dimensions=256, api_key=REAL_KEY)
    try:
        vectors = encoder.encode(["route me to billing"])
    finally:
        encoder.close()
    assert vectors.shape == (1, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
