"""daemon.json for berth's docker role: the checks behind the role's
variables and the file itself, and the choice of validator by engine
version. Plain functions without I/O.

Docker 23 and later check a file themselves (`dockerd --validate`); older
engines (Debian 12's 20.10) have no such flag and refuse to start on a bad
file, so berth checks the options it knows, with their types and ranges,
and on those engines refuses options 20.10 does not know."""

import ipaddress
import json
import re

from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import building_networks

# units.RAMInBytes, which dockerd parses log sizes with.
SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
ENGINE_VERSION = re.compile(r"(\d+)\.(\d+)")
VALIDATE_SINCE = (23, 0)  # the first engine with `dockerd --validate`
LOG_DRIVERS_WITH_ROTATION = ("json-file", "local")

STR, BOOL, INT, STR_LIST, STR_MAP, MAP, POOLS = "str", "bool", "int", "list of strings", "map of strings", "mapping", "pools"
# Every daemon.json option of Docker 20.10 on Linux (its flags, and the plural
# names of its list options), with its type.
DAEMON_OPTIONS = {
    "allow-nondistributable-artifacts": STR_LIST,
    "api-cors-header": STR,
    "authorization-plugins": STR_LIST,
    "bip": STR,
    "bridge": STR,
    "builder": MAP,
    "cgroup-parent": STR,
    "containerd": STR,
    "containerd-namespace": STR,
    "containerd-plugins-namespace": STR,
    "cpu-rt-period": INT,
    "cpu-rt-runtime": INT,
    "cri-containerd": BOOL,
    "data-root": STR,
    "debug": BOOL,
    "default-address-pools": POOLS,
    "default-cgroupns-mode": STR,
    "default-gateway": STR,
    "default-gateway-v6": STR,
    "default-ipc-mode": STR,
    "default-runtime": STR,
    "default-shm-size": STR,
    "default-ulimits": MAP,
    "dns": STR_LIST,
    "dns-opts": STR_LIST,
    "dns-search": STR_LIST,
    "exec-opts": STR_LIST,
    "exec-root": STR,
    "experimental": BOOL,
    "features": MAP,
    "fixed-cidr": STR,
    "fixed-cidr-v6": STR,
    "group": STR,
    "host-gateway-ip": STR,
    "hosts": STR_LIST,
    "icc": BOOL,
    "init": BOOL,
    "init-path": STR,
    "insecure-registries": STR_LIST,
    "ip": STR,
    "ip-forward": BOOL,
    "ip-masq": BOOL,
    "ip6tables": BOOL,
    "iptables": BOOL,
    "ipv6": BOOL,
    "labels": STR_LIST,
    "live-restore": BOOL,
    "log-driver": STR,
    "log-level": STR,
    "log-opts": STR_MAP,
    "max-concurrent-downloads": INT,
    "max-concurrent-uploads": INT,
    "max-download-attempts": INT,
    "metrics-addr": STR,
    "mtu": INT,
    "network-control-plane-mtu": INT,
    "no-new-privileges": BOOL,
    "node-generic-resources": STR_LIST,
    "oom-score-adjust": INT,
    "pidfile": STR,
    "raw-logs": BOOL,
    "registry-mirrors": STR_LIST,
    "rootless": BOOL,
    "runtimes": MAP,
    "seccomp-profile": STR,
    "selinux-enabled": BOOL,
    "shutdown-timeout": INT,
    "storage-driver": STR,
    "storage-opts": STR_LIST,
    "swarm-default-advertise-addr": STR,
    "tls": BOOL,
    "tlscacert": STR,
    "tlscert": STR,
    "tlskey": STR,
    "tlsverify": BOOL,
    "userland-proxy": BOOL,
    "userland-proxy-path": STR,
    "userns-remap": STR,
}
# Inclusive bounds of integer options that have them.
INT_RANGES = {
    "max-concurrent-downloads": (1, None),
    "max-concurrent-uploads": (1, None),
    "max-download-attempts": (1, None),
    "mtu": (0, 65535),
    "network-control-plane-mtu": (0, 65535),
    "oom-score-adjust": (-1000, 1000),
    "shutdown-timeout": (-1, None),
    "cpu-rt-period": (0, None),
    "cpu-rt-runtime": (0, None),
}
CHOICES = {
    "log-level": ("debug", "info", "warn", "error", "fatal"),
    "default-cgroupns-mode": ("host", "private"),
}
# daemon.json keys the role writes from its own variables; extra options
# must not set them behind those variables' checks.
MANAGED_KEYS = {
    "log-driver": "docker_daemon_log_driver",
    "log-opts": "docker_daemon_log_max_size and docker_daemon_log_max_file",
    "live-restore": "docker_daemon_live_restore",
    "default-address-pools": "docker_daemon_default_address_pools",
    "registry-mirrors": "docker_registry_mirrors",
    "insecure-registries": "docker_insecure_registries",
    "storage-driver": "docker_daemon_storage_driver",
    "exec-opts": "docker_daemon_cgroup_driver",
    "data-root": "docker_daemon_data_root",
}


