# speakerd: `make venv` then `make test` (the README's commands), plus per-suite targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
# What the interop lab needs on a Debian/Ubuntu machine (installed by `make deps` as root).
APT_PACKAGES := frr gobgpd bird2 tcpdump tshark nftables iproute2 iputils-ping procps systemd \
                python3 python3-venv python3-pip

.PHONY: venv deps test test-unit test-interop demo bench fuzz clean base-image image lab-up lab-down

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Reinstall only when the package metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# System packages for the interop tests (root needed).  Outside CI a non-root run
# skips this step and the interop tests skip; with CI=true it is an error.
deps:
	@if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  if [ "$$CI" = true ]; then echo "deps: CI needs root and apt-get" >&2; exit 1; fi; \
	  echo "deps: not root or no apt-get; interop tests will skip"; exit 0; \
	fi; \
	missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# pytest exits 5 when it collects nothing: make treats that as the failure it is.
test: deps venv
	$(PYTEST) -q tests

test-unit: venv
	$(PYTEST) -q tests/unit

test-interop: deps venv
	$(PYTEST) -q -m interop tests/interop

# The cluster in a box (N=5 nodes, two FRR ToRs, API emulator): tests/cluster, also part of `make test`.
.PHONY: cluster-test
cluster-test: deps venv
	$(PYTEST) -q tests/cluster

# Two speakerd instances on loopback, no root: see README.
demo: venv
	VENV=$(VENV) bash scripts/demo.sh

# Every benchmark scenario side by side with FRR/GoBGP/BIRD/ExaBGP (root; ~30 min,
# BENCH_ARGS=--quick for ~6 min); rewrites docs/benchmarks.md.
bench: deps venv
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

# A long fuzz run of the codec and of the session machine (atheris when it installs).
FUZZ_SECONDS ?= 600
fuzz: venv
	-$(BIN)/pip install -q atheris
	$(BIN)/python bench/fuzz_long.py --target codec --seconds $(FUZZ_SECONDS)
	$(BIN)/python bench/fuzz_long.py --target session --seconds $(FUZZ_SECONDS)

# The container image and the compose lab (docker and docker-compose; see README).
# BASE_IMAGE: any Debian bookworm userland; without a registry, `make base-image`
# makes local/debian:bookworm (root, debootstrap) and BASE_IMAGE=local/debian:bookworm.
BASE_IMAGE ?= debian:bookworm-slim
IMAGE ?= speakerd:0.1.0
DOCKER ?= docker
# CAs this machine adds (a TLS-intercepting proxy): pip in the build stage needs them
CA_FILES := $(wildcard /usr/local/share/ca-certificates/*.crt)

base-image:
	bash lab/make-base-image.sh local/debian:bookworm

image:
	$(DOCKER) build --force-rm --network host --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  $(if $(CA_FILES),--build-arg EXTRA_CA_CERTS="$$(cat $(CA_FILES))") -t $(IMAGE) .

# speakerd + FRR + GoBGP containers; waits until both routers have the routes
# FRR_IMAGE=quay.io/frrouting/frr:9.1.0: the public FRR image instead of lab/compose/frr
FRR_IMAGE ?=

lab-up: image
	SPEAKERD_IMAGE=$(IMAGE) BASE_IMAGE=$(BASE_IMAGE) FRR_IMAGE=$(FRR_IMAGE) bash lab/compose/lab.sh up

lab-down:
	SPEAKERD_IMAGE=$(IMAGE) BASE_IMAGE=$(BASE_IMAGE) FRR_IMAGE=$(FRR_IMAGE) bash lab/compose/lab.sh down

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
