import copy
import fnmatch
import hashlib
import ipaddress

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_env_addresses import allocate_addresses, gateway, reserved_addresses
from ansible_collections.berth.ops.plugins.module_utils.berth_env_placement import (
    docker_healthcheck,
    env_plan,
    env_table,
    firewall_opening,
    name_clashes,
    owned_objects,
    place,
    reach_errors,
    service_networks,
    start_order,
    table_rows,
    taken_addresses,
    volume_mount,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_env_spec import (
    env_errors,
    env_names,
    fixed_network_of,
    host_buildings,
    normalise,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import CONTAINER_DEFAULTS
from hypothesis import given, settings
from hypothesis import strategies as st

REGISTRY = "10.77.1.11:5000"
BUILDINGS = {
    "bldg_a": {"host_subnet": "10.77.1.0/24", "container_subnet": "10.77.101.0/24", "registry": REGISTRY},
    "bldg_b": {"host_subnet": "10.77.2.0/24", "container_subnet": "10.77.102.0/24", "registry": REGISTRY},
    "bldg_c": {"host_subnet": "10.77.3.0/24"},
    "bldg_d": {"host_subnet": "10.77.4.0/24", "container_subnet": "10.77.104.0/24"},
    "bldg_e": {"host_subnet": "10.77.5.0/24", "container_subnet": "10.77.105.0/24"},
}
DOCKER_HOSTS = ["berth-lab-a1", "berth-lab-a2", "berth-lab-b1", "berth-lab-b2", "berth-lab-c1", "berth-lab-d1", "berth-lab-z1"]
HOST_BUILDING = {
    "berth-lab-a1": "bldg_a",
    "berth-lab-a2": "bldg_a",
    "berth-lab-b1": "bldg_b",
    "berth-lab-b2": "bldg_b",
    "berth-lab-c1": "bldg_c",
    "berth-lab-d1": "bldg_d",
    "berth-lab-b9": "bldg_b",
    "berth-lab-z1": "bldg_z",
}
GOOD = {
    "name": "alpha",
    "building": "bldg_b",
    "reach": ["beta"],
    "services": {
        "db": {
            "image": "lab/mariadb:10.11",
            "env": {"MARIADB_ROOT_PASSWORD": "secret", "TZ": "Asia/Shanghai", "PORT": 3306, "DEBUG": True},
            "ports": [3306, "3306/tcp", "53/udp"],
            "volumes": ["data:/var/lib/mysql", "conf:/etc/mysql/conf.d:ro"],
            "health": {"cmd": "mariadb-admin ping", "interval": 2, "timeout": 5, "retries": 30},
            "cpus": 1,
            "memory": "512M",
            "depends_on": ["cache"],
            "ip": "10.77.102.40",
            "host": "berth-lab-b1",
        },
        "cache": {"image": "redis:7", "health": {"tcp": 6379}},
        "web": {
            "image": "registry.example.com:443/team/web:2.0",
            "depends_on": ["db", "cache"],
            "health": {"http": "/health", "port": 8080},
            "command": ["serve", "--port", "8080"],
        },
    },
}


def errors_of(definition):
    return env_errors(definition, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING)


def changed(**top):
    definition = copy.deepcopy(GOOD)
    for key, value in top.items():
        if value is None:
            definition.pop(key, None)
        else:
            definition[key] = value
    return definition


def with_service(name, **settings_):
    definition = copy.deepcopy(GOOD)
    definition["services"].setdefault(name, {"image": "lab/app:1"}).update(settings_)
    return definition


def without_service_key(name, key):
    definition = copy.deepcopy(GOOD)
    del definition["services"][name][key]
    return definition


def assert_error(definition, text):
    errors = errors_of(definition)
    assert any(text in error for error in errors), errors


def test_a_good_definition_has_no_errors():
    assert errors_of(GOOD) == []


def test_pinned_hosts_give_the_building():
    definition = changed(building=None, hosts=["berth-lab-b2", "berth-lab-b1"])
    assert errors_of(definition) == []
    plan = env_plan(definition, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    assert plan["building"] == "bldg_b"
    assert plan["subnet"] == "10.77.102.0/24"


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("not a mapping", "must be a mapping"),
        (changed(name="Alpha"), "name: 'Alpha' is not a valid environment name"),
        (changed(name="a" * 32), "is not a valid environment name"),
        (changed(name=None), "name: None is not a valid environment name"),
        (changed(colour="blue"), "unknown setting colour"),
        (changed(building="bldg_x"), "building: 'bldg_x' is not a building (known: bldg_a, bldg_b, bldg_c, bldg_d, bldg_e)"),
        (changed(building="bldg_c"), "building: building bldg_c has no container_subnet"),
        (changed(building="bldg_e"), "building: bldg_e has no Docker hosts"),
        (changed(hosts=["berth-lab-b1"]), "building and hosts: give one of them, not both"),
        (changed(building=None), "building or hosts is required"),
        (changed(building=None, hosts=[]), "hosts must be a non-empty list"),
        (changed(building=None, hosts=["nowhere"]), "hosts: nowhere is not a host of the inventory"),
        (changed(building=None, hosts=["berth-lab-b9"]), "hosts: berth-lab-b9 is not a Docker host"),
        (changed(building=None, hosts=["berth-lab-b1", "berth-lab-b1"]), "hosts: berth-lab-b1 listed more than once"),
        (
            changed(building=None, hosts=["berth-lab-a1", "berth-lab-b1", "berth-lab-b2"]),
            "hosts: an environment lives in one building, these hosts are in 2 (bldg_a: berth-lab-a1; bldg_b: berth-lab-b1, berth-lab-b2)",
        ),
        (changed(building=None, hosts=["berth-lab-c1"]), "hosts: building bldg_c has no container_subnet"),
        (changed(building=None, hosts=["berth-lab-z1"]), "hosts: their building bldg_z is not in berth_buildings"),
        (changed(reach=["alpha"]), "reach[0]: alpha names the environment itself"),
        (changed(reach=["Beta"]), "reach[0]: 'Beta' is not a valid environment name"),
        (changed(reach="beta"), "reach must be a list"),
        (changed(proxy_sources={"buildings": ["bldg_z"]}), "proxy_sources.buildings[0]: unknown building 'bldg_z'"),
        (changed(proxy_sources={"cidrs": ["10.0.0.1/8"]}), "proxy_sources.cidrs[0]: '10.0.0.1/8' is not a CIDR"),
        (changed(services={}), "services: an environment needs at least one service"),
        (changed(services=None), "services: an environment needs at least one service"),
        (changed(services="db"), "services must be a mapping of name to service, or a list"),
        (changed(services={"db": "mariadb"}), "services.db must be a mapping"),
        (changed(services={"Db": {"image": "lab/app:1"}}), "services.Db: 'Db' is not a valid service name"),
        (changed(services={"db": {"name": "other", "image": "lab/app:1"}}), "services.db.name: 'other' differs from the key 'db'"),
        (changed(services=[{"image": "lab/app:1"}]), "services[0].name is required"),
        (changed(services=["db"]), "services[0] must be a mapping"),
        (with_service("db", colour="blue"), "services.db: unknown setting colour"),
        (without_service_key("db", "image"), "services.db.image is required"),
        (with_service("db", image="Lab/MariaDB"), "services.db.image: 'Lab/MariaDB' is not a valid image reference"),
        (with_service("db", image=""), "services.db.image: an image reference must be a non-empty string"),
        (with_service("db", env=["A=1"]), "services.db.env must be a mapping"),
        (with_service("db", env={"A": [1]}), "services.db.env.A must be a string, got list"),
        (with_service("db", env={"A=B": "1"}), "services.db.env: 'A=B' is not a variable name"),
        (with_service("db", ports=3306), "services.db.ports must be a list"),
        (with_service("db", ports=[70000]), "services.db.ports[0]: 70000 is not a port"),
        (with_service("db", ports=["3306/sctp"]), "services.db.ports[0]: '3306/sctp' is not a port"),
        (with_service("db", ports=[True]), "services.db.ports[0]: True is not a port"),
        (with_service("db", volumes="data:/x"), "services.db.volumes must be a list"),
        (with_service("db", volumes=["data"]), "services.db.volumes[0]: 'data' is not a volume like"),
        (with_service("db", volumes=["data:/x:rw"]), "services.db.volumes[0]: 'data:/x:rw' is not a volume like"),
        (with_service("db", volumes=["Data:/x"]), "volume name 'Data' must match"),
        (with_service("db", volumes=["data:relative"]), "the container path 'relative' must be absolute"),
        (with_service("db", volumes=["data:/"]), "the container path '/' must be absolute and not /"),
        (with_service("db", volumes=["a:/x", "b:/x/"]), "services.db.volumes[1]: /x is mounted twice (also volumes[0])"),
        (with_service("db", health="ping"), "services.db.health must be a mapping"),
        (with_service("db", health={"tcp": 1, "cmd": "x"}), "services.db.health needs exactly one of cmd, tcp or http, got cmd, tcp"),
        (with_service("db", health={"interval": 2}), "needs exactly one of cmd, tcp or http, got none"),
        (with_service("db", health={"cmd": ""}), "services.db.health.cmd must be a command string"),
        (with_service("db", health={"tcp": 0}), "services.db.health.tcp: 0 is not a port"),
        (with_service("db", health={"http": "health", "port": 80}), "services.db.health.http: 'health' must be a path"),
        (with_service("db", health={"http": "/health"}), "services.db.health.port: None is not a port"),
        (with_service("db", health={"tcp": 80, "port": 81}), "services.db.health.port only goes with http"),
        (with_service("db", health={"tcp": 80, "interval": 0}), "services.db.health.interval must be a positive number"),
        (with_service("db", health={"tcp": 80, "retries": 0}), "services.db.health.retries must be a whole number"),
        (with_service("db", health={"tcp": 80, "every": 1}), "services.db.health: unknown key every"),
        (with_service("db", cpus=0), "services.db.cpus must be a positive number, got 0"),
        (with_service("db", cpus=True), "services.db.cpus must be a positive number"),
        (with_service("db", cpus=float("inf")), "services.db.cpus must be a positive number"),
        (with_service("db", memory="lots"), "services.db.memory: 'lots' is not a size"),
        (with_service("db", memory="1.5g"), "services.db.memory: '1.5g' is not a size"),
        (with_service("db", command="serve"), "services.db.command must be a non-empty list of strings"),
        (with_service("db", depends_on="cache"), "services.db.depends_on must be a list"),
        (with_service("db", depends_on=["queue"]), "services.db.depends_on: unknown service queue (services: cache, db, web)"),
        (with_service("db", ip="10.77.102.300"), "services.db.ip: '10.77.102.300' is not an IP address"),
        (with_service("db", ip="10.77.101.40"), "services.db.ip: 10.77.101.40 is outside the building's container_subnet 10.77.102.0/24"),
        (with_service("db", ip="fd00::1"), "is outside the building's container_subnet"),
        (with_service("db", ip=40), "services.db.ip must be a string"),
        (
            with_service("db", host="berth-lab-a1"),
            "services.db.host: berth-lab-a1 is not one of the environment's hosts (berth-lab-b1, berth-lab-b2)",
        ),
        (
            with_service("db", image="mariadb:10.11") | {"building": "bldg_d"},
            "services.db.image: 'mariadb:10.11' names no registry and building bldg_d has none",
        ),
    ],
)
def test_bad_definitions_name_the_field(definition, message):
    assert_error(definition, message)


@pytest.mark.parametrize(
    ("address", "what"),
    [("10.77.102.0", "network"), ("10.77.102.1", "gateway"), ("10.77.102.255", "broadcast")],
)
def test_reserved_addresses_are_refused(address, what):
    errors = errors_of(with_service("db", ip=address))
    assert any("services.db.ip: %s is reserved" % address in error and what in error for error in errors), errors


def test_a_pin_outside_the_pinned_hosts_is_an_error():
    definition = changed(building=None, hosts=["berth-lab-b1"])
    definition["services"]["db"]["host"] = "berth-lab-b2"
    assert_error(definition, "services.db.host: berth-lab-b2 is not one of the environment's hosts (berth-lab-b1)")


def test_two_services_with_one_fixed_ip():
    assert_error(with_service("web", ip="10.77.102.40"), "services.web.ip: 10.77.102.40 is also the ip of services.db")


def test_a_list_of_services_reports_duplicates():
    definition = changed(
        services=[{"name": "db", "image": "lab/a:1"}, {"name": "cache", "image": "lab/b:1"}, {"name": "db", "image": "lab/c:1"}]
    )
    assert errors_of(definition) == ["services[2].name: duplicate service name 'db' (also services[0])"]


def test_both_forms_normalise_alike():
    as_list = changed(services=[dict(spec, name=name) for name, spec in GOOD["services"].items()])
    assert errors_of(as_list) == []
    assert normalise(as_list) == normalise(GOOD)


def test_a_dependency_cycle_shows_its_path():
    definition = changed(
        services={
            "a": {"image": "lab/a:1", "depends_on": ["b"]},
            "b": {"image": "lab/b:1", "depends_on": ["c"]},
            "c": {"image": "lab/c:1", "depends_on": ["a"]},
            "d": {"image": "lab/d:1", "depends_on": ["a"]},
        }
    )
    assert errors_of(definition) == ["services.a.depends_on: dependency cycle a -> b -> c -> a"]
    assert_error(changed(services={"a": {"image": "lab/a:1", "depends_on": ["a"]}}), "dependency cycle a -> a")


def test_volume_names_of_two_services_may_not_meet():
    definition = changed(services={"a": {"image": "lab/a:1", "volumes": ["b-c:/x"]}, "a-b": {"image": "lab/b:1", "volumes": ["c:/y"]}})
    assert_error(definition, "services.a-b.volumes: volume c of this service and volume b-c of services.a are both berth-env-alpha-a-b-c")


def test_the_env_network_may_not_be_a_buildings_network():
    buildings = dict(BUILDINGS, env={"host_subnet": "10.77.9.0/24", "container_subnet": "10.77.109.0/24"})
    errors = env_errors(changed(name="fixed"), buildings, DOCKER_HOSTS, HOST_BUILDING)
    assert any("berth-env-fixed would be a building's shared network" in error for error in errors), errors


def test_normalise_fills_defaults_and_canonical_forms():
    env = normalise(GOOD)
    assert [service["name"] for service in env["services"]] == ["cache", "db", "web"]
    cache, db, web = env["services"]
    assert cache == {
        "name": "cache",
        "image": "redis:7",
        "env": {},
        "ports": [],
        "volumes": [],
        "health": {"tcp": 6379, "interval": 2, "timeout": 5, "retries": 30},
        "cpus": None,
        "memory": None,
        "depends_on": [],
        "ip": None,
        "host": None,
        "command": None,
        "proxy": None,
    }
    assert db["env"] == {"DEBUG": "true", "MARIADB_ROOT_PASSWORD": "secret", "PORT": "3306", "TZ": "Asia/Shanghai"}
    assert db["ports"] == ["3306/tcp", "53/udp"]
    assert db["volumes"] == [
        {"name": "data", "target": "/var/lib/mysql", "read_only": False},
        {"name": "conf", "target": "/etc/mysql/conf.d", "read_only": True},
    ]
    assert (db["cpus"], db["memory"], db["ip"], db["host"]) == (1.0, "512m", "10.77.102.40", "berth-lab-b1")
    assert web["depends_on"] == ["cache", "db"]
    assert web["health"] == {"http": "/health", "port": 8080, "interval": 2, "timeout": 5, "retries": 30}
    assert env["reach"] == ["beta"]


def services(*names, **depends):
    return [{"name": name, "depends_on": depends.get(name, [])} for name in names]


def test_start_order_puts_dependencies_first_and_breaks_ties_by_name():
    assert start_order(services("web", "db", "cache", "api", web=["api"], api=["db", "cache"])) == ["cache", "db", "api", "web"]
    assert start_order(services("c", "b", "a")) == ["a", "b", "c"]
    assert start_order(services("z", "a", a=["z"])) == ["z", "a"]


def test_start_order_refuses_cycles_and_unknown_services():
    with pytest.raises(ValueError, match=r"dependency cycle: a -> b -> a"):
        start_order(services("a", "b", "c", a=["b"], b=["a"], c=["a"]))
    with pytest.raises(ValueError, match="unknown service queue"):
        start_order(services("a", a=["queue"]))


def test_the_gateway_is_the_first_host_address():
    assert gateway("10.77.102.0/24") == "10.77.102.1"
    assert gateway(ipaddress.ip_network("fd00:77::/64")) == "fd00:77::1"
    assert reserved_addresses("10.0.0.0/29") == {"10.0.0.0", "10.0.0.1", "10.0.0.7"}
    with pytest.raises(ValueError, match="too small"):
        gateway("10.0.0.0/31")


def named(*names, **ips):
    return [{"name": name, "ip": ips.get(name)} for name in names]


def test_allocation_starts_at_the_sha256_offset():
    expected = ipaddress.ip_address("10.77.102.2") + int(hashlib.sha256(b"alpha/db").hexdigest(), 16) % 253
    assert allocate_addresses("alpha", named("db"), "10.77.102.0/24", {}) == {"db": str(expected)}


def test_allocation_is_deterministic_whatever_the_order_of_inputs():
    taken = {"10.77.102.%d" % last: "other/s%d" % last for last in range(2, 200, 3)}
    first = allocate_addresses("alpha", named("db", "cache", "web"), "10.77.102.0/24", taken)
    again = allocate_addresses("alpha", named("web", "cache", "db"), "10.77.102.0/24", dict(reversed(list(taken.items()))))
    assert first == again
    assert not set(first.values()) & set(taken)


def test_an_address_the_service_holds_is_kept():
    taken = {"10.77.102.200/24": "alpha/db", "10.77.102.201": "beta/db"}
    assert allocate_addresses("alpha", named("db"), "10.77.102.0/24", taken) == {"db": "10.77.102.200"}
    assert allocate_addresses("alpha", named("db", db="10.77.102.200"), "10.77.102.0/24", taken) == {"db": "10.77.102.200"}


def test_two_environments_sharing_taken_never_collide():
    subnet = "10.0.0.0/28"
    alpha = allocate_addresses("alpha", named("a", "b", "c", "d", "e", "f"), subnet, {})
    taken = {address: "alpha/%s" % name for name, address in alpha.items()}
    beta = allocate_addresses("beta", named("a", "b", "c", "d", "e", "f"), subnet, taken)
    assert not set(alpha.values()) & set(beta.values())
    assert len(set(beta.values())) == 6


def test_a_full_subnet_is_exhausted():
    everything = allocate_addresses("alpha", named("a", "b", "c", "d", "e"), "10.0.0.0/29", {})
    assert sorted(everything.values()) == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(ValueError, match=r"exhausted in 10\.0\.0\.0/29"):
        allocate_addresses("alpha", named("a", "b", "c", "d", "e", "f"), "10.0.0.0/29", {})
    taken = {"10.0.0.%d" % last: "beta/x%d" % last for last in range(2, 7)}
    with pytest.raises(ValueError, match=r"exhausted in 10\.0\.0\.0/29"):
        allocate_addresses("alpha", named("a"), "10.0.0.0/29", taken)


def test_a_slash_30_has_one_address_to_give():
    assert allocate_addresses("alpha", named("a"), "10.0.0.0/30", {}) == {"a": "10.0.0.2"}


def test_an_explicit_ip_held_by_someone_else_is_refused():
    with pytest.raises(ValueError, match=r"services\.db\.ip: 10\.77\.102\.40 is already used by beta/db"):
        allocate_addresses("alpha", named("db", db="10.77.102.40"), "10.77.102.0/24", {"10.77.102.40": "beta/db"})
    with pytest.raises(ValueError, match="already used by alpha/cache"):
        allocate_addresses("alpha", named("db", db="10.77.102.40"), "10.77.102.0/24", {"10.77.102.40": "alpha/cache"})
    with pytest.raises(ValueError, match="reserved"):
        allocate_addresses("alpha", named("db", db="10.77.102.1"), "10.77.102.0/24", {})
    with pytest.raises(ValueError, match="outside"):
        allocate_addresses("alpha", named("db", db="10.77.103.1"), "10.77.102.0/24", {})


def test_explicit_ips_are_not_handed_to_other_services():
    start = allocate_addresses("alpha", named("db"), "10.77.102.0/24", {})["db"]
    both = allocate_addresses("alpha", named("db", "cache", cache=start), "10.77.102.0/24", {})
    assert both["cache"] == start
    assert both["db"] != start


def pinned(**hosts):
    return [{"name": name, "host": host} for name, host in hosts.items()]


def test_placement_spreads_and_keeps_pins():
    unpinned = pinned(a=None, b=None, c=None, d=None, e=None)
    assert place(unpinned, ["h2", "h1"]) == {"a": "h1", "b": "h2", "c": "h1", "d": "h2", "e": "h1"}
    with_pins = pinned(a=None, b=None, c="h1", d="h1")
    assert place(with_pins, ["h1", "h2", "h3"]) == {"a": "h2", "b": "h3", "c": "h1", "d": "h1"}
    with pytest.raises(ValueError, match="h9 is not one of the hosts h1, h2"):
        place(pinned(a="h9"), ["h1", "h2"])
    with pytest.raises(ValueError, match="no Docker host"):
        place(pinned(a=None), [])


def test_the_plan():
    plan = env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    top = {key: value for key, value in plan.items() if key != "services"}
    assert top == {
        "name": "alpha",
        "building": "bldg_b",
        "subnet": "10.77.102.0/24",
        "gateway": "10.77.102.1",
        "network_subnet": "10.77.102.0/24",
        "network_gateway": "10.77.102.1",
        "hosts": ["berth-lab-b1", "berth-lab-b2"],
        "network": "berth-env-alpha",
        "building_network": "berth-bldg_b-fixed",
        "building_network_labels": {"berth.building": "bldg_b"},
        "opening": "env.alpha",
        "reach": ["beta"],
        "reach_networks": ["berth-env-beta"],
        "proxy_sources": {"buildings": ["own"]},
        "labels": {"berth.env": "alpha", "berth.building": "bldg_b"},
    }
    assert [service["name"] for service in plan["services"]] == ["cache", "db", "web"]
    cache, db, web = plan["services"]
    assert db["container"] == "berth-env-alpha-db"
    assert (db["host"], db["ip"]) == ("berth-lab-b1", "10.77.102.40")
    assert (cache["host"], web["host"]) == ("berth-lab-b2", "berth-lab-b1")
    assert db["image"] == "10.77.1.11:5000/lab/mariadb:10.11"
    assert cache["image"] == "10.77.1.11:5000/redis:7"
    assert web["image"] == "registry.example.com:443/team/web:2.0"
    assert db["volumes"] == [
        {"name": "berth-env-alpha-db-data", "target": "/var/lib/mysql", "read_only": False},
        {"name": "berth-env-alpha-db-conf", "target": "/etc/mysql/conf.d", "read_only": True},
    ]
    assert db["labels"] == {"berth.env": "alpha", "berth.service": "db", "berth.building": "bldg_b"}
    assert (db["container_port"], cache["container_port"]) == (3306, None)
    assert set(db) == {
        "name",
        "container",
        "host",
        "ip",
        "image",
        "env",
        "ports",
        "volumes",
        "health",
        "cpus",
        "memory",
        "depends_on",
        "command",
        "labels",
        "proxy",
        "app",
        "version",
        "hide_env",
        "container_port",
        "init",
        "log_driver",
        "log_options",
        "restart_policy",
    }
    addresses = [service["ip"] for service in plan["services"]]
    assert len(set(addresses)) == 3
    assert all(ipaddress.ip_address(address) in ipaddress.ip_network("10.77.102.0/24") for address in addresses)
    assert env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {}) == plan


