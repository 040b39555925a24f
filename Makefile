# One entry point for people and CI. Everything a target needs, it installs:
# a venv with the project and its test extra, and the Debian packages the
# tests drive (prometheus/promtool, wrk, hey).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBIAN_TOOLS := prometheus promtool wrk hey
DEBIAN_PACKAGES := prometheus wrk hey
# What builds the image and runs the e2e pods from it (each package names its tool).
IMAGE_TOOLS := buildah mmdebstrap umoci runc
PYTEST_ARGS ?=

.PHONY: help test lint demo bench soak e2e image image-deps proto system-deps venv clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)  ## create .venv with the project and its test tools

system-deps:  ## apt-get install the Debian tools the tests use, if missing
	@missing=""; for tool in $(DEBIAN_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); \
	fi

lint: $(STAMP)  ## ruff and mypy (strict)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: system-deps $(STAMP) lint  ## everything CI runs: lint, then the whole test suite
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: system-deps $(STAMP)  ## run the local demo (see README)
	$(PY) -m demo $(DEMO_ARGS)

bench: system-deps $(STAMP)  ## run the benchmarks; figures go to docs/BENCHMARKS.md by hand
	$(PY) -m bench $(BENCH_ARGS)

soak: system-deps $(STAMP)  ## 10-minute soak, then 3 minutes of chaos; prints the figures (SOAK_ARGS for both)
	$(PY) -m soak $(SOAK_ARGS)
	$(PY) -m soak --chaos --duration 180 $(SOAK_ARGS)

image-deps:  ## apt-get install buildah, mmdebstrap, umoci and runc, if missing (root)
	@missing=""; for tool in $(IMAGE_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

image: image-deps $(STAMP)  ## build the image from the Dockerfile if not cached, then run each command from it (root)
	$(PY) -m e2e.cluster.image --check

e2e: image $(STAMP)  ## real kube-apiserver, controller-manager, etcd, KEDA and Prometheus on this machine (root; see README)
	$(PY) -m e2e $(E2E_ARGS)

proto: $(STAMP)  ## regenerate scaler/_proto from proto/ (commit the result)
	$(PY) -m scaler._proto.generate

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis out
