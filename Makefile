# speakerd: the two commands of the README, plus benches.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := frr gobgpd bird2 tcpdump tshark nftables iproute2 systemd

.PHONY: venv deps test test-unit test-interop demo bench fuzz clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

venv: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'

# System packages for the interop tests (root needed; skipped when already present).
deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi

test: deps venv
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-unit: venv
	$(BIN)/python -m pytest -q tests/unit

test-interop: deps venv
	$(BIN)/python -m pytest -q -m interop tests/interop

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
