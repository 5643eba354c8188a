"""The plan of a named environment and what is read from it: where each
service runs, in which order services start, the settings each container
gets, and, for the playbooks, the docker_container options, the proxy and
firewall entries, the clashes with environments already running, and the
table. The definition and names are berth_env_spec's, the addresses
berth_env_addresses'.
"""

import heapq

from ansible_collections.berth.ops.plugins.module_utils.berth_env_addresses import allocate_addresses, gateway
from ansible_collections.berth.ops.plugins.module_utils.berth_env_spec import (
    LABEL_BUILDING,
    LABEL_ENV,
    LABEL_SERVICE,
    building_network,
    docker_hosts_of,
    env_app,
    env_container,
    env_errors,
    env_network,
    env_opening,
    env_volume,
    find_cycle,
    normalise,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_images import in_registry, tag_of
from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import parse_network
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import container_default


# -- order and placement ---------------------------------------------------------------
def start_order(services):
    """Service names, dependencies first, ties broken by name."""
    graph = {service["name"]: set(service.get("depends_on") or ()) for service in services}
    for name, dependencies in sorted(graph.items()):
        unknown = sorted(dependencies - set(graph))
        if unknown:
            raise ValueError("services.%s.depends_on: unknown service %s" % (name, ", ".join(unknown)))
    waiting = {name: set(dependencies) for name, dependencies in graph.items()}
    dependants = {name: [] for name in graph}
    for name, dependencies in graph.items():
        for dependency in dependencies:
            dependants[dependency].append(name)
    ready = [name for name, dependencies in waiting.items() if not dependencies]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for dependant in dependants[name]:
            waiting[dependant].discard(name)
            if not waiting[dependant]:
                heapq.heappush(ready, dependant)
    if len(order) < len(graph):
        stuck = {name: graph[name] for name in graph if name not in order}
        raise ValueError("dependency cycle: %s" % " -> ".join(find_cycle(stuck)))
    return order


def place(services, hosts):
    """{service: host}: pins stay, the rest go one by one (by name) to the host
    with the fewest services so far, ties by host name."""
    candidates = sorted(set(hosts))
    if not candidates:
        raise ValueError("no Docker host to place the services on")
    load = dict.fromkeys(candidates, 0)
    placement = {}
    for service in sorted(services, key=lambda service: service["name"]):
        host = service.get("host")
        if host:
            if host not in load:
                raise ValueError("services.%s.host: %s is not one of the hosts %s" % (service["name"], host, ", ".join(candidates)))
            placement[service["name"]] = host
            load[host] += 1
    for service in sorted(services, key=lambda service: service["name"]):
        if not service.get("host"):
            host = min(candidates, key=lambda candidate: (load[candidate], candidate))
            placement[service["name"]] = host
            load[host] += 1
    return {name: placement[name] for name in sorted(placement)}


# -- the plan --------------------------------------------------------------------------
def container_settings(service):
    """The container settings of a normalised service: its own cpus, memory
    and TZ, and for what it leaves out the defaults every released app gets.
    `hide_env` says whether the definition gave an environment (passwords come
    in it), apart from the TZ added here."""
    env = dict(service["env"])
    env.setdefault("TZ", container_default("timezone"))
    return {
        "env": {key: env[key] for key in sorted(env)},
        "hide_env": bool(service["env"]),
        "cpus": service["cpus"] if service["cpus"] is not None else container_default("cpus"),
        "memory": service["memory"] if service["memory"] is not None else container_default("memory"),
        "init": container_default("init"),
        "log_driver": container_default("log_driver"),
        "log_options": container_default("log_options"),
        "restart_policy": container_default("restart_policy"),
    }


def env_plan(definition, buildings, docker_hosts, host_building, taken):
    """Everything needed to create the environment, services in start order.

    Raises ValueError with all errors of the definition, or when an address
    cannot be had.
    """
    errors = env_errors(definition, buildings, docker_hosts, host_building)
    if errors:
        raise ValueError("; ".join(errors))
    env = normalise(definition)
    name = env["name"]
    building = env["building"] or host_building[env["hosts"][0]]
    settings = buildings[building]
    subnet = parse_network(settings["container_subnet"], "berth_buildings.%s.container_subnet" % building)
    env_hosts = env["hosts"] or docker_hosts_of(building, docker_hosts, host_building)
    placement = place(env["services"], env_hosts)
    addresses = allocate_addresses(name, [s for s in env["services"] if not s["proxy"]], subnet, taken)
    by_name = {service["name"]: service for service in env["services"]}
    services = []
    for service_name in start_order(env["services"]):
        service = by_name[service_name]
        services.append(
            {
                "name": service_name,
                "container": env_container(name, service_name),
                "host": placement[service_name],
                "ip": addresses.get(service_name),
                "proxy": service["proxy"],
                "app": env_app(name, service_name),
                "image": str(in_registry(service["image"], settings.get("registry"))),
                "version": tag_of(service["image"]),
                "ports": service["ports"],
                # what a proxied app listens on in its container: its first port
                "container_port": int(service["ports"][0].split("/")[0]) if service["ports"] else None,
                "volumes": [
                    {"name": env_volume(name, service_name, volume["name"]), "target": volume["target"], "read_only": volume["read_only"]}
                    for volume in service["volumes"]
                ],
                "health": service["health"],
                "depends_on": service["depends_on"],
                "command": service["command"],
                "labels": {LABEL_ENV: name, LABEL_SERVICE: service_name, LABEL_BUILDING: building},
                **container_settings(service),
            }
        )
    link = settings.get("container_link_subnet")
    return {
        "name": name,
        "building": building,
        "subnet": str(subnet),
        # The fixed-IP network: the container subnet itself (a routed VLAN), or
        # the wider L2 it is carved from, handing out addresses from the subnet.
        "network_subnet": link or str(subnet),
        "network_gateway": settings.get("container_gateway") or gateway(link or subnet),
        "gateway": gateway(subnet),
        "hosts": sorted(set(placement.values())),
        "network": env_network(name),
        "building_network": building_network(building),
        # the fixed-IP network is the building's, shared by its environments
        "building_network_labels": {LABEL_BUILDING: building},
        # the name of its opening in the host firewall (apps' listen ports)
        "opening": env_opening(name),
        "reach": env["reach"],
        # networks of other environments this one's services join (by name there)
        "reach_networks": [env_network(other) for other in env["reach"]],
        # who may reach the proxied apps' listen ports through the host firewall
        "proxy_sources": env["proxy_sources"],
        # for the network and volumes: what owned_objects and name_clashes go by
        "labels": {LABEL_ENV: name, LABEL_BUILDING: building},
        "services": services,
    }


# -- output and teardown ---------------------------------------------------------------
TABLE_COLUMNS = ("service", "host", "ip", "ports", "health")


def _health_text(health):
    if "cmd" in health:
        return "cmd"
    if "tcp" in health:
        return "tcp:%s" % health["tcp"]
    return "http:%s%s" % (health.get("port"), health.get("http"))


def _cell(value):
    if value is None or value in ("", []):
        return "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return _health_text(value)
    return str(value)


def env_table(rows):
    """A plain-text table of the services, for the playbook to print."""
    cells = [list(TABLE_COLUMNS)] + [[_cell(row.get(column)) for column in TABLE_COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


def _labelled_env(item):
    return (item.get("labels") or {}).get(LABEL_ENV)


def owned_objects(objects, env_name):
    """The Docker objects (dicts with kind, name, labels) of one environment.

    A berth.env label decides on its own: names alone are ambiguous once env
    names have dashes (env "a" service "b-c" and env "a-b" service "c" are
    both berth-env-a-b-c). Unlabelled objects go by name.
    """
    owned = []
    for item in objects:
        label = _labelled_env(item)
        if label is not None:
            if label == env_name:
                owned.append(item)
        elif item.get("name") == env_network(env_name) or str(item.get("name", "")).startswith(env_network(env_name) + "-"):
            owned.append(item)
    return owned


def name_clashes(plan, objects):
    """Errors for existing objects that carry a name the plan would create but
    are labelled as another environment's."""
    wanted = {("network", plan["network"])}
    for service in plan["services"]:
        wanted.add(("container", service["container"]))
        wanted.update(("volume", volume["name"]) for volume in service["volumes"])
    errors = []
    for item in sorted(objects, key=lambda item: (item.get("kind", ""), item.get("name", ""))):
        label = _labelled_env(item)
        if (item.get("kind"), item.get("name")) in wanted and label is not None and label != plan["name"]:
            errors.append("%s %s belongs to environment %s, not %s" % (item["kind"], item["name"], label, plan["name"]))
    return errors


def taken_addresses(containers, network):
    """{ip: "env/service"} of the environments' containers on a building's
    fixed-IP network, from `docker ps`-style container lists (with Labels)."""
    taken = {}
    for container in containers:
        labels = container.get("Labels") or {}
        if LABEL_ENV not in labels:
            continue
        address = (((container.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}).get("IPAddress")
        if address:
            taken[address] = "%s/%s" % (labels[LABEL_ENV], labels.get(LABEL_SERVICE, ""))
    return taken


def reach_errors(plan, containers):
    """Service names this environment shares with one it reaches: joining
    that network, a name like `db` would resolve to either environment's."""
    reached = {}
    for container in containers:
        labels = container.get("Labels") or {}
        if labels.get(LABEL_ENV) in plan["reach"] and labels.get(LABEL_SERVICE):
            reached.setdefault(labels[LABEL_ENV], set()).add(labels[LABEL_SERVICE])
    own = {service["name"] for service in plan["services"]}
    return [
        "reach: %s also has service(s) %s, which would resolve to either environment there; rename them"
        % (other, ", ".join(sorted(own & names)))
        for other, names in sorted(reached.items())
        if own & names
    ]


def docker_healthcheck(health):
    """community.docker's healthcheck for a normalised health entry; None keeps the image's."""
    if not health:
        return None
    if "cmd" in health:
        test = ["CMD-SHELL", health["cmd"]]
    elif "tcp" in health:
        test = ["CMD-SHELL", "bash -c '</dev/tcp/127.0.0.1/%d'" % int(health["tcp"])]
    else:
        url = "http://127.0.0.1:%d%s" % (int(health["port"]), health["http"])
        test = ["CMD-SHELL", "python3 -c \"import urllib.request; urllib.request.urlopen('%s', timeout=3)\"" % url]
    return {"test": test, "interval": "%ss" % health["interval"], "timeout": "%ss" % health["timeout"], "retries": health["retries"]}


def volume_mount(volume):
    """A planned volume as a community.docker mount."""
    return {"type": "volume", "source": volume["name"], "target": volume["target"], "read_only": bool(volume["read_only"])}


def table_rows(services, health):
    """Rows of env_table from the plan's services and their health."""
    return [
        {
            "service": s["name"],
            "host": s["host"],
            "ip": s["ip"],
            "ports": (["%s:%d" % (s["host"], s["proxy"])] if s.get("proxy") else s["ports"]),
            "health": (health or {}).get(s["name"]),
        }
        for s in services
    ]


def service_networks(service, plan):
    """docker_container networks of a service with a fixed address."""
    networks = [
        {"name": plan["network"], "aliases": [service["name"]]},
        {"name": plan["building_network"], "ipv4_address": service["ip"]},
    ]
    return networks + [{"name": name} for name in plan["reach_networks"]]


def firewall_opening(plan, host):
    """The host firewall opening for the proxied apps on `host` (None when there are none)."""
    ports = [{"proto": "tcp", "ports": str(s["proxy"])} for s in plan["services"] if s.get("proxy") and s["host"] == host]
    return {"ports": ports, "sources": plan["proxy_sources"]} if ports else None


def proxy_apps(services, host):
    """The proxy role's apps for the proxied services placed on `host`."""
    return {s["app"]: {"listen": s["proxy"]} for s in services if s.get("proxy") and s["host"] == host}
