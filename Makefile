# Two commands on a fresh machine: `make demo` and `make test` (both set up .venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := shared/semrouter langchain_semrouter llama_index_semrouter

.PHONY: demo test lint examples ci lowest-pins extras

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]' --group dev
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(PACKAGES)

examples: $(VENV)/.installed
	@for f in examples/*.py; do echo "== $$f"; $(PY) $$f > /dev/null || exit 1; done

# Fresh venvs in /tmp, one per extra, on the lowest versions pyproject.toml allows (constraints
# generated from its floors by .ci/lowest_pins.py): adapter tests and examples.
lowest-pins:
	bash .ci/lowest-pins

# Fresh venvs in /tmp: '.[langchain]' and '.[llama-index]' alone run their README sections.
extras:
	bash .ci/extras