def as_int(value):
    """An int from an int or an all-digits string (`-e x=3` gives "3"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^-?\d+$", value.strip()):
        return int(value)
    return None


def _range_error(where, value, low, high):
    if low is not None and value < low:
        return "%s: %d is below %d" % (where, value, low)
    if high is not None and value > high:
        return "%s: %d is above %d" % (where, value, high)
    return None


def size_error(value, where):
    """Why `value` is not a positive size such as 10m, or None."""
    match = SIZE.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if not match:
        return "%s: %r is not a size such as 10m, 500k or 1g" % (where, value)
    if float(match.group(1)) <= 0:
        return "%s: %r must be more than 0" % (where, value)
    return None


def max_file_error(value, where):
    number = as_int(value)
    if number is None:
        return "%s: %r is not a whole number" % (where, value)
    return _range_error(where, number, 1, None)


def pools_errors(pools, where):
    """default-address-pools: [{base: CIDR, size: prefix length}], each
    size at least the base's own prefix, and no two pools overlapping."""
    if not isinstance(pools, list):
        return ["%s must be a list of {base, size}" % where]
    errors, networks = [], []
    for index, pool in enumerate(pools):
        at = "%s[%d]" % (where, index)
        if not isinstance(pool, dict) or set(pool) != {"base", "size"}:
            errors.append("%s must be a mapping with base and size only" % at)
            continue
        try:
            base = ipaddress.ip_network(str(pool["base"]), strict=True)
        except ValueError as exc:
            errors.append("%s.base: %r is not a network in CIDR notation (%s)" % (at, pool["base"], exc))
            continue
        size = as_int(pool["size"])
        if size is None:
            errors.append("%s.size: %r is not a prefix length" % (at, pool["size"]))
        elif not base.prefixlen <= size <= base.max_prefixlen:
            errors.append("%s.size: %d must lie between the base's prefix /%d and %d" % (at, size, base.prefixlen, base.max_prefixlen))
        for other, network in networks:
            if network.version == base.version and network.overlaps(base):
                errors.append("%s.base %s overlaps %s.base %s" % (at, base, other, network))
        networks.append((at, base))
    return errors


def _type_error(kind, value, where):
    if kind == STR and not isinstance(value, str):
        return "%s must be a string, got %s" % (where, type(value).__name__)
    if kind == BOOL and not isinstance(value, bool):
        return "%s must be true or false, got %r" % (where, value)
    if kind == INT and (isinstance(value, bool) or not isinstance(value, int)):
        return "%s must be a whole number, got %r" % (where, value)
    if kind == STR_LIST and (not isinstance(value, list) or not all(isinstance(item, str) for item in value)):
        return "%s must be a list of strings" % where
    if kind == STR_MAP and (not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values())):
        return '%s must be a mapping of strings (quote numbers: "3")' % where
    if kind == MAP and not isinstance(value, dict):
        return "%s must be a mapping" % where
    return None


def option_errors(key, value, where):
    """Type and range errors of one known daemon.json option."""
    kind = DAEMON_OPTIONS[key]
    if kind == POOLS:
        return pools_errors(value, where)
    error = _type_error(kind, value, where)
    if error:
        return [error]
    errors = []
    if key in INT_RANGES:
        error = _range_error(where, value, *INT_RANGES[key])
        if error:
            errors.append(error)
    if key in CHOICES and value not in CHOICES[key]:
        errors.append("%s: %r is not one of %s" % (where, value, ", ".join(CHOICES[key])))
    if key == "log-opts":
        if "max-size" in value:
            errors.extend(filter(None, [size_error(value["max-size"], where + ".max-size")]))
        if "max-file" in value:
            errors.extend(filter(None, [max_file_error(value["max-file"], where + ".max-file")]))
    if key == "registry-mirrors":
        errors.extend(mirror_errors(value, where))
    if key == "insecure-registries":
        errors.extend(insecure_registry_errors(value, where))
    return errors


