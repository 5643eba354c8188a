"""Decisions of a start-first rollout: the new container's configuration and
name, which loopback port it gets, when it counts as healthy, when the old
one has drained, which stopped versions to keep for an instant rollback and
which one a rollback goes to, and, for the fleet, the plan, when a batch
stops the rollout, which hosts go back, and the summary."""

import calendar
import copy
import hashlib
import json
import math
import re

from ansible_collections.berth.ops.plugins.module_utils.berth_images import in_registry, parse_reference, tag_error
from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import building_of as inventory_building_of

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
VERSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MEMORY = re.compile(r"^\d+(?:\.\d+)?[bkmg]?$", re.IGNORECASE)
LOG_SIZE = re.compile(r"^\d+[kmg]?$")
LOG_DRIVER = re.compile(r"^[a-z0-9][a-z0-9_.-]*(?:/[a-z0-9][a-z0-9_.-]*)?(?::[A-Za-z0-9_.-]+)?$")
RESTART_POLICY = re.compile(r"^(?:no|always|unless-stopped|on-failure(?::\d{1,3})?)$")
DOCKER_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
LABEL_APP = "berth.app"
LABEL_VERSION = "berth.version"
LABEL_CONFIG = "berth.config"
LABEL_PORT = "berth.port"
LABEL_ENVIRONMENT = "berth.environment"
LABEL_BUILDING = "berth.building"

# What every app container gets unless its definition says otherwise, read
# here by the rollout role, docker_rollout and named environments alike: an
# init reaps zombies, limits keep one app from starving a host, logs rotate,
# the timezone is explicit.
CONTAINER_DEFAULTS = {
    "init": True,
    "cpus": 1.0,
    "memory": "512m",
    "log_driver": "json-file",
    "log_options": {"max-size": "10m", "max-file": "3"},
    "timezone": "Etc/UTC",
    "restart_policy": "unless-stopped",
}

# Numbers of a rollout: (integer?, lowest, highest, unit). Ranges are wide
# but finite: a typo like 1200000 seconds is refused, not waited for.
NUMBERS = {
    "container_port": (True, 1, 65535, ""),
    "health_interval": (False, 0.05, 60, "seconds"),
    "health_timeout": (False, 0.1, 300, "seconds"),
    "health_retries": (True, 1, 1000, ""),
    "deadline": (False, 1, 86400, "seconds"),
    "drain_timeout": (False, 0, 86400, "seconds"),
    "stop_timeout": (True, 0, 3600, "seconds"),
    "retain": (True, 1, 100, ""),
    "lock_timeout": (False, 0, 86400, "seconds"),
    "cpus": (False, 0.01, 1024, ""),
}
# The fleet's own numbers (role variables only); batch_size may also be a
# percentage of each building ("25%").
BATCH_PERCENT = re.compile(r"^\s*(\d{1,3})\s*%\s*$")
FLEET_NUMBERS = {
    "batch_size": (True, 0, 10000, ""),
    "max_fail_percentage": (True, 0, 100, "percent"),
}


