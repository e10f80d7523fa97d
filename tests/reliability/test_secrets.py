"""API keys never show in errors, tracebacks, logs, warnings, repr or saved configs."""

from __future__ import annotations

import logging
import traceback
import warnings
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from semrouter import BackendUnavailableError, ConfigurationError, FakeEncoder, SemanticRouter

from .conftest import ROUTES

CANARY = "sk-canary-5e1f0c9b7d2a4e63"


def _everything(
    exc: BaseException, caplog: pytest.LogCaptureFixture, caught: list[warnings.WarningMessage]
) -> str:
    parts = ["".join(traceback.format_exception(exc)), str(exc), repr(exc), repr(exc.__cause__)]
    parts += [record.getMessage() for record in caplog.records]
    parts += [repr(record.args) for record in caplog.records]
    parts += [str(w.message) for w in caught]
    return "\n".join(parts)


@pytest.mark.parametrize("prefer_grpc", [False, True])
def test_api_key_not_in_error_logs_or_warnings(
    refusing_url: str, caplog: pytest.LogCaptureFixture, prefer_grpc: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        warnings.catch_warnings(record=True) as caught,
        pytest.raises(BackendUnavailableError) as info,
    ):
        warnings.simplefilter("always")
        SemanticRouter(
            ROUTES,
            encoder=FakeEncoder(8),
            url=refusing_url,
            api_key=CANARY,
            timeout=1,
            prefer_grpc=prefer_grpc,
        )
    text = _everything(info.value, caplog, caught)
    assert "127.0.0.1" in str(info.value)
    assert CANARY not in text


def test_api_key_not_in_error_when_loading(
    refusing_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = tmp_path / "r.yaml"
    config.write_text(
        "routes: [{name: a, utterances: [hi]}]\nencoder: {type: fake}\n"
        f"index: {{url: '{refusing_url}'}}\n"
    )
    with (
        warnings.catch_warnings(record=True) as caught,
        pytest.raises(BackendUnavailableError) as info,
    ):
        warnings.simplefilter("always")
        SemanticRouter.load(config, api_key=CANARY, timeout=1)
    assert CANARY not in _everything(info.value, caplog, caught)
    assert CANARY not in config.read_text()


def test_api_key_not_in_repr_or_saved_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # api_key= beside an injected client is refused (the client carries its own key) ...
    with pytest.raises(ConfigurationError) as refused:
        SemanticRouter(
            ROUTES, encoder=FakeEncoder(8), client=QdrantClient(":memory:"), api_key=CANARY
        )
    assert CANARY not in str(refused.value)
    # ... and a working router's repr, location and saved files carry no key either
    with SemanticRouter(ROUTES, encoder=FakeEncoder(8), client=QdrantClient(":memory:")) as router:
        router.save(tmp_path / "r.yaml")
        router.save(tmp_path / "r.json")
        texts = [
            repr(router),
            str(router),
            repr(router.location),
            repr(vars(router).get("_location")),
        ]
    texts += [(tmp_path / name).read_text() for name in ("r.yaml", "r.json")]
    texts += [record.getMessage() for record in caplog.records]
    assert not any(CANARY in t for t in texts)


@pytest.mark.parametrize(
    "template",
    ["http://user:{key}@127.0.0.1:{port}", "http://127.0.0.1:{port}/?api_key={key}"],
    ids=["userinfo", "query"],
)
def test_key_inside_the_url_is_redacted(refusing_url: str, template: str) -> None:
    port = refusing_url.rsplit(":", 1)[1]
    with pytest.raises(BackendUnavailableError) as info:
        SemanticRouter(
            ROUTES, encoder=FakeEncoder(8), url=template.format(key=CANARY, port=port), timeout=1
        )
    assert CANARY not in "".join(traceback.format_exception(info.value))
