"""The functions that read the inventory as playbooks hand it over (hostvars,
groups): the filter file only names them, so they are tested here."""

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_cleanup import report_from_hostvars
from ansible_collections.berth.ops.plugins.module_utils.berth_docker import inventory_role_errors
from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import building_attr, building_registry, overlapping_networks
from ansible_collections.berth.ops.plugins.module_utils.berth_rancher import membership, node_firewall
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import plan_from_hostvars, rollout_plan, summary_from_hostvars

BUILDINGS = {
    "bldg_a": {"host_subnet": "10.0.1.0/24", "registry": "10.0.1.11:5000", "registry_mirrors": ["https://m.a"]},
    "bldg_b": {"host_subnet": "10.0.2.0/24"},
    "bldg_c": {"host_subnet": "10.0.3.0/24", "registry": "10.0.3.11:5000"},
}
HOSTVARS = {
    "a1": {"group_names": ["docker_hosts", "bldg_a"], "berth_buildings": BUILDINGS, "ansible_host": "10.0.1.11"},
    "b1": {"group_names": ["docker_hosts", "bldg_b"], "berth_buildings": BUILDINGS, "ansible_host": "10.0.2.11"},
    "c1": {"group_names": ["docker_hosts", "bldg_c"], "berth_buildings": BUILDINGS, "ansible_host": "10.0.3.11"},
    "localhost": {"group_names": []},
}


def test_a_building_setting_or_the_default_outside_every_building():
    assert building_attr(BUILDINGS, ["bldg_a"], "registry_mirrors", []) == ["https://m.a"]
    assert building_attr(BUILDINGS, ["bldg_b"], "registry_mirrors", []) == []
    assert building_attr(BUILDINGS, [], "registry", "") == ""
    assert building_attr(None, ["bldg_a"], "registry", "none") == "none"
    with pytest.raises(ValueError, match="exactly one building"):
        building_attr(BUILDINGS, ["bldg_a", "bldg_b"], "registry")


def test_the_building_registry_comes_from_the_hosts_own_variables():
    assert building_registry(HOSTVARS["a1"]) == "10.0.1.11:5000"
    # A building without a registry, the control host, an inventory without buildings.
    assert building_registry(HOSTVARS["b1"]) == ""
    assert building_registry(HOSTVARS["localhost"]) == ""
    assert building_registry({"group_names": ["bldg_a"]}) == ""


def test_overlaps_name_both_networks_and_pools_are_checked_against_buildings():
    assert overlapping_networks(["10.0.1.128/25", "172.30.0.0/16"], BUILDINGS) == ["10.0.1.128/25 overlaps bldg_a.host_subnet"]
    pools = [{"base": "10.0.0.0/16", "size": 24}]
    assert any("bldg_a" in error for error in inventory_role_errors({"docker_daemon_default_address_pools": pools}, BUILDINGS))
    assert inventory_role_errors({"docker_daemon_default_address_pools": pools}, None) == []


def test_a_host_without_an_in_use_list_is_missing_and_harbor_results_come_from_the_control_host():
    hostvars = {
        "a1": {"image_cleanup_in_use": {"containers": 2, "digests": ["sha256:1"]}, "image_cleanup_host_result": None},
        "b1": {},
        "localhost": {"image_cleanup_harbor_result": {"results": [None]}},
    }
    report = report_from_hostvars(["a1", "b1"], hostvars, [], True, "now")
    assert report["hosts"]["b1"]["status"] == "missing"
    assert report["hosts"]["a1"]["in_use"] == {"containers": 2, "digests": 1}
    assert report["harbors"] == [{"status": "not run"}]


def test_a_plan_from_hostvars_is_the_plan_from_the_same_inventory_by_hand():
    apps = {"demo": {"hosts": "docker_hosts", "image": "lab/demo"}}
    hosts = ["c1", "a1"]
    plan = plan_from_hostvars("demo", apps, hosts, HOSTVARS, BUILDINGS, {}, "v2")
    groups = {h: HOSTVARS[h]["group_names"] for h in hosts}
    registries = {"bldg_a": "10.0.1.11:5000", "bldg_b": None, "bldg_c": "10.0.3.11:5000"}
    assert plan == rollout_plan("demo", apps, hosts, groups, {"a1": "bldg_a", "c1": "bldg_c"}, registries, {}, "v2")
    assert plan["hosts"] == ["a1", "c1"]
    # A building without a registry fails the plan, naming why.
    with pytest.raises(ValueError, match="building has none"):
        plan_from_hostvars("demo", apps, ["b1"], HOSTVARS, BUILDINGS, {}, "v2")
    served = dict(HOSTVARS)
    for host in plan["hosts"]:
        served[host] = dict(HOSTVARS[host], rollout_prepare={"serving": {"name": "demo-v1", "version": "v1"}})
    summary = summary_from_hostvars(served, plan, BUILDINGS)
    assert [(row["host"], row["building"], row["old"]) for row in summary["hosts"]] == [("a1", "bldg_a", "v1"), ("c1", "bldg_c", "v1")]


def test_rancher_membership_and_sources_from_the_inventory():
    cluster = {
        "name": "lab",
        "kubernetes_version": "v1.30.4+rke2r1",
        "etcd": ["servers"],
        "controlplane": ["servers"],
        "worker": ["servers"],
    }
    groups = {"servers": ["a1", "b1"]}
    assert membership([cluster], groups, "a1") == {"cluster": "lab", "roles": ["etcd", "controlplane", "worker"]}
    assert membership([cluster], groups, "c9") == {"cluster": None, "roles": []}
    sources = node_firewall([cluster], groups, HOSTVARS, "a1")
    assert sources["allow"]["rke2_server"]["cidrs"] == ["10.0.1.11/32", "10.0.2.11/32"]
