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

.PHONY: install demo test test-slow test-cluster test-labelstudio labelstudio-lock bench clean-data image image-cpu image-mlflow dashboards test-browser

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "photogenic needs Python >= 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[train,filter,cluster,ray,dev]'
	touch $(STAMP)

## demo: generate the sample pool and run the whole recipe on it (the emu pipeline: ZenML, DVC, Great Expectations, MLflow)
demo: install
	dvc repro sample_pool
	photogenic run --pipeline emu --config configs/default.yaml
	photogenic data ls
	photogenic lineage model photogenic-t2i
	$(PY) benchmarks/emu_effect.py

## test: the fast suite (what CI runs)
test: install
	$(PY) -m pytest -q

## test-slow: the tests marked slow
test-slow: install
	$(PY) -m pytest -q -m "slow and not browser"

## test-cluster: the compiled KFP pipeline's tasks, each a process in a fresh copy of the image's files,
## against an S3 API (moto) and an MLflow server on 127.0.0.1: the recipe, lineage from a third
## directory, the cache, scheduled retraining, and the object store and tracking server failing
test-cluster: install
	$(PY) -m pytest -q -m cluster tests/cluster

## test-labelstudio: the real Label Studio round trip (Label Studio in its own venv: its pins clash with ours)
## Installed exactly from its own lock; a changed lock rebuilds the venv from scratch.
LS_VENV ?= .venv-ls
LS_LOCK := infra/labelstudio/requirements.lock
LS_STAMP := $(LS_VENV)/.installed-stamp
$(LS_STAMP): $(LS_LOCK)
	rm -rf $(LS_VENV)
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --no-deps -r $(LS_LOCK)
	$(LS_VENV)/bin/pip check
	touch $(LS_STAMP)

test-labelstudio: install $(LS_STAMP)
	PHOTOGENIC_LABEL_STUDIO=$(CURDIR)/$(LS_VENV)/bin/label-studio $(PY) -m pytest -q -m labelstudio

## labelstudio-lock: re-resolve Label Studio's lock from infra/labelstudio/requirements.in
labelstudio-lock:
	rm -rf $(LS_VENV)-resolve
	$(PYTHON) -m venv $(LS_VENV)-resolve
	$(LS_VENV)-resolve/bin/pip install --quiet -r infra/labelstudio/requirements.in
	{ echo "# Label Studio's own environment (.venv-ls), resolved from requirements.in by make labelstudio-lock"; \
	  $(LS_VENV)-resolve/bin/pip freeze --all | grep -v '^pip==' | LC_ALL=C sort; } > $(LS_LOCK)
	rm -rf $(LS_VENV)-resolve

## bench: every benchmark, quick versions
bench: install
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

## requirements.lock: re-pin the dependency set after changing pyproject.toml
requirements.lock:
	$(PY) -m pip freeze --exclude-editable | sort > requirements.lock

clean-data:
	rm -rf data/raw data/datasets data/curation data/versions.jsonl .zen-home .zen

## image: the project image for the cluster (CUDA); image-cpu: its CPU variant (needs a Docker engine)
GIT_COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE ?= photogenic:$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
DOCKER_BUILD = docker build -f infra/docker/Dockerfile --build-arg GIT_COMMIT=$(GIT_COMMIT) \
	--build-arg BUILD_DATE=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
image:
	$(DOCKER_BUILD) -t $(IMAGE) .
image-cpu:
	$(DOCKER_BUILD) --build-arg BASE_IMAGE=debian:bookworm-slim \
		--build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t $(IMAGE)-cpu .

## image-mlflow: the MLflow tracking server infra/k8s deploys (MLflow's image at the lock's version,
## plus the PostgreSQL driver and boto3); push it and name it in your overlay (infra/README.md)
MLFLOW_VERSION := $(shell sed -n 's/^mlflow==//p' requirements.lock)
MLFLOW_IMAGE ?= photogenic-mlflow:$(MLFLOW_VERSION)
image-mlflow:
	docker build -f infra/mlflow/Dockerfile --build-arg MLFLOW_VERSION=$(MLFLOW_VERSION) -t $(MLFLOW_IMAGE) infra/mlflow

## dashboards: the ZenML dashboard (runs, steps, artifacts) and the MLflow UI (models, tags) on 127.0.0.1
DASHBOARDS_STAMP := $(VENV)/.dashboards-stamp
$(DASHBOARDS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dashboards]'
	touch $(DASHBOARDS_STAMP)

dashboards: $(DASHBOARDS_STAMP)
	photogenic dashboards

## test-browser: open both dashboards after a small run, and click through the human rating page, in
## headless Chromium (Debian's chromium and chromium-driver; installed here with apt when missing, as
## root does in CI)
test-browser: $(DASHBOARDS_STAMP)
	command -v chromedriver >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	$(PY) -m pytest -q -m browser tests/test_dashboards.py tests/evaluation/test_evaluate.py
