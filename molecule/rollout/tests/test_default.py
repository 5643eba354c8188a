"""Verify of the rollout scenario: web went from v1 to v2 start-first while a
client requested it through nginx without pause, back to v1 and forth to v2
with the operator's rollback, and no request failed. v2 serves with the
settings every app container gets; v1 waits, stopped, for a rollback."""

import datetime
import itertools
import json

import pytest

LOAD = "/var/lib/molecule-load"


def inspect(host, name):
    return json.loads(host.check_output("docker inspect %s" % name))[0]


def moment(text):
    """A Docker timestamp (nanoseconds, UTC) as a datetime."""
    seconds, _unused, fraction = text.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat("%s.%s" % (seconds, (fraction + "000000")[:6]))


@pytest.fixture(scope="module")
def versions(host):
    """web's containers by version."""
    names = host.check_output("docker ps -aq --filter label=berth.app=web").split()
    found = {}
    for name in names:
        container = inspect(host, name)
        found.setdefault(container["Config"]["Labels"]["berth.version"], []).append(container)
    return found


def test_nginx_serves_v2(host):
    for _ in range(5):
        assert host.check_output("curl -sf http://127.0.0.1:8080/") == "v2"


def test_only_v2_runs_pulled_from_the_buildings_registry(versions):
    running = [c for containers in versions.values() for c in containers if c["State"]["Running"]]
    assert [c["Config"]["Labels"]["berth.version"] for c in running] == ["v2"]
    assert running[0]["Config"]["Image"] == "127.0.0.1:5000/molecule/web:v2"


def test_nginx_passes_to_the_v2_container_on_loopback(host, versions):
    (v2,) = versions["v2"]
    port = v2["Config"]["Labels"]["berth.port"]
    assert v2["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}
    upstream = host.file("/etc/nginx/berth/upstreams/web.conf").content_string
    assert [line.split()[1] for line in upstream.splitlines() if line.split()[:1] == ["server"]] == ["127.0.0.1:%s" % port]
    assert host.check_output("curl -sf http://127.0.0.1:%s/" % port) == "v2"


def test_the_container_has_the_apps_limits_an_init_and_rotated_logs(host, versions):
    (v2,) = versions["v2"]
    settings = v2["HostConfig"]
    assert settings["Init"] is True
    assert settings["NanoCpus"] == 500_000_000
    assert settings["Memory"] == 64 * 1024 * 1024
    assert settings["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert settings["RestartPolicy"]["Name"] == "unless-stopped"
    env = dict(item.split("=", 1) for item in v2["Config"]["Env"])
    assert {key: env.get(key) for key in ("TZ", "BERTH_APP", "BERTH_VERSION", "BERTH_BUILDING", "BERTH_ENVIRONMENT")} == {
        "TZ": "Etc/UTC",
        "BERTH_APP": "web",
        "BERTH_VERSION": "v2",
        "BERTH_BUILDING": "bldg_molecule",
        "BERTH_ENVIRONMENT": "molecule",
    }
    # The engine applied them: an init is PID 1 and the memory limit holds.
    name = v2["Name"].lstrip("/")
    assert "docker-init" in host.check_output("docker exec %s /busybox cat /proc/1/cmdline" % name)
    # cgroup v2, else v1
    limit = "/busybox cat /sys/fs/cgroup/memory.max 2>/dev/null || /busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert host.check_output("docker exec %s /busybox sh -c '%s'" % (name, limit)) == str(64 * 1024 * 1024)


def test_v1_is_kept_stopped_and_v2_started_before_it_stopped(versions):
    # One container per version: the rollbacks restarted the kept ones.
    (v1,) = versions["v1"]
    (v2,) = versions["v2"]
    assert not v1["State"]["Running"]
    assert moment(v2["State"]["StartedAt"]) < moment(v1["State"]["FinishedAt"])


def test_no_request_failed_and_the_client_saw_each_switch(host):
    errors = host.file(LOAD + "/errors").content_string if host.file(LOAD + "/errors").exists else ""
    assert host.file(LOAD + "/failures").content_string == "", errors
    bodies = host.file(LOAD + "/bodies").content_string.split()
    assert len(bodies) >= 100
    runs = [[body, len(list(group))] for body, group in itertools.groupby(bodies)]
    # While nginx reloads, an old worker may still take a connection that
    # was queued before: one or two answers of the version just left, inside
    # a switch, which the drain then lets finish. Longer runs are switches.
    steady = [run for index, run in enumerate(runs) if run[1] > 2 or index in (0, len(runs) - 1)]
    switches = [body for body, _ in itertools.groupby(body for body, _ in steady)]
    assert switches == ["v1", "v2", "v1", "v2"], runs


def test_the_registry_holds_both_versions(host):
    tags = json.loads(host.check_output("curl -sf http://127.0.0.1:5000/v2/molecule/web/tags/list"))
    assert sorted(tags["tags"]) == ["v1", "v2"]
