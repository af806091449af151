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
DINO_CKPT ?=
RUN ?= runs/$(PRESET)
DEMO_DATA ?= data/demo
DATA_DIR := $(if $(DATA),$(DATA),$(DEMO_DATA))

.PHONY: help install test lint format submission train predict refine pack score report demo-data prepare bench bench-score bench-data bench-train-step bench-cluster bench-refine bench-predict bench-pipeline bench-prepare bench-validate bench-checkpoint-load bench-faults rehearsal gpu-check gpu-wheels clean

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
	@if [ -z "$(DATA)" ] && ! $(PYTHON) -c 'import sys; from tools.data.demo import is_current_demo; sys.exit(not is_current_demo(sys.argv[1]))' $(DEMO_DATA); then \
	  $(LUSS) demo-data $(DEMO_DATA) $(if $(wildcard $(DEMO_DATA)/demo.json),--overwrite,); fi

# ILSVRC2012 + the annotation zip -> OUT/ImageNetS<CLASSES> (README "Data"); COPY=1 copies train images.
prepare: install
	$(LUSS) prepare --imagenet $(IMAGENET) --annotations $(ANNOTATIONS) --classes $(or $(CLASSES),50) \
	  --out $(OUT) $(if $(COPY),--copy,)

# Training stages run under mpirun when GPUS > 1 (as root OpenMPI needs --allow-run-as-root).
MPI_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-run-as-root,)
LAUNCH := $(if $(filter-out 1,$(GPUS)),mpirun -np $(GPUS) --bind-to none $(MPI_ROOT_FLAG),)
SAM_FLAG := $(if $(SAM_CKPT),--sam-checkpoint $(SAM_CKPT),)
DINO_FLAG := $(if $(DINO_CKPT),--dino-checkpoint $(DINO_CKPT),)
STAGE_ARGS := --preset $(PRESET) --data $(DATA_DIR) --run $(RUN)
# Refined PNGs are packed when a SAM checkpoint was given, the raw predictions otherwise.
PACK_FROM := $(if $(SAM_CKPT),$(RUN)/refine,$(RUN)/predict)
ZIP ?= submissions/$(PRESET).zip

submission: demo-data train predict refine pack
	$(LUSS) report --run $(RUN) --data $(DATA_DIR)
	@echo "Submission: $(ZIP) (validated). Validation scores: $(PACK_FROM)/validation/."

train: demo-data
	$(PYTHON) -m tools.config.preflight --preset $(PRESET) $(SAM_FLAG) $(DINO_FLAG)
	$(LUSS) validate-data $(DATA_DIR)
	$(LAUNCH) $(LUSS) pretrain $(STAGE_ARGS) $(SAM_FLAG) --resume
	$(LAUNCH) $(LUSS) cluster $(STAGE_ARGS) $(DINO_FLAG) --resume
	$(LAUNCH) $(LUSS) finetune $(STAGE_ARGS) --resume

predict: install
	$(LAUNCH) $(LUSS) predict --run $(RUN) --data $(DATA_DIR) --split test
	$(LAUNCH) $(LUSS) predict --run $(RUN) --data $(DATA_DIR) --split validation

refine: install
ifeq ($(SAM_CKPT),)
	@echo "refine: skipped (no SAM checkpoint; pass SAM_CKPT=/path/sam_vit_b_01ec64.pth to run SAM voting)."
else
	$(LAUNCH) $(LUSS) refine --run $(RUN) --data $(DATA_DIR) --split test --sam-checkpoint $(SAM_CKPT)
	$(LAUNCH) $(LUSS) refine --run $(RUN) --data $(DATA_DIR) --split validation --sam-checkpoint $(SAM_CKPT)
endif

pack: install
	$(LUSS) pack $(PACK_FROM)/test --data $(DATA_DIR) --match $(PACK_FROM)/validation/match.json --out $(ZIP)

score: install
	$(LUSS) score $(PACK_FROM)/validation --data $(DATA_DIR) --match $(PACK_FROM)/validation/match.json

report: install
	$(LUSS) report --run $(RUN) --data $(DATA_DIR)

bench: bench-score bench-data bench-train-step bench-cluster bench-refine bench-predict bench-pipeline bench-prepare bench-validate bench-checkpoint-load

bench-score: install
	$(PYTHON) bench/bench_score.py

bench-data: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_data.py

bench-train-step: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_train_step.py --profile

bench-cluster: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_cluster.py

bench-refine: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_refine.py

bench-predict: install
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_predict.py

bench-validate: install  # validate-data's full decode, files/s by worker count (SIZE=400: ImageNet-like)
	$(PYTHON) bench/bench_validate.py $(if $(SIZE),--size $(SIZE))

bench-checkpoint-load: install  # luss's torch_zip vs jittor_utils.load_pytorch on SAM/DINO layouts (~1.3 GB in TMPDIR, removed)
	$(PYTHON) bench/bench_checkpoint_load.py

bench-faults: install  # SIGKILL every stage at random moments (KILLS=3 each), rerun, compare with an uninterrupted run
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/faults.py --kills $(or $(KILLS),3)

bench-pipeline: install  # SEEDS=1,2,3: the whole ladder once per seed, then mean and spread
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/bench_pipeline.py --fresh $(if $(SEEDS),--seeds $(SEEDS))

bench-prepare: install  # seconds per 10,000 images, train as symlinks and --copy
	$(PYTHON) bench/bench_prepare.py

rehearsal: install  # the real presets, shrunk through --set, under mpirun -np 2 on the CPU, to checked zips
	env LUSS_FORCE_CPU=1 $(PYTHON) bench/rehearsal.py $(if $(PRESETS),--presets $(PRESETS))

gpu-check: install demo-data  # on a GPU machine with this venv; a bare one: make gpu-wheels, then bench/gpu_check.sh
	$(PYTHON) bench/gpu_check.py --data $(DEMO_DATA)

gpu-wheels: install  # .gpu/: what bench/gpu_check.sh installs on a GPU machine without internet
	PYTHON=$(PYTHON) bash bench/gpu_wheels.sh

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info
