"""The package surface: a flat __all__, lazy middleware, a clear error without the extra."""

from __future__ import annotations

import subprocess
import sys

import langchain_semrouter


def test_all_names_are_exported() -> None:
    public = {name for name in dir(langchain_semrouter) if not name.startswith("_")}
    for name in langchain_semrouter.__all__:
        assert getattr(langchain_semrouter, name) is not None
    modules = {"decision", "embeddings", "runnables", "annotations", "TYPE_CHECKING", "Any"}
    modules |= {"MissingDependencyError", "langchain_core", "middleware"}
    assert public - modules <= set(langchain_semrouter.__all__)
    assert sorted(langchain_semrouter.__all__) == langchain_semrouter.__all__


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_missing_langchain_core_names_the_extra() -> None:
    result = _run(
        "import sys; sys.modules['langchain_core'] = None\n"
        "try:\n    import langchain_semrouter\n"
        "except ImportError as exc:\n"
        "    from semrouter import MissingDependencyError\n"
        "    assert isinstance(exc, MissingDependencyError), type(exc)\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'semrouter[langchain]'" in result.stdout


def test_missing_langchain_only_affects_the_middleware() -> None:
    result = _run(
        "import sys; sys.modules['langchain'] = None\n"
        "import langchain_semrouter as m\n"
        "m.SemanticBranch\n"
        "try:\n    m.SemanticToolSelectorMiddleware\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'semrouter[langchain]'" in result.stdout


def test_importing_does_not_import_langchain_agents() -> None:
    result = _run("import sys, langchain_semrouter; print('langchain.agents' in sys.modules)")
    assert result.stdout.strip() == "False"