def number(value, integer):
    """A number from YAML or from `-e key=value` (a string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if integer and value != int(value):
        return None
    return int(value) if integer else value


def container_default(setting):
    """The default of one container setting (a copy: callers may change it)."""
    if setting not in CONTAINER_DEFAULTS:
        raise ValueError("%r is not a container setting (known: %s)" % (setting, ", ".join(CONTAINER_DEFAULTS)))
    return copy.deepcopy(CONTAINER_DEFAULTS[setting])


def range_error(field, value, integer, low, high, unit=""):
    """Why `value` is not a valid number for `field`, or None."""
    parsed = number(value, integer)
    if parsed is None or not low <= parsed <= high:
        kind = "a whole number" if integer else "a number"
        return "%s: %r must be %s within %s-%s%s" % (field, value, kind, low, high, " " + unit if unit else "")
    return None


def spec_errors(spec, prefix=""):
    """Everything wrong with a rollout spec, naming the option (with
    `prefix`, as the inventory names it: rollout_deadline, ...)."""
    errors = []
    if "app" in spec and not APP_NAME.match(str(spec.get("app") or "")):
        errors.append("app: %r is not a valid app name (lowercase letters, digits, . _ -)" % spec.get("app"))
    if "version" in spec and not VERSION.match(str(spec.get("version") or "")):
        errors.append("version: %r is not a valid version (a Docker tag)" % spec.get("version"))
    for key, (integer, low, high, unit) in NUMBERS.items():
        if spec.get(key) is not None:
            error = range_error(prefix + key, spec[key], integer, low, high, unit)
            if error:
                errors.append(error)
    if "port_range" in spec:
        bounds = spec.get("port_range")
        pair = [number(p, True) for p in bounds] if isinstance(bounds, (list, tuple)) and len(bounds) == 2 else [None, None]
        if None in pair or not 1024 <= pair[0] <= pair[1] <= 65535:
            errors.append("%sport_range: %r must be two ports within 1024-65535, low first" % (prefix, bounds))
    memory = spec.get("memory")
    if memory is not None and not MEMORY.match(str(memory)):
        errors.append("%smemory: %r is not a size like 512m or 1g" % (prefix, memory))
    path = spec.get("health_http")
    if path is not None and not str(path).startswith("/"):
        errors.append("%shealth_http: %r must be a path starting with /" % (prefix, path))
    for key, value in (spec.get("env") or {}).items():
        if not isinstance(value, (str, int, float, bool)):
            errors.append("%senv.%s must be a string, got %s" % (prefix, key, type(value).__name__))
    errors += log_errors(spec, prefix)
    policy = spec.get("restart_policy")
    if policy is not None and not RESTART_POLICY.match(str(policy)):
        errors.append("%srestart_policy: %r is not one of no, always, unless-stopped, on-failure[:N]" % (prefix, policy))
    return errors


def log_errors(spec, prefix=""):
    """The log driver's name and the rotation options Docker would refuse
    only at create time, after the pull."""
    errors = []
    driver = spec.get("log_driver")
    if driver is not None and not LOG_DRIVER.match(str(driver)):
        errors.append("%slog_driver: %r is not a log driver name" % (prefix, driver))
    options = spec.get("log_options")
    if options is None:
        return errors
    if not isinstance(options, dict):
        return errors + ["%slog_options must be a mapping, got %s" % (prefix, type(options).__name__)]
    for key, value in options.items():
        if not isinstance(value, (str, int, float, bool)):
            errors.append("%slog_options.%s must be a string, got %s" % (prefix, key, type(value).__name__))
    if driver in ("json-file", "local"):
        if "max-size" in options and not LOG_SIZE.match(str(options["max-size"])):
            errors.append("%slog_options.max-size: %r is not a size like 10m" % (prefix, options["max-size"]))
        if "max-file" in options:
            error = range_error(prefix + "log_options.max-file", options["max-file"], True, 1, 1000)
            if error:
                errors.append(error)
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


def state_files(name):
    """The files docker_rollout keeps in its state directory for an app (or a
    port): the lock a run holds, and the record of which version served when.
    An environment's teardown removes its apps' by the same names."""
    return {"lock": "%s.lock" % name, "history": "%s.served.json" % name}


def listening_ports(*tables):
    """Ports in LISTEN state in /proc/net/tcp{,6} texts: something outside
    Docker may hold a port of the range."""
    ports = set()
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def free_port(port_range, taken):
    """The lowest port of the range no container of this host publishes and
    nothing listens on."""
    low, high = port_range
    for port in range(low, high + 1):
        if port not in taken:
            return port
    raise ValueError("no free port left in %d-%d for a new container" % (low, high))


def docker_time(text):
    """Seconds since the epoch of a Docker timestamp (nanoseconds, Z or an
    offset); None for Docker's zero time or anything unreadable."""
    match = DOCKER_TIME.match(str(text or ""))
    if not match or match.group(1) == "0001":
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    seconds += float("0." + match.group(7)) if match.group(7) else 0
    zone = match.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


def last_served(name, history, state):
    """When a stopped container last served: berth's own record of the
    switch away from it, else (containers from before the record) when it
    stopped, if it ever ran; None for one that never served."""
    if name in history:
        return history[name]
    if docker_time(state.get("StartedAt")) is None:
        return None
    return docker_time(state.get("FinishedAt"))


def _served_key(container):
    served = container.get("last_served")
    return (float("-inf") if served is None else served, container.get("created") or "", container["name"])


