"""Start-first rollouts on the test lab, through real nginx, under real load:
no failed request while every instance is replaced, an operator's rollback,
automatic rollback of the hosts that already switched when a later batch
fails, and every failure ending in a known, serving state (issue 12,
section 2): slow starts, probes that prove the app answers, failed starts,
a failed rollback, a stale nginx, two upstream servers, two runs at once,
retention after a rollback, an unreachable host, a stopped registry and a
Docker engine that goes away after the switch. Bad input changes nothing.

Most single-host cases run the demo app on building C only (its
berth_apps entry with `hosts: bldg_c`) and put that host back on r2."""

import json
import re
import subprocess
import time

import pytest
from labtools import Background, Load, lab_exec, reachable, task_results, wait_for


def host(lab, suffix):
    return next(h for h in sorted(lab.hosts) if h.endswith("-" + suffix))


def served(lab, name):
    return lab_exec(name, "curl -s http://127.0.0.1/version").stdout.strip()


def versions_served(lab):
    return {name: served(lab, name) for name in lab.hosts}


def app_containers(lab):
    return {name: containers(name) for name in lab.hosts}


def containers(name):
    """{container: (state, version)} of the demo app on a host."""
    out = lab_exec(name, "docker ps -a --filter label=berth.app=demo --format '{{.Names}} {{.State}} {{.Label \"berth.version\"}}'").stdout
    return {line.split()[0]: tuple(line.split()[1:]) for line in out.splitlines()}


def running(name):
    return sorted(c for c, (state, _) in containers(name).items() if state == "running")


def running_version(name, version):
    return lab_exec(name, "docker ps -q --filter label=berth.app=demo --filter label=berth.version=%s" % version).stdout.split()


def upstream(name):
    return lab_exec(name, "cat /etc/nginx/berth/upstreams/demo.conf").stdout


def app(**settings):
    """An -e with the demo app's berth_apps entry, changed by `settings`
    (None drops a key)."""
    spec = {"hosts": "docker_hosts", "image": "lab/demo", "container_port": 8080, "listen": 80, "health_http": "/health"}
    spec.update(settings)
    return json.dumps({"berth_apps": {"demo": {k: v for k, v in spec.items() if v is not None}}})


def c_only(**settings):
    return app(hosts="bldg_c", **settings)


@pytest.fixture(scope="module")
def demo(lab, rollout_images):
    first = rollout(lab, "r1")
    assert first.returncode == 0, first.explain()
    assert set(versions_served(lab).values()) == {"r1"}
    lab.c1 = host(lab, "c1")
    return lab


def rollout(lab, version, *extra, app="demo"):
    return lab.playbook("playbooks/rollout.yml", "-e", "app=%s" % app, "-e", "version=%s" % version, *extra)


def rollback(lab, *extra):
    return lab.playbook("playbooks/rollback.yml", "-e", "app=demo", *extra)


def summary(run):
    return summary_of(run.output)


def summary_of(output):
    return task_results(output, "rollout : Show the rollout summary")["localhost"]["msg"]


def line_of(run, name):
    return next(line for line in summary(run) if line.split()[0] == name)


def back_on_r2(lab):
    """Building C's host on r2 with the fleet's spec again."""
    run = rollout(lab, "r2", "-e", c_only())
    assert run.returncode == 0, run.explain()
    assert served(lab, lab.c1) == "r2"
    assert running(lab.c1) and len(running(lab.c1)) == 1, containers(lab.c1)


def loaded(lab, action, hosts=None):
    loads = [Load(name, minimum=2000, rate=60) for name in sorted(hosts or lab.hosts)]
    time.sleep(2)
    run = action()
    results = {load.host: load.stop() for load in loads}
    return run, results


def failures(results):
    return {name: r["errors"] for name, r in results.items() if r["failed"]}


# -- the fleet -----------------------------------------------------------------------------------
def test_rollout_under_load_fails_no_request(demo):
    run, results = loaded(demo, lambda: rollout(demo, "r2"))
    assert run.returncode == 0, run.explain()
    total = sum(r["ok"] + r["failed"] for r in results.values())
    assert total >= 10000
    assert failures(results) == {}
    for name, result in results.items():
        assert result["first"] == "r1" and result["last"] == "r2", (name, result["bodies"])
    assert set(versions_served(demo).values()) == {"r2"}
    assert sum(" r1         -> r2          deployed" in line for line in summary(run)) == 5, summary(run)


