"""The foundation on the test lab: converge, idempotence, engines inside the
hosts, check mode, bad input, and a teardown that leaves nothing behind."""

import json
import os
import subprocess

import pytest
from labtools import ROOT, docker, docker_objects, lab_hosts, project_files

BUSYBOX_IMAGE = "berth/busybox:lab"


def test_lab_has_five_hosts_in_three_buildings(lab):
    assert len(lab.hosts) >= 5
    buildings = {host.rsplit("-", 1)[1][0] for host in lab.hosts}
    assert buildings == {"a", "b", "c"}


def test_first_converge_succeeds_on_every_host(lab):
    assert set(lab.first_converge.recap) == set(lab.hosts)
    for host, stats in lab.first_converge.recap.items():
        assert stats["failed"] == stats["unreachable"] == 0, host


def test_second_converge_changes_nothing(lab):
    second = lab.second_converge or lab.playbook("playbooks/site.yml")
    assert second.returncode == 0, second.explain()
    assert set(second.recap) == set(lab.hosts)
    assert second.changed() == dict.fromkeys(lab.hosts, 0), second.explain()


def ssh(lab, host, command):
    """Run a command on a lab host over real SSH, the way Ansible reaches it."""
    state = os.path.join(ROOT, ".lab", lab.name)
    return subprocess.run(
        [
            "ssh",
            "-i",
            os.path.join(state, "id_ed25519"),
            "-o",
            "UserKnownHostsFile=" + os.path.join(state, "known_hosts"),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "root@" + lab.hosts[host],
            command,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("index", range(5))
def test_each_host_runs_containers_with_rotated_logs(lab, index):
    host = sorted(lab.hosts)[index]
    script = (
        "set -e; d=$(mktemp -d); cp /bin/busybox $d/; "
        'tar -C $d -c . | docker import -c \'CMD ["/busybox", "sleep", "600"]\' - %s >/dev/null; '
        "docker rm -f logcheck >/dev/null 2>&1 || true; docker run -d --name logcheck %s >/dev/null; "
        "docker inspect logcheck --format '{{json .HostConfig.LogConfig}}'; docker rm -f logcheck >/dev/null"
    ) % (BUSYBOX_IMAGE, BUSYBOX_IMAGE)
    result = ssh(lab, host, script)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}


def test_check_mode_shows_a_daemon_json_change_without_making_it(lab):
    host = sorted(lab.hosts)[0]
    before = ssh(lab, host, "cat /etc/docker/daemon.json").stdout
    run = lab.playbook("playbooks/site.yml", "--check", "--diff", "--limit", host, "-e", "docker_daemon_log_max_size=25m")
    assert run.returncode == 0, run.explain()
    assert '+    "max-size": "25m"' in run.output
    assert '-    "max-size": "10m"' in run.output
    assert run.changed()[host] == 1
    assert ssh(lab, host, "cat /etc/docker/daemon.json").stdout == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("docker_install_source=snap", "docker_install_source"),
        ("docker_daemon_log_max_file=plenty", "docker_daemon_log_max_file"),
        (
            '{"docker_daemon_default_address_pools": [{"base": "CAMPUS", "size": 26}]}',
            "docker_daemon_default_address_pools[0].base CAMPUS overlaps berth_buildings.bldg_a.host_subnet",
        ),
        ('{"docker_users": ["nobody-here"]}', "no such user: nobody-here"),
        ('{"docker_daemon_log_max_size": "ten megabytes"}', "docker_daemon_log_max_size: 'ten megabytes' is not a size such as 10m"),
        ('{"docker_daemon_log_max_file": -1}', "docker_daemon_log_max_file: -1 is below 1"),
        (
            '{"docker_daemon_default_address_pools": [{"base": "172.30.0.0/16", "size": 99}]}',
            "docker_daemon_default_address_pools[0].size: 99 must lie between the base's prefix /16 and 32",
        ),
        (
            '{"docker_daemon_extra_options": {"live-restore": "yes"}}',
            "docker_daemon_extra_options.live-restore: set by docker_daemon_live_restore",
        ),
        # Only the host knows its engine: 20.10 has no --validate, so berth's own check refuses it.
        ('{"docker_daemon_extra_options": {"no-such-option": true}}', "daemon.json no-such-option: not an option Docker 20.10 knows"),
    ],
)
def test_bad_role_input_fails_before_any_change(lab, extra, message):
    campus = lab.env["BERTH_LAB_CAMPUS"]
    host = sorted(lab.hosts)[0]
    before = ssh(lab, host, "cat /etc/docker/daemon.json").stdout
    run = lab.playbook("playbooks/site.yml", "-e", extra.replace("CAMPUS", campus))
    assert run.returncode != 0
    assert message.replace("CAMPUS", campus) in " ".join(run.output.split()), run.explain()
    assert run.total_changed() == 0, run.explain()
    assert ssh(lab, host, "cat /etc/docker/daemon.json").stdout == before


