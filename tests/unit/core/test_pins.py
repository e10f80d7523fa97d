"""pyproject.toml's floors are the versions CI installs, and none is known not to work (issue 20,
point 11).

Old behaviour: .ci/lowest-pins read a hand-written constraints file (pydantic 2.11.5) while
pyproject.toml said pydantic 2.7.4, with which every LangChain example died on import inside
LangSmith; onnxruntime 1.17, the local extra's floor, cannot load the MiniLM model at all.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / ".ci" / "lowest_pins.py"
if not SCRIPT.exists():  # pragma: no cover - the lowest-pins CI copies tests/ without .ci/
    pytest.skip(".ci/ not beside the tests", allow_module_level=True)
if sys.version_info < (3, 11):  # pragma: no cover - tomllib
    pytest.skip("tomllib needs Python 3.11", allow_module_level=True)

import tomllib  # noqa: E402

PINS = runpy.run_path(str(SCRIPT))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def constraints(*extras: str) -> dict[str, str]:
    pins: dict[str, str] = PINS["floors"](PINS["requirements"](PROJECT, extras))
    return pins


def _release(version: str) -> tuple[int, ...]:
    release: tuple[int, ...] = PINS["_release"](version)
    return release


def test_the_ci_script_generates_its_constraints_from_pyproject() -> None:
    script = (ROOT / ".ci" / "lowest-pins").read_text(encoding="utf-8")
    assert "lowest_pins.py" in script
    assert not (ROOT / ".ci" / "lowest-pins.txt").exists()  # no second copy to drift


@pytest.mark.parametrize("extra", ["local", "langchain", "llama-index"])
def test_every_floor_of_the_extra_and_the_core_is_pinned(extra: str) -> None:
    pins = constraints(extra)
    for package in ("numpy", "pydantic", "qdrant-client", "onnxruntime", "tokenizers"):
        assert package in pins
    if extra == "langchain":
        assert pins["langchain-core"] == "1.2.5" and pins["langchain"] == "1.0"
    if extra == "llama-index":
        assert pins["llama-index-core"] == "0.14.12"


def test_an_extra_raises_a_core_floor_and_the_higher_one_wins() -> None:
    assert _release(constraints("local")["pydantic"]) < _release(
        constraints("langchain")["pydantic"]
    )
    assert (
        constraints("langchain", "llama-index")["pydantic"]
        == constraints("llama-index")["pydantic"]
    )


@pytest.mark.parametrize(
    ("extra", "package", "lowest_that_works", "why"),
    [
        ("local", "onnxruntime", "1.18", "1.17 cannot load the model: IR version 10"),
        ("langchain", "pydantic", "2.9.1", "LangSmith: FeedbackConfigSchema, RunTree undefined"),
        ("llama-index", "pydantic", "2.11.5", "llama-index-workflows needs it"),
        ("llama-index", "pyyaml", "6.0.1", "llama-index-core 0.14.12 needs it"),
    ],
)
def test_no_floor_is_one_known_not_to_work(
    extra: str, package: str, lowest_that_works: str, why: str
) -> None:
    assert _release(constraints(extra)[package]) >= _release(lowest_that_works), why