def test_the_same_version_again_changes_nothing(demo):
    again = rollout(demo, "r2")
    assert again.returncode == 0, again.explain()
    assert again.total_changed() == 0, again.explain()
    assert sum("unchanged" in line for line in summary(again)) == 5


def test_an_operators_rollback_under_load_fails_no_request(demo):
    """2.13: rollback.yml goes back to the version that served last, without
    pulling, building by building; twice goes forth again."""
    run, results = loaded(demo, lambda: rollback(demo))
    assert run.returncode == 0, run.explain()
    assert sum(r["ok"] + r["failed"] for r in results.values()) >= 10000
    assert failures(results) == {}
    assert set(versions_served(demo).values()) == {"r1"}
    assert summary(run)[0] == "rollback of demo"
    assert sum(" r2         -> r1          rolled back" in line for line in summary(run)) == 5, summary(run)
    assert "Pull" not in run.output and "pull" not in " ".join(summary(run))
    forth = rollback(demo)
    assert forth.returncode == 0, forth.explain()
    assert set(versions_served(demo).values()) == {"r2"}


def test_a_host_with_no_retained_version_is_reported_not_guessed(demo):
    before = versions_served(demo)
    for name in sorted(demo.hosts):
        if name.endswith("-c1"):
            lab_exec(name, "docker ps -aq --filter label=berth.app=demo --filter status=exited | xargs -r docker rm", check=True)
    run = rollback(demo)
    assert run.returncode != 0
    assert "no retained version" in line_of(run, demo.c1), summary(run)
    assert sum("not started" in line for line in summary(run)) == 4, summary(run)
    assert versions_served(demo) == before


def test_a_container_stuck_in_starting_fails_at_the_deadline(demo):
    slow = app(health_http=None, deadline=6)
    started = time.monotonic()
    run = rollout(demo, "stuck", "-e", slow, "-e", "rollout_batch_size=0")
    assert run.returncode != 0
    assert time.monotonic() - started < 120
    assert "not healthy within the 6.0s deadline (Docker health: starting)" in run.output, run.explain()
    assert set(versions_served(demo).values()) == {"r2"}


def test_an_unreachable_host_stops_the_rollout_and_is_named(demo):
    """2.4: a stopped lab host is no longer skipped: it fails its batch, the
    rollout stops before anything switched, the summary says unreachable."""
    b2 = host(demo, "b2")
    subprocess.run(["docker", "stop", b2], check=True, capture_output=True)
    try:
        run = rollout(demo, "r3")
    finally:
        subprocess.run(["docker", "start", b2], check=True, capture_output=True)
    assert run.returncode != 0
    line = line_of(run, b2)
    assert "unreachable" in line, summary(run)
    assert sum("not started" in line for line in summary(run)) == 4, summary(run)
    assert wait_for(lambda: lab_exec(b2, "systemctl is-active nginx docker").stdout.split() == ["active", "active"], 120, step=2)
    assert wait_for(lambda: reachable(demo, b2), 120)
    assert wait_for(lambda: served(demo, b2) == "r2", 60)
    assert set(versions_served(demo).values()) == {"r2"}


