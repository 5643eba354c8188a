"""The firewall role with real packets between lab hosts in different
buildings: host ports, published container ports, Docker restarts, a
simulated reboot, the timed auto-revert, check mode and bad input."""

import base64
import json
import time

import pytest
from labtools import (
    DEFAULT_REACH,
    LAB_ALLOW,
    PUBLISHED_PORT,
    ensure_busybox_image,
    firewall_hosts,
    lab_exec,
    reachability,
    wait_for_published,
    web_probes,
)


@pytest.fixture(scope="module")
def hosts(lab):
    return firewall_hosts(lab)


@pytest.fixture(scope="module")
def services(hosts):
    yield from web_probes(hosts["target"])


def firewall(lab, *args):
    return lab.playbook("playbooks/site.yml", "--tags", "firewall", *args)


def test_default_sources_are_the_hosts_own_building(hosts, services):
    assert reachability(hosts) == DEFAULT_REACH


def test_declared_sources_open_a_port_to_another_building(hosts, services):
    lab = hosts["lab"]
    opened = {
        "firewall_allow": dict(LAB_ALLOW, web={"buildings": ["own", "bldg_b"]}),
        "firewall_published_ports": [{"proto": "tcp", "ports": str(PUBLISHED_PORT), "sources": {"buildings": ["own", "bldg_b"]}}],
    }
    run = firewall(lab, "--limit", hosts["target"], "-e", json.dumps(opened))
    assert run.returncode == 0, run.explain()
    assert all(reachability(hosts).values())
    back = firewall(lab, "--limit", hosts["target"])
    assert back.returncode == 0, back.explain()
    assert reachability(hosts) == DEFAULT_REACH


def test_a_declared_published_port_closes_to_the_own_building_when_not_listed(hosts, services):
    lab = hosts["lab"]
    only_b = {"firewall_published_ports": [{"proto": "tcp", "ports": str(PUBLISHED_PORT), "sources": {"buildings": ["bldg_b"]}}]}
    run = firewall(lab, "--limit", hosts["target"], "-e", json.dumps(only_b))
    assert run.returncode == 0, run.explain()
    reach = reachability(hosts)
    assert reach["published from other building"] and not reach["published from own building"]
    assert firewall(lab, "--limit", hosts["target"]).returncode == 0
    assert reachability(hosts) == DEFAULT_REACH


def container_reaches_outside(hosts):
    """A container on the target reaches another host through NAT."""
    image = ensure_busybox_image(hosts["target"])
    peer = hosts["lab"].hosts[hosts["same"]]
    result = lab_exec(hosts["target"], "docker run --rm %s /busybox nc -w 3 %s 22 </dev/null" % (image, peer))
    return result.stdout.startswith("SSH-")


@pytest.mark.parametrize(
    "disruption",
    [
        "systemctl restart docker",
        "systemctl reload berth-firewall",
        "systemctl restart berth-firewall && systemctl restart docker",
        "systemctl restart docker && systemctl restart berth-firewall",
    ],
    ids=["docker-restart", "firewall-reload", "firewall-then-docker", "docker-then-firewall"],
)
def test_rules_survive(hosts, services, disruption):
    # A reboot and a flush are in tests/faults/test_faults_firewall.py.
    result = lab_exec(hosts["target"], disruption)
    assert result.returncode == 0, result.stderr
    wait_for_published(hosts["target"])
    assert reachability(hosts) == DEFAULT_REACH
    assert container_reaches_outside(hosts)


def test_the_unit_orders_itself_before_docker(hosts):
    result = lab_exec(hosts["target"], "systemctl show -p Before berth-firewall.service")
    assert "docker.service" in result.stdout


def live_digest(host):
    out = lab_exec(host, "iptables -S BERTH-INPUT").stdout
    return next(line for line in out.splitlines() if "berth-ruleset:" in line)


