import os
import re

import pytest
import yaml
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import (
    CONTAINER_DEFAULTS,
    app_errors,
    apps_of,
    config_digest,
    container_default,
    container_name,
    free_port,
    image_ref,
    memory_bytes,
    rollout_batches,
    spec_errors,
    to_retain,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_switch import reload_applied

GOOD = {
    "app": "web",
    "version": "1.4.2",
    "container_port": 8080,
    "port_range": (20000, 29999),
    "health_timeout": 2,
    "health_interval": 0.5,
    "deadline": 120,
    "drain_timeout": 30,
    "stop_timeout": 10,
    "health_retries": 10,
    "retain": 2,
    "cpus": 1.0,
    "memory": "512m",
    "env": {"RUN_CMD": "serve"},
}


def test_a_good_spec_passes():
    assert spec_errors(GOOD) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"app": "Web App"}, "app: 'Web App' is not a valid app name"),
        ({"deadline": -1}, "deadline: -1 must be a number within 1-86400 seconds"),
        ({"drain_timeout": -0.5}, "drain_timeout: -0.5 must be a number within 0-86400 seconds"),
        ({"container_port": 70000}, "container_port: 70000 must be a whole number within 1-65535"),
        ({"port_range": (30000, 20000)}, "port_range"),
        ({"memory": "lots"}, "memory: 'lots' is not a size"),
        ({"cpus": 0}, "cpus: 0 must be a number within 0.01-1024"),
        ({"env": {"LIST": [1]}}, "env.LIST must be a string"),
        ({"health_http": "health"}, "health_http: 'health' must be a path"),
    ],
)
def test_bad_specs_name_the_option(override, message):
    errors = spec_errors(dict(GOOD, **override))
    assert any(message in error for error in errors), errors


def test_a_deployment_is_its_image_and_config():
    base = config_digest(GOOD, "sha256:a")
    assert config_digest(GOOD, "sha256:b") != base
    assert config_digest(dict(GOOD, env={"RUN_CMD": "other"}), "sha256:a") != base
    assert config_digest(dict(GOOD, drain_timeout=5), "sha256:a") == base  # how to roll out is not what runs
    assert container_name("web", "1.4.2+build/7", base) == "web-1.4.2-build-7-" + base[:6]


def test_ports_and_retention():
    assert free_port((20000, 20003), {20000, 20001}) == 20002
    with pytest.raises(ValueError, match="no free port"):
        free_port((20000, 20001), {20000, 20001})
    stopped = [{"name": "v%d" % n, "created": "2026-01-0%dT00:00:00Z" % n, "last_served": 1000.0 + n} for n in range(1, 5)]
    keep, remove = to_retain(stopped, 2)
    assert [c["name"] for c in keep] == ["v4", "v3"] and [c["name"] for c in remove] == ["v2", "v1"]
    assert memory_bytes("512m") == 512 * 1024**2


def test_batches_never_span_two_buildings():
    hosts = ["a1", "a2", "a3", "b1", "b2", "c1"]
    building = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b", "c1": "c"}
    assert rollout_batches(hosts, building, 1) == [1, 1, 1, 1, 1, 1]
    assert rollout_batches(hosts, building, 2) == [2, 1, 2, 1]
    assert rollout_batches(hosts, building, 0) == [3, 2, 1]


def test_app_catalog():
    apps = {"web": {"hosts": "web_hosts", "image": "team/web", "listen": 80}, "db": {"hosts": "db_hosts", "image": "x"}}
    assert app_errors(apps) == []
    assert app_errors({"web": {"hosts": "g", "image": "x", "replicas": 3}})[0].startswith(
        "berth_apps.web.replicas: berth runs one container per app per host"
    )
    assert app_errors({"web": {"image": "x"}}) == ["berth_apps.web.hosts is required"]
    assert app_errors({"web": {"hosts": "g", "image": "x", "listen": 70000}}) == ["berth_apps.web.listen: 70000 is outside 1-65535"]
    assert list(apps_of(apps, ["bldg_a", "web_hosts"])) == ["web"]


def test_image_references_take_the_buildings_registry():
    assert image_ref("lab/web", "10.77.1.11:5000", "v2") == "10.77.1.11:5000/lab/web:v2"
    assert image_ref("harbor.example/prod/web", "10.77.1.11:5000", "v2") == "harbor.example/prod/web:v2"
    with pytest.raises(ValueError, match="not a valid tag"):
        image_ref("lab/web", "reg:5000", "bad version")
    with pytest.raises(ValueError, match="must not carry a tag"):
        image_ref("lab/web:1", "reg:5000", "v2")
    with pytest.raises(ValueError, match="names no registry"):
        image_ref("lab/web", "", "v2")


WORKER = "nginx: worker process"
RETIRING = "nginx: worker process is shutting down"


def test_a_reload_counts_only_once_new_workers_serve_and_the_old_ones_retire():
    before = {10: WORKER, 11: WORKER}
    assert not reload_applied(before, before)  # the master has not acted on the signal yet
    assert not reload_applied(before, {10: WORKER, 11: WORKER, 20: WORKER})  # old ones still take requests
    assert reload_applied(before, {10: RETIRING, 11: RETIRING, 20: WORKER, 21: WORKER})
    assert reload_applied(before, {20: WORKER})
    assert not reload_applied(before, {10: RETIRING, 11: RETIRING})  # nothing new serves yet
    assert not reload_applied({}, {})


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_container_defaults_are_one_source_for_the_role_and_its_readme():
    with open(os.path.join(ROOT, "roles", "rollout", "defaults", "main.yml"), encoding="utf-8") as stream:
        defaults = yaml.safe_load(stream)
    with open(os.path.join(ROOT, "roles", "rollout", "README.md"), encoding="utf-8") as stream:
        table = dict(re.findall(r"^\| `(rollout_\w+)` \| `([^`]*)` \|", stream.read(), re.MULTILINE))
    for setting, value in CONTAINER_DEFAULTS.items():
        variable = "rollout_" + setting
        assert defaults[variable] == "{{ '%s' | berth.ops.berth_container_default }}" % setting
        assert yaml.safe_load(table[variable]) == value, variable
    assert container_default("log_options") == CONTAINER_DEFAULTS["log_options"]
    assert container_default("log_options") is not CONTAINER_DEFAULTS["log_options"]
    with pytest.raises(ValueError, match="'colour' is not a container setting"):
        container_default("colour")
