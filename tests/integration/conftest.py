"""The test lab: a second lab beside `make lab`'s, with its own name, campus
network and inventory, brought up once per session and torn down by the
last test, which also proves that nothing is left behind."""

import os
from dataclasses import dataclass, field

import pytest
from labtools import ROOT, ansible_playbook, docker_objects, lab_hosts, project_files

LAB_ENV = {"BERTH_LAB_NAME": "berth-test", "BERTH_LAB_CAMPUS": "10.78.0.0/16"}


@dataclass
class Lab:
    name: str
    inventory: str
    env: dict
    before: tuple
    first_converge: object = None
    torn_down: bool = False
    hosts: dict = field(default_factory=dict)

    def playbook(self, *args, **kwargs):
        return ansible_playbook("-i", self.inventory, *args, **kwargs)


def pytest_collection_modifyitems(items):
    # The teardown test ends the shared lab, so it runs after everything else.
    items.sort(key=lambda item: item.get_closest_marker("lab_teardown") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_teardown: tears the test lab down; runs last")


@pytest.fixture(scope="session")
def lab():
    if not os.environ.get("BERTH_HOST_IMAGE"):
        pytest.fail("BERTH_HOST_IMAGE is not set: run the integration tests through `make test`")
    env = dict(LAB_ENV)
    name = env["BERTH_LAB_NAME"]
    keep = os.environ.get("BERTH_KEEP_LAB")
    if not keep:
        # A lab kept by an earlier run on the same engine is not ours to
        # count as "before"; start from nothing so the teardown test is exact.
        stale = ansible_playbook("playbooks/lab_down.yml", env=env)
        assert stale.returncode == 0, stale.explain()
    before = (docker_objects(), project_files())
    up = ansible_playbook("playbooks/lab_up.yml", env=env)
    assert up.returncode == 0, up.explain()
    lab = Lab(name=name, inventory=os.path.join(ROOT, ".lab", name, "inventory", "hosts.yml"), env=env, before=before)
    lab.hosts = lab_hosts(lab.inventory)
    lab.first_converge = lab.playbook("playbooks/site.yml")
    assert lab.first_converge.returncode == 0, lab.first_converge.explain()
    yield lab
    # BERTH_KEEP_LAB=1 keeps the lab for the next run while developing.
    if not lab.torn_down and not keep:
        ansible_playbook("playbooks/lab_down.yml", env=env)
