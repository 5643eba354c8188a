"""Which firewall rules a host gets, as iptables-restore payloads.

berth owns two chains per family and nothing else:
- BERTH-INPUT, jumped to from INPUT (whose policy becomes DROP);
- BERTH-DOCKER-USER, jumped to from Docker's DOCKER-USER chain. Published
  container ports are DNAT-ed before the filter table sees them, so they are
  matched on the original destination port through conntrack.
Payloads are loaded with `iptables-restore --noflush`: only the chains they
declare are replaced, so Docker's own chains are never flushed.
"""

import hashlib
import ipaddress
import re

from ansible_collections.berth.ops.plugins.module_utils.berth_ports import (
    PROTOCOLS,
    custom_sets_errors,
    entry_errors,
    params_errors,
    port_set_names_errors,
    port_sets,
)

INPUT_CHAIN = "BERTH-INPUT"
DOCKER_CHAIN = "BERTH-DOCKER-USER"
ICMP_MODES = ("any", "buildings", "none")
SOURCE_KEYWORDS = ("own", "all")
MARKER = "berth-ruleset:"
FAMILIES = {"v4": 4, "v6": 6}
# ICMPv6 that IPv6 cannot work without (neighbour discovery, PMTU).
ICMPV6_ESSENTIAL = (
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "router-solicitation",
    "router-advertisement",
    "neighbour-solicitation",
    "neighbour-advertisement",
)


def _network_error(value, where):
    try:
        ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        return "%s: %r is not a CIDR (%s)" % (where, value, exc)
    return None


def sources_errors(sources, buildings, where):
    """Errors of a {buildings: [...], cidrs: [...]} source declaration."""
    if not isinstance(sources, dict):
        return ["%s must be a mapping with buildings and/or cidrs" % where]
    errors = []
    unknown_keys = sorted(set(sources) - {"buildings", "cidrs"})
    if unknown_keys:
        errors.append("%s: unknown keys %s (use buildings, cidrs)" % (where, ", ".join(unknown_keys)))
    names = sources.get("buildings", [])
    if not isinstance(names, list):
        errors.append("%s.buildings must be a list" % where)
    else:
        for index, name in enumerate(names):
            if name not in SOURCE_KEYWORDS and name not in buildings:
                errors.append(
                    "%s.buildings[%d]: unknown building %r (known: %s)"
                    % (where, index, name, ", ".join(list(SOURCE_KEYWORDS) + sorted(buildings)))
                )
    cidrs = sources.get("cidrs", [])
    if not isinstance(cidrs, list):
        errors.append("%s.cidrs must be a list" % where)
    else:
        for index, cidr in enumerate(cidrs):
            error = _network_error(cidr, "%s.cidrs[%d]" % (where, index))
            if error:
                errors.append(error)
    return errors


def spec_errors(spec, prefix=""):
    """Everything wrong with a firewall spec; field names carry `prefix`."""
    errors = []
    buildings = spec.get("buildings") or {}
    if spec.get("building") not in buildings:
        errors.append("%sbuilding: %r is not one of the inventory's buildings" % (prefix, spec.get("building")))
    errors.extend(params_errors(spec.get("params"), prefix + "params"))
    errors.extend(custom_sets_errors(spec.get("custom_port_sets") or {}, prefix + "custom_port_sets"))
    if errors:
        return errors
    known = port_sets(spec.get("params"), spec.get("custom_port_sets"))
    errors.extend(port_set_names_errors(spec.get("port_sets", []), known, prefix + "port_sets"))
    allow = spec.get("allow") or {}
    if not isinstance(allow, dict):
        errors.append("%sallow must be a mapping of port set to sources" % prefix)
        allow = {}
    for name, sources in sorted(allow.items()):
        if name not in known:
            errors.append("%sallow.%s: unknown port set %r (known: %s)" % (prefix, name, name, ", ".join(sorted(known))))
        errors.extend(sources_errors(sources, buildings, "%sallow.%s" % (prefix, name)))
    for key in ("default_sources", "published_default_sources"):
        errors.extend(sources_errors(spec.get(key, {}), buildings, prefix + key))
    published = spec.get("published_ports") or []
    if not isinstance(published, list):
        errors.append("%spublished_ports must be a list" % prefix)
        published = []
    for index, entry in enumerate(published):
        where = "%spublished_ports[%d]" % (prefix, index)
        if isinstance(entry, dict) and "port_set" in entry:
            if entry["port_set"] not in known:
                errors.append("%s.port_set: unknown port set %r (known: %s)" % (where, entry["port_set"], ", ".join(sorted(known))))
        else:
            errors.extend(entry_errors(entry, where))
        if isinstance(entry, dict) and "sources" in entry:
            errors.extend(sources_errors(entry["sources"], buildings, where + ".sources"))
    for index, cidr in enumerate(spec.get("control_hosts") or []):
        error = _network_error(cidr, "%scontrol_hosts[%d]" % (prefix, index))
        if error:
            errors.append(error)
    if spec.get("icmp", "any") not in ICMP_MODES:
        errors.append("%sicmp: %r is not one of %s" % (prefix, spec.get("icmp"), ", ".join(ICMP_MODES)))
    return errors


