"""The inventory model: buildings, their subnets, and which host sits where.

`berth_buildings` in an inventory is the one source of truth for buildings.
Every other piece (the docker role, the firewall, fixed-IP networks, the
lab) reads it through these functions.
"""

import ipaddress
import re

from ansible_collections.berth.ops.plugins.module_utils.berth_images import registry_error

SUBNET_KEYS = ("host_subnet", "container_subnet")
REQUIRED_KEYS = ("host_subnet",)
STRING_LIST_KEYS = ("registry_mirrors", "insecure_registries")
GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DOTTED_DIGITS = re.compile(r"^[0-9.]+$")


def parse_network(value, where):
    """Return an ip_network for a CIDR string, or raise ValueError naming `where`."""
    if not isinstance(value, str):
        raise ValueError("%s must be a CIDR string, got %s" % (where, type(value).__name__))
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError("%s: %r is not a network in CIDR notation (%s)" % (where, value, exc)) from None


def _building_field_errors(name, spec):
    errors = []
    if not GROUP_NAME.match(str(name)):
        errors.append("berth_buildings.%s: a building name must be a valid group name" % name)
    if not isinstance(spec, dict):
        return errors + ["berth_buildings.%s must be a mapping, got %s" % (name, type(spec).__name__)]
    for key in REQUIRED_KEYS:
        if key not in spec:
            errors.append("berth_buildings.%s.%s is required" % (name, key))
    for key in SUBNET_KEYS:
        if key in spec:
            try:
                parse_network(spec[key], "berth_buildings.%s.%s" % (name, key))
            except ValueError as exc:
                errors.append(str(exc))
    errors.extend(_container_link_errors(name, spec))
    if "registry" in spec:
        error = registry_error(spec["registry"])
        if error:
            errors.append("berth_buildings.%s.registry: %s" % (name, error))
    for key in STRING_LIST_KEYS:
        value = spec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            errors.append("berth_buildings.%s.%s must be a list of strings" % (name, key))
    return errors


def _container_link_errors(name, spec):
    """container_link_subnet: the L2 network container_subnet is carved from
    (shared by buildings on one flat network, so not overlap-checked);
    container_gateway: the router of fixed-IP containers."""
    where = "berth_buildings.%s." % name
    try:
        link = parse_network(spec["container_link_subnet"], where + "container_link_subnet") if "container_link_subnet" in spec else None
        subnet = parse_network(spec["container_subnet"], where + "container_subnet") if "container_subnet" in spec else None
    except ValueError as exc:
        return [str(exc)]
    errors = []
    if link is not None and (subnet is None or not subnet.subnet_of(link)):
        errors.append("%scontainer_link_subnet %s must contain container_subnet" % (where, link))
    if "container_gateway" in spec:
        try:
            address = ipaddress.ip_address(spec["container_gateway"])
        except ValueError:
            return errors + ["%scontainer_gateway: %r is not an IP address" % (where, spec["container_gateway"])]
        if address not in (link or subnet or ipaddress.ip_network("0.0.0.0/32")):
            errors.append("%scontainer_gateway %s is outside the container network" % (where, address))
    return errors


def building_networks(buildings):
    """All (label, network) pairs declared by the buildings, in a stable order."""
    networks = []
    for name in sorted(buildings):
        spec = buildings[name]
        for key in SUBNET_KEYS:
            if isinstance(spec, dict) and key in spec:
                networks.append(("%s.%s" % (name, key), parse_network(spec[key], "%s.%s" % (name, key))))
    return networks


def overlaps(labelled_a, labelled_b=None):
    """Pairs of labels whose networks overlap.

    With one list, compares every pair inside it; with two, compares across.
    """
    found = []
    if labelled_b is None:
        for i, (label_a, net_a) in enumerate(labelled_a):
            for label_b, net_b in labelled_a[i + 1 :]:
                if net_a.version == net_b.version and net_a.overlaps(net_b):
                    found.append((label_a, label_b))
        return found
    for label_a, net_a in labelled_a:
        for label_b, net_b in labelled_b:
            if net_a.version == net_b.version and net_a.overlaps(net_b):
                found.append((label_a, label_b))
    return found


