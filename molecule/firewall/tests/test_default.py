"""Verify of the firewall scenario, with probes from the control host."""

import socket

import pytest


def instance_address(host):
    return host.interface("eth0").addresses[0]


def connects(address, port, timeout=3):
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def test_input_is_default_deny_through_berths_chain(host):
    rules = host.check_output("iptables -S INPUT")
    assert "-P INPUT DROP" in rules
    assert "-A INPUT -j BERTH-INPUT" in rules
    assert "-P INPUT DROP" in host.check_output("ip6tables -S INPUT")


def test_rules_persist_through_the_boot_unit(host):
    assert host.service("berth-firewall").is_enabled
    assert host.file("/etc/berth/firewall/rules.v4").contains("BERTH-INPUT")
    assert not host.file("/etc/berth/firewall/pending.v4").exists


def test_ssh_is_open_to_the_control_host(host):
    assert connects(instance_address(host), 22)


@pytest.mark.parametrize("port", [80, 443])
def test_web_is_closed_to_the_control_host(host, port):
    # The service listens on 80; the firewall must hide it.
    assert host.socket("tcp://0.0.0.0:80").is_listening
    assert not connects(instance_address(host), port)
