# Two commands do all set-up on a fresh machine (Python 3.11 and a C++ compiler):
#   make demo    run the demo against the embedded CME-like simulator
#   make test    lint, type-check and run the whole test suite (installs Debian's postgresql when missing and root)
# Both create or refresh .venv. QuickFIX ships no wheels: the first install compiles it (~10 minutes).
# When ../shared/wheels exists (our CI and dev machines) pip also looks there and skips the compile.
#   make fuzz    coverage-guided fuzzing (atheris) of the codec, the 35=n unwrap and the decoder:
#                FUZZ_SECONDS per target (default 60), FUZZ_TARGETS to choose (codec unwrap decode)

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
WHEELS := $(wildcard ../shared/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)
STAMP := $(VENV)/.installed
LINT := dropcopy_client tests fuzz $(wildcard bench examples)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= codec unwrap decode
FUZZ_DIR := .fuzz

.PHONY: demo test lint typecheck unit bench docs clean pg-server fuzz

# setup.py and the .pyx too: the editable install compiles the decoder, so a change to either rebuilds it
$(STAMP): pyproject.toml setup.py dropcopy_client/_cdecode.pyx
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing dropcopy-client and its dependencies into $(VENV)$(if $(WHEELS), (prebuilt wheels from $(WHEELS)),: QuickFIX publishes no wheels, so pip compiles its C++ (about 10 minutes the first time; progress below, everything in $(VENV)/install.log))"
	@$(BIN)/python scripts/install-progress $(VENV)/install.log -- $(BIN)/python -m pip install -v $(FIND_LINKS) -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dropcopy demo

test: $(STAMP) lint typecheck pg-server
	$(BIN)/mkdocs build --strict
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

# atheris ships prebuilt wheels for CPython 3.11 on manylinux x86_64 only; --only-binary keeps pip from trying
# to compile it (that needs clang and libFuzzer) and lets the message below say what to do instead.
fuzz: $(STAMP)
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install --quiet --only-binary=atheris 'atheris>=2.3' || { \
	  echo "make fuzz: atheris could not be installed: no prebuilt wheel for this Python/platform."; \
	  echo "  Install clang (with libFuzzer) and run: $(BIN)/python -m pip install atheris"; \
	  echo "  make test still runs the seeded budget of generated cases (tests/unit/test_fuzz_budget.py)."; \
	  exit 1; }
	$(BIN)/python -m fuzz.corpus $(FUZZ_DIR)/corpus $(FUZZ_TARGETS)
	@mkdir -p $(FUZZ_DIR)/artifacts
	@for target in $(FUZZ_TARGETS); do \
	  echo "== fuzzing $$target for $(FUZZ_SECONDS) s"; \
	  $(BIN)/python -m fuzz.run $$target -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$target- $(FUZZ_DIR)/corpus/$$target || { \
	    echo "make fuzz: $$target failed; the input is in $(FUZZ_DIR)/artifacts/ (keep it under tests/fixtures/fuzz/$$target/)"; \
	    exit 1; }; \
	done

# messages.md is generated from the model; then the site (docs/ plus the API reference from the docstrings) in site/
docs: $(STAMP)
	$(BIN)/python -m dropcopy_client._docgen --write docs/reference/messages.md
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(FUZZ_DIR)
	rm -f dropcopy_client/*.so dropcopy_client/_cdecode.c
