import ipaddress
import re

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_firewall import (
    DOCKER_CHAIN,
    INPUT_CHAIN,
    docker_backend_error,
    live_digest,
    openings_errors,
    permissive_payload,
    plan,
    resolve_sources,
    rule_count,
    spec_errors,
    with_openings,
)
from hypothesis import given, settings
from hypothesis import strategies as st

BUILDINGS = {
    "bldg_a": {"host_subnet": "10.1.1.0/24", "container_subnet": "10.1.101.0/24"},
    "bldg_b": {"host_subnet": "10.1.2.0/24"},
    "bldg_c": {"host_subnet": "10.1.3.0/24"},
}


def spec(**overrides):
    base = {"port_sets": ["ssh"], "buildings": BUILDINGS, "building": "bldg_a"}
    base.update(overrides)
    return base


def rules(payload, chain):
    return [line for line in payload["text"].splitlines() if line.startswith("-A %s " % chain)]


def test_input_is_default_deny_with_loopback_established_and_own_building_ssh():
    v4 = plan(spec())["v4"]
    text = v4["text"]
    assert ":INPUT DROP [0:0]" in text
    assert "-A BERTH-INPUT -i lo -j ACCEPT" in text
    assert "-A BERTH-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" in text
    ssh = [rule for rule in rules(v4, INPUT_CHAIN) if '"ssh"' in rule]
    assert ssh == [
        '-A BERTH-INPUT -s 10.1.1.0/24 -p tcp --dport 22 -m comment --comment "ssh" -j ACCEPT',
        '-A BERTH-INPUT -s 10.1.101.0/24 -p tcp --dport 22 -m comment --comment "ssh" -j ACCEPT',
    ]


def test_declared_sources_replace_the_default_and_cidrs_go_to_their_family():
    payloads = plan(spec(port_sets=["ssh", "web"], allow={"web": {"buildings": ["bldg_c"], "cidrs": ["192.0.2.0/24", "2001:db8::/64"]}}))
    web4 = [rule for rule in rules(payloads["v4"], INPUT_CHAIN) if '"web"' in rule]
    assert [rule.split()[3] for rule in web4] == ["10.1.3.0/24", "192.0.2.0/24"]
    assert "--dports 80,443" in web4[0]
    web6 = [rule for rule in rules(payloads["v6"], INPUT_CHAIN) if '"web"' in rule]
    assert [rule.split()[3] for rule in web6] == ["2001:db8::/64"]


def test_control_host_always_reaches_ssh():
    v4 = plan(spec(control_hosts=["192.0.2.7/32"], allow={"ssh": {"buildings": ["bldg_c"]}}))["v4"]
    assert '-A BERTH-INPUT -s 192.0.2.7/32 -p tcp --dport 22 -m comment --comment "control host" -j ACCEPT' in v4["text"]


def test_published_ports_match_the_original_port_through_conntrack():
    published = [{"proto": "tcp", "ports": "8080", "sources": {"buildings": ["bldg_b"]}}]
    docker = rules(plan(spec(published_ports=published))["v4"], DOCKER_CHAIN)
    assert docker[0] == "-A BERTH-DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    assert docker[1] == "-A BERTH-DOCKER-USER -m conntrack ! --ctstate DNAT -j RETURN"
    assert (
        '-A BERTH-DOCKER-USER -s 10.1.2.0/24 -p tcp -m conntrack --ctorigdstport 8080 -m comment --comment "published 8080/tcp" -j RETURN'
        in docker
    )
    assert '-A BERTH-DOCKER-USER -p tcp -m conntrack --ctorigdstport 8080 -m comment --comment "published 8080/tcp" -j DROP' in docker
    # Undeclared published ports: the own building, then drop.
    assert docker[-3:] == [
        '-A BERTH-DOCKER-USER -s 10.1.1.0/24 -m comment --comment "published default" -j RETURN',
        '-A BERTH-DOCKER-USER -s 10.1.101.0/24 -m comment --comment "published default" -j RETURN',
        "-A BERTH-DOCKER-USER -j DROP",
    ]


def test_port_ranges_use_iptables_colon_syntax():
    text = plan(spec(port_sets=["rke2_agent"], published_ports=[{"port_set": "rke2_server"}]))["v4"]["text"]
    assert "--dports 9099,10250,30000:32767" in text
    assert "--ctorigdstport 2379:2381" in text