def mirror_errors(mirrors, where):
    pattern = re.compile(r"^https?://[^/\s]+(/\S*)?$")
    return ["%s[%d]: %r is not an http(s) URL" % (where, i, m) for i, m in enumerate(mirrors) if not pattern.match(m)]


def insecure_registry_errors(registries, where):
    return [
        "%s[%d]: %r must be host[:port] or a CIDR, without a scheme" % (where, i, r)
        for i, r in enumerate(registries)
        if not r or "://" in r or any(c.isspace() for c in r)
    ]


def engine_version(text):
    """(major, minor) from `dockerd --version` output, or None."""
    match = ENGINE_VERSION.search(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def validator(version):
    """Who checks a daemon.json for this engine: "dockerd" (it has
    --validate) or "berth" (older or no engine: berth's own check)."""
    return "dockerd" if version is not None and tuple(version) >= VALIDATE_SINCE else "berth"


def daemon_config_errors(config, version=None):
    """Everything wrong with a daemon.json mapping for an engine of
    `version` ((major, minor), or None when none is installed yet).
    Options an engine older than 23 does not know are refused, as it would
    refuse them at start; newer engines judge their own options."""
    if not isinstance(config, dict):
        return ["daemon.json must be a mapping"]
    errors = []
    for key in sorted(config):
        where = "daemon.json %s" % key
        if key in DAEMON_OPTIONS:
            errors.extend(option_errors(key, config[key], where))
        elif validator(version) == "berth":
            errors.append("%s: not an option Docker 20.10 knows" % where)
    return errors


def render(config):
    """daemon.json text, the way to_nice_json(indent=2) writes it."""
    return json.dumps(config, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


# [epoch:]upstream[-revision], as dpkg reads it; the upstream part starts with a digit.
DEB_VERSION = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")


def role_errors(settings, building_networks=()):
    """Errors of the docker role's variables, by variable name, before
    anything changes. `settings` maps variable name to value;
    `building_networks` is [(label, ip_network)] of the inventory's
    building subnets, which address pools must stay clear of."""
    errors = []
    if settings.get("docker_daemon_log_driver") in LOG_DRIVERS_WITH_ROTATION:
        errors.extend(filter(None, [size_error(settings.get("docker_daemon_log_max_size"), "docker_daemon_log_max_size")]))
        errors.extend(filter(None, [max_file_error(settings.get("docker_daemon_log_max_file"), "docker_daemon_log_max_file")]))
    name = "docker_daemon_default_address_pools"
    pools = settings.get(name) or []
    errors.extend(pools_errors(pools, name))
    for index, pool in enumerate(pools if isinstance(pools, list) else []):
        try:
            base = ipaddress.ip_network(str(pool["base"]), strict=True)
        except (TypeError, KeyError, ValueError):
            continue  # reported above
        for label, network in building_networks:
            if network.version == base.version and network.overlaps(base):
                errors.append("%s[%d].base %s overlaps berth_buildings.%s %s" % (name, index, base, label, network))
    for name, check in (("docker_registry_mirrors", mirror_errors), ("docker_insecure_registries", insecure_registry_errors)):
        value = settings.get(name) or []
        error = _type_error(STR_LIST, value, name)
        errors.extend([error] if error else check(value, name))
    root = settings.get("docker_daemon_data_root") or ""
    if root and not str(root).startswith("/"):
        errors.append("docker_daemon_data_root: %r must be an absolute path" % (root,))
    cache = as_int(settings.get("docker_apt_cache_valid_time", 0))
    if cache is None or cache < 0:
        errors.append("docker_apt_cache_valid_time: %r must be 0 or more seconds" % (settings.get("docker_apt_cache_valid_time"),))
    version = settings.get("docker_engine_version") or ""
    if version and not DEB_VERSION.match(str(version)):
        errors.append("docker_engine_version: %r is not a Debian package version (such as 20.10.24+dfsg1-1+deb12u1)" % (version,))
    extra = settings.get("docker_daemon_extra_options") or {}
    if not isinstance(extra, dict):
        return errors + ["docker_daemon_extra_options must be a mapping of daemon.json keys"]
    for key in sorted(extra):
        where = "docker_daemon_extra_options.%s" % key
        if key in MANAGED_KEYS:
            errors.append("%s: set by %s; set that instead, where it is checked" % (where, MANAGED_KEYS[key]))
        elif key in DAEMON_OPTIONS:
            errors.extend(option_errors(key, extra[key], where))
    return errors


def inventory_role_errors(settings, buildings):
    """role_errors with address pools checked against every building subnet
    of the inventory."""
    return role_errors(settings, building_networks(buildings or {}))
