"""Moving an app's traffic from one container to another: the decisions.

What an nginx upstream file of berth says and how it is written, when a
reload has taken effect, and when nginx may serve something else than the
file. Plain functions without I/O; the switches themselves (nginx on the
host, an external command) are in berth_switch_client.
"""

import re

SERVER_LINE = re.compile(r"^\s*server\s+(\S+?)(?:\s+[^;]*)?;", re.MULTILINE)
SHUTTING_DOWN = "is shutting down"
HEADER = "# Written by berth's docker_rollout"


def upstream_servers(text):
    """The servers an upstream file lists (not the unix sockets)."""
    return [s for s in SERVER_LINE.findall(text) if not s.startswith("unix:")]


def upstream_config(app, servers):
    """The upstream file of `app` that sends its traffic to `servers`."""
    lines = ["%s; the live servers of app %s." % (HEADER, app), "upstream berth_%s {" % app]
    lines += ["    server %s max_fails=0;" % server for server in servers]
    lines += ["    keepalive 16;", "}", ""]
    return "\n".join(lines)


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