def test_ipv6_keeps_neighbour_discovery_even_without_icmp():
    v6 = plan(spec(icmp="none"))["v6"]["text"]
    assert "--icmpv6-type neighbour-solicitation -j ACCEPT" in v6
    assert "-A BERTH-INPUT -p ipv6-icmp -j ACCEPT" not in v6


def test_the_marker_digest_is_found_in_live_listings():
    v4 = plan(spec())["v4"]
    marker = next(line for line in v4["text"].splitlines() if "berth-ruleset:" in line)
    assert live_digest("-N BERTH-INPUT\n" + marker + "\n") == v4["digest"]
    assert rule_count(v4["text"], INPUT_CHAIN) == v4["counts"][INPUT_CHAIN]
    assert permissive_payload()["text"].count(":INPUT ACCEPT") == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port_sets": ["ssh", "rke3"]}, "port_sets[1]: unknown port set 'rke3'"),
        ({"allow": {"ssh": {"cidrs": ["10.0.0.0/33"]}}}, "allow.ssh.cidrs[0]: '10.0.0.0/33' is not a CIDR"),
        ({"allow": {"ssh": {"cidrs": ["10.0.0.1/24"]}}}, "allow.ssh.cidrs[0]: '10.0.0.1/24' is not a CIDR"),
        ({"allow": {"ssh": {"buildings": ["bldg_z"]}}}, "allow.ssh.buildings[0]: unknown building 'bldg_z'"),
        ({"allow": {"ssh": {"subnets": []}}}, "allow.ssh: unknown keys subnets"),
        ({"allow": {"nfs": {"buildings": ["own"]}}}, "allow.nfs: unknown port set 'nfs'"),
        ({"published_ports": [{"proto": "tcp", "ports": 0}]}, "published_ports[0].ports: port 0 is outside 1-65535"),
        ({"published_ports": [{"proto": "icmp", "ports": "1"}]}, "published_ports[0].proto: unknown protocol 'icmp'"),
        ({"published_ports": [{"port_set": "nfs"}]}, "published_ports[0].port_set: unknown port set 'nfs'"),
        ({"icmp": "some"}, "icmp: 'some' is not one of any, buildings, none"),
        ({"building": "bldg_z"}, "building: 'bldg_z' is not one of the inventory's buildings"),
    ],
)
def test_bad_input_is_named(overrides, message):
    errors = spec_errors(spec(**overrides), prefix="firewall_")
    assert any(error.startswith("firewall_" + message) for error in errors), errors
    with pytest.raises(ValueError):
        plan(spec(**overrides))


SOURCE_RULE = re.compile(r"^-A BERTH-INPUT -s (\S+) .* --comment \"(\w+)\" -j ACCEPT$")
building_names = st.sampled_from(["own", "all", "bldg_a", "bldg_b", "bldg_c"])
cidrs = st.builds(lambda a, b: "192.168.%d.0/%d" % (a, b), st.integers(0, 255), st.sampled_from([24, 28]))
sources = st.fixed_dictionaries({}, optional={"buildings": st.lists(building_names, max_size=3), "cidrs": st.lists(cidrs, max_size=3)})
set_names = st.sampled_from(["web", "registry", "databases", "swarm", "rke2_server"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(set_names, sources, max_size=4), st.lists(set_names, max_size=5), st.sampled_from(sorted(BUILDINGS)))
def test_every_accept_rule_comes_from_a_declared_source(allow, opened, own):
    """No port is ever opened to a source nobody declared for it."""
    payload = plan(spec(port_sets=["ssh", *opened], allow=allow, building=own))["v4"]
    for line in rules(payload, INPUT_CHAIN):
        match = SOURCE_RULE.match(line)
        if not match or match.group(2) in ("control",):
            continue
        network, name = ipaddress.ip_network(match.group(1)), match.group(2)
        declared = resolve_sources(allow.get(name, {"buildings": ["own"]}), BUILDINGS, own)
        assert network in declared, (name, network, declared)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(set_names, sources, max_size=4), st.lists(set_names, max_size=5))
