# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

# The install goes through uv (from PyPI), which resolves the same versions as pip in a quarter
# of the time (19 s against 83 s from a fresh clone, docs/validation.md, "Timings"); pip does it
# when uv cannot be installed or cannot reach the index.
INSTALL = ( $(BIN)/python -m pip install --quiet uv && $(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python $(1) ) \
	|| ( $(BIN)/python -m pip install --quiet --upgrade pip && $(BIN)/python -m pip install --quiet $(1) )

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(call INSTALL,-e ".[test]")
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sinter4d run experiments/quick.toml --out runs/quick

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

bench: $(STAMP)
	$(call INSTALL,-e ".[bench]")
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs
