#!/usr/bin/python
"""Apply berth's firewall chains with a timed auto-revert, or confirm them."""

DOCUMENTATION = r"""
---
module: berth_firewall
short_description: berth's host firewall chains, applied with a timed auto-revert
description:
  - Renders BERTH-INPUT (host ports) and BERTH-DOCKER-USER (published container ports) for IPv4 and IPv6 from the
    port matrix and the inventory's buildings, and loads them with C(iptables-restore --noflush), so no other chain
    is touched.
  - With I(confirm_timeout) above zero, an apply saves the rules it replaces and arms a systemd timer that restores
    them unless I(action=confirm) arrives in time.
  - Check mode reports whether the rules would change; diff shows the ruleset change.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
options:
  action:
    description: C(apply) the rules, or C(confirm) the last apply.
    type: str
    choices:
      - apply
      - confirm
    default: apply
  port_sets:
    description: Port sets opened on this host.
    type: list
    elements: str
    default: []
  allow:
    description: 'Sources per port set, C({buildings: [...], cidrs: [...]}); C(own) and C(all) are building keywords.'
    type: dict
    default: {}
  default_sources:
    description: Sources of port sets missing from I(allow).
    type: dict
    default:
      buildings:
        - own
  published_ports:
    description: Published container ports with their sources, as C({proto, ports}) or C({port_set}), each with
      optional C(sources).
    type: list
    elements: dict
    default: []
  published_default_sources:
    description: Sources of published ports that are not declared.
    type: dict
    default:
      buildings:
        - own
  control_hosts:
    description: CIDRs that may always reach SSH.
    type: list
    elements: str
    default: []
  detect_control_host:
    description: Also allow SSH from the address this module was reached from.
    type: bool
    default: true
  icmp:
    description: Who may send ICMP (IPv6 neighbour discovery is always allowed).
    type: str
    choices:
      - any
      - buildings
      - none
    default: any
  trust_docker_bridges:
    description: Accept traffic entering from local Docker bridges.
    type: bool
    default: true
  params:
    description: Port matrix parameters (C(registry_port), C(harbor_extra_ports)).
    type: dict
    default: {}
  custom_port_sets:
    description: Extra port sets, name to a list of C({proto, ports}).
    type: dict
    default: {}
  buildings:
    description: The inventory's C(berth_buildings). Required to apply.
    type: dict
  building:
    description: This host's building. Required to apply.
    type: str
  confirm_timeout:
    description: Seconds to wait for I(action=confirm) before reverting; 0 applies without a revert timer.
    type: int
    default: 60
  expect_digests:
    description: With I(action=confirm), the digests returned by the apply; a confirm after a revert fails.
    type: dict
  state_dir:
    description: Where persisted, pending and rollback payloads are kept.
    type: path
    default: /etc/berth/firewall
  openings_dir:
    description:
      - Drop-ins that open more ports, one C(<name>.json) each holding C({ports, sources}); environments write them
        for their proxied ports. Defaults to C(<state_dir>/openings).
    type: path
  loader:
    description: The script that loads payloads (installed by the firewall role).
    type: path
    default: /usr/local/sbin/berth-firewall
  docker_daemon_json:
    description:
      - Docker's daemon.json on the host. A firewall-backend other than iptables is refused,
        because it has no DOCKER-USER chain for the published-port rules.
    type: path
    default: /etc/docker/daemon.json
"""

EXAMPLES = r"""
- name: Open SSH and the registry to the own building, with a 60 s safety net
  berth.ops.berth_firewall:
    port_sets: [ssh, registry]
    allow:
      registry: {buildings: [own, bldg_b]}
    buildings: "{{ berth_buildings }}"
    building: bldg_a
    confirm_timeout: 60
  register: applied

- name: Confirm over a new connection, so the rules stay
  berth.ops.berth_firewall:
    action: confirm
    expect_digests: "{{ applied.digests }}"
  when: applied is changed
"""

RETURN = r"""
digests:
  description: Digest of the IPv4 and IPv6 payloads.
  returned: always
  type: dict
  sample:
    ipv4: sha256:5f0c0b6c2b1e4d1f9a7e3c2d1b0a99887766554433221100ffeeddccbbaa9988
    ipv6: sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9f
rules:
  description: The rules of each family, one line each.
  returned: action=apply
  type: dict
  sample:
    ipv4:
      - -A BERTH-INPUT -p tcp --dport 22 -s 10.77.1.0/24 -j ACCEPT
    ipv6:
      - -A BERTH-INPUT -p ipv6-icmp -j ACCEPT
control_host:
  description: The address the module was reached from, when detected.
  returned: action=apply
  type: str
  sample: 10.77.0.1
revert_in:
  description: Seconds until the rules revert unless confirmed (0 when no timer was armed).
  returned: action=apply
  type: int
  sample: 60
openings:
  description: Names of the drop-in openings included in the rules.
  returned: action=apply
  type: list
  elements: str
  sample:
    - env.alpha
drift:
  description: The live chains differed from the persisted rules.
  returned: action=apply
  type: bool
  sample: false
"""

import ipaddress
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.ops.plugins.module_utils.berth_firewall import (
    DOCKER_CHAIN,
    FAMILIES,
    INPUT_CHAIN,
    docker_backend_error,
    live_digest,
    permissive_payload,
    plan,
    rule_count,
    spec_errors,
    with_openings,
)

SPEC_KEYS = (
    "port_sets",
    "allow",
    "default_sources",
    "published_ports",
    "published_default_sources",
    "control_hosts",
    "icmp",
    "trust_docker_bridges",
    "params",
    "custom_port_sets",
    "buildings",
    "building",
)
TOOLS = {"v4": "iptables", "v6": "ip6tables"}
REVERT_UNIT = "berth-firewall-revert"


def listing(module, family, chain):
    rc, out, _unused = module.run_command([TOOLS[family], "-w", "-S", chain])
    return out if rc == 0 else ""


def in_sync(module, family, payload):
    own = listing(module, family, INPUT_CHAIN)
    docker = listing(module, family, DOCKER_CHAIN)
    builtin_input = listing(module, family, "INPUT")
    docker_user = listing(module, family, "DOCKER-USER")
    forward = listing(module, family, "FORWARD")
    return (
        live_digest(own) == payload["digest"]
        and rule_count(own, INPUT_CHAIN) == payload["counts"][INPUT_CHAIN]
        and rule_count(docker, DOCKER_CHAIN) == payload["counts"][DOCKER_CHAIN]
        and "-P INPUT DROP" in builtin_input
        and "-A INPUT -j %s" % INPUT_CHAIN in builtin_input
        and "-A DOCKER-USER -j %s" % DOCKER_CHAIN in docker_user
        and "-A FORWARD -j DOCKER-USER" in forward
    )


def read(path):
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def write(path, text):
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(tmp, path)


def both(texts):
    return "".join("# %s\n%s" % (family, texts[family] or "") for family in FAMILIES)


def detect_control_host():
    client = (os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or "").split()
    if not client:
        return None
    address = ipaddress.ip_address(client[0].split("%")[0])
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(ipaddress.ip_network(address))


def read_openings(directory):
    """{name: opening} from the drop-in directory, and the errors found."""
    openings, errors = {}, []
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    except FileNotFoundError:
        return openings, errors
    for name in names:
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as stream:
                openings[name[: -len(".json")]] = json.load(stream)
        except ValueError as exc:
            errors.append("opening %s is not valid JSON: %s" % (os.path.join(directory, name), exc))
    return openings, errors


def disarm(module):
    module.run_command(["systemctl", "stop", REVERT_UNIT + ".timer", REVERT_UNIT + ".service"])
    module.run_command(["systemctl", "reset-failed", REVERT_UNIT + ".timer", REVERT_UNIT + ".service"])


