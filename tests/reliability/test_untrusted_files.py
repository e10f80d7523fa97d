"""Router files from someone else (issue 12, points 6, 8 and 10).

A file must not choose where the caller's ``$OPENAI_API_KEY`` goes, nor where folders are made;
a file that is not a regular file (a FIFO) must not hang ``load``; odd values are refused with
:class:`ConfigurationError`, never a raw third-party error.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semrouter import ConfigurationError, FakeEncoder, SemanticRouter
from semrouter.cli import main
from tests.support.openai_server import OpenAIServer

KEY = "sk-test-environment-key-0123456789"
ROUTES = [{"name": "greet", "utterances": ["hello there"]}, {"name": "bye", "utterances": ["bye"]}]


@pytest.fixture
def embeddings_server() -> Iterator[OpenAIServer]:
    """An OpenAI-compatible ``/v1/embeddings`` on 127.0.0.1 that records the keys it is sent."""
    with OpenAIServer(dimension=8) as server:
        yield server


def _keys_seen(server: OpenAIServer) -> list[str | None]:
    return [request.authorization for request in server.requests]


def _write(folder: Path, data: dict[str, Any], name: str = "router.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _openai_file(folder: Path, base_url: str) -> Path:
    encoder = {"type": "openai", "model": "local-embed", "base_url": base_url, "dimension": 8}
    return _write(folder, {"routes": ROUTES, "encoder": encoder})


# -- secrets from the environment go only where the user chose -------------------------------


def test_file_named_base_url_never_receives_the_environment_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embeddings_server: OpenAIServer
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = _openai_file(tmp_path, embeddings_server.url)
    with pytest.raises(ConfigurationError, match="trusted=True") as caught:
        SemanticRouter.load(path)
    assert _keys_seen(embeddings_server) == []
    assert KEY not in str(caught.value)


def test_cli_does_not_send_the_environment_key_to_a_file_named_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    embeddings_server: OpenAIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = _openai_file(tmp_path, embeddings_server.url)
    assert main(["route", str(path), "hello"]) == 2
    assert "trusted" in capsys.readouterr().err
    assert _keys_seen(embeddings_server) == []


def test_trusted_file_or_chosen_base_url_gets_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embeddings_server: OpenAIServer
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    base_url = embeddings_server.url
    path = _openai_file(tmp_path, base_url)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with SemanticRouter.load(path, trusted=True) as router:
        assert router.route("hello there").name == "greet"
    # The user chose this server through the SDK's own variable: no opt-in needed.
    monkeypatch.setenv("OPENAI_BASE_URL", base_url + "/")
    with SemanticRouter.load(path) as router:
        assert len(router) == 2
    assert _keys_seen(embeddings_server)
    assert set(_keys_seen(embeddings_server)) == {f"Bearer {KEY}"}


def test_caller_encoder_override_needs_no_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = _openai_file(tmp_path, "http://192.0.2.1:9/v1")  # TEST-NET: never dialled
    with SemanticRouter.load(path, encoder=FakeEncoder(dimension=8)) as router:
        assert len(router) == 2


# -- folders named by a file ----------------------------------------------------------------


def _path_file(folder: Path, index_path: str) -> Path:
    return _write(folder, {"routes": ROUTES, "index": {"path": index_path}})


@pytest.mark.parametrize("escape", ["../outside", "sub/../../outside", "ABSOLUTE"])
def test_file_cannot_make_folders_outside_its_folder(tmp_path: Path, escape: str) -> None:
    home = tmp_path / "configs"
    home.mkdir()
    outside = tmp_path / "outside"
    index_path = str(outside) if escape == "ABSOLUTE" else escape
    path = _path_file(home, index_path)
    with pytest.raises(ConfigurationError, match="outside the file's folder"):
        SemanticRouter.load(path, encoder=FakeEncoder(dimension=8))
    assert not outside.exists()
    # The caller can opt in.
    with SemanticRouter.load(path, encoder=FakeEncoder(dimension=8), trusted=True) as router:
        assert router.route("hello there").name == "greet"
    assert outside.is_dir()


def test_file_cannot_escape_through_a_symbolic_link(tmp_path: Path) -> None:
    home = tmp_path / "configs"
    home.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (home / "link").symlink_to(tmp_path / "elsewhere")
    path = _path_file(home, "link/index")
    with pytest.raises(ConfigurationError, match="outside the file's folder"):
        SemanticRouter.load(path, encoder=FakeEncoder(dimension=8))
    assert not (tmp_path / "elsewhere" / "index").exists()


def test_relative_path_resolves_beside_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "configs"
    home.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = _path_file(home, "data/index")
    with SemanticRouter.load(path, encoder=FakeEncoder(dimension=8)) as router:
        assert router.route("bye").name == "bye"
    assert (home / "data" / "index").is_dir()
    assert list(elsewhere.iterdir()) == []


def test_caller_path_override_is_not_restricted(tmp_path: Path) -> None:
    home = tmp_path / "configs"
    home.mkdir()
    path = _path_file(home, "../outside")
    mine = tmp_path / "mine"
    with SemanticRouter.load(path, encoder=FakeEncoder(dimension=8), path=mine) as router:
        assert len(router) == 2
    assert mine.is_dir() and not (tmp_path / "outside").exists()


@pytest.mark.parametrize("trusted", [False, True])
def test_proc_self_path_is_a_configuration_error(tmp_path: Path, trusted: bool) -> None:
    # Old code: a raw FileNotFoundError from deep inside the store.
    path = _path_file(tmp_path, "/proc/self")
    with pytest.raises(ConfigurationError, match="/proc/self"):
        SemanticRouter.load(path, encoder=FakeEncoder(dimension=8), trusted=trusted)


def test_trusted_must_be_a_bool(tmp_path: Path) -> None:
    path = _path_file(tmp_path, "index")
    with pytest.raises(ConfigurationError, match="trusted"):
        SemanticRouter.load(path, encoder=FakeEncoder(dimension=8), trusted="yes")


# -- files that are not regular files -------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "router.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            SemanticRouter.load(fifo, encoder=FakeEncoder(dimension=8))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # unblock the old behaviour's reader before failing
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(timeout=5)
        pytest.fail("SemanticRouter.load blocked on a FIFO")
    assert isinstance(outcome[0], ConfigurationError)
    assert "regular file" in str(outcome[0])


def test_folder_named_like_a_config_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "router.yaml"
    folder.mkdir()
    with pytest.raises(ConfigurationError):
        SemanticRouter.load(folder, encoder=FakeEncoder(dimension=8))


# -- odd values -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_five_thousand_digit_number_is_a_configuration_error(tmp_path: Path, suffix: str) -> None:
    digits = "9" * 5000
    if suffix == "json":
        text = '{"routes": [{"name": "a", "utterances": ["x"]}], "top_k": ' + digits + "}"
    else:
        text = "routes: [{name: a, utterances: [x]}]\ntop_k: " + digits + "\n"
    path = tmp_path / f"router.{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid"):
        SemanticRouter.load(path, encoder=FakeEncoder(dimension=8))


@pytest.mark.parametrize("url", ["not a url", "file:///tmp/qdrant", "ftp://host/x", "http://"])
def test_unusable_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="url"):
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=8), url=url)  # type: ignore[arg-type]


def test_unusable_url_in_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = _write(tmp_path, {"routes": ROUTES, "index": {"url": "file:///etc/passwd"}})
    with pytest.raises(ConfigurationError, match="http"):
        SemanticRouter.load(path, encoder=FakeEncoder(dimension=8))


@pytest.mark.parametrize("threshold", ["0.5", b"0.5", [0.5]])
def test_threshold_of_the_wrong_type_is_a_configuration_error(threshold: Any) -> None:
    with pytest.raises(ConfigurationError, match="threshold"):
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=8), threshold=threshold)  # type: ignore[arg-type]


def test_cli_eval_refuses_an_escaping_path_unless_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "configs"
    home.mkdir()
    encoder = {"type": "fake", "dimension": 8}
    path = _write(home, {"routes": ROUTES, "encoder": encoder, "index": {"path": "../db"}})
    data = tmp_path / "data.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"text": t, "label": x}) for t, x in [("hello", "greet"), ("bye", "bye")]
        )
    )
    assert main(["eval", str(path), str(data)]) == 2
    assert "--trusted" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()
    assert main(["eval", str(path), str(data), "--trusted"]) == 0
    assert (tmp_path / "db").is_dir()
