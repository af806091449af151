# luss: the two commands users need are `make submission` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
LUSS := $(VENV)/bin/luss
PYTEST_ARGS ?=

# Pipeline knobs (see README): `make submission PRESET=luss50-sampass DATA=... GPUS=4 SAM_CKPT=...`
PRESET ?= demo
DATA ?=
GPUS ?= 1
SAM_CKPT ?=
RUN ?= runs/$(PRESET)
DEMO_DATA ?= data/demo
DATA_DIR := $(if $(DATA),$(DATA),$(DEMO_DATA))

.PHONY: help install test lint format submission demo-data bench bench-score bench-data bench-refine bench-predict clean

help:
	@echo "make install      build .venv with pinned dependencies"
	@echo "make submission   images -> validated submission zip (demo dataset on CPU by default)"
	@echo "make test         lint + the whole test suite"
	@echo "make bench        every benchmark, one table each"

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -e .
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

demo-data: install
	@if [ -z "$(DATA)" ] && [ ! -f "$(DEMO_DATA)/.complete" ]; then $(LUSS) demo-data $(DEMO_DATA); fi

submission: demo-data
	$(LUSS) validate-data $(DATA_DIR)
	@echo "The training stages (pretrain, cluster, finetune, predict, refine) are not built yet;"
	@echo "stopping after data validation. Nothing was trained and no submission was written."
	@exit 1

bench: bench-score bench-data bench-refine bench-predict

bench-score: install
	$(PYTHON) bench/bench_score.py

bench-data: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_data.py

bench-refine: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_refine.py

bench-predict: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_predict.py

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info
