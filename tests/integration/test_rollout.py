"""Start-first rollouts on the test lab, through real nginx, under real load:
no failed request while every instance is replaced, automatic rollback of
the hosts that already switched when a later batch fails its health check,
a deadline for a container stuck in "starting", and bad input refused."""

import json
import os
import shutil
import time

import pytest
from labtools import ROOT, Load, lab_exec, task_results


def versions_served(lab):
    return {host: lab_exec(host, "curl -s http://127.0.0.1/version").stdout.strip() for host in lab.hosts}


def app_containers(lab):
    return {
        host: lab_exec(host, "docker ps -a --filter label=berth.app --format '{{.Names}} {{.State}}' | sort").stdout for host in lab.hosts
    }


@pytest.fixture(scope="module")
def demo(lab, tmp_path_factory):
    builder = next(h for h in sorted(lab.hosts) if h.endswith("-a2"))
    registry = "%s:5000" % lab.hosts[next(h for h in sorted(lab.hosts) if h.endswith("-a1"))]
    base = lab.playbook("playbooks/build_base.yml", "-e", "build_host=%s" % builder)
    assert base.returncode == 0, base.explain()
    middleware = "%s/base/middleware:1" % registry
    for version in ("r1", "r2", "r3"):
        artifact = tmp_path_factory.mktemp(version)
        shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact, dirs_exist_ok=True)
        (artifact / "version").write_text(version + "\n")
        built = lab.playbook(
            "playbooks/build.yml",
            "-e",
            "build_host=%s" % builder,
            "-e",
            "app=demo",
            "-e",
            "artifact=%s" % artifact,
            "-e",
            "middleware_image=%s" % middleware,
            "-e",
            "version=%s" % version,
        )
        assert built.returncode == 0, built.explain()
    # An image whose health check stays in "starting" (a long start period that never ends well).
    context = "/var/lib/berth/build/stuck"
    lab_exec(
        builder,
        "mkdir -p %s && printf 'FROM %s\\nHEALTHCHECK --interval=1s --start-period=600s CMD false\\n' > %s/Dockerfile"
        % (context, middleware, context),
        check=True,
    )
    stuck = lab.playbook(
        "tests/integration/playbooks/image-build.yml",
        "-e",
        "target=%s" % builder,
        "-e",
        json.dumps({"build": {"path": context, "name": "%s/lab/demo" % registry, "tags": ["stuck"], "push": True}}),
    )
    assert stuck.returncode == 0, stuck.explain()
    first = rollout(lab, "r1")
    assert first.returncode == 0, first.explain()
    assert set(versions_served(lab).values()) == {"r1"}
    return lab


def rollout(lab, version, *extra, app="demo"):
    return lab.playbook("playbooks/rollout.yml", "-e", "app=%s" % app, "-e", "version=%s" % version, *extra)


def loaded(lab, action):
    loads = [Load(host, minimum=2200) for host in sorted(lab.hosts)]
    time.sleep(2)
    run = action()
    results = {load.host: load.stop() for load in loads}
    return run, results


def test_rollout_under_load_fails_no_request(demo):
    run, results = loaded(demo, lambda: rollout(demo, "r2"))
    assert run.returncode == 0, run.explain()
    total = sum(r["ok"] + r["failed"] for r in results.values())
    failed = {host: r["errors"] for host, r in results.items() if r["failed"]}
    assert total >= 10000
    assert failed == {}
    for host, result in results.items():
        assert result["first"] == "r1" and result["last"] == "r2", (host, result["bodies"])
    assert set(versions_served(demo).values()) == {"r2"}
    assert "deployed" in run.output


def test_the_same_version_again_changes_nothing(demo):
    again = rollout(demo, "r2")
    assert again.returncode == 0, again.explain()
    assert again.total_changed() == 0, again.explain()
    assert "unchanged" in again.output


def test_a_health_failure_in_a_later_building_rolls_every_switched_host_back(demo):
    broken = {
        "berth_apps": {
            "demo": {
                "hosts": "docker_hosts",
                "image": "lab/demo",
                "container_port": 8080,
                "health_http": "/health",
                "deadline": 20,
                # r3 is fine except in building C, where its health file is gone.
                "env": {"INI_CMD": '[ "$BERTH_BUILDING" != bldg_c ] || rm -f /srv/app/health'},
            }
        }
    }
    run, results = loaded(demo, lambda: rollout(demo, "r3", "-e", json.dumps(broken)))
    assert run.returncode != 0
    assert "rollout of demo r3 stopped" in run.output
    assert "HTTP 404 from /health" in run.output or "unhealthy" in run.output, run.explain()
    assert set(versions_served(demo).values()) == {"r2"}
    summary = task_results(run.output, "rollout : Show the rollout summary")["localhost"]["msg"]
    assert sum("rolled back" in line for line in summary) == 4, summary
    assert sum("failed" in line for line in summary) == 1, summary
    assert {host: r["errors"] for host, r in results.items() if r["failed"]} == {}


def test_a_container_stuck_in_starting_fails_at_the_deadline(demo):
    slow = {"berth_apps": {"demo": {"hosts": "docker_hosts", "image": "lab/demo", "container_port": 8080, "deadline": 6}}}
    started = time.monotonic()
    run = rollout(demo, "stuck", "-e", json.dumps(slow), "-e", "rollout_batch_size=0")
    assert run.returncode != 0
    assert time.monotonic() - started < 120
    assert "not healthy within the 6.0s deadline (Docker health: starting)" in run.output, run.explain()
    assert set(versions_served(demo).values()) == {"r2"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-e", "app=nope", "-e", "version=r2"], "unknown app 'nope'"),
        (["-e", "app=demo", "-e", '{"version": "bad version"}'], "version: 'bad version' is not a valid tag"),
        (
            ["-e", "app=demo", "-e", "version=r2", "-e", '{"berth_apps": {"demo": {"hosts": "docker_hosts", "image": "Lab/Demo"}}}'],
            "'Lab/Demo' is not a valid image reference",
        ),
        (
            ["-e", "app=demo", "-e", "version=r1", "-e", "rollout_switch_dir=/nonexistent/upstreams"],
            "proxy config path /nonexistent/upstreams does not exist",
        ),
        (
            [
                "-e",
                "app=demo",
                "-e",
                "version=r1",
                "-e",
                '{"berth_apps": {"demo": {"hosts": "docker_hosts", "image": "lab/demo", "deadline": -5}}}',
            ],
            "deadline must be a number of seconds, 0 or more, got -5",
        ),
    ],
    ids=["unknown-app", "bad-version", "bad-image-reference", "unreachable-proxy-path", "negative-timeout"],
)
def test_bad_input_starts_and_stops_nothing(demo, extra, message):
    before, serving = app_containers(demo), versions_served(demo)
    run = demo.playbook("playbooks/rollout.yml", *extra)
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert app_containers(demo) == before
    assert versions_served(demo) == serving