def building_errors(buildings):
    """Type, value and overlap errors of a `berth_buildings` mapping."""
    if not isinstance(buildings, dict) or not buildings:
        return ["berth_buildings must be a non-empty mapping of building name to its settings"]
    errors = []
    for name in sorted(buildings):
        errors.extend(_building_field_errors(name, buildings[name]))
    if errors:
        return errors
    for label_a, label_b in overlaps(building_networks(buildings)):
        errors.append("subnets overlap: berth_buildings.%s and berth_buildings.%s" % (label_a, label_b))
    return errors


def membership_errors(buildings, groups):
    """Every host must sit in exactly one building group."""
    errors = []
    names = sorted(buildings) if isinstance(buildings, dict) else []
    for name in names:
        if name in ("all", "ungrouped"):
            errors.append("berth_buildings.%s: reserved group name" % name)
    for host in sorted(set(groups.get("all", []))):
        found = [name for name in names if host in groups.get(name, [])]
        if not found:
            errors.append("host %s belongs to no building (buildings: %s)" % (host, ", ".join(names)))
        elif len(found) > 1:
            errors.append("host %s belongs to %d buildings: %s" % (host, len(found), ", ".join(found)))
    # A builder builds with its own engine.
    for host in sorted(set(groups.get("builders", [])) - set(groups.get("docker_hosts", []))):
        errors.append("host %s is in builders but not in docker_hosts: a builder needs the Docker engine" % host)
    return errors


def inventory_errors(buildings, groups):
    """Everything that is wrong with the inventory as a whole."""
    errors = building_errors(buildings)
    if errors:
        return errors
    return membership_errors(buildings, groups)


def building_of(group_names, buildings):
    """The one building a host belongs to, from its group names."""
    found = [name for name in sorted(buildings or {}) if name in group_names]
    if len(found) != 1:
        raise ValueError("a host must belong to exactly one building, found %s among groups %s" % (found or "none", sorted(group_names)))
    return found[0]


def building_attr(buildings, group_names, key, default=None):
    """A setting of the host's building, e.g. its registry mirrors. Hosts
    outside the inventory's buildings (the control host) get the default."""
    if not buildings or not set(group_names) & set(buildings):
        return default
    return buildings[building_of(group_names, buildings)].get(key, default)


def building_registry(host_vars):
    """The registry of a host's building ('' if it has none), from the host's
    own variables (hostvars[inventory_hostname]): the one place that says
    where a host pulls and pushes by default."""
    return building_attr(host_vars.get("berth_buildings") or {}, host_vars.get("group_names") or [], "registry", "")


def overlapping_networks(cidrs, buildings):
    """Building subnets that any of `cidrs` overlaps, as readable strings."""
    mine = [(cidr, parse_network(cidr, cidr)) for cidr in cidrs]
    return ["%s overlaps %s" % pair for pair in overlaps(mine, building_networks(buildings or {}))]


def address_error(host, address, buildings, group_names):
    """Why `address` cannot be this host's address, or None.

    Names (not IP literals) are accepted as they are: they resolve elsewhere.
    An all-digits-and-dots name is no name (a top-level domain is never all
    digits): it is a mistyped IPv4 address, and refused.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        if isinstance(address, str) and DOTTED_DIGITS.match(address):
            return "host %s: ansible_host %s is not a valid IPv4 address" % (host, address)
        return None
    try:
        building = building_of(group_names, buildings)
    except ValueError as exc:
        return "host %s: %s" % (host, exc)
    subnet = parse_network(buildings[building]["host_subnet"], "%s.host_subnet" % building)
    if ip not in subnet:
        return "host %s: address %s is outside its building %s (%s)" % (host, ip, building, subnet)
    return None


def address_errors(hosts, hostvars, buildings):
    """address_error for each of `hosts`, read from `hostvars` (ansible_host,
    else the inventory name; group_names): one check for a whole play, run
    once, instead of a task per host."""
    problems = []
    for host in hosts:
        variables = hostvars[host]
        address = variables.get("ansible_host") or host
        problem = address_error(host, address, buildings, list(variables["group_names"]))
        if problem:
            problems.append(problem)
    return problems
