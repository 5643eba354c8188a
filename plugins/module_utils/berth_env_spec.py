"""Named test environments: a stack of containers (apps, MariaDB, Redis, ...)
created and torn down together on the Docker hosts of one building.

This module owns the definition: its checks, its canonical form, and every
name and label an environment's objects carry. Every service gets a fixed
address on the building's container_subnet (the shared macvlan network) and
joins the environment's own internal network; its services also join the
networks of the environments it names in `reach`, and no others. Addresses
are allocated in berth_env_addresses, the plan and its output are made in
berth_env_placement. Everything here is pure: the playbook reads Docker,
these functions decide.
"""

import ipaddress
import math
import re

from ansible_collections.berth.ops.plugins.module_utils.berth_env_addresses import gateway, reserved_addresses
from ansible_collections.berth.ops.plugins.module_utils.berth_firewall import sources_errors
from ansible_collections.berth.ops.plugins.module_utils.berth_images import parse_reference
from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import parse_network
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import state_files

ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
VOLUME_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
MEMORY = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)
PORT = re.compile(r"^(\d+)(?:/(tcp|udp))?$")
ENV_KEYS = ("name", "building", "hosts", "reach", "proxy_sources", "services")
DEFAULT_PROXY_SOURCES = {"buildings": ["own"]}
SERVICE_KEYS = ("name", "image", "env", "ports", "volumes", "health", "cpus", "memory", "depends_on", "ip", "host", "command", "proxy")
HEALTH_PROBES = ("cmd", "tcp", "http")
HEALTH_DEFAULTS = {"interval": 2, "timeout": 5, "retries": 30}
LABEL_ENV = "berth.env"
LABEL_SERVICE = "berth.service"
LABEL_BUILDING = "berth.building"
PREFIX = "berth-env-"


# -- names -----------------------------------------------------------------------------
def env_network(env_name):
    return PREFIX + env_name


def env_container(env_name, service):
    return "%s%s-%s" % (PREFIX, env_name, service)


def env_volume(env_name, service, volume):
    return "%s%s-%s-%s" % (PREFIX, env_name, service, volume)


def building_network(building):
    return "berth-%s-fixed" % building


def env_app(env_name, service):
    """The app name of a proxied service: its nginx entries and docker_rollout's app."""
    return "env.%s.%s" % (env_name, service)


def env_opening(env_name):
    """The name of the environment's opening in the host firewall."""
    return "env.%s" % env_name


def env_names(env_name):
    """The names of an environment that its name alone gives: what a teardown
    finds its objects by."""
    if not isinstance(env_name, str) or not ENV_NAME.match(env_name):
        raise ValueError("%r is not a valid environment name (lowercase letter, then letters, digits, -; at most 31)" % (env_name,))
    return {
        "name": env_name,
        "network": env_network(env_name),
        "label": "%s=%s" % (LABEL_ENV, env_name),
        # the label as key and value, for reading listed objects' Labels
        "label_key": LABEL_ENV,
        "opening": env_opening(env_name),
        "apps": env_app(env_name, "*"),
        # docker_rollout's lock and history of each of its apps
        "rollout_files": sorted(state_files(env_app(env_name, "*")).values()),
    }


def definition_building(definition, host_building):
    """The building of a definition that env_errors accepts: its own, or its hosts'."""
    if definition.get("building"):
        return definition["building"]
    return host_building[sorted(definition["hosts"])[0]]


def fixed_network_of(definition, host_building):
    """The building's fixed-IP network that a definition's services get their addresses on."""
    return building_network(definition_building(definition, host_building))


# -- dependencies ----------------------------------------------------------------------
def find_cycle(graph):
    """A dependency cycle as a path [a, b, a], or None. Visits names in order, so
    the same graph always reports the same cycle."""
    done = set()

    def visit(node, path):
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        path.append(node)
        for dependency in sorted(graph.get(node, ())):
            found = visit(dependency, path)
            if found:
                return found
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return None


