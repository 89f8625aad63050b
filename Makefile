# hotmod developer tasks. CI runs `make test` (see .ci/run), so what passes here
# passes there. Every recipe is POSIX sh and non-interactive (CI=true, no stdin).
#
#   make test       lint, then the full suite on 3.11, 3.12 and 3.13
#   make chromium   install Debian's chromium for the browser tests (if missing)
#   make smoke      the quick `smoke` selection on 3.12 and 3.13
#   make test-long  the long property-based run (marker `slow`, random seed)
#   make lint       ruff + mypy only
#   make demo       serve the Flask example (examples/web) with `hotmod serve` on :8000
#   make demo-fastapi  the same for its FastAPI twin (= make demo APP=fastapi)
#   make demo-script   run the plain-script demo (examples/demo) under `hotmod run`
#   make bench      run the benchmarks (the web one included: benchmarks/run.py --only web)
#   make clean      remove virtualenvs and caches

# One target at a time: readable output, and a lint failure stops before the
# slow suites instead of racing them.
.NOTPARALLEL:
.DEFAULT_GOAL := test
.PHONY: test pytest pytest-3.12 pytest-3.13 smoke test-long lint demo demo-fastapi demo-script bench clean chromium

# Interpreters. pyenv's exact versions are what CI has; the plain names are the
# fallback on machines without pyenv. Override any of them: `make test PYTHON312=...`.
PYENV_ROOT_DIR := $(shell pyenv root 2>/dev/null)
PYTHON311 ?= $(or $(wildcard $(PYENV_ROOT_DIR)/versions/3.11.7/bin/python),python3.11)
PYTHON312 ?= $(or $(wildcard $(PYENV_ROOT_DIR)/versions/3.12.1/bin/python),python3.12)
PYTHON313 ?= $(or $(wildcard $(PYENV_ROOT_DIR)/versions/3.13.0/bin/python),python3.13)

EXTRAS := .[dev,flask,asgi]
VENV := .venv

# Size of the long property run, read by the test (override: `make test-long HOTMOD_PROPERTY_EDITS=500`).
HOTMOD_PROPERTY_EDITS ?= 2000
# Hypothesis seed for test-long. `--hypothesis-seed=random` would NOT randomise:
# Hypothesis takes any non-integer as a fixed seed string. So we draw an integer
# and print it, which makes a failing run reproducible: `make test-long SEED=1234`.
SEED ?=

# make-venv DIR,PYTHON,X.Y,X.Y.Z — create DIR with PYTHON if missing, then install the
# project editable. Runs only when pyproject.toml is newer than DIR/.stamp, so
# day-to-day `make test` does not touch the network.
define make-venv
	@"$(2)" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$(3)')" 2>/dev/null || { \
	  echo "error: no working Python $(3) (tried '$(2)'). Install it (pyenv install $(4)) or pass PYTHON$(subst .,,$(3))=/path/to/python$(3)." >&2; \
	  exit 1; }
	test -x $(1)/bin/python || "$(2)" -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check -e '$(EXTRAS)'
	touch $(1)/.stamp
endef

$(VENV)/.stamp: pyproject.toml
	$(call make-venv,$(VENV),$(PYTHON311),3.11,3.11.7)

$(VENV)-3.12/.stamp: pyproject.toml
	$(call make-venv,$(VENV)-3.12,$(PYTHON312),3.12,3.12.1)

$(VENV)-3.13/.stamp: pyproject.toml
	$(call make-venv,$(VENV)-3.13,$(PYTHON313),3.13,3.13.0)

test: chromium lint pytest pytest-3.12 pytest-3.13

# The live-reload tests drive headless Chromium (Debian's package; no browser
# downloads). Nothing to do when it is there; otherwise apt-get as root (CI), or
# through sudo without a prompt. Under CI a failed install fails the run (the
# browser tests would fail anyway); elsewhere it warns and they skip.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@[ -x "$(CHROMIUM)" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
	echo "chromium: $(CHROMIUM) missing; installing Debian's chromium"; \
	if $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive \
	     apt-get install -y -q --no-install-recommends chromium </dev/null; then exit 0; fi; \
	if [ -n "$$CI" ]; then echo "error: could not install chromium, needed by the browser tests" >&2; exit 1; fi; \
	echo "warning: could not install chromium; the browser tests will skip" >&2

