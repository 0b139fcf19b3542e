# henet-study: `make reproduce` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/henet-study/kernel.json
PROFILE ?= smoke
DATA_ROOT ?=
DEVICE ?= auto
NOTEBOOKS ?=
SEEDS ?= published
# default: the profile's own (smoke fine-tunes its SynthReID-pretrained backbone, the paper's regime; gpu starts from
# random weights); finetune or scratch force one, into figures/fine-tuned/ or figures/from-scratch/ (and reports/)
# when not the default
REGIME ?= default
# FORCE=1: execute every notebook again (by default a notebook whose inputs did not change is not re-run)
FORCE ?=
# PRETRAINED=path/to/resnet50.pth: the local torchvision checkpoint every run starts from (the paper profile's
# ImageNet weights). QUICK=1: a dry run of every notebook on this setup, minutes, into dry-run/ folders, with a report
PRETRAINED ?=
QUICK ?=
# make lab: PORT=8888 IP=0.0.0.0 BROWSER=no for a remote machine or a container (as root it adds --allow-root,
# without which jupyter exits), LAB_ARGS='...' any other jupyter lab option; FIGURES=paper: the notebooks write
# the study's figures/ (by default, figures/interactive/, git-ignored)
PORT ?=
IP ?=
BROWSER ?=
LAB_ARGS ?=
FIGURES ?=

.PHONY: env git-filter test lint reproduce lab bench clean-results

# The environment is rebuilt only when pyproject.toml changes; a second run starts in seconds. pip compiles
# the 13,000 modules one by one (about 46 s); compileall does it on every core (27 s on two).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing henetlib and its dependencies into $(VENV) (first time: about 2 minutes)..."
	@$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
	@set -o pipefail; $(PY) -m pip install -q --no-compile -e '.[test]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@$(PY) -m compileall -q -j 0 $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))') >/dev/null 2>&1 || true
	@touch $(STAMP)

# The notebooks' kernel, under a name of its own: a Jupyter outside .venv maps "python3" to its own Python,
# which has no henetlib. Papermill (make reproduce, the tests) asks for it by this name too.
# ("python3" goes back to ipykernel's own name, which an older make env had given this one's)
$(KERNEL): $(STAMP)
	@$(PY) -m ipykernel install --sys-prefix --name henet-study --display-name "Python 3.11 (henet-study)" >/dev/null
	@$(PY) -m ipykernel install --sys-prefix >/dev/null

# .gitattributes sends notebooks/*.ipynb through this clean filter (henetlib/nbstrip.py: no outputs,
# execution counts or language_info reach git); the filter itself lives in each clone's .git/config, which
# only this sets. make lab also saves the study notebooks stripped, so that `git status` stays clean.
git-filter: $(STAMP)
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	    git config filter.nbstripout.clean '$(PY) -m henetlib.nbstrip' && git config filter.nbstripout.smudge cat; fi

env: $(KERNEL) git-filter

lint: $(STAMP)
	$(VENV)/bin/ruff check henetlib tests benchmarks notebooks

test: $(KERNEL) git-filter
	$(VENV)/bin/ruff check henetlib tests benchmarks notebooks
	$(PY) -m pytest -q

reproduce: $(KERNEL)
	@case '$(REGIME)' in default|scratch|finetune) ;; *) echo "error: REGIME=$(REGIME); use REGIME=default, scratch (random weights) or finetune (the pretrained backbone)"; exit 2;; esac
	$(PY) -m henetlib reproduce --profile $(PROFILE) --device $(DEVICE) --seeds $(SEEDS) $(if $(filter finetune,$(REGIME)),--finetune)$(if $(filter scratch,$(REGIME)),--from-scratch) $(if $(DATA_ROOT),--data-root "$(DATA_ROOT)") $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) $(if $(filter 1 yes true,$(FORCE)),--force) $(if $(PRETRAINED),--pretrained "$(PRETRAINED)") $(if $(filter 1 yes true,$(QUICK)),--quick)

lab: $(KERNEL) git-filter
	$(if $(filter paper,$(FIGURES)),HENET_FIGURES=paper )$(VENV)/bin/jupyter lab --notebook-dir=notebooks \
	    --ContentsManager.pre_save_hook=henetlib.nbstrip.pre_save_hook \
	    $(if $(PORT),--port=$(PORT)) $(if $(IP),--ip=$(IP)) $(if $(filter no 0 false,$(BROWSER)),--no-browser) \
	    $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench_rpe.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_model.py

clean-results:
	rm -rf results reports