OPENING_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")


def opening_name_errors(name):
    """[] when `name` can name an opening (and its drop-in file)."""
    if isinstance(name, str) and OPENING_NAME.match(name):
        return []
    return ["opening %s: the name must match %s" % (name, OPENING_NAME.pattern)]


def with_openings(spec, openings):
    """The spec plus openings other playbooks dropped on the host (an
    environment's proxied ports, say): {name: {"ports": [{proto, ports}],
    "sources": {...}}}. Each becomes a port set of its own, opened to its
    sources, so removing the drop-in closes exactly what it opened."""
    errors = []
    merged = dict(spec)
    custom = dict(spec.get("custom_port_sets") or {})
    allow = dict(spec.get("allow") or {})
    names = list(spec.get("port_sets") or [])
    for name, opening in sorted((openings or {}).items()):
        where = "opening %s" % name
        if opening_name_errors(name):
            errors.extend(opening_name_errors(name))
            continue
        if name in custom or name in allow:
            errors.append("%s: clashes with a port set of the same name" % where)
            continue
        if not isinstance(opening, dict) or set(opening) - {"ports", "sources"}:
            errors.append("%s must be a mapping with ports and sources only" % where)
            continue
        # Named as the opening's caller wrote them, not as the port set and
        # allow entry they become below.
        found = _opening_field_errors(opening, spec.get("buildings") or {})
        if found:
            errors.extend("%s: %s" % (where, error) for error in found)
            continue
        custom[name] = opening.get("ports")
        allow[name] = opening.get("sources", spec.get("default_sources") or {"buildings": ["own"]})
        names.append(name)
    merged.update(custom_port_sets=custom, allow=allow, port_sets=names)
    if errors:
        raise ValueError("; ".join(errors))
    return merged


def _opening_field_errors(opening, buildings):
    ports = opening.get("ports")
    if not isinstance(ports, list) or not ports:
        return ["ports must be a non-empty list of {proto, ports}"]
    errors = []
    for index, entry in enumerate(ports):
        errors.extend(entry_errors(entry, "ports[%d]" % index))
    if "sources" in opening:
        errors.extend(sources_errors(opening["sources"], buildings, "sources"))
    return errors


def openings_errors(spec, openings):
    """Everything wrong with a spec once `openings` are added to it."""
    try:
        return spec_errors(with_openings(spec, openings))
    except ValueError as exc:
        return [str(exc)]


def resolve_sources(sources, buildings, own):
    """Networks a source declaration stands for, de-duplicated and sorted."""
    networks = set()
    for name in sources.get("buildings", []):
        names = sorted(buildings) if name == "all" else [own if name == "own" else name]
        for building in names:
            for key in ("host_subnet", "container_subnet"):
                if buildings[building].get(key):
                    networks.add(ipaddress.ip_network(buildings[building][key]))
    for cidr in sources.get("cidrs", []):
        networks.add(ipaddress.ip_network(str(cidr)))
    return sorted(networks, key=lambda net: (net.version, net.network_address.packed, net.prefixlen))


def _port_arg(ports):
    return ports.replace("-", ":")


def _accept_ports(chain, network, entries, comment):
    """One rule per protocol; multiport when a protocol has several entries."""
    rules = []
    for proto in PROTOCOLS:
        wanted = [_port_arg(ports) for p, ports in entries if p == proto]
        if not wanted:
            continue
        if len(wanted) == 1:
            match = "-p %s --dport %s" % (proto, wanted[0])
        else:
            match = "-p %s -m multiport --dports %s" % (proto, ",".join(wanted))
        rules.append('-A %s -s %s %s -m comment --comment "%s" -j ACCEPT' % (chain, network, match, comment))
    return rules


def _input_rules(spec, version, sets, buildings, own):
    icmp = "icmp" if version == 4 else "ipv6-icmp"
    rules = [
        "-A %s -i lo -j ACCEPT" % INPUT_CHAIN,
        "-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" % INPUT_CHAIN,
        "-A %s -m conntrack --ctstate INVALID -j DROP" % INPUT_CHAIN,
    ]
    if spec.get("trust_docker_bridges", True):
        rules += ["-A %s -i docker0 -j ACCEPT" % INPUT_CHAIN, "-A %s -i br-+ -j ACCEPT" % INPUT_CHAIN]
    if version == 6:
        rules += ["-A %s -p ipv6-icmp --icmpv6-type %s -j ACCEPT" % (INPUT_CHAIN, kind) for kind in ICMPV6_ESSENTIAL]
    mode = spec.get("icmp", "any")
    if mode == "any":
        rules.append("-A %s -p %s -j ACCEPT" % (INPUT_CHAIN, icmp))
    elif mode == "buildings":
        for network in resolve_sources({"buildings": ["all"]}, buildings, own):
            if network.version == version:
                rules.append("-A %s -s %s -p %s -j ACCEPT" % (INPUT_CHAIN, network, icmp))
    for cidr in spec.get("control_hosts") or []:
        network = ipaddress.ip_network(str(cidr))
        if network.version == version:
            rules += _accept_ports(INPUT_CHAIN, network, sets["ssh"], "control host")
    allow = spec.get("allow") or {}
    default = spec.get("default_sources") or {"buildings": ["own"]}
    for name in sorted(set(spec.get("port_sets", []))):
        for network in resolve_sources(allow.get(name, default), buildings, own):
            if network.version == version:
                rules += _accept_ports(INPUT_CHAIN, network, sets[name], name)
    return rules


