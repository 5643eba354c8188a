"""Moving an app's traffic from one container to another: the decisions.

What an nginx upstream file of berth says and how it is written, when a
reload has taken effect, and when nginx may serve something else than the
file. Plain functions without I/O; the switches themselves (nginx on the
host, an external command) are in berth_switch_client.
"""

import re

from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import probe_address

SERVER_LINE = re.compile(r"^\s*server\s+(\S+?)(\s+[^;]*)?;", re.MULTILINE)
SHUTTING_DOWN = "is shutting down"
HEADER = "# Written by berth's docker_rollout"


def _servers(text, backup):
    return [
        server for server, flags in SERVER_LINE.findall(text) if not server.startswith("unix:") and ("backup" in flags.split()) == backup
    ]


def upstream_servers(text):
    """The servers an upstream file sends traffic to (not the unix sockets,
    not the backups)."""
    return _servers(text, backup=False)


def upstream_backups(text):
    """The servers nginx tries only when every other one failed."""
    return _servers(text, backup=True)


def upstream_config(app, servers, backups=()):
    """The upstream file of `app` that sends its traffic to `servers`, and
    to `backups` when a request to them fails."""
    lines = ["%s; the live servers of app %s." % (HEADER, app), "upstream berth_%s {" % app]
    lines += ["    server %s max_fails=0;" % server for server in servers]
    lines += ["    server %s max_fails=0 backup;" % server for server in backups]
    lines += ["    keepalive 16;", "}", ""]
    return "\n".join(lines)


def published_addresses(containers):
    """{"127.0.0.1:PORT": "ADDRESS:PORT"}: for each loopback port a running
    container publishes, the container's own address behind it, which
    answers without docker-proxy. `containers` are `docker inspect` results."""
    found = {}
    for container in containers:
        if not container["State"].get("Running"):
            continue
        settings = container.get("NetworkSettings") or {}
        for spec, bindings in (settings.get("Ports") or {}).items():
            port, _sep, proto = spec.partition("/")
            if proto != "tcp":
                continue
            for binding in bindings or []:
                if binding.get("HostIp") not in ("127.0.0.1", "0.0.0.0", "") or not binding.get("HostPort"):
                    continue
                # A container on the host's network has no address of its own.
                address = probe_address(settings.get("Networks"), None, int(port))
                if address[0] != "127.0.0.1":
                    found["127.0.0.1:%s" % binding["HostPort"]] = "%s:%d" % address
    return found


def engine_bridges(upstreams, published):
    """What nginx needs while the engine restarts, as {app: (bridged text,
    restored text)}. docker-proxy, which carries the loopback ports, goes
    down with the daemon while live-restore keeps the containers running:
    an app whose upstream (written by berth, one server) is a port a running
    container publishes gets that container's own address as its backup for
    that time, and none after. A backup left by a run that died is
    replaced by the current address. `upstreams` is {app: file text};
    `published` as published_addresses returns."""
    bridges = {}
    for app, text in sorted(upstreams.items()):
        servers = upstream_servers(text)
        if not written_by_berth(text) or len(servers) != 1:
            continue
        if servers[0] in published:
            bridges[app] = (upstream_config(app, servers, [published[servers[0]]]), upstream_config(app, servers))
        elif upstream_backups(text):
            # A left backup whose container publishes nothing now: its
            # address may be another app's; it goes, and none comes.
            bridges[app] = (upstream_config(app, servers), upstream_config(app, servers))
    return bridges


def live_restore_kept(info, config):
    """Whether the containers run on through this restart: live-restore is
    on in the running engine (`docker info`) and in the daemon.json it will
    start with. Without it they stop, and a restarted one may get another
    address, even one an app's backup names."""
    return bool((info or {}).get("LiveRestoreEnabled")) and bool((config or {}).get("live-restore"))


def written_by_berth(text):
    return text.startswith(HEADER)


def reload_applied(before, now):
    """Whether nginx has taken a reload: `nginx -s reload` only signals the
    master, which then starts new workers and tells the old ones (the pids in
    `before`) to finish. Until then the old workers still take new requests
    for the old upstream."""
    fresh = [pid for pid in now if pid not in before and SHUTTING_DOWN not in now[pid]]
    lingering = [pid for pid in before if pid in now and SHUTTING_DOWN not in now[pid]]
    return bool(fresh) and not lingering


def nginx_stale(current, applied, ours):
    """Whether nginx may serve something else than the upstream file says:
    the file changed since berth last saw nginx take it (a run killed between
    the write and the reload, or a hand edit). A file berth never wrote (the
    proxy role's placeholder, applied by that role's reload) is not stale."""
    if current is None:
        return False
    if applied is None:
        return ours
    return applied != current


def one_line(text):
    return " ".join(text.split())


# The engine restart's options: (low, high) for each number.
RESTART_LIMITS = {"wait_timeout": (5, 600), "lock_timeout": (0, 3600)}
UNIT_NAME = re.compile(r"^[A-Za-z0-9@._:-]+$")


def restart_option_errors(params):
    """Every problem with docker_engine_restart's options, before it touches
    the host."""
    errors = []
    for name, (low, high) in RESTART_LIMITS.items():
        if not low <= params[name] <= high:
            errors.append("%s must be between %d and %d seconds, got %s" % (name, low, high, params[name]))
    if not UNIT_NAME.match(params["service"] or ""):
        errors.append("service must be a systemd unit name (letters, digits, @ . _ : -), got %r" % params["service"])
    return errors
