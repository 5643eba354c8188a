# berth: the two set-up commands are `make lab` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0
export DOCKER_BUILDKIT := 0
ENGINE := scripts/engine.sh

.PHONY: help venv lab lab-down test lint unit integration faults lab-tests molecule bench clean

help:
	@echo "make lab       bring up the local multi-building lab and converge playbooks/site.yml"
	@echo "make lab-down  remove everything the lab created"
	@echo "make test      lint, unit, integration, fault-injection and Molecule tests"
	@echo "make faults    only the fault-injection suite (tests/faults) on its own test lab"
	@echo "make bench     measured figures, side by side"

venv:
	@scripts/venv.sh

# The main job: engine, host image, then scripts/lab.py: lab hosts, site.yml
# over SSH, the cleanup dry run, the summary and the demo rollout.
lab: venv
	@$(ENGINE) ensure
	@scripts/host-image.sh build
	@BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) python scripts/lab.py

lab-down: venv
	@$(ENGINE) run -- ansible-playbook playbooks/lab-down.yml
	@$(ENGINE) release

test: venv
	@$(ENGINE) run -- $(MAKE) --no-print-directory lint unit lab-tests molecule

lint: venv
	yamllint --strict .
	ruff check .
	ruff format --check .
	ansible-lint --profile production

unit: venv
	pytest -q tests/unit

# Each suite alone runs on one test lab made by `make lab` itself; `make
# test` runs both as two sessions on two labs at once (scripts/lab-tests.sh).
PYTEST_LAB := pytest -q --durations=30
integration: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- $(PYTEST_LAB) tests/integration

faults: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- $(PYTEST_LAB) tests/faults

lab-tests: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- scripts/lab-tests.sh

molecule: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- \
	  bash -c 'for s in molecule/*/molecule.yml; do molecule test -s "$$(basename "$$(dirname "$$s")")" || exit 1; done'

bench: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- python tests/bench/run.py $(BENCH)

clean: lab-down
	rm -rf .venv .cache .pytest_cache
