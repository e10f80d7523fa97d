"""``semrouter report`` (issue 21, point 6): one self-contained HTML page about a route set and
its traffic, checked in a real headless browser (Debian's chromium) when one is installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from semrouter import ConfigurationError, FakeEncoder, Route, SemanticRouter
from semrouter._report import build_report, read_decision_log, route_set_facts
from semrouter.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ROUTES = [
    Route("flights", ["book a flight to paris", "cheap flight to rome", "weather in paris today"]),
    Route("weather", ["weather forecast today", "is it raining in paris today", "sunny today"]),
    Route("billing", ["pay my invoice", "where is my invoice", "refund my payment"]),
]
T0 = 1_760_000_000  # 2025-10-09


def _log(path: Path) -> Path:
    lines = []
    for i in range(120):
        route = ["flights", "weather", "billing", None][i % 4]
        lines.append(
            {
                "time": T0 + 60 * i if i % 2 else f"2025-10-09T{8 + i // 60:02d}:{i % 60:02d}:00Z",
                "route": route,
                "score": 0.5 + (i % 5) / 20 if route else 0.1,
                "threshold": 0.3 if route else None,
                "tenant": "acme" if i % 3 == 0 else "",
            }
        )
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    file = tmp_path / "router.yaml"
    with SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path / "db") as router:
        router.save(file)
    return file


def test_leave_one_out_scores_and_strays() -> None:
    encoder = FakeEncoder()
    with SemanticRouter(ROUTES, encoder=encoder, top_k=2) as router:
        facts = route_set_facts(router)
    assert facts.names == ["flights", "weather", "billing"]
    assert facts.route.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    vectors = encoder.encode(list(ROUTES[0].utterances))
    sims = vectors @ vectors.T
    # the mean of its 2 best hits among the *other* utterances of its route: both of them
    assert facts.own[0] == pytest.approx((sims[0, 1] + sims[0, 2]) / 2, abs=1e-6)
    assert np.all(facts.own < 0.99)  # itself left out (with it, the best hit is 1)
    stray = facts.utterances.index("weather in paris today")
    assert facts.strays[stray] and facts.names[facts.other_route[stray]] == "weather"
    assert facts.other[stray] > facts.own[stray]


def test_the_page_holds_every_section(config: Path, tmp_path: Path) -> None:
    log = read_decision_log(_log(tmp_path / "decisions.jsonl"))
    assert len(log) == 120 and log[1].time == T0 + 60  # seconds, or ISO 8601 in UTC:
    assert log[0].time == datetime(2025, 10, 9, 8, 0, tzinfo=timezone.utc).timestamp()
    with SemanticRouter.load(config) as router:
        page = build_report(router, title="router.yaml", log=log)
    for anchor in ("routes", "scores", "confusion", "strays", "traffic"):
        assert f"id='{anchor}'" in page
    assert "weather in paris today" in page  # the stray utterance is listed
    assert page.count("<svg") >= 3 + 3 + 2  # counts, 3 route histograms, traffic, rate
    assert 'class="bar"' in page and 'class="threshold"' in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "acme" in page  # the tenants table


def test_text_is_escaped(tmp_path: Path) -> None:
    routes = [Route("<b>x</b>", ["<script>alert(1)</script> hello"]), Route("y", ["bye now"])]
    with SemanticRouter(routes, encoder=FakeEncoder()) as router:
        page = build_report(router, title="<t>")
    assert "<script>" not in page and "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_a_bad_log_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time": 1, "route": "a", "score": 0.5}\n{"route": "a"}\n')
    with pytest.raises(ConfigurationError, match="line 2"):
        read_decision_log(bad)
    bad.write_text('{"time": "yesterday"}\n')
    with pytest.raises(ConfigurationError, match="line 1"):
        read_decision_log(bad)


def test_cli_writes_the_page(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    log = _log(tmp_path / "decisions.jsonl")
    assert main(["report", str(config), "-o", str(out), "--log", str(log)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert "id='traffic'" in out.read_text()
    assert main(["report", str(config), "-o", str(tmp_path / "report.txt")]) == 2
    assert ".html" in capsys.readouterr().err


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(profile)},
    )


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"
)
def test_the_page_renders_in_a_headless_browser(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert (
        main(["report", str(config), "-o", str(out), "--log", str(_log(tmp_path / "d.jsonl"))]) == 0
    )
    url = out.absolute().as_uri()
    dom = _chromium("--dump-dom", url, profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    assert "semrouter report: router.yaml" in rendered
    for name in ("flights", "weather", "billing"):
        assert name in rendered
    svgs = re.findall(r"<svg\b.*?</svg>", rendered, flags=re.S)
    assert len([svg for svg in svgs if 'class="bar"' in svg]) >= 8  # the line chart has points
    assert any('class="point"' in svg for svg in svgs)
    shot = tmp_path / "page.png"
    png = _chromium(
        f"--screenshot={shot}", "--window-size=1200,2000", url, profile=tmp_path / "profile2"
    )
    assert png.returncode == 0, png.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # charts, not a blank page


def test_chromium_is_installed_by_ci() -> None:
    ci = (Path(__file__).resolve().parents[3] / ".ci" / "run").read_text()
    assert "apt-get install" in ci and "chromium" in ci
