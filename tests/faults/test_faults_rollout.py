"""Rollout faults injected for real on the test lab, under load (issue 12,
section 2): every request of every scenario must succeed, and the fleet
must end on one version, after a re-run where the fault left work undone,
with the summary printed.

Load comes from other lab hosts than the one it targets (a ring over the
hosts), through each target's nginx, one new connection per request; the
lab's firewall opens web to the own building only, so the module opens it
to every building for its duration. Each scenario prints
`FAULT rollout <scenario>: requests N failed F` to the CI log.

Scenarios (rollout_batch_size=0, one building per batch):
- the control node dies (kill -9 of ansible-playbook's whole process
  group, and of the module it started on each host of the running batch)
  between the new container's start and the switch, and again between the
  switch and the drain; the re-run reconciles and converges;
- a lab host is stopped while its batch runs: it counts as failed in the
  batch, the hosts that switched go back, the re-run converges;
- nginx's configuration is broken on one host: its switch is refused, the
  hosts that switched go back, the re-run (nginx mended) converges;
- the new version's health fails only in the last building: every host
  that switched goes back."""

import contextlib
import json
import re
import subprocess
import time

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_switch import upstream_backups, upstream_servers
from labtools import Background, Load, lab_exec, reachable, task_results, wait_for

LOCK = "/var/lib/berth/rollout/demo.lock"
# The pid that holds the app's rollout lock on a host: the module of the
# running rollout (from /proc/locks, by the lock file's inode).
LOCK_HOLDER = r"""
import os, sys
inode = os.stat(sys.argv[1]).st_ino
for line in open("/proc/locks"):
    fields = line.split()
    if "FLOCK" in fields and int(fields[-3].split(":")[-1]) == inode:
        print(fields[-4])
"""


def names(lab):
    return sorted(lab.hosts)


def served(name):
    return lab_exec(name, "curl -s http://127.0.0.1/version").stdout.strip()


def versions(lab, skip=()):
    return {name: served(name) for name in names(lab) if name not in skip}


def running(name, version=None):
    flt = "--filter label=berth.app=demo" + (" --filter label=berth.version=%s" % version if version else "")
    return lab_exec(name, "docker ps -q %s" % flt).stdout.split()


def upstream(name):
    return lab_exec(name, "cat /etc/nginx/berth/upstreams/demo.conf").stdout


def summary(output):
    return task_results(output, "rollout : Show the rollout summary")["localhost"]["msg"]


def app(**settings):
    spec = {"hosts": "docker_hosts", "image": "lab/demo", "container_port": 8080, "listen": 80, "health_http": "/health"}
    spec.update(settings)
    return json.dumps({"berth_apps": {"demo": spec}})


