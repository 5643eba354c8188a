"""Hosts come and go (issue 15): a new building with one host joins the
lab with a converge limited to it, the existing hosts' firewalls take the
new building in on the next run (and nothing else of theirs changes), and
the host is emptied again by playbooks/reset.yml --limit. The lab keeps
the host and the wider firewalls: the test runs last before the teardown,
which removes the host with the rest (it carries the lab's label)."""

import os
import re

import pytest
import yaml
from labtools import ROOT, ansible_playbook, can_connect, lab_exec, lab_hosts

IPTABLES = "iptables-save | grep -v '^#' | sed -E 's/\\[[0-9]+:[0-9]+\\]//'"


def changed_tasks(output):
    """{task name: hosts it changed}, from a run's default output."""
    found, task = {}, None
    for line in output.splitlines():
        header = re.match(r"^TASK \[(.+?)\]", line)
        if header:
            task = header.group(1)
        changed = re.match(r"^changed: \[([^\]]+)\]", line)
        if changed and task:
            found.setdefault(task, set()).add(changed.group(1).split(" ->")[0])
    return found


@pytest.mark.lab_changes_fleet
def test_a_new_building_joins_with_limit_and_leaves_with_reset(lab, tmp_path):
    with open(os.path.join(ROOT, "playbooks", "vars", "lab_topology.yml"), encoding="utf-8") as stream:
        topology = yaml.safe_load(stream)["lab_topology"]
    topology["buildings"]["bldg_d"] = {"index": 4, "hosts": {"d1": ["docker_hosts"]}}
    extended = tmp_path / "topology.yml"
    extended.write_text(yaml.safe_dump({"lab_topology": topology}))
    existing = sorted(lab.hosts)
    new = lab.name + "-d1"
    registry_host = lab.name + "-a1"
    rules_before = {host: lab_exec(host, IPTABLES, check=True).stdout for host in existing}
    up = ansible_playbook("playbooks/lab_up.yml", "-e", "@%s" % extended, env=lab.env)
    assert up.returncode == 0, up.explain()
    addresses = lab_hosts(lab.inventory)
    assert new in addresses and addresses[new].endswith(".4.11"), addresses

    # The new host alone: converged whole, and no other host touched.
    joined = lab.playbook("playbooks/site.yml", "--limit", new)
    assert joined.returncode == 0, joined.explain()
    assert {host for host, count in joined.changed().items() if count} == {new}, joined.explain()
    assert not set(joined.recap) & set(existing), joined.explain()
    assert {host: lab_exec(host, IPTABLES, check=True).stdout for host in existing} == rules_before
    # The registry host does not know the new building yet.
    assert not can_connect(new, addresses[registry_host], 5000)

    # The next run of the firewall: every existing host takes the new
    # building in (SSH and the registry are open to all buildings), the
    # new host has it already, and only firewall tasks change anything.
    widened = lab.playbook("playbooks/site.yml", "--tags", "firewall")
    assert widened.returncode == 0, widened.explain()
    assert {host for host, count in widened.changed().items() if count} == set(existing), widened.explain()
    assert all(task.startswith("firewall :") for task in changed_tasks(widened.output)), widened.explain()
    assert can_connect(new, addresses[registry_host], 5000)
    subnet = addresses[new].rsplit(".", 1)[0] + ".0/24"
    assert all(subnet in lab_exec(host, IPTABLES, check=True).stdout for host in existing)

    # A reset without its confirmation, or with a bad option, changes nothing.
    for extra, message in (((), "reset_confirm=yes"), (("-e", "reset_confirm=yes", "-e", "reset_engine=maybe"), "reset_engine")):
        refused = lab.playbook("playbooks/reset.yml", "--limit", new, *extra)
        assert refused.returncode != 0 and message in " ".join(refused.output.split()), refused.explain()
        assert refused.total_changed() == 0, refused.explain()
    assert lab_exec(new, "test -d /etc/berth/firewall && docker info >/dev/null").returncode == 0

    # The host leaves: reset with the engine, then nothing of berth's is on it.
    reset = lab.playbook("playbooks/reset.yml", "--limit", new, "-e", "reset_confirm=yes", "-e", "reset_engine=true")
    assert reset.returncode == 0, reset.explain()
    assert not set(reset.recap) & set(existing), reset.explain()
    left = lab_exec(
        new,
        "ls -d /etc/berth /var/lib/berth /etc/nginx/berth /etc/docker /etc/systemd/system/berth-firewall.service "
        "/usr/local/sbin/berth-firewall 2>/dev/null; iptables-save | grep -c BERTH; command -v dockerd",
    )
    assert left.stdout.split() == ["0"], left.stdout
    # Its cached facts are the test's to remove: lab_down knows the lab's own hosts only.
    facts = os.path.join(ROOT, ".cache", "facts", new)
    if os.path.exists(facts):
        os.remove(facts)
