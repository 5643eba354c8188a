"""A bad inventory stops in the validation play, which names the culprit,
before any host is contacted."""

import pytest
import yaml
from labtools import ansible_playbook

GOOD = {
    "all": {
        "vars": {
            "berth_environment": "test",
            "berth_buildings": {
                "bldg_a": {"host_subnet": "192.0.2.0/26"},
                "bldg_b": {"host_subnet": "192.0.2.64/26"},
            },
            # Unroutable documentation addresses: no host is ever contacted.
            "ansible_connection": "ssh",
        },
        "children": {
            "bldg_a": {"hosts": {"a1": {"ansible_host": "192.0.2.10"}}},
            "bldg_b": {"hosts": {"b1": {"ansible_host": "192.0.2.70"}}},
            "docker_hosts": {"hosts": {"a1": None, "b1": None}},
        },
    }
}


def mutate(change):
    inventory = yaml.safe_load(yaml.safe_dump(GOOD))
    change(inventory["all"])
    return inventory


def overlap(inv):
    inv["vars"]["berth_buildings"]["bldg_b"]["host_subnet"] = "192.0.2.0/25"


def homeless(inv):
    inv["children"]["docker_hosts"]["hosts"]["stray"] = None


def two_buildings(inv):
    inv["children"]["bldg_b"]["hosts"]["a1"] = None


def missing_environment(inv):
    del inv["vars"]["berth_environment"]


def wrong_type(inv):
    inv["vars"]["berth_buildings"] = ["bldg_a", "bldg_b"]


def outside_subnet(inv):
    inv["children"]["bldg_a"]["hosts"]["a1"]["ansible_host"] = "192.0.2.100"


def second_host_outside(inv):
    # Not the first host: the one check of the play reads every host.
    inv["children"]["bldg_b"]["hosts"]["b1"]["ansible_host"] = "192.0.2.10"


def not_an_ipv4(inv):
    inv["children"]["bldg_a"]["hosts"]["a1"]["ansible_host"] = "192.0.2.300"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (not_an_ipv4, "host a1: ansible_host 192.0.2.300 is not a valid IPv4 address"),
        (overlap, "subnets overlap: berth_buildings.bldg_a.host_subnet and berth_buildings.bldg_b.host_subnet"),
        (homeless, "host stray belongs to no building"),
        (two_buildings, "host a1 belongs to 2 buildings: bldg_a, bldg_b"),
        (missing_environment, "berth_environment"),
        (wrong_type, "berth_buildings"),
        (outside_subnet, "host a1: address 192.0.2.100 is outside its building bldg_a"),
        (second_host_outside, "host b1: address 192.0.2.10 is outside its building bldg_b"),
    ],
)
def test_bad_inventory_is_refused_by_name(tmp_path, change, message):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(mutate(change)))
    run = ansible_playbook("-i", str(path), "playbooks/site.yml", timeout=120)
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert "TASK [docker" not in run.output
    assert "UNREACHABLE" not in run.output


def test_the_valid_inventory_passes_validation(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(GOOD))
    run = ansible_playbook("-i", str(path), "playbooks/validate.yml", timeout=120)
    assert run.returncode == 0, run.explain()


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_shipped_example_inventories_are_valid(environment):
    run = ansible_playbook("-i", "inventories/%s" % environment, "playbooks/validate.yml", timeout=120)
    assert run.returncode == 0, run.explain()
    # The checks ran (once, for every host), not skipped.
    assert "TASK [Check that each host's address lies in its building]" in run.output, run.explain()
    assert run.recap and all(stats["skipped"] == 0 for stats in run.recap.values()), run.explain()


def with_harbor_and_rancher(inv):
    inv["children"]["harbor"] = {"hosts": {"a1": None}}
    inv["children"]["rancher_server"] = {"hosts": {"b1": None}}
    overlap(inv)


@pytest.mark.parametrize("playbook", ["harbor.yml", "rancher.yml"])
def test_playbooks_run_alone_validate_the_inventory_first(tmp_path, playbook):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(mutate(with_harbor_and_rancher)))
    run = ansible_playbook("-i", str(path), "playbooks/" + playbook, timeout=120)
    assert run.returncode != 0
    assert "subnets overlap: berth_buildings.bldg_a.host_subnet and berth_buildings.bldg_b.host_subnet" in run.output, run.explain()
    assert "TASK [harbor" not in run.output and "TASK [rancher" not in run.output and "Gathering Facts" not in run.output
    assert "UNREACHABLE" not in run.output
