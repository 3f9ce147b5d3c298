# bluegreen: `make demo` releases the seed's test app on the sandbox, `make test` runs every test.
# All set-up happens here; a fresh machine needs only python3 (3.11+) and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest workers; the suite's slow parts wait on sandbox timers, so two cores run 4 well.
WORKERS ?= 4

.PHONY: install prometheus chromium lint format test test-fast demo sandbox bench chaos clean

install: $(STAMP) prometheus chromium

# A real Prometheus (Debian's package) scrapes the sandbox's pods in the metrics tests and the
# demo (sandbox/src/sandbox/prometheus.py starts one per use).  Installed only when missing (as
# root, apt-get update first); the service its postinst may start (systemd, or the init script
# where no policy-rc.d forbids it) is stopped: nothing needs it on :9090.
prometheus:
	@command -v prometheus >/dev/null || { \
		echo "installing prometheus (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
		&& { systemctl disable --now prometheus >/dev/null 2>&1; /etc/init.d/prometheus stop >/dev/null 2>&1; true; }; }
	@prometheus --version 2>&1 | head -1

# A real browser for the Releases page's test (tests/services/test_releases_page.py): Debian's chromium
# and its WebDriver, chromium-driver (Selenium, from PyPI with the rest, drives it).  Installed only
# when missing (as root); apt-get update only when the install fails without it (no lists yet, or
# lists that name versions the mirror no longer has).
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
		echo "installing chromium and chromium-driver (apt)"; \
		$(APT_CHROMIUM) >/dev/null 2>&1 || { apt-get update -qq && $(APT_CHROMIUM) >/dev/null; }; }
	@chromium --version 2>/dev/null | head -1

$(STAMP): requirements.txt constraints.txt pyproject.toml sandbox/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("bluegreen needs Python 3.11 or newer; found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	# bluegreen itself (a provider with an airflow.plugins entry point) and the sandbox, editable
	$(BIN)/python -m pip install --quiet --no-deps -e . -e sandbox
	@touch $@

# ruff (lint and format check) and mypy, configured in pyproject.toml; make test runs it first.
LINTED := plugins dags deploy tests sandbox chaos demo benchmarks docs
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

# Rewrites what ruff can fix by itself (imports, format); review the diff.
format: install
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

test: install lint
	$(BIN)/python -m pytest -n $(WORKERS)

# Unit tests only (no sandbox, no Airflow run): a few seconds.
test-fast: install
	$(BIN)/python -m pytest -m "not e2e and not services" -n 2

sandbox: install
	$(BIN)/python -m sandbox

demo: install
	$(BIN)/python -m demo

# The release benchmark (benchmarks/release.py): BENCH_N="1,5,20" BENCH_PLATFORMS="kubernetes,bcs"
# BENCH_SOAK=10 BENCH_DEFER_SOAK=300 (0: no deferral phase) BENCH_FLOOR=0 (no Airflow floor) BENCH_JSON=<path>;
# `python -m benchmarks readiness`: watch vs poll.
bench: install
	$(BIN)/python -m benchmarks

# The chaos suite (chaos/README.md): RUNS randomized releases under faults, both platforms, a tenth
# of them through the Airflow services; SEED=<n> replays a session (a run's seed with RUNS=1: that run).
RUNS ?= 200
chaos: install
	$(BIN)/python -m chaos --runs $(RUNS) $(if $(SEED),--seed $(SEED))

clean:
	rm -rf $(VENV) .sandbox .airflow .demo .pytest_cache
