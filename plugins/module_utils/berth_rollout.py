"""Decisions of a start-first rollout: the new container's configuration and
name, which loopback port it gets, when it counts as healthy, which stopped
versions to keep for an instant rollback."""

import hashlib
import json
import re

from ansible_collections.berth.ops.plugins.module_utils.berth_images import in_registry, parse_reference, tag_error

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
VERSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MEMORY = re.compile(r"^\d+(?:\.\d+)?[bkmg]?$", re.IGNORECASE)
LABEL_APP = "berth.app"
LABEL_VERSION = "berth.version"
LABEL_CONFIG = "berth.config"
LABEL_PORT = "berth.port"
LABEL_ENVIRONMENT = "berth.environment"
LABEL_BUILDING = "berth.building"


def spec_errors(spec):
    """Everything wrong with a rollout spec, naming the option."""
    errors = []
    if not APP_NAME.match(str(spec.get("app") or "")):
        errors.append("app: %r is not a valid app name (lowercase letters, digits, . _ -)" % spec.get("app"))
    if not VERSION.match(str(spec.get("version") or "")):
        errors.append("version: %r is not a valid version (a Docker tag)" % spec.get("version"))
    port = spec.get("container_port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors.append("container_port: %r is outside 1-65535" % (port,))
    low, high = spec.get("port_range") or (0, 0)
    if not (isinstance(low, int) and isinstance(high, int) and 1024 <= low <= high <= 65535):
        errors.append("port_range: %r must be two ports within 1024-65535, low first" % (spec.get("port_range"),))
    for key in ("health_timeout", "health_interval", "deadline", "drain_timeout", "stop_timeout"):
        value = spec.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            errors.append("%s must be a number of seconds, 0 or more, got %r" % (key, value))
    if spec.get("health_retries", 1) < 1:
        errors.append("health_retries must be at least 1")
    if spec.get("retain", 0) < 0:
        errors.append("retain must be 0 or more")
    cpus = spec.get("cpus")
    if cpus is not None and (not isinstance(cpus, (int, float)) or cpus <= 0):
        errors.append("cpus must be a positive number, got %r" % (cpus,))
    memory = spec.get("memory")
    if memory is not None and not MEMORY.match(str(memory)):
        errors.append("memory: %r is not a size like 512m or 1g" % (memory,))
    path = spec.get("health_http")
    if path is not None and not str(path).startswith("/"):
        errors.append("health_http: %r must be a path starting with /" % path)
    for key, value in (spec.get("env") or {}).items():
        if not isinstance(value, (str, int, float, bool)):
            errors.append("env.%s must be a string, got %s" % (key, type(value).__name__))
    return errors


def config_digest(spec, image_id):
    """What makes two containers of an app the same deployment."""
    relevant = {
        key: spec.get(key)
        for key in ("app", "version", "container_port", "env", "labels", "cpus", "memory", "init", "log_driver", "log_options")
        + ("volumes", "networks", "command", "restart_policy")
    }
    relevant["image_id"] = image_id
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def container_name(app, version, digest):
    """app-version-xxxxxx: one name per deployment, reused on rollback."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", version)
    return "%s-%s-%s" % (app, safe, digest[:6])


def free_port(port_range, taken):
    """The lowest port of the range no container of this host publishes."""
    low, high = port_range
    for port in range(low, high + 1):
        if port not in taken:
            return port
    raise ValueError("no free port left in %d-%d for a new container" % (low, high))


def to_retain(stopped, retain):
    """Stopped containers (dicts with name, created) split into keep and remove:
    the newest `retain` stay for an instant rollback."""
    ordered = sorted(stopped, key=lambda c: (c["created"], c["name"]), reverse=True)
    return ordered[:retain], ordered[retain:]


def memory_bytes(text):
    if text is None:
        return None
    match = re.match(r"^(\d+(?:\.\d+)?)([bkmg]?)$", str(text).lower())
    factor = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]
    return int(float(match.group(1)) * factor)


def describe(spec, image, image_id):
    """The deployment as diff shows it."""
    return {
        "image": image,
        "image_id": image_id,
        "version": spec.get("version"),
        "env": spec.get("env") or {},
        "cpus": spec.get("cpus"),
        "memory": spec.get("memory"),
        "init": spec.get("init"),
        "volumes": spec.get("volumes") or [],
        "networks": spec.get("networks") or [],
        "log": {"driver": spec.get("log_driver"), "options": spec.get("log_options") or {}},
    }


# -- the app catalog (berth_apps) ------------------------------------------------------
APP_KEYS = {
    "hosts": str,
    "image": str,
    "container_port": int,
    "listen": int,
    "health_http": str,
    "health_tcp": bool,
    "env": dict,
    "labels": dict,
    "cpus": (int, float),
    "memory": str,
    "volumes": list,
    "networks": list,
    "command": list,
    "deadline": (int, float),
    "drain_timeout": (int, float),
    "retain": int,
}


def app_errors(apps):
    """Type errors of a berth_apps catalog, naming the field."""
    if not isinstance(apps, dict):
        return ["berth_apps must be a mapping of app name to its settings"]
    errors = []
    for name, app in sorted(apps.items()):
        where = "berth_apps.%s" % name
        if not APP_NAME.match(str(name)):
            errors.append("%s: %r is not a valid app name" % (where, name))
        if not isinstance(app, dict):
            errors.append("%s must be a mapping" % where)
            continue
        for key in ("hosts", "image"):
            if key not in app:
                errors.append("%s.%s is required" % (where, key))
        for key, value in app.items():
            kind = APP_KEYS.get(key)
            if kind is None:
                errors.append("%s.%s is not a known setting (%s)" % (where, key, ", ".join(sorted(APP_KEYS))))
            elif not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                errors.append("%s.%s has the wrong type (%s)" % (where, key, type(value).__name__))
        listen = app.get("listen", 80)
        if isinstance(listen, int) and not 1 <= listen <= 65535:
            errors.append("%s.listen: %d is outside 1-65535" % (where, listen))
    return errors


def apps_of(apps, group_names):
    """The apps a host serves: those whose group it is in."""
    return {name: app for name, app in sorted((apps or {}).items()) if app.get("hosts") in group_names}


def image_ref(image, registry, version):
    """Full reference of an app image: the building's registry unless the
    image names its own, and the version as tag."""
    error = tag_error(version)
    if error:
        raise ValueError("version: %s" % error)
    ref = parse_reference(image)
    if ref.tag or ref.digest:
        raise ValueError("berth_apps image %r must not carry a tag; the version is the tag" % image)
    return str(in_registry(image, registry).with_tag(version))


def rollout_batches(hosts_in_order, building_of, batch_size):
    """serial sizes: batches of at most batch_size hosts, never spanning two
    buildings. batch_size 0 means a whole building per batch."""
    sizes, current, count = [], None, 0
    for host in hosts_in_order:
        building = building_of[host]
        if building != current or (batch_size and count == batch_size):
            if count:
                sizes.append(count)
            current, count = building, 0
        count += 1
    if count:
        sizes.append(count)
    return sizes


def rollout_summary(results, hosts, app, version):
    """One row per host: building, old and new version, result, seconds.
    `results` maps a host to its (rollout result, rollback result, building)."""
    rows = []
    for host in hosts:
        result, rollback, building = results.get(host, (None, None, ""))
        old = ((result or {}).get("old") or {}).get("version") or "-"
        if result is None:
            outcome, now = "skipped", old
        elif (rollback or {}).get("changed"):
            outcome, now = "rolled back", old
        elif result.get("failed"):
            outcome, now = "failed", old
        elif result.get("changed"):
            outcome, now = "deployed", version
        else:
            outcome, now = "unchanged", version
        seconds = sum((result or {}).get("timings", {}).values()) + sum((rollback or {}).get("timings", {}).values())
        rows.append({"host": host, "building": building, "old": old, "new": now, "result": outcome, "seconds": round(seconds, 2)})
    width = max([len(r["host"]) for r in rows] + [4])
    lines = ["rollout of %s %s" % (app, version)]
    lines += [
        "  %-*s  %-8s  %-10s -> %-10s  %-11s  %6.2fs" % (width, r["host"], r["building"], r["old"], r["new"], r["result"], r["seconds"])
        for r in rows
    ]
    return {"app": app, "version": version, "hosts": rows, "lines": lines}
