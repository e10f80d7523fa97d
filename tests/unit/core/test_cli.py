from __future__ import annotations

import json
from pathlib import Path

import pytest

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter.cli import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    router = SemanticRouter(
        [Route("flights", ["book a flight to paris"]), Route("weather", ["will it rain tomorrow"])],
        encoder=FakeEncoder(),
        path=tmp_path / "db",
    )
    file = tmp_path / "router.yaml"
    router.save(file)
    router.close()
    return file


def test_route_prints_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", str(config), "book a flight to paris", "zzz"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[0])["name"] == "flights"
    assert json.loads(lines[1])["name"] is None


def test_sync_and_info(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", str(config)]) == 0
    assert "encoded 0" in capsys.readouterr().out
    assert main(["info", str(config)]) == 0
    assert "- flights: 1 utterances" in capsys.readouterr().out


def test_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", str(tmp_path / "missing.yaml"), "x"]) == 2
    assert "cannot read" in capsys.readouterr().err
