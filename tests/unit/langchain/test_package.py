"""The package surface: a flat __all__, lazy middleware, a clear error without the extra."""

from __future__ import annotations

import importlib.util

import pytest

import langchain_semrouter
from tests.support.processes import missing_dependency_error, run_python

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


@pytest.mark.parametrize(
    ("missing", "works", "fails"),
    [
        ("langchain_core", "", "import langchain_semrouter"),
        # without langchain (the agents package) only the middleware is missing
        (
            "langchain",
            "import langchain_semrouter as m; m.SemRouterBranch",
            "m.SemRouterToolSelectorMiddleware",
        ),
    ],
)
def test_a_missing_dependency_names_the_extra(missing: str, works: str, fails: str) -> None:
    error = missing_dependency_error(fails, hidden=[missing], setup=works)
    assert "pip install 'semrouter[langchain]'" in error


def test_importing_does_not_import_langchain_agents() -> None:
    result = run_python("import sys, langchain_semrouter; print('langchain.agents' in sys.modules)")
    assert result.stdout.strip() == "False"


def test_old_langchain_core_keeps_the_branch_and_explains_the_decision_model() -> None:
    # langchain-core 1.0-1.7 (allowed by the pin) has no langchain_core.decisions.
    result = run_python(
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
    ours = run_python(code.format("langchain_semrouter", watched))
    theirs = run_python(code.format("langchain_core.runnables.branch", watched))
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