def test_a_service_without_limits_gets_the_app_container_defaults_and_one_with_them_keeps_its_own():
    plan = env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    cache, db, web = plan["services"]
    # cache and web say nothing: what every released app gets (role rollout, docker_rollout)
    for service in (cache, web):
        assert (service["cpus"], service["memory"]) == (CONTAINER_DEFAULTS["cpus"], CONTAINER_DEFAULTS["memory"])
        assert service["env"] == {"TZ": CONTAINER_DEFAULTS["timezone"]}
        assert service["hide_env"] is False
    assert (db["cpus"], db["memory"]) == (1.0, "512m")
    assert db["env"]["TZ"] == "Asia/Shanghai"
    assert db["hide_env"] is True
    own = copy.deepcopy(GOOD)
    own["services"]["cache"].update(cpus=0.25, memory="96M", env={"TZ": "Europe/Berlin"})
    cache = env_plan(own, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})["services"][0]
    assert (cache["cpus"], cache["memory"], cache["env"]) == (0.25, "96m", {"TZ": "Europe/Berlin"})
    for service in plan["services"]:
        assert (service["init"], service["log_driver"], service["restart_policy"]) == (
            CONTAINER_DEFAULTS["init"],
            CONTAINER_DEFAULTS["log_driver"],
            CONTAINER_DEFAULTS["restart_policy"],
        )
        assert service["log_options"] == CONTAINER_DEFAULTS["log_options"]
    # each plan has its own copy: changing one changes no default
    cache["log_options"]["max-file"] = "9"
    assert CONTAINER_DEFAULTS["log_options"]["max-file"] != "9"


