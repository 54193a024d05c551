# The only entry points. Every target sets up what it needs (venv, MinIO, buf, axe-core) on a fresh machine.
#   make serve   run the registry on the embedded default (PostgreSQL + local blob dir in ./.modelregistry);
#                the web UI and JSON API on http://127.0.0.1:8080/
#   make test    unit, integration, e2e and browser tests against real PostgreSQL, real MinIO
#                and the system Chromium (axe-core checks the pages' accessibility)
#   make lint    ruff, ruff format, mypy --strict, import-linter, buf lint/format/breaking, generated-code freshness
#   make helm-check   helm lint + template of deploy/helm/modelregistry, every render strictly validated (deploy/helm/validate)
#   make gen     regenerate the Python stubs from protos/
#   make axe     install the pinned axe-core (accessibility checks of the browser tests) into .tools/node
#   make image   build the container image (deploy/Containerfile) as $(IMAGE), FROM a Debian base made
#                with mmdebstrap (IMAGE_BASE=python:3.11-slim where a registry is reachable)
#   make compose-test   deploy/compose.yaml up on this machine, push and pull with the CLI, down
#   make ui-vendor   fetch the pinned Chart.js from npm into the UI package (the only vendored asset)
#   make bench-artifacts   ArtifactService throughput/memory/CPU as ratios to direct minio-py
#   make bench-metadata    ResolveModelVersion p50/p99 at 32 callers vs an empty unary call
#   make bench-pull        SDK pull/push of a 1 GiB model as ratios to direct minio-py gets
#   make bench-audit       200 concurrent audited alias moves, hash chain on ÷ off
#   make bench-scan        push-to-READY of a 1 GiB safetensors model, file scanning on ÷ off
#   make bench-http        download of a 1 GiB file by HTTP file URL ÷ gRPC Read, local store and MinIO
#   make bench-minio-options  MinIO's CPU per GiB taking PUTs: defaults, --no-compat, compression
#   make bench-ui          the model page's server time with 10,000 versions (p50/p99), beside GET /v1/whoami
#   make bench-metrics     ResolveModelVersion p50 and Write CPU-s/GiB with --metrics prometheus ÷ without
#   make bench-where-cpu   the artifact service's CPU per GiB of Write and Read, split by thread
#   make bench-floors      CPU per GiB of any relay (bare sockets) and of bare gRPC in Python and Go (builds bench/go_floor)
#   make dashboard         regenerate deploy/grafana/modelregistry-dashboard.json from deploy/grafana/dashboard.py
#   make fuzz              the fuzz suite with 600 fresh requests per RPC (about 20,000)
#   make scale-test        the scale-out test under injected faults: 4-node MinIO, PostgreSQL primary and
#                          synchronous standby, 2+2 replicas; prints the table per fault (about 2.5 min)

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUF_VERSION := 1.75.0
BUF := $(TOOLS)/node/node_modules/.bin/buf
# Keep equal to AXE_CORE_VERSION in tests/support/browser.py (a browser test checks it).
AXE_VERSION := 4.14.1
AXE := $(TOOLS)/node/node_modules/axe-core/axe.min.js
# The UI's one third-party script, vendored into the package (the UI needs no internet):
# `make ui-vendor` fetches the pinned release from npm and copies it; `make lint` checks that
# the committed copy is that release.
CHARTJS_VERSION := 4.6.1
UI_VENDOR := services/modelregistry_server/web/ui/static/vendor
# Helm (deploy/helm, deploy/docs/kubernetes.md): `go install` of this version into .tools/bin;
# the strict manifest validator is built from deploy/helm/validate (its go.mod pins the
# Kubernetes API types it decodes into). Keep HELM_VERSION equal to tests/support/helm.py's.
HELM_VERSION := v4.3.2
HELM := $(TOOLS)/bin/helm
HELM_STAMP := $(TOOLS)/bin/.helm-$(HELM_VERSION)
KUBE_VALIDATE := $(TOOLS)/bin/kube-validate
CHART := deploy/helm/modelregistry
HELM_EXAMPLES := deploy/helm/examples
SERVE_ARGS ?=
# The container image (deploy/docs/image-and-compose.md). PODMAN is podman with this repository's
# settings and storage (deploy/podman/podman.sh installs Debian's podman if missing); docker works.
IMAGE ?= localhost/modelregistry:dev
IMAGE_BASE ?= localhost/modelregistry-base:bookworm
PODMAN ?= deploy/podman/podman.sh

