import ipaddress
import os

import pytest
import yaml
from ansible_collections.berth.ops.plugins.module_utils.berth_lab import lab_inventory, lab_plan

TOPOLOGY = {
    "buildings": {
        "bldg_a": {"index": 1, "hosts": {"a1": ["docker_hosts", "registry"], "a2": ["docker_hosts"]}},
        "bldg_b": {"index": 2, "hosts": {"b1": ["docker_hosts"]}},
    }
}


# Fixed-IP containers sit on the flat campus network, routed by its gateway.
FLAT = {"container_link_subnet": "10.77.0.0/16", "container_gateway": "10.77.0.1"}


def test_buildings_get_disjoint_subnets_inside_the_campus():
    plan = lab_plan(TOPOLOGY, "lab", "10.77.0.0/16")
    assert plan["buildings"] == {
        "bldg_a": {"host_subnet": "10.77.1.0/24", "container_subnet": "10.77.101.0/24", **FLAT},
        "bldg_b": {"host_subnet": "10.77.2.0/24", "container_subnet": "10.77.102.0/24", **FLAT},
    }
    assert plan["dynamic_range"] == "10.77.0.0/24"
    assert plan["gateway"] == "10.77.0.1"


def test_every_host_has_a_unique_address_in_its_building():
    plan = lab_plan(TOPOLOGY, "lab", "10.77.0.0/16")
    addresses = [host["address"] for host in plan["hosts"]]
    assert len(set(addresses)) == len(addresses) == 3
    for host in plan["hosts"]:
        assert ipaddress.ip_address(host["address"]) in ipaddress.ip_network(plan["buildings"][host["building"]]["host_subnet"])
    assert plan["groups"]["registry"] == ["lab-a1"]
    assert plan["groups"]["bldg_a"] == ["lab-a1", "lab-a2"]


def test_inventory_puts_addresses_on_building_groups():
    inventory = lab_inventory(lab_plan(TOPOLOGY, "lab", "10.77.0.0/16"), "/state")
    children = inventory["all"]["children"]
    assert children["bldg_b"]["hosts"] == {"lab-b1": {"ansible_host": "10.77.2.11"}}
    assert children["docker_hosts"]["hosts"] == {"lab-a1": None, "lab-a2": None, "lab-b1": None}
    assert inventory["all"]["vars"]["ansible_ssh_private_key_file"] == "/state/id_ed25519"


def test_the_lab_keeps_its_secrets_in_its_inventory_under_the_labs_vault_password():
    inventory = lab_inventory(lab_plan(TOPOLOGY, "lab", "10.77.0.0/16"), "/r/.lab/lab", inventory_dir="/r/inventories/lab")
    assert inventory["all"]["vars"]["berth_secrets_file"] == "/r/inventories/lab/berth_secrets.vault.yml"
    assert inventory["all"]["vars"]["berth_secrets_password_file"] == "/r/.lab/vault-pass"
    assert "pki_dir" not in inventory["all"]["vars"]
    other = lab_inventory(lab_plan(TOPOLOGY, "lab", "10.77.0.0/16"), "/r/.lab/other")
    assert other["all"]["vars"]["berth_secrets_file"] == "/r/.lab/other/inventory/berth_secrets.vault.yml"


@pytest.mark.parametrize("campus", ["10.77.0.0/24", "fd00::/64", "10.77.0.1/16"])
def test_a_campus_that_cannot_hold_buildings_is_refused(campus):
    with pytest.raises(ValueError):
        lab_plan(TOPOLOGY, "lab", campus)


def test_a_host_runs_its_own_release_else_its_buildings_else_the_fleets():
    topology = {
        "release": "bookworm",
        "buildings": {
            "bldg_a": {"index": 1, "hosts": {"a1": ["docker_hosts"], "a2": {"groups": ["docker_hosts"], "release": "trixie"}}},
            "bldg_c": {"index": 3, "release": "trixie", "hosts": {"c1": ["docker_hosts"]}},
        },
    }
    plan = lab_plan(topology, "lab", "10.77.0.0/16")
    assert {host["name"]: host["release"] for host in plan["hosts"]} == {
        "lab-a1": "bookworm",
        "lab-a2": "trixie",
        "lab-c1": "trixie",
    }
    # The mapping form names its groups as the list form does.
    assert plan["groups"]["docker_hosts"] == ["lab-a1", "lab-a2", "lab-c1"]
    assert lab_plan(TOPOLOGY, "lab", "10.77.0.0/16")["hosts"][0]["release"] == "bookworm"


def test_an_unknown_release_is_refused_naming_the_host():
    topology = {"buildings": {"bldg_a": {"index": 1, "hosts": {"a1": {"groups": [], "release": "sid"}}}}}
    with pytest.raises(ValueError, match="lab host a1: release 'sid'"):
        lab_plan(topology, "lab", "10.77.0.0/16")


def test_the_default_lab_runs_both_releases_in_every_building():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "playbooks", "vars", "lab_topology.yml")
    with open(path, encoding="utf-8") as stream:
        topology = yaml.safe_load(stream)["lab_topology"]
    plan = lab_plan(topology, "lab", "10.77.0.0/16")
    releases = {}
    for host in plan["hosts"]:
        releases.setdefault(host["building"], set()).add(host["release"])
    assert all("trixie" in found for found in releases.values()), releases
    assert any("bookworm" in found for found in releases.values()), releases
