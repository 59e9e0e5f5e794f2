# One command each: `make demo` (install + run), `make test` (everything CI runs).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= $(CURDIR)/.demo

.PHONY: install demo test lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	# torch first, pinned: a range would pull a multi-GB CUDA build where a CPU one suffices.
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the MCP Inspector interop test will be skipped" >&2; fi

demo: install
	$(BIN)/m2-tools make-tiny-model --overwrite $(DEMO)/tiny-model
	$(BIN)/m2-tools ask --model $(DEMO)/tiny-model --device cpu --max-new-tokens 32 \
		--allow-dir tests/fixtures --image tests/fixtures/m2-tiny-reference/images/rhombus.png \
		--question "Rhombus QRST has an area of 137.9 square meters. If RT is 12.2 meters, find QS." \
		--choice 11.3 --choice 22.4 --choice 22.6 --choice 25.6

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(DEMO) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage
