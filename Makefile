# Routine tasks. `make run` starts the system, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := libs/common services/registration services/scheduling services/notifications \
            services/reporting cli
# Tests and benchmarks only; the runtime image does not install these.
DEV_PACKAGES := libs/testing
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES) $(DEV_PACKAGES))
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast soak lint format bench migrate lock k8s clean help

help:
	@echo "make run      install, migrate and start the four services + a local mail sink"
	@echo "make test     run every test (unit, integration against RabbitMQ/PostgreSQL, e2e)"
	@echo "make lint     ruff check + format check"
	@echo "make bench    the benchmarks (results: docs/benchmarks.md)"
	@echo "make k8s      render and check the Kubernetes manifests offline"

install: $(STAMP)

$(STAMP): requirements.lock $(PYPROJECTS)
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) is needed (Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
		$(addprefix -e ,$(PACKAGES) $(DEV_PACKAGES))
	@touch $(STAMP)

run: install
	$(BIN)/lob run

migrate: install
	$(BIN)/lob migrate

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not integration and not e2e"

# The fault suite at soak size: 20 000 sign-ups, 16 clients (override LOB_FAULT_* to change).
soak: install
	LOB_FAULT_SIGN_UPS=$${LOB_FAULT_SIGN_UPS:-20000} LOB_FAULT_CLIENTS=$${LOB_FAULT_CLIENTS:-16} \
	LOB_FAULT_SETTLE_SECONDS=$${LOB_FAULT_SETTLE_SECONDS:-900} \
	$(BIN)/pytest tests/reliability -rA

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/signup_bench.py
	$(BIN)/python bench/outbox_bench.py
	$(BIN)/python bench/flood_bench.py
	$(BIN)/python bench/infoday_bench.py
	$(BIN)/python bench/orientation_bench.py
	$(BIN)/python bench/roster_bench.py
	$(BIN)/python bench/notifications_bench.py

k8s:
	@for overlay in deploy/k8s/overlays/*/; do \
		echo "kustomize $$overlay"; kubectl kustomize "$$overlay" >/dev/null || exit 1; done

lock: install
	@{ echo "# Exact versions of every third-party package (runtime, tests, tools), Python 3.11."; \
	   echo "# Regenerate with \`make lock\` after changing a pyproject.toml; reasons for pins: docs/dependencies.md."; \
	   $(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^lob-\|^pip=='; } > requirements.lock.new
	@mv requirements.lock.new requirements.lock

clean:
	rm -rf var .pytest_cache .ruff_cache