def _docker_rules(spec, version, sets, buildings, own):
    rules = [
        "-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN" % DOCKER_CHAIN,
        # Only published ports (DNAT) are filtered; container egress is not.
        "-A %s -m conntrack ! --ctstate DNAT -j RETURN" % DOCKER_CHAIN,
    ]
    if spec.get("trust_docker_bridges", True):
        rules += ["-A %s -i docker0 -j RETURN" % DOCKER_CHAIN, "-A %s -i br-+ -j RETURN" % DOCKER_CHAIN]
    default = spec.get("published_default_sources") or {"buildings": ["own"]}
    for entry in spec.get("published_ports") or []:
        entries = sets[entry["port_set"]] if "port_set" in entry else [(entry["proto"], str(entry["ports"]).strip())]
        comment = "published %s" % (entry.get("port_set") or "%s/%s" % (entry["ports"], entry["proto"]))
        networks = [n for n in resolve_sources(entry.get("sources", default), buildings, own) if n.version == version]
        for proto, ports in entries:
            match = "-p %s -m conntrack --ctorigdstport %s" % (proto, _port_arg(ports))
            rules += ['-A %s -s %s %s -m comment --comment "%s" -j RETURN' % (DOCKER_CHAIN, n, match, comment) for n in networks]
            rules.append('-A %s %s -m comment --comment "%s" -j DROP' % (DOCKER_CHAIN, match, comment))
    for network in resolve_sources(default, buildings, own):
        if network.version == version:
            rules.append('-A %s -s %s -m comment --comment "published default" -j RETURN' % (DOCKER_CHAIN, network))
    rules.append("-A %s -j DROP" % DOCKER_CHAIN)
    return rules


def _payload(policy, input_rules, docker_rules):
    body = [":INPUT %s [0:0]" % policy, ":%s - [0:0]" % INPUT_CHAIN, ":%s - [0:0]" % DOCKER_CHAIN]
    digest = hashlib.sha256("\n".join(body + input_rules + docker_rules).encode()).hexdigest()[:16]
    marker = '-A %s -m comment --comment "%s%s"' % (INPUT_CHAIN, MARKER, digest)
    lines = ["*filter", *body, marker, *input_rules, *docker_rules, "COMMIT"]
    return {
        "text": "\n".join(lines) + "\n",
        "digest": digest,
        "counts": {INPUT_CHAIN: len(input_rules) + 1, DOCKER_CHAIN: len(docker_rules)},
    }


def plan(spec):
    """{"v4": payload, "v6": payload}; a payload is {text, digest, counts}."""
    errors = spec_errors(spec)
    if errors:
        raise ValueError("; ".join(errors))
    sets = port_sets(spec.get("params"), spec.get("custom_port_sets"))
    buildings, own = spec["buildings"], spec["building"]
    return {
        family: _payload(
            "DROP",
            _input_rules(spec, version, sets, buildings, own),
            _docker_rules(spec, version, sets, buildings, own),
        )
        for family, version in FAMILIES.items()
    }


def permissive_payload():
    """What a host had before berth: INPUT open, berth's chains empty."""
    return _payload("ACCEPT", [], [])


def live_digest(chain_listing):
    """The ruleset digest found in `iptables -S BERTH-INPUT` output, or None."""
    for line in chain_listing.splitlines():
        if MARKER in line:
            return line.split(MARKER, 1)[1].split('"')[0].strip()
    return None


def rule_count(chain_listing, chain):
    return sum(1 for line in chain_listing.splitlines() if line.startswith("-A %s " % chain))


def docker_backend_error(daemon_config):
    """Why the rules cannot guard published ports under this daemon.json, or
    None. Docker's nftables backend (28+) has no DOCKER-USER chain, so the
    published-port filter would silently never run."""
    if not isinstance(daemon_config, dict):
        return None
    backend = daemon_config.get("firewall-backend")
    if backend is not None and backend != "iptables":
        return (
            "Docker's firewall-backend is %r in daemon.json: it has no DOCKER-USER chain, so berth cannot filter "
            "published ports there; set docker_daemon_extra_options firewall-backend to iptables (or leave it out)" % (backend,)
        )
    return None