def test_a_batch_whose_only_host_is_lost_still_ends_with_the_summary(demo):
    """2.4: when every host of a batch fails, Ansible ends the play and
    skips every later one, the revert and the summary with them. An
    unreachable host is kept in the run instead, so both still run."""
    run = Background(demo, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=r3", "-e", c_only(env={"INI_CMD": "sleep 5"}))
    try:
        assert wait_for(lambda: bool(running_version(demo.c1, "r3")), 120)
        # No orderly shutdown, which could still report a failure: the host is gone.
        subprocess.run(["docker", "kill", demo.c1], check=True, capture_output=True)
        code, output = run.wait()
    finally:
        subprocess.run(["docker", "start", demo.c1], check=True, capture_output=True)
    assert code != 0
    (line,) = summary_of(output)[1:-1]
    assert "unreachable" in line, output[-4000:]
    assert wait_for(lambda: lab_exec(demo.c1, "systemctl is-active nginx docker").stdout.split() == ["active", "active"], 120, step=2)
    assert wait_for(lambda: reachable(demo, demo.c1), 120)
    back_on_r2(demo)


def test_a_stopped_registry_is_named_in_the_summary(demo):
    """2.12: every line says the pull failed and why; nothing switched."""
    a1 = host(demo, "a1")
    lab_exec(a1, "systemctl stop docker-registry", check=True)
    try:
        run = rollout(demo, "never-pushed")
    finally:
        lab_exec(a1, "systemctl start docker-registry", check=True)
    assert run.returncode != 0
    registry = "%s:5000" % demo.hosts[a1]
    for line in summary(run)[1:-1]:
        assert re.search(r"r2\s+-> r2\s+failed\s+\S+s  pull failed: %s unreachable$" % re.escape(registry), line), summary(run)
    assert set(versions_served(demo).values()) == {"r2"}


# -- one host: every failure ends in a known, serving state ------------------------------------
def test_without_a_healthcheck_a_slow_app_gets_its_deadline(demo):
    """2.2: no HEALTHCHECK, 8 s to listen, a 60 s deadline: the failed probes
    before the first success no longer end the wait after about 5 s."""
    run = rollout(demo, "nohc", "-e", c_only(deadline=60, env={"INI_CMD": "sleep 8"}))
    assert run.returncode == 0, run.explain()
    assert served(demo, demo.c1) == "nohc"
    back_on_r2(demo)


def test_a_tcp_probe_waits_for_the_app_not_for_docker_proxy(demo):
    """2.11: the TCP probe goes to the container's own address; through
    docker-proxy it succeeded before the app listened, and nginx got 502s."""
    spec = c_only(health_http=None, health_tcp=True, deadline=60, env={"INI_CMD": "sleep 8; true"})
    run, results = loaded(demo, lambda: rollout(demo, "nohc", "-e", spec), hosts=[demo.c1])
    assert run.returncode == 0, run.explain()
    assert failures(results) == {}
    assert results[demo.c1]["last"] == "nohc"
    back_on_r2(demo)


def test_a_failed_start_leaves_nothing_behind_and_a_taken_port_is_skipped(demo):
    """2.6: a container that cannot start is removed (it held its name and
    port); a port something else listens on is not picked."""
    before = containers(demo.c1)
    # A file mounted onto a directory: Docker creates the container, the start fails.
    run = rollout(demo, "r3", "-e", c_only(volumes=["/etc/hostname:/srv/app:ro"]))
    assert run.returncode != 0
    assert "cannot start" in line_of(run, demo.c1), summary(run)
    assert containers(demo.c1) == before
    assert served(demo, demo.c1) == "r2"
    taken = {int(p) for p in lab_exec(demo.c1, "docker ps -a --format '{{.Label \"berth.port\"}}'").stdout.split() if p}
    port = next(p for p in range(20000, 30000) if p not in taken)
    lab_exec(
        demo.c1,
        "nohup python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", %d)); s.listen(); time.sleep(120)' "
        ">/dev/null 2>&1 & echo $! > /tmp/berth-listener" % port,
        check=True,
    )
    try:
        run = rollout(demo, "r3", "-e", c_only())
    finally:
        lab_exec(demo.c1, "kill $(cat /tmp/berth-listener)")
    assert run.returncode == 0, run.explain()
    assert served(demo, demo.c1) == "r3"
    assert "127.0.0.1:%d" % port not in upstream(demo.c1)
    back_on_r2(demo)


def test_a_failed_rollback_keeps_its_target(demo):
    """2.3: the rollback's switch fails (nginx's config is broken): the
    retained version it started is stopped again, never removed."""
    retained = sorted(c for c, (state, version) in containers(demo.c1).items() if version == "r3")
    assert retained, containers(demo.c1)
    lab_exec(demo.c1, "echo 'this is not nginx' > /etc/nginx/conf.d/zz-broken.conf", check=True)
    try:
        run = rollback(demo, "-e", c_only(), "-e", "version=r3")
    finally:
        lab_exec(demo.c1, "rm -f /etc/nginx/conf.d/zz-broken.conf", check=True)
    assert run.returncode != 0
    assert "nginx rejected the configuration" in line_of(run, demo.c1), summary(run)
    assert served(demo, demo.c1) == "r2"
    assert all(c in containers(demo.c1) for c in retained), containers(demo.c1)
    assert len(running(demo.c1)) == 1
    again = rollback(demo, "-e", c_only(), "-e", "version=r3")
    assert again.returncode == 0, again.explain()
    assert served(demo, demo.c1) == "r3"
    back_on_r2(demo)


