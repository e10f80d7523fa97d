"""``semrouter fit`` / ``eval`` check every output before writing anything (issue 12, point 10).

Old behaviour: an unwritable ``--json`` or ``--plot`` printed a traceback (exit 1) after the
router file had already been overwritten with the fitted router.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from semrouter import FakeEncoder, Route, SemanticRouter
from semrouter.cli import main

ROUTES = [
    Route("music", ["play some jazz", "put on a song", "next track please"]),
    Route("weather", ["will it rain", "is it sunny today", "weather forecast"]),
]
DATA = [
    ("play jazz now", "music"),
    ("a song please", "music"),
    ("skip this track", "music"),
    ("play the next song", "music"),
    ("rain tomorrow?", "weather"),
    ("sunny or not", "weather"),
    ("forecast for today", "weather"),
    ("will it be sunny", "weather"),
    ("what is the capital of peru", None),
    ("how tall is everest", None),
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A saved router (FakeEncoder, persistent index) and a labelled JSONL file."""
    config = tmp_path / "router.yaml"
    with SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=16), path=tmp_path / "db") as r:
        r.save(config)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": x}) for t, x in DATA))
    return config, data


def _bad_outputs(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    return {"missing-folder": tmp_path / "no" / "such" / "out.json", "is-a-folder": folder}


@pytest.mark.parametrize("option", ["--out", "--json", "--plot"])
@pytest.mark.parametrize("bad", ["missing-folder", "is-a-folder", "wrong-suffix"])
def test_fit_with_an_unwritable_output_changes_nothing(
    files: tuple[Path, Path],
    tmp_path: Path,
    option: str,
    bad: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, data = files
    before = config.read_bytes()
    targets = _bad_outputs(tmp_path)
    suffix = {"--out": ".yaml", "--json": ".json", "--plot": ".png"}[option]
    if bad == "wrong-suffix":
        target = tmp_path / "result.txt"
    elif bad == "is-a-folder":
        target = targets[bad].with_name("folder" + suffix)
        target.mkdir()
    else:
        target = targets[bad].with_suffix(suffix)
    others = {"--json": tmp_path / "ok.json", "--plot": tmp_path / "ok.png"}
    args = ["fit", str(config), str(data), option, str(target)]
    for name, path in others.items():
        if name != option:
            args += [name, str(path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert option in err or str(target) in err
    assert config.read_bytes() == before  # the router file was not overwritten
    assert not any(path.exists() for path in others.values())  # nor any other output written
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".partial", ".probe"))]


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_eval_with_an_unwritable_output_fails_before_evaluating(
    files: tuple[Path, Path], tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, data = files
    target = tmp_path / "missing" / ("r.json" if option == "--json" else "r.png")
    assert main(["eval", str(config), str(data), option, str(target)]) == 2
    captured = capsys.readouterr()
    assert "encoding [" not in captured.err  # refused before any text was encoded
    assert option in captured.err


def test_fit_with_good_outputs_writes_all_of_them(files: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    config, data = files
    out, report, plot = tmp_path / "fitted.yaml", tmp_path / "r.json", tmp_path / "c.png"
    args = ["fit", str(config), str(data), "--out", str(out), "--json", str(report)]
    assert main([*args, "--plot", str(plot)]) == 0
    assert "calibration" in out.read_text()
    assert "accuracy" in json.loads(report.read_text())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".partial", ".probe"))]


def test_labelled_data_from_a_fifo_is_refused_without_blocking(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    config, _ = files
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main(["eval", str(config), str(fifo)])))
    thread.daemon = True
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # unblock the old behaviour's reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)
        pytest.fail("semrouter eval blocked on a FIFO")
    assert result == [2]
    assert "regular file" in capsys.readouterr().err