def apply(module, spec):
    state_dir = module.params["state_dir"]
    control_host = detect_control_host() if module.params["detect_control_host"] else None
    if control_host:
        spec["control_hosts"] = [*spec["control_hosts"], control_host]
    payloads = plan(spec)
    persisted = {family: read(os.path.join(state_dir, "rules.%s" % family)) for family in FAMILIES}
    live_ok = {family: in_sync(module, family, payloads[family]) for family in FAMILIES}
    files_ok = all(persisted[family] == payloads[family]["text"] for family in FAMILIES)
    result = {
        "changed": not (files_ok and all(live_ok.values())),
        "digests": {family: payloads[family]["digest"] for family in FAMILIES},
        "rules": {family: payloads[family]["text"].splitlines() for family in FAMILIES},
        "control_host": control_host,
        "openings": sorted(set(spec["port_sets"]) - set(module.params["port_sets"])),
        "drift": files_ok and not all(live_ok.values()),
        "revert_in": 0,
    }
    if module._diff:
        before = both(persisted)
        if result["drift"]:
            before += "# the live chains differ from these persisted rules\n"
        result["diff"] = {
            "before": before,
            "after": both({family: payloads[family]["text"] for family in FAMILIES}),
            "before_header": os.path.join(state_dir, "rules.*"),
            "after_header": "planned rules",
        }
    if not result["changed"] or module.check_mode:
        return result

    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    for family in FAMILIES:
        write(os.path.join(state_dir, "rollback.%s" % family), persisted[family] or permissive_payload()["text"])
        write(os.path.join(state_dir, "pending.%s" % family), payloads[family]["text"])
    timeout = module.params["confirm_timeout"]
    disarm(module)
    if timeout > 0:
        module.run_command(
            [
                "systemd-run",
                "--unit=%s" % REVERT_UNIT,
                "--on-active=%ds" % timeout,
                "--timer-property=AccuracySec=1s",
                module.params["loader"],
                "revert",
            ],
            check_rc=True,
        )
        result["revert_in"] = timeout
    rc, _unused, err = module.run_command([module.params["loader"], "load-pending"])
    if rc != 0:
        disarm(module)
        module.run_command([module.params["loader"], "revert"])
        module.fail_json(msg="loading the new rules failed, previous rules restored: %s" % err.strip(), **result)
    if timeout == 0:
        promote(state_dir)
    return result


def promote(state_dir):
    for family in FAMILIES:
        os.replace(os.path.join(state_dir, "pending.%s" % family), os.path.join(state_dir, "rules.%s" % family))


def confirm(module):
    state_dir = module.params["state_dir"]
    pending = {family: read(os.path.join(state_dir, "pending.%s" % family)) for family in FAMILIES}
    expected = module.params["expect_digests"] or {}
    if not all(pending.values()):
        live = {family: live_digest(listing(module, family, INPUT_CHAIN)) for family in FAMILIES}
        if expected and any(live.get(family) != digest for family, digest in expected.items()):
            module.fail_json(msg="the rules were reverted before they were confirmed", digests=live)
        return {"changed": False, "digests": live}
    if module.check_mode:
        return {"changed": True, "digests": expected}
    disarm(module)
    promote(state_dir)
    return {"changed": True, "digests": expected}


def read_daemon_json(path):
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None  # no engine, or the docker role reports a broken file


def main():
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["apply", "confirm"], "default": "apply"},
            "port_sets": {"type": "list", "elements": "str", "default": []},
            "allow": {"type": "dict", "default": {}},
            "default_sources": {"type": "dict", "default": {"buildings": ["own"]}},
            "published_ports": {"type": "list", "elements": "dict", "default": []},
            "published_default_sources": {"type": "dict", "default": {"buildings": ["own"]}},
            "control_hosts": {"type": "list", "elements": "str", "default": []},
            "detect_control_host": {"type": "bool", "default": True},
            "icmp": {"type": "str", "choices": ["any", "buildings", "none"], "default": "any"},
            "trust_docker_bridges": {"type": "bool", "default": True},
            "params": {"type": "dict", "default": {}},
            "custom_port_sets": {"type": "dict", "default": {}},
            "buildings": {"type": "dict"},
            "building": {"type": "str"},
            "confirm_timeout": {"type": "int", "default": 60},
            "expect_digests": {"type": "dict"},
            "state_dir": {"type": "path", "default": "/etc/berth/firewall"},
            "openings_dir": {"type": "path"},
            "loader": {"type": "path", "default": "/usr/local/sbin/berth-firewall"},
            "docker_daemon_json": {"type": "path", "default": "/etc/docker/daemon.json"},
        },
        required_if=[("action", "apply", ["buildings", "building"])],
        supports_check_mode=True,
    )
    if module.params["action"] == "confirm":
        module.exit_json(**confirm(module))
    spec = {key: module.params[key] for key in SPEC_KEYS}
    openings, errors = read_openings(module.params["openings_dir"] or os.path.join(module.params["state_dir"], "openings"))
    try:
        spec = with_openings(spec, openings)
    except ValueError as exc:
        errors.append(str(exc))
    errors += spec_errors(spec)
    if module.params["confirm_timeout"] < 0:
        errors.append("confirm_timeout must not be negative")
    backend = docker_backend_error(read_daemon_json(module.params["docker_daemon_json"]))
    if backend:
        errors.append(backend)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    for tool in TOOLS.values():
        if not module.get_bin_path(tool):
            module.fail_json(msg="%s is not installed" % tool)
    module.exit_json(**apply(module, spec))


if __name__ == "__main__":
    main()
