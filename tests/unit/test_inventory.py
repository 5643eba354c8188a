import ipaddress

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import (
    address_error,
    address_errors,
    building_errors,
    building_of,
    inventory_errors,
    membership_errors,
)
from hypothesis import given
from hypothesis import strategies as st

BUILDINGS = {
    "bldg_a": {"host_subnet": "10.10.0.0/24", "container_subnet": "10.110.0.0/24"},
    "bldg_b": {"host_subnet": "10.20.0.0/24", "container_subnet": "10.120.0.0/24"},
}
GROUPS = {"all": ["h1", "h2"], "bldg_a": ["h1"], "bldg_b": ["h2"], "docker_hosts": ["h1", "h2"]}


def test_a_valid_inventory_has_no_errors():
    assert inventory_errors(BUILDINGS, GROUPS) == []


def test_overlapping_subnets_name_both_buildings():
    buildings = dict(BUILDINGS, bldg_c={"host_subnet": "10.20.0.128/25"})
    assert building_errors(buildings) == ["subnets overlap: berth_buildings.bldg_b.host_subnet and berth_buildings.bldg_c.host_subnet"]


def test_a_host_and_container_subnet_of_one_building_may_not_overlap():
    errors = building_errors({"bldg_a": {"host_subnet": "10.0.0.0/16", "container_subnet": "10.0.5.0/24"}})
    assert errors == ["subnets overlap: berth_buildings.bldg_a.host_subnet and berth_buildings.bldg_a.container_subnet"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"container_subnet": "10.9.0.0/24"}, "berth_buildings.bldg_x.host_subnet is required"),
        ({"host_subnet": "10.9.0.1/24"}, "berth_buildings.bldg_x.host_subnet: '10.9.0.1/24' is not a network"),
        ({"host_subnet": "banana"}, "berth_buildings.bldg_x.host_subnet: 'banana' is not a network"),
        ({"host_subnet": 10}, "berth_buildings.bldg_x.host_subnet must be a CIDR string, got int"),
        (
            {"host_subnet": "10.9.0.0/24", "registry_mirrors": "https://m"},
            "berth_buildings.bldg_x.registry_mirrors must be a list of strings",
        ),
        ("10.9.0.0/24", "berth_buildings.bldg_x must be a mapping, got str"),
    ],
)
def test_field_errors_name_the_variable(spec, message):
    errors = building_errors({"bldg_x": spec})
    assert len(errors) == 1
    assert errors[0].startswith(message)


def test_buildings_must_be_a_non_empty_mapping():
    assert building_errors({}) == building_errors(None) == building_errors(["bldg_a"])
    assert "non-empty mapping" in building_errors({})[0]


def test_a_host_in_no_building_is_named():
    groups = dict(GROUPS, all=["h1", "h2", "stray"], docker_hosts=["h1", "h2", "stray"])
    assert membership_errors(BUILDINGS, groups) == ["host stray belongs to no building (buildings: bldg_a, bldg_b)"]


def test_a_builder_without_the_engine_is_named():
    assert membership_errors(BUILDINGS, dict(GROUPS, builders=["h1"])) == []
    groups = dict(GROUPS, docker_hosts=["h1"], builders=["h1", "h2"])
    assert membership_errors(BUILDINGS, groups) == ["host h2 is in builders but not in docker_hosts: a builder needs the Docker engine"]


def test_a_host_in_two_buildings_is_named():
    groups = dict(GROUPS, bldg_b=["h1", "h2"])
    assert membership_errors(BUILDINGS, groups) == ["host h1 belongs to 2 buildings: bldg_a, bldg_b"]


def test_building_of_and_its_failure():
    assert building_of(["docker_hosts", "bldg_b"], BUILDINGS) == "bldg_b"
    with pytest.raises(ValueError, match="exactly one building"):
        building_of(["docker_hosts"], BUILDINGS)