class Fleet:
    def __init__(self, lab):
        self.lab = lab
        self.hosts = names(lab)
        self.loads = []

    def versions(self):
        """The version every host serves now, and the other one."""
        (current,) = set(versions(self.lab).values())
        return current, "r3" if current == "r2" else "r2"

    def heal(self):
        """After a scenario that failed half-way: stop its load and bring
        the fleet back to one version, so the next scenario starts where it
        expects to (its own failure stays its own)."""
        for load in self.loads:
            # A load whose host was stopped has nothing to give.
            with contextlib.suppress(Exception):
                load.stop()
        self.loads = []
        for name in self.hosts:
            started = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", name], check=False, capture_output=True, text=True)
            if started.stdout.strip() != "true":
                subprocess.run(["docker", "start", name], check=False, capture_output=True)
                assert wait_for(lambda name=name: reachable(self.lab, name), 180, step=2), name
            lab_exec(name, "rm -f /etc/nginx/conf.d/zz-broken.conf")
        if len(set(versions(self.lab).values())) != 1:
            healed = self.rollout("r2")
            assert healed.returncode == 0, healed.explain()

    def by(self, suffix):
        return next(h for h in self.hosts if h.endswith("-" + suffix))

    def rollout(self, version, *extra):
        return self.lab.playbook(
            "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=%s" % version, "-e", "rollout_batch_size=0", *extra
        )

    def background(self, version, *extra):
        return Background(
            self.lab, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=%s" % version, "-e", "rollout_batch_size=0", *extra
        )

    def load(self, skip=()):
        """One load per host, each from the next live host of the ring."""
        alive = [h for h in self.hosts if h not in skip]
        loads = []
        for index, target in enumerate(alive):
            source = alive[(index + 1) % len(alive)]
            loads.append(Load(source, target=self.lab.hosts[target], minimum=10000 // len(alive) + 1, max_seconds=480, threads=1, rate=45))
        self.loads = loads
        time.sleep(2)
        return loads


# Keeps an idle connection open to a port for as long as the test needs:
# busybox httpd (the demo) closes a connection that sent nothing after 60 s,
# and a slow machine can take longer than that to reach the drain, so each
# connection is replaced after 20 s, the new one opened before the old
# closes.
IDLE = r"""
import socket, sys, time
held = []
for _ in range(10):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
    except OSError:
        pass
    while len(held) > 2:
        held.pop(0).close()
    time.sleep(20)
"""


def lock_holders(name):
    return lab_exec(name, "python3 -c '%s' %s" % (LOCK_HOLDER.replace("'", "'\"'\"'"), LOCK)).stdout.split()


def kill_modules(hosts):
    """kill -9 of the rollout module on each host: the process holding the
    app's lock, if it still runs (the tests check what is left after)."""
    for name in hosts:
        for pid in lock_holders(name):
            lab_exec(name, "kill -9 %s" % pid)


def finish(name, loads, lab, fleet_version, run, skip=()):
    """Stop the load, print the figures, check the end state."""
    results = [load.stop() for load in loads]
    del loads[:]
    total = sum(r["ok"] + r["failed"] for r in results)
    failed = sum(r["failed"] for r in results)
    seconds = max(r["seconds"] for r in results)
    lab.figures.append("FAULT rollout %s: requests %d failed %d in %.0fs" % (name, total, failed, seconds))
    assert failed == 0, [r["errors"] for r in results if r["failed"]]
    assert total >= 10000
    assert set(versions(lab, skip).values()) == {fleet_version}, versions(lab, skip)
    lines = summary(run.output if hasattr(run, "output") else run)
    assert lines[0].startswith("rollout of demo"), lines
    for host in names(lab):
        if host not in skip:
            assert len(running(host)) == 1, (host, lab_exec(host, "docker ps -a --filter label=berth.app=demo").stdout)
    return lines


@pytest.fixture(scope="module")
def fleet(lab, rollout_images, figures):
    lab.figures = figures
    opened = lab.playbook("tests/faults/playbooks/web-opening.yml")
    assert opened.returncode == 0, opened.explain()
    fleet = Fleet(lab)
    start = fleet.rollout("r2")
    assert start.returncode == 0, start.explain()
    assert set(versions(lab).values()) == {"r2"}
    yield fleet
    closed = lab.playbook("tests/faults/playbooks/web-opening.yml", "-e", "opening_state=absent")
    assert closed.returncode == 0, closed.explain()


@pytest.fixture
def scenario(fleet):
    """The fleet for one scenario; a scenario that failed half-way is
    cleaned up after, not in the next one."""
    yield fleet
    fleet.heal()


# The new version in building a does not answer until the test lets it
# (a file in its container): the window between start and switch is held
# open for as long as the test needs, however slow the machine.
GATE = "/tmp/berth-go"
GATED = '[ "$BERTH_BUILDING" != bldg_a ] || until [ -e %s ]; do sleep 1; done' % GATE


def test_control_node_killed_between_start_and_switch(scenario):
    fleet = scenario
    first = [fleet.by("a1"), fleet.by("a2")]
    current, new = fleet.versions()
    gated = app(env={"INI_CMD": GATED})
    loads = fleet.load()
    run = fleet.background(new, "-e", gated)
    try:
        assert wait_for(lambda: all(running(h, new) for h in first)), run.output()[-3000:]
        assert all(served(h) == current for h in first)
        run.kill()
        kill_modules(first)
    finally:
        run.close()
    # No module runs on a1 or a2 any more (killed here, or already ended
    # with its connection), and each left its new container unserved.
    assert not any(lock_holders(h) for h in first), {h: lock_holders(h) for h in first}
    assert all(running(h, new) and served(h) == current for h in first)
    for name in first:
        lab_exec(name, "docker exec %s touch %s" % (running(name, new)[0], GATE), check=True)
    # The new containers run, no upstream points to them: the re-run reconciles.
    rerun = fleet.rollout(new, "-e", gated)
    assert rerun.returncode == 0, rerun.explain()
    finish("kill between start and switch", loads, fleet.lab, new, rerun)


def test_control_node_killed_between_switch_and_drain(scenario):
    fleet = scenario
    first = [fleet.by("a1"), fleet.by("a2")]
    _, new = fleet.versions()
    old_ports = {}
    for name in first:
        old = running(name)[0]
        old_ports[name] = lab_exec(name, "docker inspect -f '{{index .Config.Labels \"berth.port\"}}' %s" % old).stdout.strip()
        # Idle connections to the old container keep its drain waiting.
        lab_exec(name, "nohup python3 -c '%s' %s >/dev/null 2>&1 & echo $! > /tmp/berth-idle" % (IDLE, old_ports[name]), check=True)
    loads = fleet.load()
    run = fleet.background(new, "-e", "rollout_drain_timeout=90")
    try:
        assert wait_for(lambda: all("127.0.0.1:%s " % old_ports[h] not in upstream(h) for h in first)), run.output()[-3000:]
        run.kill()
        kill_modules(first)
    finally:
        run.close()
        for name in first:
            lab_exec(name, "kill $(cat /tmp/berth-idle)")
    assert not any(lock_holders(h) for h in first), {h: lock_holders(h) for h in first}
    # Both versions run on a1 and a2; nginx serves (or, killed before the
    # reload, will serve) the new one.
    assert all(len(running(h)) == 2 for h in first)
    rerun = fleet.rollout(new)
    assert rerun.returncode == 0, rerun.explain()
    lines = finish("kill between switch and drain", loads, fleet.lab, new, rerun)
    for name in first:
        assert "reconciled" in next(line for line in lines if line.split()[0] == name), lines


def test_a_lab_host_stopped_mid_batch(scenario):
    fleet = scenario
    b1, b2 = fleet.by("b1"), fleet.by("b2")
    current, new = fleet.versions()
    loads = fleet.load(skip=[b2])
    run = fleet.background(new)
    try:
        # b2 loses its power once its new container runs, while its batch
        # is under way (docker kill: no orderly shutdown that could still
        # report a failure).
        assert wait_for(lambda: bool(running(b2, new)), 120), run.output()[-3000:]
        subprocess.run(["docker", "kill", b2], check=True, capture_output=True)
        code, output = run.wait()
    finally:
        run.close()
        subprocess.run(["docker", "start", b2], check=True, capture_output=True)
    assert code != 0
    lines = summary(output)
    assert "unreachable" in next(line for line in lines if line.split()[0] == b2), lines
    assert "rolled back" in next(line for line in lines if line.split()[0] == b1), lines
    assert "not started" in next(line for line in lines if line.split()[0] == fleet.by("c1")), lines
    assert set(versions(fleet.lab, skip=[b2]).values()) == {current}
    assert wait_for(lambda: lab_exec(b2, "systemctl is-active nginx docker").stdout.split() == ["active", "active"], 120, step=2)
    assert wait_for(lambda: reachable(fleet.lab, b2), 120)
    rerun = fleet.rollout(new)
    assert rerun.returncode == 0, rerun.explain()
    finish("lab host stopped mid-batch", loads, fleet.lab, new, rerun, skip=[b2])
    assert served(b2) == new and len(running(b2)) == 1


def test_nginx_config_broken_on_one_host(scenario):
    fleet = scenario
    b1 = fleet.by("b1")
    current, new = fleet.versions()
    loads = fleet.load()
    lab_exec(b1, "echo 'this is not nginx' > /etc/nginx/conf.d/zz-broken.conf", check=True)
    try:
        run = fleet.rollout(new)
    finally:
        lab_exec(b1, "rm -f /etc/nginx/conf.d/zz-broken.conf", check=True)
    assert run.returncode != 0
    lines = summary(run.output)
    assert "nginx rejected the configuration" in next(line for line in lines if line.split()[0] == b1), lines
    assert sum("rolled back" in line for line in lines) == 3, lines  # a1, a2 and b2, its batch mate
    assert set(versions(fleet.lab).values()) == {current}
    rerun = fleet.rollout(new)
    assert rerun.returncode == 0, rerun.explain()
    finish("nginx config broken on one host", loads, fleet.lab, new, rerun)


def test_health_failing_only_in_the_last_building(scenario):
    fleet = scenario
    broken = app(deadline=20, env={"INI_CMD": '[ "$BERTH_BUILDING" != bldg_c ] || rm -f /srv/app/health'})
    current, new = fleet.versions()
    loads = fleet.load()
    run = fleet.rollout(new, "-e", broken)
    assert run.returncode != 0
    lines = finish("health failing in the last building", loads, fleet.lab, current, run)
    assert "rollout of demo %s stopped" % new in run.output
    assert sum("rolled back" in line for line in lines) == 4, lines
    # The failed host's line has its versions and the reason (issue 12, 2.12).
    c1 = next(line for line in lines if line.split()[0] == fleet.by("c1"))
    assert re.search(
        r"%s\s+-> %s\s+failed\s+\S+s  health: (HTTP 404 from /health|Docker's health check reports unhealthy)" % (current, current), c1
    ), lines


def test_an_engine_restart_under_load(scenario):
    """A changed daemon.json restarts the engine on b1 (Debian 12, Docker
    20.10) and b2 (Debian 13, Docker 26.1) at once while both serve through
    their nginx; then the setting goes back, a second restart. live-restore
    keeps the app's container, and docker-proxy (the loopback port nginx
    sends to) goes down with the daemon; the restart gives nginx the
    container's own address as a backup meanwhile, so no request fails.
    After, the upstream file is as before, the same container serves, and
    the host serves again."""
    fleet = scenario
    targets = {fleet.by("b1"): fleet.by("a1"), fleet.by("b2"): fleet.by("a2")}
    release = {target: lab_exec(target, ". /etc/os-release && echo $VERSION_CODENAME", check=True).stdout.strip() for target in targets}
    assert sorted(release.values()) == ["bookworm", "trixie"], release
    upstreams = {target: upstream(target) for target in targets}
    loads = {
        target: Load(source, target=fleet.lab.hosts[target], minimum=10000, max_seconds=480, threads=3, rate=150)
        for target, source in targets.items()
    }
    fleet.loads = list(loads.values())
    time.sleep(2)
    engine = "systemctl show docker -p MainPID --value"
    pids = {target: [lab_exec(target, engine, check=True).stdout.strip()] for target in targets}
    containers = {target: running(target) for target in targets}
    for max_file in (4, 3):
        run = fleet.lab.playbook(
            "playbooks/site.yml", "--limit", ",".join(targets), "--tags", "docker", "-e", "docker_daemon_log_max_file=%d" % max_file, "-v"
        )
        assert run.returncode == 0, run.explain()
        assert all(run.changed()[target] >= 1 for target in targets), run.explain()
        said = " ".join(run.output.split()).count("their published ports do not answer for about a second")
        assert said == len(targets), run.explain()  # the role says so
        assert len(re.findall(r"bridged:\s+- demo\b", run.output)) == len(targets), run.explain()  # the handler's result
        for target in targets:
            pids[target].append(lab_exec(target, engine, check=True).stdout.strip())
            assert upstream(target) == upstreams[target]  # the backup is gone again
    results = {target: load.stop() for target, load in loads.items()}
    fleet.loads = []
    for target, result in results.items():
        total = result["ok"] + result["failed"]
        fleet.lab.figures.append(
            "FAULT engine restart (%s): requests %d failed %d in %.0fs" % (release[target], total, result["failed"], result["seconds"])
        )
    for target, result in results.items():
        total = result["ok"] + result["failed"]
        assert len(set(pids[target])) == 3, pids  # two restarts, each a new daemon
        assert total >= 10000
        assert result["failed"] == 0, (target, result)
        assert running(target) == containers[target]
        assert served(target) == fleet.versions()[0]


BROKEN_ENGINE = "/etc/systemd/system/docker.service.d/zz-berth-fault.conf"


def test_an_engine_that_does_not_come_back(scenario):
    """The engine on b1 cannot start again (a drop-in whose ExecStartPre
    fails, put there before a daemon.json change is converged). The restart
    fails and says where traffic goes; nginx keeps the container's own
    address as its backup and serves throughout, the container running on
    without its engine (live-restore). Once the engine is mended, the next
    rollout run removes the backup, and the next restart leaves none."""
    fleet = scenario
    target = fleet.by("b1")
    before = upstream(target)
    current, _new = fleet.versions()
    container = running(target)
    load = Load(fleet.by("a1"), target=fleet.lab.hosts[target], minimum=3000, max_seconds=300, threads=3, rate=150)
    fleet.loads = [load]
    lab_exec(target, "printf '[Service]\\nExecStartPre=/bin/false\\n' > %s" % BROKEN_ENGINE, check=True)
    try:
        run = fleet.lab.playbook("playbooks/site.yml", "--limit", target, "--tags", "docker", "-e", "docker_daemon_log_max_file=4")
        assert run.returncode != 0, run.explain()
        said = " ".join(run.output.split())
        assert "systemctl restart docker failed" in said, said[-3000:]
        assert "nginx keeps serving demo from the containers' own addresses" in said, said[-3000:]
        left = upstream(target)
        assert upstream_servers(left) == upstream_servers(before) and len(upstream_backups(left)) == 1, left
        assert lab_exec(target, "systemctl is-active docker").stdout.strip() != "active"
        time.sleep(10)  # served with no engine at all
        assert served(target) == current
    finally:
        lab_exec(target, "rm -f %s && systemctl daemon-reload && systemctl reset-failed docker; systemctl start docker" % BROKEN_ENGINE)
    result = load.stop()
    fleet.loads = []
    total = result["ok"] + result["failed"]
    fleet.lab.figures.append("FAULT engine that does not come back: requests %d failed %d" % (total, result["failed"]))
    assert result["failed"] == 0, result
    assert running(target) == container
    # The next rollout run, with nothing to deploy, removes the backup.
    healed = fleet.rollout(current)
    assert healed.returncode == 0, healed.explain()
    b1 = next(line for line in summary(healed.output) if line.split()[0] == target)
    assert "reconciled" in b1 and "the upstream kept an engine restart's backup" in b1, healed.explain()
    assert upstream(target) == before
    back = fleet.lab.playbook("playbooks/site.yml", "--limit", target, "--tags", "docker")
    assert back.returncode == 0, back.explain()
    assert upstream(target) == before and running(target) == container


def test_an_engine_restart_with_nginx_stopped(scenario):
    """nginx stopped on b2 when a daemon.json change restarts its engine:
    there is nothing to serve meanwhile, so the engine restarts plainly
    (no backup written, no reload tried) instead of failing, and once
    nginx starts again it serves the same container."""
    fleet = scenario
    target = fleet.by("b2")
    before, container = upstream(target), running(target)
    lab_exec(target, "systemctl stop nginx", check=True)
    try:
        for max_file in (4, 3):
            run = fleet.lab.playbook(
                "playbooks/site.yml", "--limit", target, "--tags", "docker", "-e", "docker_daemon_log_max_file=%d" % max_file, "-v"
            )
            assert run.returncode == 0, run.explain()
            assert re.search(r"bridged: \[\]", run.output) and "restarted: true" in run.output, run.explain()
            assert upstream(target) == before
    finally:
        lab_exec(target, "systemctl start nginx", check=True)
    assert running(target) == container
    assert wait_for(lambda: served(target) == fleet.versions()[0], 30)