def test_names_come_from_the_environment_name():
    assert env_names("alpha") == {
        "name": "alpha",
        "network": "berth-env-alpha",
        "label": "berth.env=alpha",
        "label_key": "berth.env",
        "opening": "env.alpha",
        "apps": "env.alpha.*",
        "rollout_files": ["env.alpha.*.lock", "env.alpha.*.served.json"],
    }
    plan = env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    names = env_names(plan["name"])
    assert (names["network"], names["opening"]) == (plan["network"], plan["opening"])
    assert all(fnmatch.fnmatch(service["app"], names["apps"]) for service in plan["services"])
    assert not fnmatch.fnmatch("env.alpha-b.web", names["apps"])
    for bad in ("Alpha", "", None, "a" * 32):
        with pytest.raises(ValueError, match="not a valid environment name"):
            env_names(bad)


def test_the_fixed_network_comes_from_the_building_or_the_hosts():
    assert fixed_network_of(GOOD, HOST_BUILDING) == "berth-bldg_b-fixed"
    pinned = changed(building=None, hosts=["berth-lab-a2", "berth-lab-a1"])
    assert fixed_network_of(pinned, HOST_BUILDING) == "berth-bldg_a-fixed"
    assert fixed_network_of(GOOD, HOST_BUILDING) == env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})["building_network"]