def test_retention_keeps_the_version_that_served_last(demo):
    """2.9: after a rollback the version that served last is older than the
    one it replaced; with retain 1 it is the one kept, and the next rollback
    goes back to it."""
    one = c_only(retain=1)
    assert rollout(demo, "r1", "-e", one).returncode == 0
    assert rollout(demo, "r2", "-e", one).returncode == 0
    back = rollback(demo, "-e", one)  # r1 serves, r2 (created later) stops
    assert back.returncode == 0, back.explain()
    assert served(demo, demo.c1) == "r1"
    forward = rollout(demo, "r3", "-e", one)
    assert forward.returncode == 0, forward.explain()
    kept = {version for state, version in containers(demo.c1).values() if state != "running"}
    assert kept == {"r1"}, containers(demo.c1)
    again = rollback(demo, "-e", one)
    assert again.returncode == 0, again.explain()
    assert served(demo, demo.c1) == "r1"
    back_on_r2(demo)


def test_a_stale_nginx_is_reloaded_and_orphans_stop(demo):
    """2.5: the upstream file says r2 but nginx serves another container (a
    run killed between the write and the reload; here by hand). The same
    version again must not say unchanged."""
    r2 = running(demo.c1)[0]
    text = upstream(demo.c1)
    other = next(c for c, (state, version) in containers(demo.c1).items() if state != "running")
    port = lab_exec(demo.c1, "docker inspect -f '{{index .Config.Labels \"berth.port\"}}' %s" % other).stdout.strip()
    lab_exec(demo.c1, "docker start %s >/dev/null && sleep 3" % other, check=True)
    lab_exec(
        demo.c1,
        "sed -i 's/127.0.0.1:[0-9]*/127.0.0.1:%s/' /etc/nginx/berth/upstreams/demo.conf && nginx -s reload && sleep 1" % port,
        check=True,
    )
    # The file goes back to r2, nginx is not told.
    lab_exec(demo.c1, "cat > /etc/nginx/berth/upstreams/demo.conf <<'EOF'\n%sEOF" % text, check=True)
    assert served(demo, demo.c1) != "r2"
    run = rollout(demo, "r2", "-e", c_only())
    assert run.returncode == 0, run.explain()
    assert run.total_changed() > 0
    assert "reconciled" in line_of(run, demo.c1), summary(run)
    assert served(demo, demo.c1) == "r2"
    assert running(demo.c1) == [r2]
    again = rollout(demo, "r2", "-e", c_only())
    assert again.total_changed() == 0, again.explain()


def test_two_upstream_servers_are_refused(demo):
    """2.7: one container per app per host; a second server is named, not
    left behind as an orphan."""
    text = upstream(demo.c1)
    before = containers(demo.c1)
    lab_exec(
        demo.c1,
        "sed -i 's/^\\(\\s*server 127.0.0.1:[0-9]*.*\\)$/\\1\\n    server 127.0.0.1:29999 max_fails=0;/' "
        "/etc/nginx/berth/upstreams/demo.conf",
        check=True,
    )
    try:
        run = rollout(demo, "r3", "-e", c_only())
    finally:
        lab_exec(demo.c1, "cat > /etc/nginx/berth/upstreams/demo.conf <<'EOF'\n%sEOF" % text, check=True)
    assert run.returncode != 0
    assert "lists 2 servers" in line_of(run, demo.c1), summary(run)
    assert containers(demo.c1) == before
    back_on_r2(demo)


