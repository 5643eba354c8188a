import os

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_ports import (
    PORT_MATRIX,
    custom_sets_errors,
    entry_errors,
    matrix_table,
    params_errors,
    port_range_error,
    port_sets,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_matrix_holds_the_sets_seen_on_real_sites():
    sets = port_sets()
    assert sets["ssh"] == [("tcp", "22")]
    assert sets["rke2_server"] == [("tcp", "6443"), ("tcp", "9345"), ("tcp", "2379-2381"), ("tcp", "10250")]
    assert ("udp", "8472") in sets["rke2_agent"]
    assert ("udp", "51820-51821") in sets["rke2_agent"]
    assert sets["swarm"] == [("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789")]
    assert sets["ipsec"] == [("udp", "500"), ("udp", "4500")]
    assert sets["databases"] == [("tcp", "3306"), ("tcp", "6379"), ("tcp", "27017")]


def test_parameters_fill_the_registry_and_harbor_sets():
    sets = port_sets({"registry_port": 5443, "harbor_extra_ports": [{"proto": "tcp", "ports": "4443"}]})
    assert sets["registry"] == [("tcp", "5443")]
    assert sets["harbor"] == [("tcp", "80"), ("tcp", "443"), ("tcp", "4443")]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("22", None),
        ("30000-32767", None),
        (443, None),
        ("0", "x: port 0 is outside 1-65535"),
        ("70000", "x: port 70000 is outside 1-65535"),
        ("90-80", "x: range 90-80 runs backwards"),
        ("http", "x: 'http' is not a port or a range like 2379-2381"),
    ],
)
def test_port_ranges(spec, error):
    assert port_range_error(spec, "x") == error


def test_entry_errors_name_the_field():
    assert entry_errors({"proto": "sctp", "ports": "1"}, "p[0]") == ["p[0].proto: unknown protocol 'sctp' (use tcp or udp)"]
    assert entry_errors("8080/tcp", "p[0]") == ["p[0] must be a mapping with proto and ports"]


def test_custom_sets_may_not_redefine_the_matrix():
    assert custom_sets_errors({"ssh": [{"proto": "tcp", "ports": "2222"}]}) == ["custom_port_sets.ssh: redefines a built-in port set"]
    assert custom_sets_errors({"app": []}) == ["custom_port_sets.app must be a non-empty list of {proto, ports}"]


def test_registry_port_must_be_one_port():
    assert params_errors({"registry_port": "5000-5001"}) == ["params.registry_port must be a single port"]


def test_the_readme_table_is_rendered_from_the_matrix():
    """The docs read the matrix from its one place: a stale table fails here."""
    for readme_path in ("README.md", os.path.join("roles", "firewall", "README.md")):
        with open(os.path.join(ROOT, readme_path), encoding="utf-8") as readme:
            assert matrix_table() in readme.read(), readme_path
    assert len(matrix_table().splitlines()) == len(PORT_MATRIX) + 2