def to_retain(stopped, retain):
    """Stopped containers (dicts with name, created, last_served) split into
    keep and remove: the `retain` that served most recently stay for an
    instant rollback. After a rollback the version that served last is
    therefore kept, although an abandoned newer one was created later."""
    ordered = sorted(stopped, key=_served_key, reverse=True)
    return ordered[:retain], ordered[retain:]


def rollback_target(stopped, version=None):
    """The retained container a rollback makes serve: the one that served
    most recently (of `version`, when given). Never one that has not served:
    a rollback goes back, it does not guess."""
    served = [c for c in stopped if c.get("last_served") is not None and (version is None or c.get("version") == version)]
    return max(served, key=_served_key) if served else None


def reusable(state):
    """Whether an existing container of the same deployment can serve: a
    retained version that ran before. One that was created and never
    started (a failed start) is removed and made anew."""
    return state.get("Status") not in ("created", "dead", "removing") and docker_time(state.get("StartedAt")) is not None


def abandon_action(created_here):
    """What a failed rollout does with its target before the switch: remove
    the container it made itself, only stop one it reused (a retained
    version is the rollback's own target)."""
    return "remove" if created_here else "stop"


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


# -- health and drain --------------------------------------------------------------------------
def probe_kind(health_http, health_tcp, docker_status):
    """Which probe proves the app answers: the configured one; without one
    and without a Docker HEALTHCHECK a TCP connect to the app itself; with
    Docker's check passed and nothing configured, none."""
    if health_http:
        return "http"
    if health_tcp or docker_status == "none":
        return "tcp"
    return None


def probe_address(networks, published_port, container_port):
    """Where a probe reaches the app itself: the container's address on the
    default bridge (or another network), not the published loopback port,
    where docker-proxy accepts connections before the app listens."""
    for name in ["bridge", *sorted(networks or {})]:
        address = ((networks or {}).get(name) or {}).get("IPAddress")
        if address:
            return address, container_port
    return "127.0.0.1", published_port


class HealthWatch:
    """Probe by probe, whether a new container is healthy. Before the first
    sign of life (Docker's check passing) only the deadline ends the wait: an
    app without a HEALTHCHECK may take its time to listen. After it,
    `retries` consecutive failed probes fail early."""

    def __init__(self, started, deadline, retries):
        self.deadline = deadline
        self.until = started + deadline
        self.retries = retries
        self.failures = 0
        self.last_probe = None

    def observe(self, now, running, exit_code, docker_status, probe):
        """probe: (ok, text) or None when none ran. Returns (verdict, reason),
        verdict one of healthy, failed, wait."""
        if not running:
            return "failed", "the container exited with code %s" % exit_code
        if docker_status == "unhealthy":
            return "failed", "Docker's health check reports unhealthy"
        if docker_status in ("healthy", "none"):
            if probe is None:
                return "healthy", "Docker's health check passed"
            ok, text = probe
            self.last_probe = text
            if ok:
                return "healthy", text
            if docker_status == "healthy":
                self.failures += 1
                if self.failures >= self.retries:
                    return "failed", "%s (%d probes in a row after Docker's check passed)" % (text, self.failures)
        if now >= self.until:
            reason = "not healthy within the %ss deadline (Docker health: %s)" % (self.deadline, docker_status)
            if self.last_probe:
                reason += "; last probe: %s" % self.last_probe
            return "failed", reason
        return "wait", None


def drain_done(now, deadline, grace_end, connections, observed, settled):
    """Whether the old container may stop. Never before its connections are
    gone; and the proxy's old workers may still open one for a request they
    had half read, so also not before they have exited (or, since they can
    live on for another app's long connection, the grace has passed). When
    the workers were never observed, nothing proves that: wait until the
    drain timeout."""
    if now >= deadline:
        return True
    if connections:
        return False
    if not observed:
        return False
    return settled or now >= grace_end


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
APP_NUMBERS = ("container_port", "cpus", "deadline", "drain_timeout", "retain")


