"""Serving never imports ``semrouter.training``: routing applies stored heads and thresholds.

Each check runs in a fresh interpreter, so modules other tests imported do not hide a runtime
module that imports training at module load.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

from semrouter import Route, SemanticRouter
from semrouter.encoders import FakeEncoder

TOPICS = {
    "music": ["guitar", "album", "concert", "song", "band", "jazz"],
    "weather": ["rain", "sunny", "forecast", "storm", "snow", "wind"],
    "food": ["pizza", "recipe", "pasta", "dinner", "bread", "cheese"],
}
START = (
    "import sys\n"
    "from semrouter import Route, SemanticRouter\n"
    "from semrouter.encoders import FakeEncoder\n"
)
TWO_ROUTES = "[Route('a', ['hello there', 'hi friend']), Route('b', ['goodbye now', 'see you'])]"
LOADED = (
    "loaded = sorted(m for m in sys.modules if m.startswith('semrouter.training')); "
    "print('training modules:', loaded); sys.exit(1 if loaded else 0)"
)


def _routes() -> list[Route]:
    return [
        Route(name, [f"{a} {b}" for a, b in itertools.pairwise(words)])
        for name, words in TOPICS.items()
    ]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_and_routing_load_no_training_module() -> None:
    code = (
        START + f"router = SemanticRouter({TWO_ROUTES}, encoder=FakeEncoder(), learn=False)\n"
        "assert router.route('hello friend').name == 'a'\n"
        "router.route_many(['see you', 'hi']); router.top_routes('hello', 2)\n"
        "router.add(Route('c', ['pizza please'])); router.route('pizza')\n" + LOADED
    )
    result = _run(code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_reader_applies_the_stored_head_and_fit_without_training(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with SemanticRouter(_routes(), encoder=FakeEncoder(), path=path) as writer:
        assert writer._state.rank_head is not None  # learnt from the utterances, stored
        texts = [f"{a} {b}" for words in TOPICS.values() for a in words for b in words if a != b]
        labels = [name for name, words in TOPICS.items() for a in words for b in words if a != b]
        writer.fit(texts, labels)
        assert writer.calibration is not None and writer.calibration.head is not None
    code = (
        START + f"router = SemanticRouter.open(path={str(path)!r}, encoder=FakeEncoder())\n"
        "state = router._state\n"
        "assert state.head is not None and state.learned is not None, state\n"
        "assert router.route('jazz guitar').name == 'music'\n"
        "router.configure(threshold=None); router.top_routes('rain storm', 2)\n" + LOADED
    )
    result = _run(code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_learning_imports_training_when_it_runs() -> None:
    # The guard above is not vacuous: the learn path does load the package (lazily).
    code = (
        START + f"SemanticRouter({TWO_ROUTES}, encoder=FakeEncoder())\n"
        "sys.exit(0 if 'semrouter.training._selftrain' in sys.modules else 1)"
    )
    result = _run(code)
    assert result.returncode == 0, result.stdout + result.stderr