def test_a_ruleset_that_cuts_ssh_is_reverted_in_time(hosts):
    lab, host = hosts["lab"], hosts["same"]
    before = live_digest(host)
    lockout = {
        "firewall_detect_control_host": False,
        "firewall_control_hosts": ["192.0.2.1/32"],
        "firewall_allow": dict(LAB_ALLOW, ssh={"buildings": ["bldg_c"]}),
        "firewall_confirm_timeout": 15,
    }
    start = time.monotonic()
    run = firewall(lab, "--limit", host, "-e", json.dumps(lockout))
    elapsed = time.monotonic() - start
    assert run.returncode != 0
    assert "were reverted after 15 s" in run.output, run.explain()
    assert elapsed < 120
    assert live_digest(host) == before
    again = firewall(lab, "--limit", host)
    assert again.returncode == 0, again.explain()
    assert again.total_changed() == 0, again.explain()


def test_check_mode_shows_the_ruleset_change_without_applying_it(hosts):
    lab, host = hosts["lab"], hosts["target"]
    before = lab_exec(host, "iptables -S BERTH-INPUT").stdout
    opened = {"firewall_allow": dict(LAB_ALLOW, web={"buildings": ["own", "bldg_b"]})}
    run = firewall(lab, "--limit", host, "--check", "--diff", "-e", json.dumps(opened))
    assert run.returncode == 0, run.explain()
    other = lab.hosts[hosts["other"]].rsplit(".", 1)[0] + ".0/24"
    assert '+-A BERTH-INPUT -s %s -p tcp -m multiport --dports 80,443 -m comment --comment "web" -j ACCEPT' % other in run.output
    assert run.changed()[host] == 1
    assert lab_exec(host, "iptables -S BERTH-INPUT").stdout == before


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"firewall_extra_port_sets": ["rke3_server"]}, "firewall_port_sets[1]: unknown port set 'rke3_server'"),
        ({"firewall_allow": {"ssh": {"cidrs": ["10.0.0.300/24"]}}}, "firewall_allow.ssh.cidrs[0]: '10.0.0.300/24' is not a CIDR"),
        (
            {"firewall_published_ports": [{"proto": "tcp", "ports": "70000"}]},
            "firewall_published_ports[0].ports: port 70000 is outside 1-65535",
        ),
        ({"firewall_published_ports": [{"proto": "sctp", "ports": "8080"}]}, "firewall_published_ports[0].proto: unknown protocol 'sctp'"),
        ({"firewall_allow": {"ssh": {"buildings": ["bldg_z"]}}}, "firewall_allow.ssh.buildings[0]: unknown building 'bldg_z'"),
    ],
    ids=["unknown-port-set", "bad-cidr", "port-out-of-range", "unknown-protocol", "unknown-building"],
)
def test_bad_input_fails_before_any_change_naming_the_field(hosts, override, message):
    lab = hosts["lab"]
    before = {host: live_digest(host) for host in lab.hosts}
    run = lab.playbook("playbooks/site.yml", "-e", json.dumps(override))
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert run.total_changed() == 0, run.explain()
    assert {host: live_digest(host) for host in lab.hosts} == before


def test_dockers_nftables_backend_is_refused_before_any_change(hosts):
    lab, host = hosts["lab"], hosts["target"]
    before = live_digest(host)
    original = lab_exec(host, "cat /etc/docker/daemon.json", check=True).stdout
    # Only the file: this engine (20.10) has no nftables backend to start.
    edit = "import json; p='/etc/docker/daemon.json'; c=json.load(open(p)); c['firewall-backend']='nftables'; json.dump(c, open(p,'w'))"
    lab_exec(host, 'python3 -c "%s"' % edit, check=True)
    try:
        run = firewall(lab, "--limit", host)
    finally:
        saved = base64.b64encode(original.encode()).decode()
        lab_exec(host, "echo %s | base64 -d > /etc/docker/daemon.json" % saved, check=True)
    assert run.returncode != 0
    assert "firewall-backend is 'nftables'" in run.output and "DOCKER-USER" in run.output, run.explain()
    assert run.total_changed() == 0, run.explain()
    assert live_digest(host) == before