def test_services_join_their_own_network_the_fixed_one_and_the_ones_they_reach():
    plan = env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    db = next(service for service in plan["services"] if service["name"] == "db")
    assert service_networks(db, plan) == [
        {"name": "berth-env-alpha", "aliases": ["db"]},
        {"name": "berth-bldg_b-fixed", "ipv4_address": "10.77.102.40"},
        {"name": "berth-env-beta"},
    ]


def test_a_reached_environment_must_not_share_service_names():
    plan = env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    beta = [{"Labels": {"berth.env": "beta", "berth.service": name}} for name in ("db", "queue")]
    others = [{"Labels": {"berth.env": "gamma", "berth.service": "db"}}, {"Labels": {}}]
    assert reach_errors(plan, beta + others) == [
        "reach: beta also has service(s) db, which would resolve to either environment there; rename them"
    ]
    assert reach_errors(plan, beta[1:] + others) == []


def test_the_firewall_opening_holds_the_listen_ports_of_the_apps_on_each_host():
    proxied = changed(proxy_sources={"buildings": ["own", "bldg_a"], "cidrs": ["192.0.2.0/24"]})
    proxied["services"]["web"].update(proxy=18080, ports=[8080], host="berth-lab-b2")
    proxied["services"]["api"] = {"image": "api:1", "ports": [9000], "proxy": 18090, "host": "berth-lab-b2"}
    plan = env_plan(proxied, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    assert firewall_opening(plan, "berth-lab-b2") == {
        "ports": [{"proto": "tcp", "ports": "18090"}, {"proto": "tcp", "ports": "18080"}],
        "sources": {"buildings": ["own", "bldg_a"], "cidrs": ["192.0.2.0/24"]},
    }
    assert firewall_opening(plan, "berth-lab-b1") is None


def test_the_plan_refuses_a_bad_definition_or_a_taken_address():
    with pytest.raises(ValueError, match=r"name: 'Alpha' is not a valid.*; building: 'bldg_x' is not a building"):
        env_plan(changed(name="Alpha", building="bldg_x"), BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    with pytest.raises(ValueError, match="already used by beta/db"):
        env_plan(GOOD, BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {"10.77.102.40": "beta/db"})


def test_the_table():
    rows = [
        {"service": "cache", "host": "berth-lab-b2", "ip": "10.77.102.7", "ports": [], "health": {"tcp": 6379}},
        {"service": "db", "host": "berth-lab-b1", "ip": "10.77.102.40", "ports": ["3306/tcp", "53/udp"], "health": "healthy"},
        {"service": "web", "host": "berth-lab-b1", "ip": "10.77.102.120", "ports": ["8080/tcp"], "health": None},
    ]
    assert env_table(rows) == "\n".join(
        [
            "service  host          ip             ports            health",
            "cache    berth-lab-b2  10.77.102.7    -                tcp:6379",
            "db       berth-lab-b1  10.77.102.40   3306/tcp,53/udp  healthy",
            "web      berth-lab-b1  10.77.102.120  8080/tcp         -",
        ]
    )
    assert env_table([]) == "service  host  ip  ports  health"


def docker_object(kind, name, env=None):
    return {"kind": kind, "name": name, "labels": {"berth.env": env} if env else None}


def test_owned_objects_never_take_a_neighbours():
    objects = [
        docker_object("container", "berth-env-alpha-db"),
        docker_object("volume", "berth-env-alpha-db-data"),
        docker_object("network", "berth-env-alpha"),
        docker_object("container", "berth-env-alpha2-db"),
        docker_object("network", "berth-env-alpha2"),
        docker_object("network", "berth-bldg_b-fixed"),
        docker_object("container", "web-1.4-abcdef"),
    ]
    assert [item["name"] for item in owned_objects(objects, "alpha")] == [
        "berth-env-alpha-db",
        "berth-env-alpha-db-data",
        "berth-env-alpha",
    ]
    assert owned_objects(objects, "alph") == []
    assert [item["name"] for item in owned_objects(objects, "alpha2")] == ["berth-env-alpha2-db", "berth-env-alpha2"]


def test_a_label_decides_over_the_name():
    # env "alpha" service "two-db" and env "alpha-two" service "db" share a name
    objects = [docker_object("container", "berth-env-alpha-two-db", env="alpha-two"), docker_object("volume", "renamed", env="alpha")]
    assert [item["name"] for item in owned_objects(objects, "alpha")] == ["renamed"]
    assert [item["name"] for item in owned_objects(objects, "alpha-two")] == ["berth-env-alpha-two-db"]


def test_name_clashes_with_another_environment():
    plan = env_plan(changed(services={"two-db": {"image": "lab/db:1", "volumes": ["data:/d"]}}), BUILDINGS, DOCKER_HOSTS, HOST_BUILDING, {})
    objects = [
        docker_object("container", "berth-env-alpha-two-db", env="alpha-two"),
        docker_object("volume", "berth-env-alpha-two-db-data"),
        docker_object("network", "berth-env-alpha", env="alpha"),
    ]
    assert name_clashes(plan, objects) == ["container berth-env-alpha-two-db belongs to environment alpha-two, not alpha"]


# -- properties ------------------------------------------------------------------------
NAME = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)
ENVIRONMENTS = st.dictionaries(NAME, st.lists(NAME, min_size=1, max_size=6, unique=True), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(ENVIRONMENTS, st.sampled_from(["10.0.0.0/27", "10.0.0.0/26", "fd00::/123"]))
def test_environments_allocated_in_turn_never_share_an_address(environments, subnet):
    network = ipaddress.ip_network(subnet)
    reserved = reserved_addresses(subnet)
    taken, allocations = {}, {}
    for env_name, service_names in environments.items():
        allocations[env_name] = allocate_addresses(env_name, named(*service_names), subnet, taken)
        for service, address in allocations[env_name].items():
            assert address not in taken
            taken[address] = "%s/%s" % (env_name, service)
    assert len(taken) == sum(len(names) for names in environments.values())
    assert all(ipaddress.ip_address(address) in network and address not in reserved for address in taken)
    for env_name, service_names in environments.items():
        assert allocate_addresses(env_name, named(*reversed(service_names)), subnet, taken) == allocations[env_name]


def test_fixed_network_on_a_flat_l2_uses_its_gateway_and_hands_out_the_container_subnet():
    buildings = {
        "bldg_b": {
            "host_subnet": "10.77.2.0/24",
            "container_subnet": "10.77.102.0/24",
            "container_link_subnet": "10.77.0.0/16",
            "container_gateway": "10.77.0.1",
        }
    }
    plan = env_plan(
        {"name": "flat", "building": "bldg_b", "services": {"db": {"image": "r.example/env/redis:1"}}},
        buildings,
        ["h1"],
        {"h1": "bldg_b"},
        {},
    )
    assert (plan["network_subnet"], plan["network_gateway"], plan["subnet"]) == ("10.77.0.0/16", "10.77.0.1", "10.77.102.0/24")
    assert ipaddress.ip_address(plan["services"][0]["ip"]) in ipaddress.ip_network("10.77.102.0/24")


def test_taken_addresses_come_from_labelled_containers_on_the_fixed_network():
    containers = [
        {
            "Labels": {"berth.env": "alpha", "berth.service": "db"},
            "NetworkSettings": {"Networks": {"berth-bldg_b-fixed": {"IPAddress": "10.77.102.9"}}},
        },
        {"Labels": {"berth.env": "beta", "berth.service": "db"}, "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}}},
        {"Labels": {}, "NetworkSettings": {"Networks": {"berth-bldg_b-fixed": {"IPAddress": "10.77.102.10"}}}},
    ]
    assert taken_addresses(containers, "berth-bldg_b-fixed") == {"10.77.102.9": "alpha/db"}


def test_health_checks_mounts_rows_and_buildings():
    assert docker_healthcheck(None) is None
    check = docker_healthcheck({"tcp": 6379, "interval": 2, "timeout": 5, "retries": 30})
    assert check == {"test": ["CMD-SHELL", "bash -c '</dev/tcp/127.0.0.1/6379'"], "interval": "2s", "timeout": "5s", "retries": 30}
    assert docker_healthcheck({"cmd": "true", "interval": 1, "timeout": 1, "retries": 1})["test"] == ["CMD-SHELL", "true"]
    assert (
        "http://127.0.0.1:8080/health"
        in docker_healthcheck({"http": "/health", "port": 8080, "interval": 1, "timeout": 1, "retries": 1})["test"][1]
    )
    assert volume_mount({"name": "v", "target": "/d", "read_only": False}) == {
        "type": "volume",
        "source": "v",
        "target": "/d",
        "read_only": False,
    }
    rows = table_rows([{"name": "db", "host": "h1", "ip": "10.0.0.5", "ports": ["3306/tcp"]}], {"db": "healthy"})
    assert rows == [{"service": "db", "host": "h1", "ip": "10.0.0.5", "ports": ["3306/tcp"], "health": "healthy"}]
    assert host_buildings({"bldg_a": ["a1"], "bldg_b": ["b1", "b2"], "other": ["x"]}, {"bldg_a": {}, "bldg_b": {}}) == {
        "a1": "bldg_a",
        "b1": "bldg_b",
        "b2": "bldg_b",
    }


def test_a_proxied_app_has_no_fixed_address_and_shows_its_listen_port():
    buildings = {"bldg_b": {"host_subnet": "10.77.2.0/24", "container_subnet": "10.77.102.0/24"}}
    services = {
        "db": {"image": "r.example/env/mariadb:1"},
        "app": {"image": "r.example/env/app:1", "ports": [8080], "proxy": 18080, "depends_on": ["db"]},
    }
    plan = env_plan({"name": "shop", "building": "bldg_b", "services": services}, buildings, ["h1"], {"h1": "bldg_b"}, {})
    app = plan["services"][-1]
    assert (app["ip"], app["proxy"], app["app"]) == (None, 18080, "env.shop.app")
    assert table_rows([app], {})[0]["ports"] == ["h1:18080"]
    bad = dict(services, app={"image": "r.example/env/app:1", "proxy": 18080, "ip": "10.77.102.9", "volumes": ["d:/d"]})
    errors = " ".join(env_errors({"name": "shop", "building": "bldg_b", "services": bad}, buildings, ["h1"], {"h1": "bldg_b"}))
    assert "has no fixed ip" in errors and "give the app's port" in errors and "takes no volumes" in errors