def test_two_runs_at_once_take_turns(demo):
    """2.10: a lock per app per host: the second run waits for the first,
    so no port is picked twice and nothing is left running unreferenced."""
    slow = {"INI_CMD": "sleep 4"}
    first = Background(demo, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=r3", "-e", c_only(env=slow))
    second = Background(demo, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=r1", "-e", c_only(env=slow))
    (code_1, out_1), (code_2, out_2) = first.wait(), second.wait()
    assert code_1 == 0, out_1[-4000:]
    assert code_2 == 0, out_2[-4000:]
    assert len(running(demo.c1)) == 1, containers(demo.c1)
    serving = served(demo, demo.c1)
    assert serving in ("r1", "r3")
    port = lab_exec(demo.c1, "docker inspect -f '{{index .Config.Labels \"berth.port\"}}' %s" % running(demo.c1)[0]).stdout.strip()
    assert "127.0.0.1:%s " % port in upstream(demo.c1)
    back_on_r2(demo)


def test_an_engine_gone_after_the_switch_still_says_where_traffic_is(demo):
    """2.1: Docker's engine stops while the old version drains: the failed
    result still says that traffic moved, so the fleet rollback puts the
    host back (before, it was skipped and stayed on the new version)."""
    old, before = running(demo.c1)[0], served(demo, demo.c1)
    port = lab_exec(demo.c1, "docker inspect -f '{{index .Config.Labels \"berth.port\"}}' %s" % old).stdout.strip()
    # An idle connection to the old container keeps its drain waiting.
    lab_exec(
        demo.c1,
        "nohup python3 -c 'import socket,time; s=socket.create_connection((\"127.0.0.1\", %s)); time.sleep(60)' "
        ">/dev/null 2>&1 & echo $! > /tmp/berth-idle" % port,
        check=True,
    )
    run = Background(demo, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=r3", "-e", c_only(drain_timeout=50))
    try:
        assert wait_for(lambda: "127.0.0.1:%s " % port not in upstream(demo.c1), 90)
        lab_exec(demo.c1, "systemctl stop docker.socket docker.service && sleep 2 && systemctl start docker.service", check=True)
        code, output = run.wait()
    finally:
        lab_exec(demo.c1, "kill $(cat /tmp/berth-idle); systemctl start docker.socket docker.service")
    assert code != 0
    (line,) = summary_of(output)[1:-1]
    assert re.search(r"%s\s+-> %s\s+rolled back" % (before, before), line), output[-4000:]
    assert served(demo, demo.c1) == before
    back_on_r2(demo)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "messages"),
    [
        (["-e", "app=nope", "-e", "version=r2"], ["unknown app 'nope'"]),
        (["-e", "app=demo", "-e", '{"version": "bad version"}'], ["version: 'bad version' is not a valid tag"]),
        (["-e", "app=demo", "-e", "version=r2", "-e", app(image="Lab/Demo")], ["'Lab/Demo' is not a valid image reference"]),
        (
            ["-e", "app=demo", "-e", "version=r1", "-e", "rollout_switch_dir=/nonexistent/upstreams"],
            ["proxy config path /nonexistent/upstreams does not exist"],
        ),
        (
            ["-e", "app=demo", "-e", "version=r1", "-e", app(deadline=-5)],
            ["berth_apps.demo.deadline: -5 must be a number within 1-86400 seconds"],
        ),
        (["-e", "app=demo", "-e", "version=r1", "-e", app(retain=0)], ["berth_apps.demo.retain: 0 must be a whole number within 1-100"]),
        (["-e", "app=demo", "-e", "version=r1", "-e", "rollout_retain=0"], ["rollout_retain: ", "must be a whole number within 1-100"]),
        (
            ["-e", "app=demo", "-e", "version=r1", "-e", "rollout_max_fail_percentage=101"],
            ["rollout_max_fail_percentage: ", "must be a whole number within 0-100 percent"],
        ),
        (
            ["-e", "app=demo", "-e", "version=r1", "-e", "rollout_restart_policy=sometimes"],
            ["rollout_restart_policy: 'sometimes' is not one of"],
        ),
        (
            ["-e", "app=demo", "-e", "version=r1", "-e", "rollout_log_driver=nonesuch"],
            ["log_driver: 'nonesuch' is not a log driver of this engine"],
        ),
        (
            ["-e", "app=demo", "-e", "version=r1", "-e", app(replicas=2)],
            ["berth_apps.demo.replicas: berth runs one container per app per host"],
        ),
    ],
    ids=[
        "unknown-app",
        "bad-version",
        "bad-image-reference",
        "unreachable-proxy-path",
        "negative-timeout",
        "app-retain-zero",
        "retain-zero",
        "percentage",
        "restart-policy",
        "log-driver",
        "replicas",
    ],
)
def test_bad_input_starts_and_stops_nothing(demo, extra, messages):
    before, serving = app_containers(demo), versions_served(demo)
    run = demo.playbook("playbooks/rollout.yml", *extra)
    assert run.returncode != 0
    for message in messages:
        assert message in run.output, run.explain()
    assert app_containers(demo) == before
    assert versions_served(demo) == serving
