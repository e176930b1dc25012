# Two commands do all set-up on a fresh machine (Python 3.11 and a C++ compiler):
#   make demo    run the demo against the embedded CME-like simulator
#   make test    lint, type-check and run the whole test suite (installs Debian's postgresql when missing and root)
# Both create or refresh .venv. QuickFIX ships no wheels: the first install compiles it (~10 minutes).
# When ../shared/wheels exists (our CI and dev machines) pip also looks there and skips the compile.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
WHEELS := $(wildcard ../shared/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)
STAMP := $(VENV)/.installed
LINT := dropcopy_client tests $(wildcard bench examples)

.PHONY: demo test lint typecheck unit bench docs clean pg-server

# setup.py and the .pyx too: the editable install compiles the decoder, so a change to either rebuilds it
$(STAMP): pyproject.toml setup.py dropcopy_client/_cdecode.pyx
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing dependencies (quickfix compiles for ~10 minutes the first time unless a wheel is found)..."
	$(BIN)/python -m pip install --quiet $(FIND_LINKS) -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dropcopy demo

test: $(STAMP) lint typecheck pg-server
	$(BIN)/python -m pytest

# The sink tests start their own PostgreSQL server (tests/sinks/conftest.py); this makes sure one is installed:
# Debian's postgresql package, installed with apt-get when missing (as root, e.g. CI), refused otherwise.
pg-server:
	scripts/pg-test-server install

lint: $(STAMP)
	$(BIN)/ruff check $(LINT)
	$(BIN)/ruff format --check $(LINT)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python -m bench

docs: $(STAMP)
	$(BIN)/python -m dropcopy_client._docgen --write docs/reference/messages.md

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -f dropcopy_client/*.so dropcopy_client/_cdecode.c
