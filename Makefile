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

.PHONY: help venv lab lab-down test test-steps checks checks-slot host-image lint unit sanity integration faults lab-tests molecule bench collection ee clean

help:
	@echo "make lab       bring up the local multi-building lab and converge playbooks/site.yml (LAB_HOSTS=20 LAB_BUILDINGS=4 to size it)"
	@echo "make lab-down  remove everything the lab created"
	@echo "make test      lint, unit, sanity, integration, fault-injection and Molecule tests"
	@echo "make faults    only the fault-injection suite (tests/faults) on its own test lab"
	@echo "make bench     measured figures, side by side"
	@echo "make collection  build the collection berth.ops (.cache/collection/berth-ops-<version>.tar.gz)"
	@echo "make ee        build the execution environment image berth/ee:<hash> on the local engine"

venv:
	@scripts/venv.sh

# The main job: engine, host image, then scripts/lab.py: lab hosts, site.yml
# over SSH, the cleanup dry run, the summary and the demo rollout. LAB_HOSTS
# and LAB_BUILDINGS size the lab (make lab LAB_HOSTS=20 LAB_BUILDINGS=4);
# unset, it is the embedded 5 hosts in 3 buildings.
lab: venv
	@$(ENGINE) ensure
	@scripts/host-image.sh build
	@env $$(scripts/host-image.sh env) BERTH_LAB_HOSTS=$(LAB_HOSTS) BERTH_LAB_BUILDINGS=$(LAB_BUILDINGS) python scripts/lab.py

lab-down: venv
	@$(ENGINE) run -- ansible-playbook playbooks/lab_down.yml
	@$(ENGINE) release

# The machine's speed, before and after: the same run takes twice as long on
# some 2-core machines as on others.
test: venv
	@python scripts/machine_speed.py
	@SECONDS=0; $(ENGINE) run -- $(MAKE) --no-print-directory test-steps; \
	  echo "berth: make test passed in $$SECONDS s"; python scripts/machine_speed.py

# Three slots: the two lab sessions, and beside them lint, unit and sanity,
# one after another in the time the labs wait. All three end in Molecule on
# one queue of scenarios. The checks need no host image, so they run while
# it is made (debootstrap on a fresh machine, cached after; one build at a
# time). Each slot's output stays in one piece.
MOLECULE_QUEUE := .cache/lab-tests/molecule-queue
test-steps:
	@rm -rf $(MOLECULE_QUEUE)
	@$(MAKE) --no-print-directory -j2 --output-sync=target checks-slot lab-tests LAB_TESTS_ARGS="--tails $(MOLECULE_QUEUE)"

# The checks that need no lab, in this order.
checks: venv
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory sanity

checks-slot: checks
	@$(MAKE) --no-print-directory molecule MOLECULE_ARGS="--queue $(MOLECULE_QUEUE)"

host-image: venv
	@$(ENGINE) run -- scripts/host-image.sh build

# ansible-lint gets an Ansible home of its own: a berth.ops installed under
# ~/.ansible (the README's install command) would shadow the repo's own.
lint: venv
	yamllint --strict .
	ruff check .
	ruff format --check .
	ANSIBLE_HOME=$(CURDIR)/.cache/ansible-lint ansible-lint --profile production
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

# Each suite alone runs on one test lab made by `make lab` itself; `make
# test` runs both as two sessions on two labs at once (scripts/lab-tests.sh),
# with Molecule after them in the same slots (--tails).
PYTEST_LAB := pytest -q --durations=30
integration: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	env $$(scripts/host-image.sh env) $(ENGINE) run -- $(PYTEST_LAB) tests/integration

faults: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	env $$(scripts/host-image.sh env) $(ENGINE) run -- $(PYTEST_LAB) tests/faults

lab-tests: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	env $$(scripts/host-image.sh env) $(ENGINE) run -- scripts/lab-tests.sh $(LAB_TESTS_ARGS)

molecule: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	env $$(scripts/host-image.sh env) $(ENGINE) run -- scripts/molecule.sh $(MOLECULE_ARGS)

bench: venv
	@$(ENGINE) run -- scripts/host-image.sh build
	env $$(scripts/host-image.sh env) $(ENGINE) run -- python tests/bench/run.py $(BENCH)

clean: lab-down
	rm -rf .venv .cache .pytest_cache