# make fuzz: the fuzz suite with fresh examples, 600 per RPC (about 20,000 requests).
.PHONY: fuzz serve test test-unit lint gen venv venv-dev minio buf axe image compose-test ui-vendor bench-artifacts bench-metadata bench-pull bench-audit bench-scan bench-http bench-minio-options bench-ui clean

$(VENV)/.runtime: pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e clients/python -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -e clients/python -e '.[dev]'
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

serve: venv
	$(VENV)/bin/modelregistry-server serve $(SERVE_ARGS)

# Builds MinIO with `go install` at the pinned version into .tools/bin once (several minutes
# the first time), so that no test pays for it under its timeout.
minio: venv-dev
	$(PY) -m tests.support.minio

# Rebuilt only when a file it is made of changed (deploy/image/build.sh compares a hash label),
# so `make test` pays for it once, outside any test's timeout.
image: venv
	IMAGE=$(IMAGE) IMAGE_BASE=$(IMAGE_BASE) PODMAN=$(PODMAN) PYTHON=$(PY) deploy/image/build.sh

# deploy/compose.yaml for real here (host-network override): up in health order, a CLI push
# through one metadata/artifact pair and a pull through the other, down with its volumes.
compose-test: venv-dev image minio
	PODMAN=$(PODMAN) PYTHON=$(PY) deploy/compose-test.sh

$(BUF):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node @bufbuild/buf@$(BUF_VERSION)

buf: $(BUF)

$(AXE):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node axe-core@$(AXE_VERSION)

axe: $(AXE)

.PHONY: helm helm-check
$(HELM_STAMP):
	GOBIN=$(abspath $(TOOLS)/bin) go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	touch $@

