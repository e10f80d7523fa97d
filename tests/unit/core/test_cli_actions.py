"""The CLI never acts silently (issue 20, point 10): what it refuses, what it prints.

Old behaviour: ``sync`` of a file with no index location encoded into a temporary collection
that vanished; ``sync --policy replace`` of ``routes: []`` deleted every route unasked;
``route --limit`` printed a list instead of one object per text; ``import`` of a semrouter file
blamed an encoder "local:?"; the 0.x importer said "routes without score_threshold" when every
route had one; ``info`` printed the legacy keys as nulls; several arguments had no help text.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter._importers import import_router
from semrouter.cli import _parser, main

ROUTES = [
    Route("flights", ["book a flight to paris", "find me a plane ticket"]),
    Route("weather", ["will it rain tomorrow", "weather forecast for today"]),
]


def _save(file: Path, *, path: Path | None) -> Path:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=path) as router:
        router.save(file)
    return file


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return _save(tmp_path / "router.yaml", path=tmp_path / "db")


def _stored_routes(config: Path) -> list[str]:
    with SemanticRouter.open(path=config.parent / "db", encoder=FakeEncoder()) as router:
        return list(router.route_names)


# -- sync ---------------------------------------------------------------------------------------


def test_sync_refuses_a_file_with_no_index_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _save(tmp_path / "temporary.yaml", path=None)
    assert "path" not in yaml.safe_load(file.read_text())["index"]
    assert main(["sync", str(file)]) == 2
    captured = capsys.readouterr()
    assert "encoded" not in captured.out
    assert "names no index.path or index.url" in captured.err
    assert "temporary collection" in captured.err


def test_sync_replace_with_no_routes_needs_yes(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = config.with_name("empty.yaml")
    data = yaml.safe_load(config.read_text())
    data["routes"] = []
    empty.write_text(yaml.safe_dump(data))
    assert main(["sync", str(empty), "--policy", "replace"]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert _stored_routes(config) == ["flights", "weather"]  # nothing deleted
    assert main(["sync", str(empty), "--policy", "merge"]) == 0  # deletes nothing: no question
    assert _stored_routes(config) == ["flights", "weather"]
    assert main(["sync", str(empty), "--policy", "replace", "--yes"]) == 0
    assert "deleted 4" in capsys.readouterr().out
    assert _stored_routes(config) == []


# -- route --------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [None, "1", "2", "5"])
def test_route_prints_one_json_object_per_text_for_every_limit(
    config: Path, capsys: pytest.CaptureFixture[str], limit: str | None
) -> None:
    texts = ["book a flight to paris", "zzz qqq", "will it rain tomorrow"]
    argv = ["route", str(config), *texts] + (["--limit", limit] if limit else [])
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(texts)
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in records)
    assert [r["text"] for r in records] == texts
    for record in records:
        assert set(record) == {
            "text",
            "name",
            "score",
            "scores",
            "utterance",
            "threshold",
            "reason",
            "language",
            "routes",
        }
        assert len(record["routes"]) <= int(limit or 1)
        if record["name"] is None:
            assert record["routes"] == []
        else:
            assert record["routes"][0]["name"] == record["name"]
            assert set(record["routes"][0]) == {
                "name",
                "score",
                "utterance",
                "threshold",
                "reason",
                "language",
            }
    assert [r["name"] for r in records] == ["flights", None, "weather"]
    # the same compact spacing whatever --limit (it used to switch to json.dumps' default)
    assert all(line == json.dumps(json.loads(line), separators=(",", ":")) for line in lines)


# -- import -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_import_of_a_semrouter_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    file = _save(tmp_path / f"router{suffix}", path=tmp_path / "db")
    out = tmp_path / "converted.yaml"
    assert main(["import", str(file), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already a semrouter router file" in err
    assert "local:?" not in err
    assert not out.exists()


def _sr0(tmp_path: Path, thresholds: list[float | None]) -> Path:
    routes = [
        {"name": f"r{i}", "utterances": [f"text number {i}"], "score_threshold": t}
        for i, t in enumerate(thresholds)
    ]
    file = tmp_path / "router.json"
    file.write_text(json.dumps({"encoder_type": "openai", "routes": routes}))
    return file


@pytest.mark.parametrize(
    ("thresholds", "noted"),
    [([0.8, 0.7], False), ([0.8, None], True), ([None, None], True)],
)
def test_the_missing_threshold_note_only_when_a_route_has_none(
    tmp_path: Path, thresholds: list[float | None], noted: bool
) -> None:
    notes = import_router(_sr0(tmp_path, thresholds)).notes
    assert any("routes without score_threshold" in n for n in notes) is noted


# -- info ---------------------------------------------------------------------------------------


def _info_json(capsys: pytest.CaptureFixture[str], file: Path) -> dict[str, object]:
    assert main(["info", str(file)]) == 0
    out = capsys.readouterr().out
    shown: dict[str, object] = json.loads(out[: out.index("\n}\n") + 2])
    return shown


def test_info_shows_no_null_legacy_keys(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(_info_json(capsys, config)) == {"version", "encoder", "index", "options"}


def test_info_shows_a_legacy_key_a_file_still_sets(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(config.read_text())
    data["threshold"] = 0.4
    config.write_text(yaml.safe_dump(data))
    shown = _info_json(capsys, config)
    assert shown["threshold"] == 0.4
    assert "top_k" not in shown and "aggregation" not in shown


# -- help ---------------------------------------------------------------------------------------


def test_every_argument_of_every_command_has_help_text() -> None:
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.dest}"
        for name, parser in commands.choices.items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []
    assert {"route", "sync", "info", "import", "fit", "eval"} <= set(commands.choices)


def test_route_help_describes_config_and_texts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["route", "--help"])
    out = capsys.readouterr().out
    assert "SemanticRouter.save()" in out
    assert "one JSON object per text" in out