# -- the definition --------------------------------------------------------------------
def _service_entries(services):
    """(where, name, spec) of each service of either form, and the errors of the form.

    YAML mappings silently drop duplicate keys, so a list of services with a
    `name` is accepted too: there duplicates can be seen and reported.
    """
    if services is None or services in ({}, []):
        return [], ["services: an environment needs at least one service"]
    errors, entries = [], []
    if isinstance(services, dict):
        for name, spec in services.items():
            where = "services.%s" % name
            if not isinstance(spec, dict):
                errors.append("%s must be a mapping, got %s" % (where, type(spec).__name__))
                continue
            if "name" in spec and spec["name"] != name:
                errors.append("%s.name: %r differs from the key %r" % (where, spec["name"], name))
            entries.append((where, name, spec))
        return entries, errors
    if not isinstance(services, list):
        return [], ["services must be a mapping of name to service, or a list of services with a name, got %s" % type(services).__name__]
    seen = {}
    for index, spec in enumerate(services):
        where = "services[%d]" % index
        if not isinstance(spec, dict):
            errors.append("%s must be a mapping, got %s" % (where, type(spec).__name__))
            continue
        name = spec.get("name")
        if not isinstance(name, str):
            errors.append("%s.name is required (a string)" % where)
            continue
        if name in seen:
            errors.append("%s.name: duplicate service name %r (also services[%d])" % (where, name, seen[name]))
            continue
        seen[name] = index
        entries.append(("services.%s" % name, name, spec))
    return entries, errors


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _port_error(value):
    if isinstance(value, bool):
        return "%r is not a port" % (value,)
    match = PORT.match(str(value)) if isinstance(value, (int, str)) else None
    if not match or not 1 <= int(match.group(1)) <= 65535:
        return '%r is not a port like 3306, "3306/tcp" or "53/udp"' % (value,)
    return None


def _normal_port(value):
    match = PORT.match(str(value))
    return "%d/%s" % (int(match.group(1)), match.group(2) or "tcp")


