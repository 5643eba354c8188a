"""Verify of the docker scenario: what the role promised is on the host."""

import json

EXPECTED_DAEMON_JSON = {
    "default-address-pools": [{"base": "172.30.0.0/16", "size": 24}],
    "insecure-registries": ["registry.bldg-a.example:5000"],
    "live-restore": True,
    "log-driver": "json-file",
    "log-opts": {"max-file": "3", "max-size": "10m"},
}


def test_docker_service_is_running_and_enabled(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled


def test_daemon_json_holds_exactly_the_configured_settings(host):
    daemon_json = host.file("/etc/docker/daemon.json")
    assert daemon_json.user == "root"
    assert daemon_json.mode == 0o644
    # The side effect added "debug" and then dropped it again.
    assert json.loads(daemon_json.content_string) == EXPECTED_DAEMON_JSON


def test_engine_applies_the_settings(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"
    assert "registry.bldg-a.example:5000" in info["RegistryConfig"]["IndexConfigs"]


def test_a_new_container_gets_the_rotated_log_configuration(host):
    host.run("docker rm -f logcheck")
    host.check_output("docker run -d --name logcheck berth/busybox:molecule")
    log_config = json.loads(host.check_output("docker inspect logcheck --format '{{json .HostConfig.LogConfig}}'"))
    host.run("docker rm -f logcheck")
    assert log_config == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}


def test_the_container_started_before_the_restart_still_runs(host):
    assert host.check_output("docker inspect survivor --format '{{.State.Running}}'") == "true"
