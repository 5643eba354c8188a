"""Plan of the local lab: building subnets carved out of one campus network,
and a fixed address for every host container."""

import ipaddress
import os

from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import building_errors

DEFAULT_LAB = "berth-lab"
HOST_PREFIX = 24
CONTAINER_SUBNET_OFFSET = 100
FIRST_HOST_OCTET = 11
# The Debian releases a lab host can run; scripts/host-image.sh builds one
# image for each.
RELEASES = ("bookworm", "trixie")


# A lab sized by parameters (make lab LAB_HOSTS=20 LAB_BUILDINGS=4): at most
# 26 buildings (one letter each) and this many hosts, which the 2-core,
# 24 GiB machines hold with room for their builds (README, "The lab").
MAX_LAB_HOSTS = 40


def _count(value, what, low, high):
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("%s must be a whole number, not %r" % (what, value)) from None
    if not low <= number <= high:
        raise ValueError("%s must be within %d..%d, not %d" % (what, low, high, number))
    return number


def sized_topology(topology, hosts="", buildings=""):
    """The topology unchanged when neither size is given; otherwise
    `hosts` hosts spread in turn over `buildings` buildings (bldg_a,
    bldg_b, ...; hosts a1, b1, ..., a2, ...), Debian 12 and 13 alternating
    within and across buildings, and the registry on the default's registry host
    (a1); each building's first host without the registry is its builder. A size left empty keeps the default's (5 hosts, 3 buildings)."""
    if str(hosts).strip() == "" and str(buildings).strip() == "":
        return topology
    default_hosts = sum(len(spec["hosts"]) for spec in topology["buildings"].values())
    count = _count(hosts if str(hosts).strip() else default_hosts, "LAB_HOSTS", 1, MAX_LAB_HOSTS)
    places = _count(buildings if str(buildings).strip() else len(topology["buildings"]), "LAB_BUILDINGS", 1, 26)
    if places > count:
        raise ValueError("LAB_BUILDINGS (%d) must not exceed LAB_HOSTS (%d): every building needs a host" % (places, count))
    registry = dict(topology.get("registry") or {"host": "a1", "port": 5000})
    sized = {"release": topology.get("release", RELEASES[0]), "registry": registry, "buildings": {}}
    for position in range(count):
        letter = "abcdefghijklmnopqrstuvwxyz"[position % places]
        short = "%s%d" % (letter, position // places + 1)
        building = sized["buildings"].setdefault("bldg_" + letter, {"index": position % places + 1, "hosts": {}})
        groups = ["docker_hosts"] + (["registry"] if short == registry["host"] else [])
        # A building's first host that does not keep the registry builds.
        if short != registry["host"] and not any("builders" in h["groups"] for h in building["hosts"].values()):
            groups.append("builders")
        # Releases alternate within a building and from one building to the next.
        building["hosts"][short] = {"groups": groups, "release": RELEASES[(position // places + position % places) % 2]}
    if registry["host"] not in {h for spec in sized["buildings"].values() for h in spec["hosts"]}:
        raise ValueError("the registry host %s is not in the sized lab" % registry["host"])
    return sized


def cgroup_paths(container_id, v1, v2, root="/sys/fs/cgroup"):
    """Where a lab host container's cgroup may keep a figure, in the order to
    try: `v1` is (controller, file) under cgroup v1's docker/ tree, `v2` a
    file of its scope under cgroup v2."""
    return ["%s/%s/docker/%s/%s" % (root, v1[0], container_id, v1[1]), "%s/system.slice/docker-%s.scope/%s" % (root, container_id, v2)]


def memory_in_use(stat_text, usage):
    """Bytes a cgroup uses without the page cache it could drop, as `docker
    stats` counts it: usage less inactive file pages (cgroup v1's
    total_inactive_file, v2's inactive_file)."""
    for line in stat_text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] in ("total_inactive_file", "inactive_file"):
            return max(0, usage - int(fields[1]))
    return usage


def lab_plan(topology, name, campus):
    """Turn the lab topology into networks, hosts and groups.

    Building N gets host subnet N and container subnet 100+N (both /24) of
    the campus; hosts get .11, .12, ... in their building's host subnet.
    The campus' first /24 is left to Docker's own address allocation.
    A host runs its own `release`, else its building's, else the topology's
    (bookworm when none is given). A host is a list of function groups or a
    mapping with `groups` and `release`.
    """
    campus_net = ipaddress.ip_network(campus, strict=True)
    if campus_net.version != 4 or campus_net.prefixlen > 16:
        raise ValueError("lab campus %s must be an IPv4 network of /16 or larger" % campus)
    slots = list(campus_net.subnets(new_prefix=HOST_PREFIX))
    fleet_release = topology.get("release", RELEASES[0])
    buildings, hosts, groups = {}, [], {}
    for building, spec in sorted(topology["buildings"].items()):
        index = int(spec["index"])
        if not 1 <= index < CONTAINER_SUBNET_OFFSET:
            raise ValueError("lab building %s: index %d must be within 1..99" % (building, index))
        host_subnet = slots[index]
        buildings[building] = {
            "host_subnet": str(host_subnet),
            "container_subnet": str(slots[CONTAINER_SUBNET_OFFSET + index]),
            # The lab is one flat campus L2: fixed-IP containers sit on it
            # directly, routed by the campus gateway.
            "container_link_subnet": str(campus_net),
            "container_gateway": str(campus_net.network_address + 1),
        }
        buildings[building].update(spec.get("settings", {}))
        building_release = spec.get("release", fleet_release)
        for position, (short, host_spec) in enumerate(sorted(spec["hosts"].items())):
            if isinstance(host_spec, dict):
                functions, release = host_spec.get("groups", []), host_spec.get("release", building_release)
            else:
                functions, release = host_spec, building_release
            if release not in RELEASES:
                raise ValueError("lab host %s: release %r is not one of %s" % (short, release, ", ".join(RELEASES)))
            host = {
                "name": "%s-%s" % (name, short),
                "building": building,
                "address": str(host_subnet.network_address + FIRST_HOST_OCTET + position),
                "groups": sorted(functions),
                "release": release,
                "volume": "%s-%s-docker" % (name, short),
            }
            hosts.append(host)
            for group in [building] + host["groups"]:
                groups.setdefault(group, []).append(host["name"])
    registry = topology.get("registry")
    if registry:
        address = next((h["address"] for h in hosts if h["name"] == "%s-%s" % (name, registry["host"])), None)
        if address is None:
            raise ValueError("lab registry host %r is not a lab host" % registry["host"])
        for spec in buildings.values():
            spec.setdefault("registry", "%s:%d" % (address, int(registry.get("port", 5000))))
    errors = building_errors(buildings)
    if errors:
        raise ValueError("; ".join(errors))
    return {
        "name": name,
        "network": "%s-campus" % name,
        "campus": str(campus_net),
        "gateway": str(campus_net.network_address + 1),
        "dynamic_range": str(slots[0]),
        "buildings": buildings,
        "hosts": hosts,
        "groups": {group: sorted(members) for group, members in sorted(groups.items())},
    }


def lab_paths(root, name):
    """Where a lab keeps its state and its inventory. `make lab`'s own lab
    writes the repo's inventories/lab, so README commands work as written;
    any other lab (the tests', the bench's) keeps it in its state directory."""
    state_dir = "%s/.lab/%s" % (root, name)
    inventory_dir = "%s/inventories/lab" % root if name == DEFAULT_LAB else "%s/inventory" % state_dir
    return {
        "state_dir": state_dir,
        "inventory_dir": inventory_dir,
        "inventory": "%s/hosts.yml" % inventory_dir,
        # What the converge writes into the inventory: the secrets file and the CA's certificate.
        "inventory_written": ["%s/berth_secrets.vault.yml" % inventory_dir, "%s/berth-ca.crt" % inventory_dir],
        # One vault password for every lab of the checkout (scripts/lab-vault-password).
        "vault_password_file": "%s/.lab/vault-pass" % root,
    }


def lab_inventory(plan, state_dir, host_image="", inventory_dir=None):
    """The YAML inventory of a planned lab: building groups carry the hosts'
    addresses, function groups list members only. `host_image` (the image
    the hosts run) is the Debian base that playbooks can build on. The lab's
    secrets file lives in its inventory directory, encrypted with the
    password every lab of the checkout shares (.lab/vault-pass)."""
    inventory_dir = inventory_dir or "%s/inventory" % state_dir
    children = {}
    for group, members in plan["groups"].items():
        if group in plan["buildings"]:
            addresses = {host["name"]: host["address"] for host in plan["hosts"]}
            children[group] = {"hosts": {member: {"ansible_host": addresses[member]} for member in members}}
        else:
            children[group] = {"hosts": {member: None for member in members}}
    return {
        "all": {
            "vars": {
                "berth_environment": "lab",
                "berth_lab_name": plan["name"],
                "berth_lab_host_image": host_image,
                "berth_buildings": plan["buildings"],
                "ansible_user": "root",
                "ansible_ssh_private_key_file": "%s/id_ed25519" % state_dir,
                "ansible_ssh_common_args": "-o UserKnownHostsFile=%s/known_hosts -o StrictHostKeyChecking=yes" % state_dir,
                "berth_secrets_file": "%s/berth_secrets.vault.yml" % inventory_dir,
                "berth_secrets_password_file": "%s/vault-pass" % os.path.dirname(state_dir),
            },
            "children": children,
        }
    }