def _volume_parts(text):
    """(name, target, read_only) of "name:/path[:ro]", or raise ValueError."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "ro"):
        raise ValueError('%r is not a volume like "data:/var/lib/mysql" or "data:/path:ro"' % (text,))
    name, target = parts[0], parts[1]
    if not VOLUME_NAME.match(name):
        raise ValueError("%r: volume name %r must match [a-z][a-z0-9_-]*" % (text, name))
    if not target.startswith("/") or not target.rstrip("/"):
        raise ValueError("%r: the container path %r must be absolute and not /" % (text, target))
    return name, target, len(parts) == 3


def _health_errors(health, where):
    if not isinstance(health, dict):
        return ["%s must be a mapping with one of cmd, tcp or http" % where]
    errors = []
    unknown = sorted(set(health) - set(HEALTH_PROBES) - set(HEALTH_DEFAULTS) - {"port"})
    if unknown:
        errors.append(
            "%s: unknown key %s (known: %s)"
            % (where, ", ".join(map(str, unknown)), ", ".join(HEALTH_PROBES + ("port",) + tuple(HEALTH_DEFAULTS)))
        )
    probes = [probe for probe in HEALTH_PROBES if probe in health]
    if len(probes) != 1:
        return errors + ["%s needs exactly one of cmd, tcp or http, got %s" % (where, ", ".join(probes) or "none")]
    probe = probes[0]
    value = health[probe]
    if probe == "cmd":
        if not (isinstance(value, str) and value.strip()) and not (
            isinstance(value, list) and value and all(isinstance(item, str) for item in value)
        ):
            errors.append("%s.cmd must be a command string or a non-empty list of strings" % where)
    elif probe == "tcp":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            errors.append("%s.tcp: %r is not a port in 1-65535" % (where, value))
    else:
        if not isinstance(value, str) or not value.startswith("/"):
            errors.append("%s.http: %r must be a path starting with /" % (where, value))
        port = health.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            errors.append("%s.port: %r is not a port in 1-65535 (http needs the port to ask)" % (where, port))
    if probe != "http" and "port" in health:
        errors.append("%s.port only goes with http" % where)
    for key in ("interval", "timeout"):
        if key in health and not (_is_number(health[key]) and health[key] > 0):
            errors.append("%s.%s must be a positive number of seconds, got %r" % (where, key, health[key]))
    retries = health.get("retries", 1)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 1:
        errors.append("%s.retries must be a whole number, 1 or more, got %r" % (where, retries))
    return errors


def _service_field_errors(where, name, spec):
    """Errors of one service on its own; cross-service checks come later."""
    errors = []
    if not isinstance(name, str) or not SERVICE_NAME.match(name):
        errors.append("%s: %r is not a valid service name (lowercase letter, then letters, digits, -; at most 31)" % (where, name))
    unknown = sorted(set(spec) - set(SERVICE_KEYS), key=str)
    if unknown:
        errors.append("%s: unknown setting %s (known: %s)" % (where, ", ".join(map(str, unknown)), ", ".join(SERVICE_KEYS)))
    if "image" not in spec:
        errors.append("%s.image is required" % where)
    else:
        try:
            parse_reference(spec["image"])
        except ValueError as exc:
            errors.append("%s.image: %s" % (where, exc))
    env = spec.get("env", {})
    if not isinstance(env, dict):
        errors.append("%s.env must be a mapping of variable to value" % where)
    else:
        for key, value in env.items():
            if not isinstance(key, str) or not key or "=" in key:
                errors.append("%s.env: %r is not a variable name" % (where, key))
            elif not isinstance(value, (str, int, float, bool)):
                errors.append("%s.env.%s must be a string, got %s" % (where, key, type(value).__name__))
    ports = spec.get("ports", [])
    if not isinstance(ports, list):
        errors.append("%s.ports must be a list" % where)
    else:
        errors.extend("%s.ports[%d]: %s" % (where, index, _port_error(port)) for index, port in enumerate(ports) if _port_error(port))
    volumes = spec.get("volumes", [])
    if not isinstance(volumes, list):
        errors.append("%s.volumes must be a list" % where)
    else:
        targets = {}
        for index, volume in enumerate(volumes):
            try:
                _unused, target, _unused = _volume_parts(volume)
            except ValueError as exc:
                errors.append("%s.volumes[%d]: %s" % (where, index, exc))
                continue
            target = target.rstrip("/")
            if target in targets:
                errors.append("%s.volumes[%d]: %s is mounted twice (also volumes[%d])" % (where, index, target, targets[target]))
            targets.setdefault(target, index)
    if spec.get("health") is not None:
        errors.extend(_health_errors(spec["health"], "%s.health" % where))
    cpus = spec.get("cpus")
    if cpus is not None and not (_is_number(cpus) and cpus > 0):
        errors.append("%s.cpus must be a positive number, got %r" % (where, cpus))
    memory = spec.get("memory")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, (str, int)) or not MEMORY.match(str(memory))):
        errors.append("%s.memory: %r is not a size like 512m or 1g" % (where, memory))
    depends_on = spec.get("depends_on", [])
    if not isinstance(depends_on, list) or not all(isinstance(item, str) for item in depends_on):
        errors.append("%s.depends_on must be a list of service names" % where)
    command = spec.get("command")
    if command is not None and not (isinstance(command, list) and command and all(isinstance(item, str) for item in command)):
        errors.append("%s.command must be a non-empty list of strings" % where)
    for key in ("ip", "host"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            errors.append("%s.%s must be a string, got %s" % (where, key, type(spec[key]).__name__))
    proxy = spec.get("proxy")
    if proxy is not None:
        # A proxied app is released start-first by docker_rollout behind the
        # host's nginx, so it has no fixed address of its own.
        if isinstance(proxy, bool) or not isinstance(proxy, int) or not 1 <= proxy <= 65535:
            errors.append("%s.proxy: %r is not a port for the host's nginx to listen on" % (where, proxy))
        if spec.get("ip") is not None:
            errors.append("%s: a proxied service (proxy) has no fixed ip" % where)
        if not spec.get("ports"):
            errors.append("%s.proxy: give the app's port in ports" % where)
        if spec.get("volumes"):
            errors.append("%s.proxy: a proxied app is replaced on every release, so it takes no volumes" % where)
    return errors


def docker_hosts_of(building, docker_hosts, host_building):
    return sorted(host for host in set(docker_hosts) if host_building.get(host) == building)


def _location(definition, buildings, docker_hosts, host_building):
    """(errors, building, hosts the environment may use) from building or hosts."""
    building, hosts = definition.get("building"), definition.get("hosts")
    if building is not None and hosts is not None:
        return ["building and hosts: give one of them, not both (hosts imply their building)"], None, []
    if building is None and hosts is None:
        return ["building or hosts is required: where the environment runs"], None, []
    if hosts is not None:
        if not isinstance(hosts, list) or not hosts or not all(isinstance(host, str) for host in hosts):
            return ["hosts must be a non-empty list of host names"], None, []
        errors = []
        for host in sorted(set(hosts)):
            if host not in docker_hosts:
                if host in host_building:
                    errors.append("hosts: %s is not a Docker host" % host)
                else:
                    errors.append("hosts: %s is not a host of the inventory" % host)
            elif host not in host_building:
                errors.append("hosts: %s belongs to no building" % host)
        duplicates = sorted({host for host in hosts if hosts.count(host) > 1})
        if duplicates:
            errors.append("hosts: %s listed more than once" % ", ".join(duplicates))
        if errors:
            return errors, None, []
        found = sorted({host_building[host] for host in hosts})
        if len(found) > 1:
            spread = "; ".join("%s: %s" % (name, ", ".join(sorted(h for h in set(hosts) if host_building[h] == name))) for name in found)
            return ["hosts: an environment lives in one building, these hosts are in %d (%s)" % (len(found), spread)], None, []
        building, where, env_hosts = found[0], "hosts", sorted(set(hosts))
    else:
        where = "building"
        if not isinstance(building, str) or building not in buildings:
            return ["building: %r is not a building (known: %s)" % (building, ", ".join(sorted(buildings)))], None, []
        env_hosts = docker_hosts_of(building, docker_hosts, host_building)
        if not env_hosts:
            return ["building: %s has no Docker hosts" % building], None, []
    if building not in buildings:
        return ["hosts: their building %s is not in berth_buildings (known: %s)" % (building, ", ".join(sorted(buildings)))], None, []
    spec = buildings[building]
    if not isinstance(spec, dict) or "container_subnet" not in spec:
        return ["%s: building %s has no container_subnet, so it cannot give services fixed addresses" % (where, building)], None, []
    try:
        gateway(parse_network(spec["container_subnet"], "berth_buildings.%s.container_subnet" % building))
    except ValueError as exc:
        return ["%s: %s" % (where, exc)], None, []
    return [], building, env_hosts


def _address_errors(entries, subnet):
    errors, owners = [], {}
    reserved = reserved_addresses(subnet)
    for where, name, spec in entries:
        text = spec.get("ip")
        if not isinstance(text, str):
            continue
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            errors.append("%s.ip: %r is not an IP address" % (where, text))
            continue
        if address.version != subnet.version or address not in subnet:
            errors.append("%s.ip: %s is outside the building's container_subnet %s" % (where, address, subnet))
        elif str(address) in reserved:
            errors.append(
                "%s.ip: %s is reserved in %s (network %s, gateway %s, broadcast %s)" % ((where, address, subnet) + _reserved_parts(subnet))
            )
        elif address in owners:
            errors.append("%s.ip: %s is also the ip of services.%s" % (where, address, owners[address]))
        else:
            owners[address] = name
    return errors


def _reserved_parts(subnet):
    return str(subnet.network_address), gateway(subnet), str(subnet.broadcast_address)


def _dependency_errors(entries):
    names = {name for _unused, name, _unused in entries}
    graph, errors = {}, []
    for where, name, spec in entries:
        depends_on = spec.get("depends_on", [])
        if not isinstance(depends_on, list) or not all(isinstance(item, str) for item in depends_on):
            continue
        unknown = sorted(set(depends_on) - names)
        if unknown:
            errors.append(
                "%s.depends_on: unknown service %s (services: %s)" % (where, ", ".join(unknown), ", ".join(sorted(names, key=str)))
            )
        graph[name] = set(depends_on) & names
    cycle = find_cycle(graph)
    if cycle:
        errors.append("services.%s.depends_on: dependency cycle %s" % (cycle[0], " -> ".join(cycle)))
    return errors


def _volume_name_errors(env_name, entries):
    """env-service-volume names can meet: service a's volume b-c and service a-b's volume c."""
    errors, seen = [], {}
    for where, name, spec in entries:
        volumes = spec.get("volumes")
        for volume in volumes if isinstance(volumes, list) else []:
            try:
                short = _volume_parts(volume)[0]
            except ValueError:
                continue
            full = env_volume(env_name, name, short)
            other = seen.setdefault(full, (where, short))
            if other[0] != where:
                errors.append(
                    "%s.volumes: volume %s of this service and volume %s of %s are both %s; rename one"
                    % (where, short, other[1], other[0], full)
                )
    return errors


def env_errors(definition, buildings, docker_hosts, host_building):
    """Everything wrong with an environment definition, each naming its field.

    `docker_hosts` are the inventory's Docker hosts, `host_building` maps
    every inventory host to its building.
    """
    if not isinstance(definition, dict):
        return ["an environment definition must be a mapping, got %s" % type(definition).__name__]
    buildings = buildings if isinstance(buildings, dict) else {}
    errors = []
    unknown = sorted(set(definition) - set(ENV_KEYS), key=str)
    if unknown:
        errors.append("unknown setting %s (known: %s)" % (", ".join(map(str, unknown)), ", ".join(ENV_KEYS)))
    name = definition.get("name")
    name_ok = isinstance(name, str) and bool(ENV_NAME.match(name))
    if not name_ok:
        errors.append("name: %r is not a valid environment name (lowercase letter, then letters, digits, -; at most 31)" % (name,))
    elif env_network(name) in {building_network(other) for other in buildings}:
        errors.append("name: the environment network %s would be a building's shared network; choose another name" % env_network(name))
    location_errors, building, env_hosts = _location(definition, buildings, docker_hosts, host_building)
    errors.extend(location_errors)
    reach = definition.get("reach", [])
    if not isinstance(reach, list):
        errors.append("reach must be a list of environment names")
    else:
        for index, other in enumerate(reach):
            if not isinstance(other, str) or not ENV_NAME.match(other):
                errors.append("reach[%d]: %r is not a valid environment name" % (index, other))
            elif other == name:
                errors.append("reach[%d]: %s names the environment itself (its services share its network already)" % (index, other))
    errors.extend(sources_errors(definition.get("proxy_sources", DEFAULT_PROXY_SOURCES), buildings, "proxy_sources"))
    entries, form_errors = _service_entries(definition.get("services"))
    errors.extend(form_errors)
    for where, service_name, spec in entries:
        errors.extend(_service_field_errors(where, service_name, spec))
    errors.extend(_dependency_errors(entries))
    if name_ok:
        errors.extend(_volume_name_errors(name, entries))
    if building is not None:
        registry = buildings[building].get("registry")
        subnet = parse_network(buildings[building]["container_subnet"], "container_subnet")
        errors.extend(_address_errors(entries, subnet))
        for where, _unused, spec in entries:
            host = spec.get("host")
            if isinstance(host, str) and host not in env_hosts:
                errors.append("%s.host: %s is not one of the environment's hosts (%s)" % (where, host, ", ".join(env_hosts)))
            try:
                image = parse_reference(spec.get("image"))
            except ValueError:
                continue
            if not image.registry and not registry:
                errors.append("%s.image: %r names no registry and building %s has none" % (where, spec["image"], building))
    return errors


def _env_value(value):
    # YAML's true/false, not Python's True/False
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _normal_health(health):
    if health is None:
        return None
    normal = {probe: health[probe] for probe in HEALTH_PROBES if probe in health}
    if "http" in normal:
        normal["port"] = health["port"]
    for key, default in HEALTH_DEFAULTS.items():
        normal[key] = health.get(key, default)
    return normal


def _normal_service(name, spec):
    ports = []
    for port in spec.get("ports") or []:
        if _normal_port(port) not in ports:
            ports.append(_normal_port(port))
    volumes = []
    for text in spec.get("volumes") or []:
        volume, target, read_only = _volume_parts(text)
        volumes.append({"name": volume, "target": target, "read_only": read_only})
    cpus = spec.get("cpus")
    memory = spec.get("memory")
    return {
        "name": name,
        "image": spec["image"],
        "env": {key: _env_value(value) for key, value in sorted((spec.get("env") or {}).items())},
        "ports": ports,
        "volumes": volumes,
        "health": _normal_health(spec.get("health")),
        "cpus": float(cpus) if cpus is not None else None,
        "memory": str(memory).lower() if memory is not None else None,
        "depends_on": sorted(set(spec.get("depends_on") or [])),
        "ip": str(ipaddress.ip_address(spec["ip"])) if spec.get("ip") else None,
        "host": spec.get("host") or None,
        "command": list(spec["command"]) if spec.get("command") is not None else None,
        "proxy": spec.get("proxy"),
    }


def normalise(definition):
    """The canonical form of a definition env_errors accepts: services as a
    list sorted by name, every setting present."""
    entries, _unused = _service_entries(definition.get("services"))
    return {
        "name": definition["name"],
        "building": definition.get("building"),
        "hosts": sorted(set(definition.get("hosts") or [])),
        "reach": sorted(set(definition.get("reach") or [])),
        "proxy_sources": definition.get("proxy_sources", DEFAULT_PROXY_SOURCES),
        "services": sorted((_normal_service(name, spec) for _unused, name, spec in entries), key=lambda service: service["name"]),
    }


def host_buildings(groups, buildings):
    """{host: building} from the building groups."""
    return {host: building for building in sorted(buildings) for host in groups.get(building) or []}
