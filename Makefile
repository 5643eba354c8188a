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

.PHONY: help venv lab lab-up lab-down test lint unit sanity integration molecule bench collection ee clean

help:
	@echo "make lab       bring up the local multi-building lab and converge playbooks/site.yml"
	@echo "make lab-down  remove everything the lab created"
	@echo "make test      lint, unit, integration and Molecule tests"
	@echo "make bench     measured figures, side by side"
	@echo "make collection  build the collection berth.ops (.cache/collection/berth-ops-<version>.tar.gz)"
	@echo "make ee        build the execution environment image berth/ee:<hash> on the local engine"

venv:
	@scripts/venv.sh

# The main job: engine, host image, lab hosts, then site.yml over SSH.
lab: venv
	@$(ENGINE) ensure
	@scripts/host-image.sh build
	@BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) ansible-playbook playbooks/lab_up.yml
	@mkdir -p .lab/berth-lab
	@ansible-playbook -i inventories/lab/hosts.yml playbooks/site.yml | tee .lab/berth-lab/site.log
	@ansible-playbook -i inventories/lab/hosts.yml playbooks/image_cleanup.yml -e image_cleanup_dry_run=true \
	  -e image_cleanup_report_path=$(CURDIR)/.lab/berth-lab/cleanup-report.json > .lab/berth-lab/cleanup.log
	@python scripts/lab_summary.py --inventory inventories/lab/hosts.yml --log .lab/berth-lab/site.log \
	  --cleanup-report .lab/berth-lab/cleanup-report.json
	@python scripts/lab_demo.py --inventory inventories/lab/hosts.yml --state .lab/berth-lab

lab-down: venv
	@$(ENGINE) run -- ansible-playbook playbooks/lab_down.yml
	@$(ENGINE) release

test: venv
	@$(ENGINE) run -- $(MAKE) --no-print-directory lint unit sanity integration molecule

lint: venv
	yamllint --strict .
	ruff check .
	ruff format --check .
	ansible-lint --profile production
	python scripts/fqcn_rename.py --check
	python scripts/doc_check.py

unit: venv
	pytest -q tests/unit

# ansible-test sanity on the built collection, installed as users install it.
sanity: venv
	scripts/sanity.sh

# The tarball is rebuilt only when a file that goes into it changed.
collection: venv
	@scripts/collection.sh build

# The execution environment, on the lab's own base image; cached by the hash
# of its inputs.
ee: venv
	@$(ENGINE) run -- bash -c 'scripts/host-image.sh build && scripts/ee.sh build'

integration: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- pytest -q tests/integration

molecule: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- \
	  bash -c 'for s in molecule/*/molecule.yml; do molecule test -s "$$(basename "$$(dirname "$$s")")" || exit 1; done'

bench: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	BERTH_HOST_IMAGE=$$(scripts/host-image.sh tag) $(ENGINE) run -- python tests/bench/run.py $(BENCH)

clean: lab-down
	rm -rf .venv .cache .pytest_cache
