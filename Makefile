# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint clean container-test

setup: $(STAMP)

# Recreated from nothing whenever the pins change.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$(CURDIR)/bin:$$PATH" $(BIN)/python -m deepgami.demo --out demo_out

lint: $(STAMP)
	$(BIN)/ruff check src bin
	$(BIN)/ruff format --check src bin

test: lint
	PATH="$(CURDIR)/$(BIN):$(CURDIR)/bin:$$PATH" $(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

# The image built from HEAD and every pipeline stage run in it as Nextflow's docker profile would
# (root, Docker, several minutes; not part of `make test`): containers/test_image.sh.
container-test: $(STAMP)
	PYTHON="$(CURDIR)/$(BIN)/python" containers/test_image.sh

clean:
	rm -rf $(VENV) demo_out .pytest_cache