def test_address_must_lie_in_the_building_subnet():
    assert address_error("h1", "10.10.0.5", BUILDINGS, ["bldg_a"]) is None
    assert address_error("h1", "h1.example.net", BUILDINGS, ["bldg_a"]) is None
    assert (
        address_error("h1", "10.20.0.5", BUILDINGS, ["bldg_a"])
        == "host h1: address 10.20.0.5 is outside its building bldg_a (10.10.0.0/24)"
    )


def test_one_check_for_all_hosts_names_each_bad_one():
    hostvars = {
        "h1": {"ansible_host": "10.10.0.5", "group_names": ["bldg_a", "docker_hosts"]},
        "h2": {"ansible_host": "10.20.0.5", "group_names": ["bldg_a"]},
        "h3": {"group_names": ["bldg_a"]},  # no ansible_host: its name, which resolves elsewhere
        "10.10.0.300": {"group_names": ["bldg_a"]},
    }
    assert address_errors(["h1", "h3"], hostvars, BUILDINGS) == []
    assert address_errors(sorted(hostvars), hostvars, BUILDINGS) == [
        "host 10.10.0.300: ansible_host 10.10.0.300 is not a valid IPv4 address",
        "host h2: address 10.20.0.5 is outside its building bldg_a (10.10.0.0/24)",
    ]


@pytest.mark.parametrize("address", ["10.77.2.300", "10.10.0", "10.10.0.5.1", "1.2.3.4.", "999"])
def test_an_all_digits_and_dots_address_that_is_no_ipv4_is_refused(address):
    assert address_error("h1", address, BUILDINGS, ["bldg_a"]) == "host h1: ansible_host %s is not a valid IPv4 address" % address


@given(st.tuples(*[st.integers(min_value=0, max_value=999)] * 4))
def test_dotted_quads_are_addresses_or_refused_never_names(octets):
    address = ".".join(map(str, octets))
    error = address_error("h1", address, BUILDINGS, ["bldg_a"])
    if all(octet <= 255 for octet in octets):
        assert error is None or "is outside its building" in error
    else:
        assert error == "host h1: ansible_host %s is not a valid IPv4 address" % address


subnet_indexes = st.lists(st.integers(min_value=0, max_value=255), min_size=1, max_size=12, unique=True)


@given(subnet_indexes)
def test_disjoint_subnets_never_report_overlap(indexes):
    buildings = {"b%d" % i: {"host_subnet": "10.%d.0.0/16" % i} for i in indexes}
    assert building_errors(buildings) == []


@given(subnet_indexes, st.data())
def test_a_nested_subnet_is_always_reported(indexes, data):
    outer = data.draw(st.sampled_from(indexes))
    inner = ipaddress.ip_network("10.%d.0.0/16" % outer).subnets(new_prefix=24)
    nested = str(list(inner)[data.draw(st.integers(min_value=0, max_value=255))])
    buildings = {"b%03d" % i: {"host_subnet": "10.%d.0.0/16" % i} for i in indexes}
    buildings["zz_nested"] = {"host_subnet": nested}
    errors = building_errors(buildings)
    assert errors == ["subnets overlap: berth_buildings.b%03d.host_subnet and berth_buildings.zz_nested.host_subnet" % outer]


def test_a_flat_container_network_must_contain_the_container_subnet_and_its_gateway():
    flat = {
        "host_subnet": "10.77.1.0/24",
        "container_subnet": "10.77.101.0/24",
        "container_link_subnet": "10.77.0.0/16",
        "container_gateway": "10.77.0.1",
    }
    assert building_errors({"bldg_a": flat}) == []
    errors = building_errors({"bldg_a": dict(flat, container_link_subnet="10.88.0.0/16", container_gateway="10.77.0.1")})
    assert any("must contain container_subnet" in e for e in errors)
    assert any("container_gateway 10.77.0.1 is outside" in e for e in errors)
    assert "is not an IP address" in building_errors({"bldg_a": dict(flat, container_gateway="router")})[0]