def test_each_engine_checks_daemon_json_its_own_way(lab):
    # Debian 12's 20.10 has no --validate (berth's own check refuses the
    # option); Debian 13's 26.1 is asked itself. Neither file changes.
    by_release = {lab.release(host): host for host in sorted(lab.hosts)}
    assert set(by_release) == {"bookworm", "trixie"}, by_release
    before = {host: ssh(lab, host, "cat /etc/docker/daemon.json").stdout for host in by_release.values()}
    run = lab.playbook(
        "playbooks/site.yml",
        "--tags",
        "docker",
        "--limit",
        ",".join(by_release.values()),
        "-e",
        '{"docker_daemon_extra_options": {"no-such-option": true}}',
    )
    assert run.returncode != 0
    output = " ".join(run.output.split())
    assert "checked_by: berth" in output and "not an option Docker 20.10 knows" in output, run.explain()
    assert "checked_by: dockerd --validate" in output, run.explain()
    assert "refused by dockerd --validate" in output and "no-such-option" in output, run.explain()
    assert run.total_changed() == 0, run.explain()
    assert {host: ssh(lab, host, "cat /etc/docker/daemon.json").stdout for host in by_release.values()} == before


def test_the_engine_may_leave_ipv6_on_where_proc_sys_is_read_only(lab):
    # Lab hosts are containers: Docker 26 could not switch IPv6 off on a
    # container's interface and would refuse to start it (docker role README).
    for host in sorted(lab.hosts):
        shown = ssh(lab, host, "findmnt -no OPTIONS /proc/sys; systemctl show docker -p Environment")
        assert shown.stdout.split()[0].startswith("ro,"), (host, shown.stdout)
        assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in shown.stdout, (host, shown.stdout)


def test_the_first_start_used_daemon_json_and_nothing_held_starts_after(lab):
    # docker0 keeps the address of the engine's first start: a pool address
    # means daemon.json was in place before it (a bridge address from
    # Docker's built-in 172.17.0.0/16 would mean it was not).
    for host in sorted(lab.hosts):
        bridge = ssh(lab, host, "ip -4 -o addr show docker0 | awk '{print $4}'; test ! -e /usr/sbin/policy-rc.d && echo released")
        assert bridge.stdout.split() == ["172.30.0.1/24", "released"], (host, bridge.stdout, bridge.stderr)


def test_a_pinned_engine_is_held_and_an_unknown_version_changes_nothing(lab):
    host = sorted(lab.hosts)[-1]
    installed = ssh(lab, host, "dpkg-query -W -f '${Version}' docker.io").stdout.strip()
    # Debian 13's client is a package of its own, built from the engine's source: held with it.
    engine = ["docker-cli", "docker.io"] if lab.release(host) == "trixie" else ["docker.io"]
    try:
        pinned = lab.playbook("playbooks/site.yml", "--limit", host, "--tags", "docker", "-e", "docker_engine_version=" + installed)
        assert pinned.returncode == 0, pinned.explain()
        assert pinned.changed()[host] == 1, pinned.explain()  # the hold, nothing else
        assert ssh(lab, host, "apt-mark showhold").stdout.split() == engine
        again = lab.playbook("playbooks/site.yml", "--limit", host, "--tags", "docker", "-e", "docker_engine_version=" + installed)
        assert again.returncode == 0 and again.total_changed() == 0, again.explain()
        # A version the mirror does not have: apt refuses before installing anything.
        missing = lab.playbook("playbooks/site.yml", "--limit", host, "--tags", "docker", "-e", "docker_engine_version=99.0.0-1")
        assert missing.returncode != 0
        assert "99.0.0-1" in missing.output and missing.total_changed() == 0, missing.explain()
        assert ssh(lab, host, "dpkg-query -W -f '${Version}' docker.io").stdout.strip() == installed
    finally:
        ssh(lab, host, "apt-mark unhold " + " ".join(engine))


@pytest.mark.lab_teardown
def test_lab_down_leaves_nothing_behind(lab):
    lab_objects = docker("ps", "-aq", "--filter", "label=berth.lab=" + lab.name).split()
    # The inventory as it is now: a test may have added a host for good (lab_changes_fleet).
    assert len(lab_objects) == len(lab_hosts(lab.inventory))
    assert cached_facts_of(lab), "converging the lab should have cached its facts"
    down = subprocess.run(
        ["ansible-playbook", "playbooks/lab_down.yml"],
        cwd=ROOT,
        env=dict(os.environ, **lab.env),
        capture_output=True,
        text=True,
        check=False,
    )
    lab.torn_down = True
    assert down.returncode == 0, down.stdout
    objects_before, files_before = lab.before
    assert docker_objects(lab.name) == objects_before
    assert project_files(lab.name) == files_before
    assert cached_facts_of(lab) == []


def cached_facts_of(lab):
    cache = os.path.join(ROOT, ".cache", "facts")
    return [name for name in os.listdir(cache) if any(name.endswith(host) for host in lab.hosts)]
