# Variational Inference, from KL to VAE -- two commands on a fresh machine:
#   make lab    set up .venv and open JupyterLab on notebooks/
#   make test   set up .venv and run every test (unit, notebooks under nbval, browser)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888
TOKEN  ?= $(shell $(PYTHON) -c "import secrets; print(secrets.token_hex(16))")
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
DATA_DIR ?= ../shared/data/mnist
DEVICE ?= cpu
NBVAL_FLAGS := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300 -p no:cacheprovider
# One BLAS/OpenMP thread: notebook outputs and timings stay the same on a busy 2-core machine.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export PYTHONHASHSEED := 0

.PHONY: setup lab test unit nbval browser notebooks student bench bench-smoke lint clean help

help:
	@echo "make lab        set up and open JupyterLab on notebooks/"
	@echo "make test       set up and run unit tests, notebooks (nbval) and browser tests"
	@echo "make notebooks  re-execute every notebook in place (refreshes outputs and figures/)"
	@echo "make student    write student versions to dist/student/"
	@echo "make bench      full benchmark (DATA_DIR=path/to/mnist, DEVICE=cpu or cuda)"
	@echo "make lint       ruff on package, tests and notebooks"

# The lock pins torch==2.13.0: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	@echo "Opening JupyterLab at http://127.0.0.1:$(PORT)/lab?token=$(TOKEN)"
	$(BIN)/jupyter lab notebooks --ip=127.0.0.1 --port=$(PORT) --no-browser \
		--IdentityProvider.token=$(TOKEN) $(ROOT_FLAG)

test: setup unit nbval

unit: setup
	$(BIN)/python -m pytest tests

nbval: setup
	$(BIN)/python -m pytest $(NBVAL_FLAGS) notebooks

notebooks: setup
	$(BIN)/python tools/run_notebooks.py notebooks

student: setup
	$(BIN)/python tools/make_student.py notebooks dist/student

bench: setup
	$(BIN)/python -m benchmarks --data-dir $(DATA_DIR) --device $(DEVICE)

bench-smoke: setup
	$(BIN)/python -m benchmarks --smoke --data-dir $(DATA_DIR) --device $(DEVICE)

lint: setup
	$(BIN)/ruff check vi_helpers tests benchmarks tools notebooks

clean:
	rm -rf dist .pytest_cache **/__pycache__ notebooks/.ipynb_checkpoints