def test_the_plan_does_not_depend_on_declaration_order(allow, opened):
    forward = plan(spec(port_sets=["ssh", *opened], allow=allow))
    backward = plan(spec(port_sets=["ssh", *reversed(opened)], allow=dict(reversed(list(allow.items())))))
    assert forward == backward


def test_an_opening_opens_its_ports_to_its_sources_and_nothing_else():
    opening = {"ports": [{"proto": "tcp", "ports": "18081"}], "sources": {"buildings": ["own"], "cidrs": ["192.0.2.0/24"]}}
    opened = plan(with_openings(spec(), {"env.alpha": opening}))["v4"]
    assert [rule for rule in rules(opened, INPUT_CHAIN) if '"env.alpha"' in rule] == [
        '-A BERTH-INPUT -s 10.1.1.0/24 -p tcp --dport 18081 -m comment --comment "env.alpha" -j ACCEPT',
        '-A BERTH-INPUT -s 10.1.101.0/24 -p tcp --dport 18081 -m comment --comment "env.alpha" -j ACCEPT',
        '-A BERTH-INPUT -s 192.0.2.0/24 -p tcp --dport 18081 -m comment --comment "env.alpha" -j ACCEPT',
    ]
    # Removing the opening gives back exactly the rules from before.
    assert plan(with_openings(spec(), {}))["v4"] == plan(spec())["v4"]
    assert with_openings(spec(), {}) == dict(spec(), custom_port_sets={}, allow={})


def test_a_bad_opening_is_named_and_refused():
    assert openings_errors(spec(), {"env.alpha": {"ports": [{"proto": "sctp", "ports": "1"}]}}) == [
        "opening env.alpha: ports[0].proto: unknown protocol 'sctp' (use tcp or udp)"
    ]
    assert openings_errors(spec(), {"Bad Name": {"ports": []}})[0].startswith("opening Bad Name: the name must match")
    assert "clashes" in openings_errors(spec(custom_port_sets={"app": [{"proto": "tcp", "ports": "1"}]}), {"app": {"ports": []}})[0]
    assert "ports and sources only" in openings_errors(spec(), {"env.a": {"ports": [], "port": 1}})[0]
    assert (
        "unknown building 'bldg_z'"
        in openings_errors(spec(), {"env.a": {"ports": [{"proto": "tcp", "ports": "1"}], "sources": {"buildings": ["bldg_z"]}}})[0]
    )
    assert openings_errors(spec(), {"env.a": {"ports": [{"proto": "tcp", "ports": "1"}]}}) == []


@pytest.mark.parametrize(
    ("opening", "message"),
    [
        ({"ports": []}, "opening env.a: ports must be a non-empty list of {proto, ports}"),
        ({"ports": [{"proto": "tcp", "ports": "70000"}]}, "opening env.a: ports[0].ports: port 70000 is outside 1-65535"),
        (
            {"ports": [{"proto": "tcp", "ports": "1"}], "sources": {"buildings": ["bldg_z"]}},
            "opening env.a: sources.buildings[0]: unknown building 'bldg_z'",
        ),
        (
            {"ports": [{"proto": "tcp", "ports": "1"}], "sources": {"cidrs": ["10.0.0.1/8"]}},
            "opening env.a: sources.cidrs[0]: '10.0.0.1/8' is not a CIDR",
        ),
    ],
)
def test_a_bad_opening_names_the_fields_its_caller_wrote(opening, message):
    (error,) = openings_errors(spec(), {"env.a": opening})
    assert error.startswith(message), error


@given(
    st.dictionaries(
        st.sampled_from(["ports", "sources"]), st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.none(), max_size=2))
    )
)
def test_opening_errors_never_name_internal_variables(opening):
    for error in openings_errors(spec(), {"env.a": opening}):
        assert "custom_port_sets" not in error and "allow." not in error, error


@pytest.mark.parametrize("config", [None, {}, {"firewall-backend": "iptables"}, {"iptables": False}])
def test_docker_backends_with_docker_user_pass(config):
    assert docker_backend_error(config) is None


def test_the_nftables_backend_is_refused_naming_why():
    error = docker_backend_error({"firewall-backend": "nftables"})
    assert "'nftables'" in error and "DOCKER-USER" in error and "published ports" in error