def app_errors(apps):
    """Type and range errors of a berth_apps catalog, naming the field."""
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
            if key in ("replicas", "scale"):
                errors.append(
                    "%s.%s: berth runs one container per app per host behind its nginx; run more hosts in the app's group instead"
                    % (where, key)
                )
            elif kind is None:
                errors.append("%s.%s is not a known setting (%s)" % (where, key, ", ".join(sorted(APP_KEYS))))
            elif not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                errors.append("%s.%s has the wrong type (%s)" % (where, key, type(value).__name__))
            elif key in APP_NUMBERS:
                integer, low, high, unit = NUMBERS[key]
                error = range_error("%s.%s" % (where, key), value, integer, low, high, unit)
                if error:
                    errors.append(error)
        listen = app.get("listen", 80)
        if isinstance(listen, int) and not 1 <= listen <= 65535:
            errors.append("%s.listen: %d is outside 1-65535" % (where, listen))
        if isinstance(app.get("health_http"), str) and not app["health_http"].startswith("/"):
            errors.append("%s.health_http: %r must be a path starting with /" % (where, app["health_http"]))
    return errors


def settings_errors(settings):
    """Range errors of the role's rollout_* variables (as given, maybe
    strings from -e), naming the variable."""
    spec = {key: value for key, value in (settings or {}).items() if key not in FLEET_NUMBERS}
    errors = spec_errors(spec, prefix="rollout_")
    for key, (integer, low, high, unit) in FLEET_NUMBERS.items():
        if key in (settings or {}):
            error = range_error("rollout_" + key, settings[key], integer, low, high, unit)
            if key == "batch_size" and (error or batch_percent(settings[key]) is not None):
                error = batch_size_error(settings[key])
            if error:
                errors.append(error)
    return errors


def batch_percent(value):
    """The percentage of a batch size such as "25%", or None."""
    match = BATCH_PERCENT.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def batch_size_error(value):
    """Why `value` is not a batch size: a host count (0: a whole building)
    or a percentage of each building's hosts."""
    percent = batch_percent(value)
    if percent is not None and 1 <= percent <= 100:
        return None
    if percent is None and range_error("batch_size", value, True, 0, 10000) is None:
        return None
    return "rollout_batch_size: %r must be a whole number within 0-10000 or a percentage of a building within 1%%-100%%" % (value,)