# Plain `mypy` checks what pyproject configures (src and tests, strict); the
# examples are checked too, with the same settings, because users copy from them.
# Each example is its own run: they are separate programs with their own top-level
# packages (examples/web's apps import `catalog` from their own folder).
lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy examples/demo
	$(VENV)/bin/mypy examples/web

# Tests spend most of their time waiting on real servers and child processes, so
# four pytest-xdist workers on two cores roughly halve the wall time. Override
# with `make test PYTEST_WORKERS=0` for a serial run.
PYTEST_WORKERS ?= 4
PYTEST := -m pytest -n $(PYTEST_WORKERS)

pytest: $(VENV)/.stamp chromium
	$(VENV)/bin/python $(PYTEST)

# Every supported version runs the whole suite (about two minutes each on two
# cores): CPython differences are what in-place patching trips over. A missing
# interpreter fails in make-venv above: CI must never skip a version silently.
pytest-3.12: $(VENV)-3.12/.stamp chromium
	$(VENV)-3.12/bin/python $(PYTEST) -p no:cacheprovider

pytest-3.13: $(VENV)-3.13/.stamp chromium
	$(VENV)-3.13/bin/python $(PYTEST) -p no:cacheprovider

# The quick selection on the other versions, for a fast check while developing.
smoke: $(VENV)-3.12/.stamp $(VENV)-3.13/.stamp
	$(VENV)-3.12/bin/python $(PYTEST) -m smoke -p no:cacheprovider
	$(VENV)-3.13/bin/python $(PYTEST) -m smoke -p no:cacheprovider

test-long: $(VENV)/.stamp
	@seed="$(SEED)"; \
	if [ -z "$$seed" ]; then seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' \n'); fi; \
	echo "test-long: HOTMOD_PROPERTY_EDITS=$(HOTMOD_PROPERTY_EDITS) seed=$$seed (rerun: make test-long SEED=$$seed)"; \
	HOTMOD_PROPERTY_EDITS=$(HOTMOD_PROPERTY_EDITS) $(VENV)/bin/python -m pytest -m slow --hypothesis-seed="$$seed"

# The web demo: which app, where, and what to edit to see what (printed first).
APP ?= flask
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
DEMO_TARGET_flask := flaskapp.app:app
DEMO_TARGET_fastapi := fastapiapp.main:app
DEMO_VIEW_flask := examples/web/flaskapp/views/greetings.py
DEMO_VIEW_fastapi := examples/web/fastapiapp/routers/greetings.py

demo: $(VENV)/.stamp
	@test -n "$(DEMO_TARGET_$(APP))" || { echo "error: APP=$(APP): use APP=flask or APP=fastapi" >&2; exit 2; }
	@echo "Serving the $(APP) example on http://$(DEMO_HOST):$(DEMO_PORT)/ (Ctrl-C stops it). Edit, save, reload the page:"
	@echo "  $(DEMO_VIEW_$(APP)): the text greeting() returns; / changes at once"
	@echo "  examples/web/catalog/model.py: LABEL; the module runs again, the catalog (1 s to build) is kept: /api/books/3"
	@echo "  a syntax error anywhere: the reload fails, the old code keeps serving; fix it and it applies"
	cd examples/web && ../../$(VENV)/bin/hotmod serve $(DEMO_TARGET_$(APP)) --host $(DEMO_HOST) --port $(DEMO_PORT)

demo-fastapi:
	$(MAKE) demo APP=fastapi

demo-script: $(VENV)/.stamp
	$(VENV)/bin/hotmod run examples/demo/main.py

bench: $(VENV)/.stamp
	$(VENV)/bin/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(VENV)-3.12 $(VENV)-3.13 .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
