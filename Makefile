# The commands a newcomer types. Each installs what it needs into .venv first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# the project's ZenML state stays inside the project; nothing phones home
export ZENML_CONFIG_PATH ?= $(CURDIR)/.zen-home
export ZENML_ANALYTICS_OPT_IN := false
export ZENML_LOGGING_VERBOSITY ?= WARN
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo test test-slow test-labelstudio bench clean-data

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "photogenic needs Python >= 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[train,filter,cluster,dev]'
	touch $(STAMP)

## demo: generate the sample pool and run the pipeline on it with ZenML, DVC and Great Expectations
demo: install
	dvc repro sample_pool
	photogenic run --config configs/default.yaml
	photogenic data ls

## test: the fast suite (what CI runs)
test: install
	$(PY) -m pytest -q

## test-slow: the tests marked slow
test-slow: install
	$(PY) -m pytest -q -m slow

## test-labelstudio: the real Label Studio round trip (Label Studio in its own venv: its pins clash with ours)
LS_VENV ?= .venv-ls
$(LS_VENV)/bin/label-studio:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet label-studio

test-labelstudio: install $(LS_VENV)/bin/label-studio
	PHOTOGENIC_LABEL_STUDIO=$(CURDIR)/$(LS_VENV)/bin/label-studio $(PY) -m pytest -q -m labelstudio

## bench: every benchmark, quick versions
bench: install
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

## requirements.lock: re-pin the dependency set after changing pyproject.toml
requirements.lock:
	$(PY) -m pip freeze --exclude-editable | sort > requirements.lock

clean-data:
	rm -rf data/raw data/datasets data/curation data/versions.jsonl .zen-home .zen