def building_batch(batch_size, building_hosts):
    """Hosts per batch in a building of `building_hosts` hosts: a percentage
    rounds up (never 0), 0 is the whole building."""
    percent = batch_percent(batch_size)
    if percent is not None:
        return max(1, math.ceil(building_hosts * percent / 100))
    size = number(batch_size, True)
    return size or building_hosts


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
    buildings. batch_size 0 means a whole building per batch, "N%" N percent
    of each building's hosts (rounded up), so that a fleet that grows within
    its buildings keeps the same number of batches."""
    per_building = {}
    for host in hosts_in_order:
        per_building[building_of[host]] = per_building.get(building_of[host], 0) + 1
    sizes, current, count = [], None, 0
    for host in hosts_in_order:
        building = building_of[host]
        if building != current or count == building_batch(batch_size, per_building[building]):
            if count:
                sizes.append(count)
            current, count = building, 0
        count += 1
    if count:
        sizes.append(count)
    return sizes


def rollout_plan(app, apps, hosts, group_names, building_of, registries, settings, version=None, mode="deploy"):
    """Target hosts of an app in building order, its batches (as `serial`
    sizes and as host lists), after every check that needs no host: the app
    catalog, the role's numbers, the version and every image reference.
    `group_names` and `building_of` are per host; `registries` per building.
    mode deploy needs a version; rollback takes one optionally."""
    errors = app_errors(apps)
    if app not in (apps or {}):
        errors.append("unknown app %r (berth_apps has: %s)" % (app, ", ".join(sorted(apps or {})) or "none"))
    if mode not in ("deploy", "rollback"):
        errors.append("mode %r is neither deploy nor rollback" % (mode,))
    errors += settings_errors(settings)
    if mode == "deploy" or version not in (None, ""):
        error = tag_error(version if isinstance(version, str) else str(version))
        if version in (None, ""):
            errors.append("version is required: -e version=VERSION")
        elif error:
            errors.append("version: %s" % error)
    if errors:
        raise ValueError("; ".join(errors))
    group = apps[app]["hosts"]
    members = [h for h in hosts if group in group_names[h]]
    if not members:
        raise ValueError("app %s runs on group %r, which has no hosts" % (app, group))
    if mode == "deploy":
        for host in members:
            image_ref(apps[app]["image"], registries.get(building_of[host]), str(version))
    ordered = sorted(members, key=lambda h: (building_of[h], h))
    sizes = rollout_batches(ordered, building_of, settings.get("batch_size", 1))
    batches, start = [], 0
    for size in sizes:
        batches.append(ordered[start : start + size])
        start += size
    return {
        "app": app,
        "mode": mode,
        "version": str(version) if version not in (None, "") else "",
        "hosts": ordered,
        "batches": sizes,
        "batch_hosts": batches,
        "max_fail_percentage": number(settings.get("max_fail_percentage", 0), True),
    }


# -- results, the fleet's verdict and the summary ----------------------------------------
UNREACHABLE_PULL = re.compile(
    r"connection refused|no route to host|i/o timeout|timeout|no such host|network is unreachable|connection reset|TLS handshake|EOF",
    re.IGNORECASE,
)
NOT_FOUND_PULL = re.compile(r"manifest unknown|not found|does not exist", re.IGNORECASE)


def one_line(text, width=110):
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def pull_failure(message, image):
    """The reason a pull failed, as the summary says it."""
    ref = parse_reference(image)
    registry = ref.registry or "docker.io"
    if NOT_FOUND_PULL.search(message or "") and not UNREACHABLE_PULL.search(message or ""):
        return "pull failed: %s not found in %s" % (image, registry)
    if UNREACHABLE_PULL.search(message or ""):
        return "pull failed: %s unreachable" % registry
    return "pull failed: %s" % one_line(message, 80)


def revert_target(result):
    """The container a host that switched in this run goes back to, or
    None: whatever the result says about success, `switched` says where
    traffic went."""
    if not isinstance(result, dict) or not result.get("switched"):
        return None
    old = (result.get("old") or {}).get("name")
    serving = (result.get("serving") or {}).get("name")
    return old if old and old != serving else None


def _version(container):
    return (container or {}).get("version") or "-"


def _reason(result):
    return one_line(result.get("reason") or result.get("msg") or "")


def _seconds(*results):
    return round(sum(sum((r or {}).get("timings", {}).values()) for r in results if isinstance(r, dict)), 2)


def _ran(result):
    """A registered result, or None for a task that did not run."""
    return None if not isinstance(result, dict) or result.get("skipped") else result


def host_status(entry, mode="deploy", version=""):
    """One host's row: versions before and now, result, reason, and whether
    it counts as failed in its batch. `entry` has the host's prepare, result
    and revert results (any may be None)."""
    prepare, result, revert = (_ran(entry.get(key)) for key in ("prepare", "result", "revert"))
    prepare = prepare or {}
    before = _version(prepare.get("serving") or (result or {}).get("old"))
    row = {"old": before, "new": before, "reason": "", "failed": False}
    if prepare.get("unreachable"):
        return dict(row, old="?", new="?", result="unreachable", reason=one_line(prepare.get("msg")), failed=True)
    if prepare.get("failed"):
        return dict(row, result="failed", reason=_reason(prepare), failed=True)
    if result is None:
        return dict(row, result="not started")
    if result.get("unreachable"):
        return dict(row, new="?", result="unreachable", reason=one_line(result.get("msg")), failed=True)
    failed = bool(result.get("failed"))
    now = _version(result.get("serving")) if "serving" in result else (before if failed else version or "-")
    row.update(new=now, failed=failed, reason=_reason(result) if failed else "")
    if revert:
        if revert.get("failed") or revert.get("unreachable"):
            return dict(
                row, new=_version(revert.get("serving")) if revert.get("serving") else "?", result="rollback failed", reason=_reason(revert)
            )
        if revert.get("changed"):
            return dict(
                row, new=_version(revert.get("serving") or revert.get("new")), result="restored" if mode == "rollback" else "rolled back"
            )
    if failed:
        return dict(row, result="failed")
    if result.get("would_switch"):  # check mode
        return dict(row, result="would roll back" if mode == "rollback" else "would deploy")
    if result.get("changed") and result.get("switched"):
        return dict(row, result="rolled back" if mode == "rollback" else "deployed")
    if result.get("changed"):
        return dict(row, result="reconciled", reason=one_line("; ".join(result.get("reconciled") or [])))
    return dict(row, result="unchanged")


def fleet_verdict(statuses, batches, max_fail_percentage):
    """The first batch whose failed hosts exceed the percentage, as a reason,
    or None. Failures known before a batch starts (unreachable, pull failed)
    count too, so a rollout that must stop there stops before it begins."""
    for batch in batches:
        failed = [h for h in batch if statuses[h]["failed"]]
        if len(failed) * 100 > max_fail_percentage * len(batch):
            return "%d of %d hosts failed in the batch (%s), more than %d%%" % (
                len(failed),
                len(batch),
                ", ".join(failed),
                max_fail_percentage,
            )
    return None


def rollout_summary(entries, plan):
    """The fleet as it stands: one row per host, whether the rollout stops,
    which hosts go back to what, and the printed lines. `entries` maps a host
    to {building, prepare, result, revert}."""
    mode, version = plan.get("mode", "deploy"), plan.get("version") or ""
    statuses = {host: host_status(entries.get(host) or {}, mode, version) for host in plan["hosts"]}
    stop = fleet_verdict(statuses, plan["batch_hosts"], plan.get("max_fail_percentage") or 0)
    revert = {}
    if stop:
        for host in plan["hosts"]:
            target = revert_target((entries.get(host) or {}).get("result"))
            if target:
                revert[host] = target
    rows = []
    for host in plan["hosts"]:
        entry = entries.get(host) or {}
        status = statuses[host]
        rows.append(
            {
                "host": host,
                "building": entry.get("building") or "",
                "old": status["old"],
                "new": status["new"],
                "result": status["result"],
                "reason": status["reason"],
                "seconds": _seconds(entry.get("prepare"), entry.get("result"), entry.get("revert")),
            }
        )
    width = max([len(r["host"]) for r in rows] + [4])
    if mode == "rollback":
        title = "rollback of %s%s" % (plan["app"], " to " + version if version else "")
    else:
        title = "rollout of %s %s" % (plan["app"], version)
    lines = [title]
    for r in rows:
        line = "  %-*s  %-8s  %-10s -> %-10s  %-15s %7.2fs" % (
            width,
            r["host"],
            r["building"],
            r["old"],
            r["new"],
            r["result"],
            r["seconds"],
        )
        lines.append((line + "  " + r["reason"]) if r["reason"] else line)
    if stop:
        lines.append("  stopped: %s" % stop)
    return {
        "app": plan["app"],
        "mode": mode,
        "version": version,
        "hosts": rows,
        "lines": lines,
        "stop": stop or "",
        "revert": revert,
        "message": verdict_message(title, stop, rows, statuses),
    }


def verdict_message(title, stop, rows, statuses):
    """Why the run fails, or "" when it does not."""
    failed = [r["host"] for r in rows if statuses[r["host"]]["failed"]]
    stuck = [r["host"] for r in rows if r["result"] == "rollback failed"]
    if stop:
        back = (
            "rollback failed on %s: the summary says what serves there" % ", ".join(stuck)
            if stuck
            else "every host that had switched is back"
        )
        return "%s stopped: %s; %s" % (title, stop, back)
    if failed:
        return "%s finished with failed hosts, within rollout_max_fail_percentage: %s" % (title, ", ".join(failed))
    return ""


def plan_from_hostvars(app, apps, hosts, hostvars, buildings, settings, version="", mode="deploy"):
    """rollout_plan from the inventory as playbooks see it: each host's
    groups and building, each building's registry. A host outside every
    building is left to rollout_plan to refuse."""
    group_names = {h: hostvars[h]["group_names"] for h in hosts}
    building_of = {}
    for host in hosts:
        try:
            building_of[host] = inventory_building_of(group_names[host], buildings)
        except ValueError:
            continue
    registries = {name: (spec or {}).get("registry") for name, spec in (buildings or {}).items()}
    return rollout_plan(app, apps, hosts, group_names, building_of, registries, settings or {}, version, mode)


def summary_from_hostvars(hostvars, plan, buildings):
    """rollout_summary from the results each planned host registered."""
    entries = {}
    for host in plan["hosts"]:
        facts = hostvars[host]
        entries[host] = {
            "building": inventory_building_of(facts["group_names"], buildings),
            "prepare": facts.get("rollout_prepare"),
            "result": facts.get("rollout_result"),
            "revert": facts.get("rollout_revert"),
        }
    return rollout_summary(entries, plan)
