from __future__ import annotations

import subprocess
import sys

import semrouter
from semrouter import encoders, tools


def test_exported_names_match_all() -> None:
    public = {name for name in dir(semrouter) if not name.startswith("_")}
    modules = {"cli", "encoders", "tools", "training"}
    assert public - modules - {"annotations"} <= set(semrouter.__all__) | {"TYPE_CHECKING", "Any"}
    for name in semrouter.__all__:
        assert getattr(semrouter, name) is not None
    for name in encoders.__all__:
        assert getattr(encoders, name) is not None
    for name in tools.__all__:
        assert getattr(tools, name) is not None


def test_import_loads_no_framework_or_extra() -> None:
    code = (
        "import sys, semrouter, semrouter.encoders; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain', 'langchain_core', 'llama_index', 'openai', 'onnxruntime', 'tokenizers')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_error_derives_from_the_root() -> None:
    for name in semrouter.__all__:
        obj = getattr(semrouter, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, semrouter.SemRouterError)
    assert issubclass(semrouter.ConfigurationError, ValueError)
    assert issubclass(semrouter.MissingDependencyError, ImportError)
    assert issubclass(semrouter.BackendUnavailableError, ConnectionError)
    assert issubclass(semrouter.QueryTypeError, TypeError)
    assert issubclass(semrouter.RouteNotFoundError, KeyError)


def test_public_names_are_pinned() -> None:
    # A name added or removed here is an API change: say so in the changelog.
    assert set(semrouter.__all__) >= {
        "Calibration",
        "ConfigurationError",
        "Encoder",
        "FakeEncoder",
        "QdrantLocation",
        "Route",
        "RouteMatch",
        "RouterClosedError",
        "RouterOptions",
        "SemRouterError",
        "SemanticRouter",
        "SyncReport",
        "__version__",
    }
    assert sorted(encoders.__all__) == sorted(
        [
            "CacheInfo",
            "Encoder",
            "FakeEncoder",
            "LocalEncoder",
            "MultilingualEncoder",
            "OpenAIEncoder",
            "Vectors",
            "encoder_from_config",
        ]
    )
