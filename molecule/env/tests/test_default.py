"""Verify of the env scenario: the environment molecule serves. web answers
through the host's nginx on its listen port, to the control host too (the
environment's firewall opening), and reaches kv by name over the
environment's network; kv keeps what it serves in its volume and answers on
its fixed address of the building; every container carries the
environment's labels and the defaults of every released app unless the
definition says otherwise. What teardown leaves is asserted in
side_effect.yml, which runs after this."""

import http.client
import ipaddress
import json
import secrets

import pytest

KV = "berth-env-molecule-kv"
NETWORK = "berth-env-molecule"
FIXED = "berth-bldg_molecule-fixed"
CONTAINER_SUBNET = "10.77.250.0/24"
LISTEN = 18080
MIB = 1024 * 1024


def inspect(host, name):
    return json.loads(host.check_output("docker inspect %s" % name))[0]


@pytest.fixture(scope="module")
def web(host):
    """The container that serves web: docker_rollout names it per version."""
    ids = host.check_output(
        "docker ps -q --filter label=berth.env=molecule --filter label=berth.service=web --filter status=running"
    ).split()
    assert len(ids) == 1
    return inspect(host, ids[0])


def test_web_answers_through_nginx_on_its_listen_port(host):
    assert host.check_output("curl -sf http://127.0.0.1:%d/" % LISTEN) == "web of the molecule environment"


def test_web_reaches_kv_by_name_over_the_environment_network(host):
    token = secrets.token_hex(8)
    host.check_output("docker exec %s sh -c 'echo %s > /data/token'" % (KV, token))
    assert host.check_output("curl -sf 'http://127.0.0.1:%d/cgi-bin/kv?token'" % LISTEN) == token


def test_web_is_open_to_the_control_host_through_the_opening(host):
    rules = host.check_output("iptables -S BERTH-INPUT")
    assert any("--dport %d" % LISTEN in rule and "env.molecule" in rule for rule in rules.splitlines()), rules
    connection = http.client.HTTPConnection(host.interface("eth0").addresses[0], LISTEN, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"web of the molecule environment\n")
    finally:
        connection.close()


def test_the_environment_network_is_internal_and_kv_answers_there_by_name(host):
    network = inspect(host, NETWORK)
    assert network["Internal"] is True
    kv = inspect(host, KV)
    assert "kv" in kv["NetworkSettings"]["Networks"][NETWORK]["Aliases"]


def test_kv_answers_on_its_fixed_address_of_the_building(host):
    kv = inspect(host, KV)
    assert set(kv["NetworkSettings"]["Networks"]) == {NETWORK, FIXED}
    address = kv["NetworkSettings"]["Networks"][FIXED]["IPAddress"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(CONTAINER_SUBNET)
    # Another machine of the building, as a throwaway container on its network.
    neighbour = "docker run --rm --network %s %s wget -q -O - http://%s:7000/" % (FIXED, kv["Config"]["Image"], address)
    assert host.check_output(neighbour) == "kv of the molecule environment"


def test_kv_is_healthy_and_serves_from_its_volume(host):
    kv = inspect(host, KV)
    assert kv["State"]["Health"]["Status"] == "healthy"
    mounts = [(m["Type"], m["Name"], m["Destination"]) for m in kv["Mounts"]]
    assert mounts == [("volume", "berth-env-molecule-kv-data", "/data")]


def test_every_object_carries_the_environment_labels(host, web):
    labels = {"berth.env": "molecule", "berth.building": "bldg_molecule"}
    for name in (KV, web["Id"], NETWORK):
        found = inspect(host, name)
        found = found.get("Config", found)["Labels"]
        assert labels.items() <= found.items(), name
    volume = json.loads(host.check_output("docker volume inspect berth-env-molecule-kv-data"))[0]
    assert labels.items() <= volume["Labels"].items()


@pytest.mark.parametrize(
    ("service", "cpus", "memory", "tz"),
    [("kv", 0.5, 64 * MIB, "Asia/Shanghai"), ("web", 1.0, 512 * MIB, "Etc/UTC")],
)
def test_containers_get_the_defaults_unless_the_definition_says_otherwise(host, web, service, cpus, memory, tz):
    container = inspect(host, KV) if service == "kv" else web
    config = container["HostConfig"]
    assert config["NanoCpus"] == int(cpus * 1e9)
    assert config["Memory"] == memory
    assert config["RestartPolicy"]["Name"] == "unless-stopped"
    assert config["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert "TZ=%s" % tz in container["Config"]["Env"]
    # --init: Docker's init is process 1, the server its child.
    assert host.check_output("docker exec %s cat /proc/1/comm" % container["Id"]) == "docker-init"
