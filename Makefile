# The project's commands. On a fresh Debian/Ubuntu machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help venv dev stack-up stack-down stack-status demo test test-unit bench lint format

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "python3-venv is missing: run: sudo apt-get install -y python3-venv" >&2; exit 2; fi; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)  ## create the virtualenv with runtime and dev dependencies
dev: venv       ## same as venv

# The local .env: .env.example with its secrets generated (never replaces an existing one).
.env:
	@$(PYTHON) -m stack.envfile

stack-up: venv .env  ## install what is missing and start the local servers (idempotent)
	$(PY) -m stack up

stack-down:  ## stop exactly the servers stack-up started
	@if [ -x $(PY) ]; then $(PY) -m stack down; else echo "no virtualenv: nothing was started"; fi

stack-status: venv  ## each server, its port and health
	$(PY) -m stack status

demo: stack-up  ## run the main job on the local stack and print where to look
	$(PY) -m demo

test: stack-up lint  ## the whole suite: lint, then every test on the real servers
	$(PY) -m pytest -q

test-unit: venv  ## only the tests that need no server
	$(PY) -m pytest -q -m "not integration"

bench: stack-up  ## benchmarks: figures and ratios against baselines measured in the same run
	$(PY) -m benchmarks

lint: venv  ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
