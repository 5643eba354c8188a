"""Firewall faults on the test lab, with real packets: a host reboots (empty
tables, units in their own order) and its rules come back by themselves; an
operator flushes the tables and opens INPUT, and the next converge reports
the drift as a change and closes what was open."""

import pytest
from labtools import (
    DEFAULT_REACH,
    firewall_hosts,
    lab_exec,
    reachability,
    reboot,
    start_host_web,
    wait_for_published,
    web_probes,
)


@pytest.fixture(scope="module")
def hosts(lab):
    return firewall_hosts(lab)


@pytest.fixture(scope="module")
def services(hosts):
    yield from web_probes(hosts["target"])


def firewall(hosts, *args):
    return hosts["lab"].playbook("playbooks/site.yml", "--tags", "firewall", "--limit", hosts["target"], *args)


def test_a_reboot_brings_the_rules_back_before_any_converge(hosts, services, figures):
    reboot(hosts["target"])
    wait_for_published(hosts["target"])
    start_host_web(hosts["target"])
    reach = reachability(hosts)
    run = firewall(hosts)
    assert run.returncode == 0, run.explain()
    figures.append(
        "FAULT firewall reboot: ports as declared after boot %s, converge changed=%d" % (reach == DEFAULT_REACH, run.total_changed())
    )
    assert reach == DEFAULT_REACH
    assert run.total_changed() == 0, run.explain()


def test_a_flush_is_reported_as_drift_and_closed_again(hosts, services, figures):
    flushed = lab_exec(hosts["target"], "iptables -w -P INPUT ACCEPT && iptables -w -F")
    assert flushed.returncode == 0, flushed.stderr
    opened = reachability(hosts)
    # The flush opened the host to every building: the drift is real.
    assert opened["web from other building"] and opened["published from other building"], opened
    run = firewall(hosts, "--diff")
    assert run.returncode == 0, run.explain()
    assert run.changed()[hosts["target"]] >= 1, run.explain()
    assert "the live chains differ from these persisted rules" in run.output, run.explain()
    closed = reachability(hosts)
    again = firewall(hosts)
    assert again.returncode == 0, again.explain()
    figures.append(
        "FAULT firewall flush: open to other buildings after the flush %s, closed after converge %s, re-run changed=%d"
        % (opened["web from other building"], closed == DEFAULT_REACH, again.total_changed())
    )
    assert closed == DEFAULT_REACH
    assert again.total_changed() == 0, again.explain()
