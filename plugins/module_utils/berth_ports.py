"""The port matrix: which ports each function needs. The firewall role, the
Rancher and Harbor roles, the README table and the tests all read it here."""

import re

PROTOCOLS = ("tcp", "udp")

# port set -> (description, [(protocol, "port" or "low-high"), ...])
PORT_MATRIX = {
    "ssh": ("SSH", [("tcp", "22")]),
    "web": ("HTTP and HTTPS", [("tcp", "80"), ("tcp", "443")]),
    "harbor": ("Harbor UI, API and registry, plus `firewall_harbor_extra_ports`", [("tcp", "80"), ("tcp", "443")]),
    "registry": ("Distribution registry on `firewall_registry_port`", []),
    "rancher_server": ("Rancher server UI, API and agent tunnel", [("tcp", "80"), ("tcp", "443")]),
    "rke2_server": (
        "RKE2 API server, supervisor, etcd client/peer/metrics, kubelet",
        [("tcp", "6443"), ("tcp", "9345"), ("tcp", "2379-2381"), ("tcp", "10250")],
    ),
    "rke2_agent": (
        "RKE2 nodes and CNI: canal/flannel VXLAN, calico VXLAN, canal health, WireGuard, kubelet, NodePorts",
        [
            ("udp", "8472"),
            ("udp", "4789"),
            ("tcp", "9099"),
            ("udp", "51820-51821"),
            ("tcp", "10250"),
            ("tcp", "30000-32767"),
            ("udp", "30000-32767"),
        ],
    ),
    "swarm": ("Docker Swarm management, gossip and overlay", [("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789")]),
    "ipsec": ("IPsec IKE and NAT traversal", [("udp", "500"), ("udp", "4500")]),
    "databases": ("MySQL/MariaDB, Redis, MongoDB", [("tcp", "3306"), ("tcp", "6379"), ("tcp", "27017")]),
}

DEFAULT_PARAMS = {"registry_port": 5000, "harbor_extra_ports": []}
PORT_SPEC = re.compile(r"^(\d+)(?:-(\d+))?$")


def port_range_error(spec, where):
    """Why `spec` ("22", "2379-2381", 22) is not a port or range, or None."""
    match = PORT_SPEC.match(str(spec).strip())
    if not match:
        return "%s: %r is not a port or a range like 2379-2381" % (where, spec)
    low = int(match.group(1))
    high = int(match.group(2) or low)
    for port in (low, high):
        if not 1 <= port <= 65535:
            return "%s: port %d is outside 1-65535" % (where, port)
    if low > high:
        return "%s: range %s runs backwards" % (where, spec)
    return None


def normalize_range(spec):
    """'2379-2381' -> '2379-2381', '22' -> '22', 22 -> '22'."""
    return str(spec).strip()


def entry_errors(entry, where):
    """Errors of one {proto, ports} entry."""
    if not isinstance(entry, dict):
        return ["%s must be a mapping with proto and ports" % where]
    errors = []
    if entry.get("proto") not in PROTOCOLS:
        errors.append("%s.proto: unknown protocol %r (use %s)" % (where, entry.get("proto"), " or ".join(PROTOCOLS)))
    error = port_range_error(entry.get("ports", ""), "%s.ports" % where)
    if error:
        errors.append(error)
    return errors


def params_errors(params, where="params"):
    errors = []
    merged = dict(DEFAULT_PARAMS, **(params or {}))
    error = port_range_error(merged["registry_port"], "%s.registry_port" % where)
    if error or "-" in str(merged["registry_port"]):
        errors.append(error or "%s.registry_port must be a single port" % where)
    extra = merged["harbor_extra_ports"]
    if not isinstance(extra, list):
        errors.append("%s.harbor_extra_ports must be a list" % where)
    else:
        for index, entry in enumerate(extra):
            errors.extend(entry_errors(entry, "%s.harbor_extra_ports[%d]" % (where, index)))
    return errors


def custom_sets_errors(custom, where="custom_port_sets"):
    if not isinstance(custom, dict):
        return ["%s must be a mapping of port set name to a list of {proto, ports}" % where]
    errors = []
    for name, entries in sorted(custom.items()):
        if name in PORT_MATRIX:
            errors.append("%s.%s: redefines a built-in port set" % (where, name))
        if not isinstance(entries, list) or not entries:
            errors.append("%s.%s must be a non-empty list of {proto, ports}" % (where, name))
            continue
        for index, entry in enumerate(entries):
            errors.extend(entry_errors(entry, "%s.%s[%d]" % (where, name, index)))
    return errors


def port_sets(params=None, custom=None):
    """Every port set, expanded: {name: [(proto, "port-or-range"), ...]}."""
    merged = dict(DEFAULT_PARAMS, **(params or {}))
    sets = {name: list(ports) for name, (_unused, ports) in PORT_MATRIX.items()}
    sets["registry"] = [("tcp", normalize_range(merged["registry_port"]))]
    sets["harbor"] = sets["harbor"] + [(e["proto"], normalize_range(e["ports"])) for e in merged["harbor_extra_ports"]]
    for name, entries in (custom or {}).items():
        sets[name] = [(e["proto"], normalize_range(e["ports"])) for e in entries]
    return sets


def port_set_names_errors(names, known, where):
    """Errors for names that are not port sets."""
    if not isinstance(names, list):
        return ["%s must be a list of port set names" % where]
    return [
        "%s[%d]: unknown port set %r (known: %s)" % (where, index, name, ", ".join(sorted(known)))
        for index, name in enumerate(names)
        if name not in known
    ]


def matrix_table():
    """The matrix as a Markdown table, for the README."""
    lines = ["| port set | ports | what |", "|---|---|---|"]
    for name, (description, ports) in PORT_MATRIX.items():
        if name == "registry":
            shown = "5000/tcp by default"
        else:
            shown = ", ".join("%s/%s" % (port, proto) for proto, port in ports)
        lines.append("| `%s` | %s | %s |" % (name, shown, description))
    return "\n".join(lines)
