# victor: `make test` installs everything into .venv and runs every test (CI runs this).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,notebook

.PHONY: install test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"

# Unit, protocol and notebook tests (notebooks/ are executed by nbval).
test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check victor tests bench

bench: install
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