$(KUBE_VALIDATE): $(wildcard deploy/helm/validate/*.go) deploy/helm/validate/go.mod deploy/helm/validate/go.sum
	cd deploy/helm/validate && go build -o $(abspath $(KUBE_VALIDATE)) .

helm: $(HELM_STAMP) $(KUBE_VALIDATE)

# pipefail: a template that fails must fail the target, not feed the validator nothing.
helm-check: helm
	@test -z "$$(gofmt -l deploy/helm/validate)" || { gofmt -l deploy/helm/validate; echo "run gofmt -w deploy/helm/validate"; exit 1; }
	cd deploy/helm/validate && go vet .
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) -f $(HELM_EXAMPLES)/values-production.yaml
	set -o pipefail; $(HELM) template registry $(CHART) | $(KUBE_VALIDATE)
	set -o pipefail; $(HELM) template registry $(CHART) -f $(HELM_EXAMPLES)/values-production.yaml | $(KUBE_VALIDATE)
	$(KUBE_VALIDATE) -allow-kind postgresql.cnpg.io/v1/Cluster -allow-kind minio.min.io/v2/Tenant \
	  $(HELM_EXAMPLES)/cloudnative-pg-cluster.yaml $(HELM_EXAMPLES)/minio-tenant.yaml

# The chart's tests (tests/helm) need helm and the validator; a fresh machine gets both here.
test: helm

ui-vendor:
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node chart.js@$(CHARTJS_VERSION)
	cp $(TOOLS)/node/node_modules/chart.js/dist/chart.umd.min.js $(UI_VENDOR)/chart.umd.min.js
	cp $(TOOLS)/node/node_modules/chart.js/LICENSE.md $(UI_VENDOR)/chart.js-LICENSE.md

test: venv-dev minio axe image
	$(PY) -m pytest

fuzz: venv-dev minio
	MODELREGISTRY_FUZZ_EXAMPLES=$${MODELREGISTRY_FUZZ_EXAMPLES:-600} $(PY) -m pytest -s tests/fuzz

# Kept out of `make test` (pytest --ignore=tests/scale in pyproject.toml): it runs its own
# cluster of 10 processes for 2-4 minutes. CI runs it after `make test` (tests/scale/ci.sh).
# deploy/docs/scale-out.md has a run's table.
.PHONY: scale-test
scale-test: venv-dev minio
	$(PY) -m pytest -s tests/scale

test-unit: venv-dev
	$(PY) -m pytest tests/unit

# Throughput, memory and CPU of the ArtifactService against direct minio-py on the same MinIO.
bench-artifacts: venv-dev minio
	$(PY) bench/artifacts.py $(BENCH_ARGS)

# ResolveModelVersion latency at 32 concurrent callers, as a ratio to an empty unary call.
bench-metadata: venv-dev
	$(PY) bench/metadata.py $(BENCH_ARGS)

# SDK push/pull (cold, warm, 8 concurrent pullers, re-push) as ratios to direct minio-py gets.
bench-pull: venv-dev minio
	$(PY) bench/pull.py $(BENCH_ARGS)

# 200 concurrent audited alias moves with the audit hash chain on ÷ off (and the two designs).
bench-audit: venv-dev
	$(PY) bench/audit_chain.py $(BENCH_ARGS)

# Push-to-READY of a 1 GiB safetensors model with model-file scanning on ÷ off.
bench-scan: venv-dev minio
	$(PY) bench/scan.py $(BENCH_ARGS)

# A 1 GiB file by HTTP file URL (curl, urllib) ÷ gRPC Read of the same blob, local store and MinIO.
bench-http: venv-dev minio
	$(PY) bench/http_download.py $(BENCH_ARGS)

# MinIO's CPU per GiB taking PUTs under its own options (defaults, --no-compat, compression).
bench-minio-options: venv-dev minio
	$(PY) bench/minio_options.py $(BENCH_ARGS)

# The model page's server time with 10,000 versions in the model, p50/p99 over HTTP.
bench-ui: venv-dev
	$(PY) bench/ui_pages.py $(BENCH_ARGS)

.PHONY: bench-where-cpu
bench-where-cpu: venv-dev minio
	$(PY) bench/where_cpu.py $(BENCH_ARGS)

# Issue 16's floors: what moving a GiB costs before any service work, whatever the language.
.PHONY: bench-floors
bench-floors: venv-dev
	$(PY) bench/floors.py $(BENCH_ARGS)

.PHONY: bench-metrics dashboard
bench-metrics: venv-dev
	$(PY) bench/metrics_overhead.py $(BENCH_ARGS)

dashboard: venv
	$(PY) deploy/grafana/dashboard.py

gen: venv-dev
	$(PY) clients/python/scripts/gen_protos.py

lint: venv-dev buf
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services clients/python/src clients/python/scripts tests bench examples deploy/backup deploy/grafana
	$(VENV)/bin/lint-imports
	cd protos && ../$(BUF) lint
	cd protos && ../$(BUF) format --diff --exit-code
	@# buf breaking: the working tree against main as committed (on a branch, that is the
	@# merge target; on main, it catches an uncommitted breaking change before it is committed).
	@if git rev-parse --verify --quiet main:protos >/dev/null; then \
	  echo "buf breaking protos --against .git#branch=main,subdir=protos"; \
	  $(BUF) breaking protos --against ".git#branch=main,subdir=protos"; \
	else echo "buf breaking: main has no protos yet, nothing to compare with"; fi
	$(PY) clients/python/scripts/gen_protos.py --check
	@head -c 200 $(UI_VENDOR)/chart.umd.min.js | grep -q "Chart.js v$(CHARTJS_VERSION)" || \
	  { echo "$(UI_VENDOR)/chart.umd.min.js is not Chart.js $(CHARTJS_VERSION): run make ui-vendor"; exit 1; }

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
