"""API keys never show through the LangChain and LlamaIndex adapters.

The core's own checks are in ``test_secrets.py``; here an ``OpenAIEncoder`` holding a canary
key is wrapped in the adapters' objects, and every way they can be shown or saved is grepped
for it: ``repr``/``str``, LangChain ``dumpd``/``dumps``, pydantic ``model_dump``, LlamaIndex
``to_dict``/``to_json``, pickling, DEBUG logs, LangChain traces, and the errors of a call
that fails. Encoders that must make a call talk to a loopback port that refuses connections
or to the fake OpenAI server of ``tests/support`` (which checks the key), never further.
"""

from __future__ import annotations

import inspect
import json
import logging
import pickle
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from llama_index.core.tools import FunctionTool, ToolMetadata

import semrouter
from langchain_semrouter import SemanticBranch, SemRouterEmbeddings
from llama_index_semrouter import SemRouterEmbedding, SemRouterSelector, SemRouterToolRetriever
from semrouter import EncoderError, FakeEncoder, OpenAIEncoder, Route, SemanticRouter
from tests.support.openai_server import OpenAIServer

CANARY = "sk-canary-5e1f0c9b7d2a4e63"
MODEL = "test-embedding"
DIM = 8
CHOICES = [
    ToolMetadata(name="weather", description="the weather forecast"),
    ToolMetadata(name="flights", description="book a flight"),
]


pytestmark = pytest.mark.usefixtures("no_openai_env")


@pytest.fixture
def offline_encoder(refusing_url: str) -> Iterator[OpenAIEncoder]:
    """An encoder with the canary key whose every call meets a closed loopback port."""
    encoder = OpenAIEncoder(
        api_key=CANARY, base_url=f"{refusing_url}/v1", dimension=DIM, max_retries=0, timeout=2
    )
    yield encoder
    encoder.close()


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    """The fake OpenAI server on 127.0.0.1; it accepts the canary key only."""
    with OpenAIServer(api_key=CANARY, dimension=DIM) as running:
        yield running


@pytest.fixture
def served_encoder(server: OpenAIServer) -> Iterator[OpenAIEncoder]:
    """An encoder with the canary key that works, against :func:`server`."""
    encoder = OpenAIEncoder(
        api_key=CANARY, base_url=server.url, model=MODEL, dimension=DIM, max_retries=0
    )
    yield encoder
    encoder.close()


def _pickled(obj: object) -> str:
    """The pickle of ``obj`` as text, or the error text if it cannot be pickled."""
    try:
        return pickle.dumps(obj).decode("latin-1")
    except Exception as exc:  # unpicklable is fine, but the refusal must not show the key
        return _error_text(exc)


def _shown(func: Callable[[], object]) -> str:
    """What ``func`` gives, as text, or the error text if it fails."""
    try:
        value = func()
    except Exception as exc:
        return _error_text(exc)
    return value if isinstance(value, str) else repr(value)


def _error_text(exc: BaseException) -> str:
    return "\n".join(
        ["".join(traceback.format_exception(exc)), str(exc), repr(exc), repr(exc.__cause__)]
    )


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)


def _leaks(texts: dict[str, str]) -> list[str]:
    """The names of the texts that contain the canary."""
    assert all(texts.values()), [name for name, text in texts.items() if not text]
    return [name for name, text in texts.items() if CANARY in text]


def _traced_errors(collector: RunCollectorCallbackHandler) -> str:
    return "\n".join(f"{run.error}\n{run.model_dump_json()}" for run in collector.traced_runs)


# -- the embeddings adapters, built with a key and never called --------------------------------


def _every_view(
    obj: object, views: dict[str, str], caplog: pytest.LogCaptureFixture
) -> dict[str, str]:
    """Every way ``obj`` shows itself: repr, str, the ``views`` given, its pickle, the logs."""
    texts = {"repr": repr(obj), "str": str(obj), **views, "pickle": _pickled(obj)}
    texts["logs"] = _logged(caplog) or "(none)"
    return texts


