"""make lab LAB_HOSTS=N LAB_BUILDINGS=M: the sized topology, for every size
the range allows, plans a valid lab (issue 15, section 3)."""

import os

import pytest
import yaml
from ansible_collections.berth.ops.plugins.module_utils.berth_lab import (
    MAX_LAB_HOSTS,
    cgroup_paths,
    lab_plan,
    memory_in_use,
    sized_topology,
)
from hypothesis import given
from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "playbooks", "vars", "lab_topology.yml"), encoding="utf-8") as stream:
    DEFAULT = yaml.safe_load(stream)["lab_topology"]


def test_no_size_keeps_the_embedded_lab():
    assert sized_topology(DEFAULT) is DEFAULT
    assert sized_topology(DEFAULT, "", " ") is DEFAULT


def test_twenty_hosts_in_four_buildings():
    plan = lab_plan(sized_topology(DEFAULT, "20", "4"), "lab", "10.77.0.0/16")
    assert len(plan["hosts"]) == 20
    assert sorted(plan["buildings"]) == ["bldg_a", "bldg_b", "bldg_c", "bldg_d"]
    per_building = {b: sum(h["building"] == b for h in plan["hosts"]) for b in plan["buildings"]}
    assert set(per_building.values()) == {5}
    assert plan["groups"]["registry"] == ["lab-a1"]
    releases = [h["release"] for h in plan["hosts"]]
    assert releases.count("trixie") == 10
    # Every building has both releases, as a site upgrading its hosts.
    for building in plan["buildings"]:
        assert {h["release"] for h in plan["hosts"] if h["building"] == building} == {"bookworm", "trixie"}


def test_one_size_alone_keeps_the_other_from_the_embedded_lab():
    assert len(sized_topology(DEFAULT, "9")["buildings"]) == 3
    assert sum(len(b["hosts"]) for b in sized_topology(DEFAULT, "", "5")["buildings"].values()) == 5


@pytest.mark.parametrize(
    ("hosts", "buildings", "message"),
    [
        ("0", "1", "LAB_HOSTS must be within 1..%d, not 0" % MAX_LAB_HOSTS),
        (str(MAX_LAB_HOSTS + 1), "3", "LAB_HOSTS must be within"),
        ("5", "27", "LAB_BUILDINGS must be within 1..26"),
        ("3", "4", "LAB_BUILDINGS (4) must not exceed LAB_HOSTS (3)"),
        ("many", "2", "LAB_HOSTS must be a whole number, not 'many'"),
        ("2.5", "2", "whole number"),
    ],
)
def test_bad_sizes_are_refused_by_name(hosts, buildings, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        sized_topology(DEFAULT, hosts, buildings)


@given(st.integers(min_value=1, max_value=MAX_LAB_HOSTS), st.integers(min_value=1, max_value=26))
def test_every_allowed_size_plans_a_valid_lab(hosts, buildings):
    if buildings > hosts:
        with pytest.raises(ValueError):
            sized_topology(DEFAULT, str(hosts), str(buildings))
        return
    plan = lab_plan(sized_topology(DEFAULT, str(hosts), str(buildings)), "lab", "10.77.0.0/16")
    assert len(plan["hosts"]) == hosts
    assert len(plan["buildings"]) == buildings
    assert len({h["address"] for h in plan["hosts"]}) == hosts
    assert all(any(h["building"] == b for h in plan["hosts"]) for b in plan["buildings"])
    assert plan["groups"]["registry"] == ["lab-a1"]
    assert set(plan["groups"]["docker_hosts"]) == {h["name"] for h in plan["hosts"]}
    # One builder in each building that has a host besides the registry's.
    builders = plan["groups"].get("builders", [])
    assert "lab-a1" not in builders and set(builders) <= set(plan["groups"]["docker_hosts"])
    with_more = {h["building"] for h in plan["hosts"] if h["name"] != "lab-a1"}
    assert sorted(h["building"] for h in plan["hosts"] if h["name"] in builders) == sorted(with_more)


def test_memory_leaves_out_the_page_cache_it_could_drop():
    assert memory_in_use("total_cache 500\ntotal_rss 80\ntotal_inactive_file 300\n", 700) == 400
    assert memory_in_use("anon 80\ninactive_file 300\n", 700) == 400  # cgroup v2
    assert memory_in_use("rss 80\n", 700) == 700
    assert memory_in_use("total_inactive_file 900\n", 700) == 0


def test_a_cgroup_figure_is_looked_for_under_either_version():
    assert cgroup_paths("abc", ("memory", "memory.stat"), "memory.stat", root="/cg") == [
        "/cg/memory/docker/abc/memory.stat",
        "/cg/system.slice/docker-abc.scope/memory.stat",
    ]
