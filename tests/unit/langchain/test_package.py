"""The package surface: a flat __all__, lazy middleware, a clear error without the extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import langchain_semrouter

_DECISIONS = "langchain_core.decisions"


def test_all_names_are_exported() -> None:
    public = {name for name in dir(langchain_semrouter) if not name.startswith("_")}
    for name in langchain_semrouter.__all__:
        if name == "SemRouterDecisionModel" and importlib.util.find_spec(_DECISIONS) is None:
            continue  # langchain-core < 1.8: see the test below
        assert getattr(langchain_semrouter, name) is not None
    modules = {"decision", "embeddings", "runnables", "annotations", "TYPE_CHECKING", "Any"}
    modules |= {"MissingDependencyError", "langchain_core", "middleware", "warnings"}
    modules |= {"tools", "tool_search"}  # submodules, present once imported
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
        "m.SemRouterBranch\n"
        "try:\n    m.SemRouterToolSelectorMiddleware\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'semrouter[langchain]'" in result.stdout


def test_importing_does_not_import_langchain_agents() -> None:
    result = _run("import sys, langchain_semrouter; print('langchain.agents' in sys.modules)")
    assert result.stdout.strip() == "False"


def test_old_langchain_core_keeps_the_branch_and_explains_the_decision_model() -> None:
    # langchain-core 1.0-1.7 (allowed by the pin) has no langchain_core.decisions.
    result = _run(
        "import sys; sys.modules['langchain_core.decisions'] = None\n"
        "import langchain_semrouter as m\n"
        "from semrouter import FakeEncoder, Route\n"
        "r = Route('a', ['hello there'])\n"
        "b = m.SemRouterBranch((r, lambda x: 'A'), encoder=FakeEncoder())\n"
        "assert b.invoke('hello there') == 'A'\n"
        "try:\n    m.SemRouterDecisionModel\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MissingDependencyError")
    assert "langchain-core>=1.8" in result.stdout


def test_importing_imports_no_more_than_runnable_branch() -> None:
    # The decision model pulled in the LangSmith client (~0.5 s); RunnableBranch does not.
    code = "import sys, {}\nprint({{m for m in {} if m in sys.modules}})"
    watched = "('langchain_core.decisions', 'langsmith.run_helpers', 'langsmith.client')"
    ours = _run(code.format("langchain_semrouter", watched))
    theirs = _run(code.format("langchain_core.runnables.branch", watched))
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    assert "langchain_core.decisions" not in ours.stdout
    assert eval(ours.stdout) <= eval(theirs.stdout)


def test_one_naming_convention_with_deprecated_aliases() -> None:
    modules = [langchain_semrouter]
    if importlib.util.find_spec("llama_index") is not None:  # not with '[langchain]' alone
        import llama_index_semrouter

        modules.append(llama_index_semrouter)
    for module in modules:
        classes = [n for n in module.__all__ if n[0].isupper() and not n.endswith("Encoder")]
        assert all(n.startswith("SemRouter") for n in classes), classes
    for old, new in [
        ("SemanticBranch", "SemRouterBranch"),
        ("SemanticToolSelector", "SemRouterToolSelector"),
        ("SemanticToolSelectorMiddleware", "SemRouterToolSelectorMiddleware"),
    ]:
        with pytest.warns(DeprecationWarning, match=new):
            assert getattr(langchain_semrouter, old) is getattr(langchain_semrouter, new)