def test_langchain_embeddings_never_show_the_key(
    offline_encoder: OpenAIEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    embeddings = SemRouterEmbeddings(encoder=offline_encoder)
    views = {
        "vars": repr(vars(embeddings)),
        "encoder vars": repr(vars(offline_encoder)),
        "dumpd": json.dumps(dumpd(embeddings)),
        "dumps": dumps(embeddings, pretty=True),
    }
    texts = _every_view(embeddings, views, caplog)
    assert "127.0.0.1" in texts["repr"]  # the encoder is shown, only its key is not
    assert _leaks(texts) == []


def test_llama_index_embedding_never_shows_the_key(
    offline_encoder: OpenAIEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    embedding = SemRouterEmbedding(encoder=offline_encoder)
    views = {
        "to_dict": json.dumps(embedding.to_dict()),
        "to_json": embedding.to_json(),
        "model_dump": repr(embedding.model_dump()),
        "model_dump_json": embedding.model_dump_json(),
        "private": repr(embedding.__pydantic_private__),
        "langchain dumpd": json.dumps(dumpd(embedding)),
    }
    # (pickled, the SDK module inside makes LlamaIndex drop the encoder)
    texts = _every_view(embedding, views, caplog)
    assert embedding.to_dict()["class_name"] == "SemRouterEmbedding"
    assert _leaks(texts) == []


# -- a failing call ----------------------------------------------------------------------------

CALLS: dict[str, Callable[[OpenAIEncoder], Any]] = {
    "langchain-query": lambda e: SemRouterEmbeddings(e).embed_query("hello"),
    "langchain-documents": lambda e: SemRouterEmbeddings(e).embed_documents(["a", "b"]),
    "langchain-async": lambda e: SemRouterEmbeddings(e).aembed_query("hello"),
    "llama-index-query": lambda e: SemRouterEmbedding(e).get_query_embedding("hello"),
    "llama-index-batch": lambda e: SemRouterEmbedding(e).get_text_embedding_batch(["a", "b"]),
    "llama-index-async": lambda e: SemRouterEmbedding(e).aget_query_embedding("hello"),
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_failed_embedding_call_hides_the_key(
    call: str, offline_encoder: OpenAIEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(EncoderError) as info:
        warnings.simplefilter("always")
        result = CALLS[call](offline_encoder)
        if inspect.isawaitable(result):
            await result
    assert "127.0.0.1" in str(info.value)  # the refused connection, not another failure
    texts = {
        "error": _error_text(info.value),
        "logs": _logged(caplog) or "(none)",
        "warnings": "\n".join(str(w.message) for w in caught) or "(none)",
        "encoder after the call": repr(vars(offline_encoder)),  # now holds a built SDK client
        "pickle after the call": _pickled(SemRouterEmbedding(offline_encoder)),
    }
    assert _leaks(texts) == []


# -- the routing adapters, on a router whose encoder holds the key ------------------------------


def _revoke(server: OpenAIServer) -> None:
    """From now on the server answers HTTP 401 and shows the key masked, as OpenAI does."""
    server.api_key = "sk-another-key-entirely"


def test_semantic_branch_never_shows_the_key(
    server: OpenAIServer, served_encoder: OpenAIEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    routes = [Route("greet", ["hello there"]), Route("bye", ["goodbye now"])]
    router = SemanticRouter(routes, encoder=served_encoder)
    branch = SemanticBranch(
        {"greet": RunnableLambda(lambda x: "hi"), "bye": RunnableLambda(lambda x: "bye")},
        default=RunnableLambda(lambda x: "default"),
        router=router,
    )
    collector = RunCollectorCallbackHandler()
    assert branch.invoke("hello there", {"callbacks": [collector]}) in {"hi", "bye", "default"}
    assert server.embedding_requests[-1].authorization == f"Bearer {CANARY}"  # it was used
    texts = {
        "repr": repr(branch),
        "str": str(branch),
        "dumpd": json.dumps(dumpd(branch)),
        "dumps": dumps(branch),
        "to_json": repr(branch.to_json()),
        "model_dump": repr(branch.model_dump()),
        "model_dump_json": _shown(branch.model_dump_json),
        "pickle": _pickled(branch),
        "router vars": repr(vars(router)),
        "trace": _traced_errors(collector),
    }
    # The key is revoked: the next call fails, and neither the error nor the trace has the key.
    _revoke(server)
    collector = RunCollectorCallbackHandler()
    with pytest.raises(EncoderError) as info:
        branch.invoke("goodbye", {"callbacks": [collector]})
    assert "HTTP 401" in str(info.value)
    texts["error"] = _error_text(info.value)
    texts["failed trace"] = _traced_errors(collector)
    texts["logs"] = _logged(caplog)
    assert "EncoderError" in texts["failed trace"]
    assert _leaks(texts) == []
    router.close()


def test_llama_index_selector_and_retriever_never_show_the_key(
    server: OpenAIServer, served_encoder: OpenAIEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def get_weather(city: str) -> str:
        """The weather forecast for a city."""
        return "sunny"

    selector = SemRouterSelector.from_defaults(CHOICES, encoder=served_encoder, fallback="weather")
    retriever = SemRouterToolRetriever.from_defaults(
        [FunctionTool.from_defaults(get_weather)],
        encoder=SemRouterEmbedding(served_encoder),  # a BaseEmbedding, unwrapped to the encoder
        # never abstains by default (the best top_k), as ObjectIndex
    )
    assert selector.select(CHOICES, "will it rain?").ind in {0, 1}
    assert [t.metadata.name for t in retriever.retrieve("rain in Paris?")] == ["get_weather"]
    assert server.embedding_requests[-1].authorization == f"Bearer {CANARY}"
    texts: dict[str, str] = {}
    for name, obj in (("selector", selector), ("retriever", retriever)):
        texts |= {
            f"{name} repr": repr(obj),
            f"{name} str": str(obj),
            f"{name} vars": repr(vars(obj)),
            f"{name} index": repr(getattr(obj, "router", None) or getattr(obj, "index", None)),
            f"{name} pickle": _pickled(obj),
        }
    texts["selector prompts"] = repr(selector.get_prompts())
    _revoke(server)
    with pytest.raises(EncoderError) as info:
        selector.select(CHOICES, "book me a flight")
    assert "HTTP 401" in str(info.value)
    texts["error"] = _error_text(info.value)
    texts["logs"] = _logged(caplog)
    assert _leaks(texts) == []
    selector.close()
    retriever.close()


# -- known leaks -------------------------------------------------------------------------------


def _echoing(server: OpenAIServer) -> None:
    """From now on the server rejects the canary key and repeats it in full in its 401 body."""
    _revoke(server)
    server.echo_key_in_errors = True


@pytest.mark.parametrize("where", ["langchain-embeddings", "llama-index-embedding", "trace"])
def test_key_echoed_by_the_server_stays_out_of_tracebacks(
    where: str, server: OpenAIServer, served_encoder: OpenAIEncoder
) -> None:
    collector = RunCollectorCallbackHandler()
    branch = SemanticBranch(
        (Route("greet", ["hello there"]), RunnableLambda(lambda x: "hi")),
        RunnableLambda(lambda x: "default"),
        router=SemanticRouter([Route("greet", ["hello there"])], encoder=served_encoder),
    )
    _echoing(server)
    calls: dict[str, Callable[[], object]] = {
        "langchain-embeddings": lambda: SemRouterEmbeddings(served_encoder).embed_query("x"),
        "llama-index-embedding": lambda: SemRouterEmbedding(served_encoder).get_query_embedding(
            "x"
        ),
        "trace": lambda: branch.invoke("hello", {"callbacks": [collector]}),
    }
    with pytest.raises(EncoderError) as info:
        calls[where]()
    assert CANARY not in str(info.value)  # the message itself is scrubbed ...
    shown = _traced_errors(collector) if where == "trace" else _error_text(info.value)
    assert CANARY not in shown  # ... and so is the traceback it comes with
    branch.router.close()


@pytest.mark.parametrize("how", ["pickle", "from_dict"])
def test_llama_index_embedding_round_trip_keeps_or_refuses_its_encoder(
    how: str, offline_encoder: OpenAIEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the default model, so the test loads no ONNX model.
    monkeypatch.setattr(semrouter, "LocalEncoder", lambda: FakeEncoder(384, model_id="local"))
    embedding = SemRouterEmbedding(encoder=offline_encoder)
    try:
        if how == "pickle":
            restored = pickle.loads(pickle.dumps(embedding))
        else:
            restored = SemRouterEmbedding.from_dict(embedding.to_dict())
    except (TypeError, pickle.PicklingError, semrouter.SemRouterError):
        return  # refusing is a fine answer; silently swapping the model is not
    assert restored.encoder.model_id == embedding.encoder.model_id
    assert restored.dimension == embedding.dimension
